"""Renders the placement benchmark's results as the Markdown section of docs/benchmarks.md.

Reads the directory scripts/bench-placement.sh filled:
  meta.json                          date, machine, versions, load parameters, the queries
  seed.{ferrostack,upstream}.json    what seed.py created and how long it took
  compare.json                       compare.py's equivalence check
  {system}.{query}.c{N}.json         one wrk run (candidates.lua's done())
  {system}.{query}.c{N}.cpu.json     CPU ticks of the server and of wrk during that run
  memory.json                        RSS / peak RSS of both servers after the load
  crosscheck.txt                     crosscheck.py's output (optional)
and bench/placement/doc_intro.md and doc_history.md (written by hand).

Usage: python3 report.py RESULTS_DIR   prints the section. Standard library only.
"""

import json
import re
import sys
from pathlib import Path

TARGET = 20  # issue 4: >= 20x faster
SYSTEMS = ("upstream", "ferrostack")


def load(path: Path):
    return json.loads(path.read_text())


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:.2f}"


def fmt_ms(x: float) -> str:
    return f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms" if x >= 1 else f"{x:.2f} ms"


def fmt_ratio(x: float) -> str:
    return f"**{x:,.0f}×**" if x >= 10 else f"**{x:.1f}×**"


def fmt_cpu(secs: float) -> str:
    return f"{secs * 1e3:,.0f} ms" if secs >= 0.01 else f"{secs * 1e3:.2f} ms"


def cpu_per_request(c: dict, run: dict) -> float:
    return c["server_ticks"] / c["clk_tck"] / max(run["requests"], 1)


def cores(c: dict, ticks: str) -> float:
    return c[ticks] / (c["wall_ns"] / 1e9 * c["clk_tck"])


def errors(run: dict) -> int:
    return sum(run["errors"].values())


def render_schedule(s: dict) -> str:
    """The scheduling loop (bench/placement/schedule_loop.py): candidates right after a claim."""
    f, u = s["ferrostack"], s["upstream"]
    rows = [
        ("`GET /allocation_candidates` right after a claim", "candidates_after_a_claim"),
        ("the same with nothing written in between (cached)", "candidates_cached"),
        ("`PUT /allocations/{consumer}` (the claim)", "claim"),
    ]
    lines = [
        f"Scheduling loop (`bench/placement/schedule_loop.py`, {f['iterations']} sequential "
        "candidates + claim pairs, as one scheduler boots servers; `resources=…&limit=1000`, a "
        "new connection per request for both): every candidates request follows a write, so "
        "Ferrostack re-reads its snapshot each time.",
        "",
        "| request | openstack-placement p50 | Ferrostack p50 | openstack-placement p99 | Ferrostack p99 |",
        "|---|--:|--:|--:|--:|",
    ]
    for label, key in rows:
        lines.append(f"| {label} | {fmt_ms(u[key]['p50_ms'])} | {fmt_ms(f[key]['p50_ms'])} "
                     f"| {fmt_ms(u[key]['p99_ms'])} | {fmt_ms(f[key]['p99_ms'])} |")
    lines.append("")
    lines.append(f"Boots one scheduler could place per second at this rate (candidates + claim): "
                 f"Ferrostack {f['boots_per_second_one_scheduler']}, openstack-placement "
                 f"{u['boots_per_second_one_scheduler']}.")
    return "\n".join(lines)


def render(results: Path) -> str:
    meta = load(results / "meta.json")
    cmp = load(results / "compare.json")
    seed = {s: load(results / f"seed.{s}.json") for s in SYSTEMS}
    mem = load(results / "memory.json")
    intro = (Path(__file__).parent / "doc_intro.md").read_text().strip()
    out = ["## Placement: Ferrostack vs openstack-placement", "", intro, "", "### Latest results", ""]
    out.append(
        f"Run of {meta['date']} on {meta['machine']}: openstack-placement "
        f"{meta['placement_version']} ({meta['upstream_server']}, SQLite), Ferrostack "
        f"`{meta['ferrostack_commit']}` (one process, tokio with {meta['ncpu']} worker threads, "
        f"SQLite). Both servers had the same {meta['ncpu']} cores (`nproc` = {meta['ncpu']}), "
        "shared with wrk; each was measured while the other idled.")
    out.append("")
    out.append(
        f"Data: {seed['ferrostack']['providers']:,} providers, {seed['ferrostack']['consumers']:,} "
        f"consumers, {seed['ferrostack']['providers_without_room']} providers without room for the "
        f"request. Load: `wrk -c N -d{meta['duration']} --latency` (2 threads, 1 for N = 1) after a "
        f"{meta['warmup']} warm-up with the same parameters, microversion 1.39.")
    out.append("")
    out.append("| query | conns | openstack-placement req/s | Ferrostack req/s | throughput ratio "
               "| placement p50 | Ferrostack p50 | placement p99 | Ferrostack p99 "
               "| server CPU / request, placement | same, Ferrostack | CPU ratio |")
    out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    ratios, cpu_ratios, failures, disturbed = [], [], [], []
    for name, query in meta["queries"]:
        for n in meta["concurrency"]:
            run, cpu = {}, {}
            for s in SYSTEMS:
                run[s] = load(results / f"{s}.{name}.c{n}.json")
                cpu[s] = load(results / f"{s}.{name}.c{n}.cpu.json")
                if errors(run[s]):
                    failures.append(f"{s} {name} c={n}: {run[s]['errors']}")
                if cpu[s]["foreign_pct"] > 15:
                    disturbed.append(cpu[s]["foreign_pct"])
            u, f = run["upstream"], run["ferrostack"]
            ratio = f["rps"] / u["rps"] if u["rps"] else float("inf")
            cu, cf = (cpu_per_request(cpu[s], run[s]) for s in SYSTEMS)
            cpu_ratio = cu / cf if cf else float("inf")
            ratios.append(ratio)
            cpu_ratios.append(cpu_ratio)
            label = "`" + query.replace("resources=VCPU:1,MEMORY_MB:512,DISK_GB:10", "resources=…") + "`"
            out.append(
                f"| {label} | {n} | {fmt_rate(u['rps'])} | {fmt_rate(f['rps'])} | {fmt_ratio(ratio)} "
                f"| {fmt_ms(u['p50_ms'])} | {fmt_ms(f['p50_ms'])} | {fmt_ms(u['p99_ms'])} "
                f"| {fmt_ms(f['p99_ms'])} | {fmt_cpu(cu)} | {fmt_cpu(cf)} | {fmt_ratio(cpu_ratio)} |")
    out.append("")
    out.append("`resources=…` is `resources=VCPU:1,MEMORY_MB:512,DISK_GB:10`. Server CPU per request is "
               "the CPU time of the server's processes during the measured run (from `/proc/PID/stat`: "
               "for openstack-placement the uWSGI master and workers) divided by the requests served.")
    out.append("")
    verdict = "met" if min(ratios) >= TARGET else "**missed**"
    out.append(f"Target ≥ {TARGET}× faster: lowest throughput ratio {min(ratios):,.0f}×, highest "
               f"{max(ratios):,.0f}× ({verdict}); server CPU per request {min(cpu_ratios):,.0f}–"
               f"{max(cpu_ratios):,.0f}× less.")
    out.append("")
    out.append("Same answers (checked before the load, `bench/placement/compare.py`):")
    out.append("")
    for name, r in cmp.items():
        f, u = r["ferrostack"], r["upstream"]
        what = (f"{f['allocation_requests']} allocation requests and {f['provider_summaries']} "
                f"provider summaries from each")
        if "limit" in r["query"]:
            detail = (f"both a subset of the {r['unlimited_allocation_requests']} candidates without "
                      f"the limit, which are identical in both; "
                      + ("the same 50 chosen" if r["same_choice"] else
                         f"{r['common_choices']} of the chosen in common (placement promises no order)"))
        else:
            detail = "identical sets (amounts, mappings, capacity/used, traits, root/parent)"
        status = "equivalent" if r["equivalent"] else "**different**: " + "; ".join(r["problems"])
        out.append(f"- `{r['query']}`: {what}; {detail}: {status}. "
                   f"Answer size {f['bytes']:,} bytes (Ferrostack) vs {u['bytes']:,} (placement).")
    cross = results / "crosscheck.txt"
    if cross.exists():
        lines = [line.strip() for line in cross.read_text().splitlines() if line.strip()]
        summary = lines[-1] if lines else "no output"
        def queries(kind: str) -> list[str]:
            found = (re.match(rf"{kind}\s+(.*?): \d+ / \d+ requests", line) for line in lines)
            return [f"`{m.group(1)}`" for m in found if m]
        different, superset = queries("DIFFERENT"), queries("superset")
        out.append(f"- Nested trees, sharing providers, granular groups (`group_policy`, "
                   f"`same_subtree`, `root_required`, `in_tree`, `member_of`) and microversions "
                   f"1.10–1.39, on a second small data set added to both after the load "
                   f"(`bench/placement/crosscheck.py`): {summary}.")
        if different:
            out.append("  **Different**: " + "; ".join(different) + ".")
        if superset:
            out.append("  Placement's own answer to " + "; ".join(superset) + " depends on its "
                       "worker's hash seed (its AllocationRequest equality ignores the anchor, so "
                       "a sharing provider's candidates for several anchors collapse into one); "
                       "Ferrostack's answer was checked to contain placement's.")
    out.append("")
    out.append(
        f"Seeding the data through the APIs (same script, sequential requests): Ferrostack "
        f"{seed['ferrostack']['providers_seconds'] + seed['ferrostack']['allocations_seconds']:.1f} s, "
        f"openstack-placement "
        f"{seed['upstream']['providers_seconds'] + seed['upstream']['allocations_seconds']:.1f} s. "
        f"Memory after the load: Ferrostack {mem['ferrostack']['rss_kb'] / 1024:.0f} MiB RSS "
        f"(whole cloud process), openstack-placement {mem['upstream']['rss_kb'] / 1024:.0f} MiB "
        f"(uWSGI master + {meta['workers']} workers, summed).")
    schedule = {k: results / f"schedule.{k}.json" for k in ("ferrostack", "upstream")}
    if all(f.exists() for f in schedule.values()):
        out.append("")
        out.append(render_schedule({k: load(f) for k, f in schedule.items()}))
    out.append("")
    if failures:
        out.append("Errors during the load: " + "; ".join(failures) + ".")
    else:
        out.append("Every request of every run succeeded (no non-2xx answer, no socket error, no timeout).")
    if disturbed:
        out.append("")
        out.append(f"Other work on the machine took {min(disturbed)}–{max(disturbed)} % of its CPU "
                   f"during {len(disturbed)} of the {2 * len(ratios)} measured runs (more than 15 %); "
                   "both systems were measured under the same conditions, one after the other, "
                   "but the absolute numbers are noisier than on an idle machine.")
    history = Path(__file__).parent / "doc_history.md"
    if history.exists():
        out.append("")
        out.append(history.read_text().strip())
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(Path(sys.argv[1])))
