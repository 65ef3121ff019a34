"""Renders the networking benchmark's results as its Markdown section of docs/benchmarks.md.

Reads the directory bench/network/run.sh filled:
  meta.json                      date, machine, versions, rounds, shapes, load averages
  {system}.{C}x{M}.r{N}.json     one port_create.py run (its JSON line)
and bench/network/doc_intro.md and doc_notes.md (written by hand; doc_notes.md is optional).

Usage: python3 report.py RESULTS_DIR   prints the section. Standard library only.
"""

import json
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TITLE = "## Networking: port create, Ferrostack vs neutron-server"
# Upstream's published figure the issue quotes: median port create time at 200 nodes.
PUBLISHED_MEDIAN_S = 0.37
ORDER = ("neutron-w", "ferrostack-sqlite", "ferrostack-postgres")


def describe(system: str) -> str:
    if system.startswith("neutron-w"):
        n = int(system[len("neutron-w"):])
        return f"neutron-server, {n} process{'es' if n > 1 else ''}"
    return {"ferrostack-sqlite": "Ferrostack, SQLite",
            "ferrostack-postgres": "Ferrostack, PostgreSQL"}.get(system, system)


def sort_key(system: str):
    for i, prefix in enumerate(ORDER):
        if system.startswith(prefix):
            return (i, system)
    return (len(ORDER), system)


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:.2f}"


def fmt_ms(x) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms" if x >= 1 else f"{x:.2f} ms"


def fmt_ratio(x: float) -> str:
    return f"{x:,.0f}×" if x >= 10 else f"{x:.1f}×"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main() -> None:
    results = Path(sys.argv[1])
    meta = json.loads((results / "meta.json").read_text())
    runs: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(results.glob("*.r*.json")):
        m = re.fullmatch(r"(.+)\.(\d+x\d+)\.r(\d+)\.json", path.name)
        if m:
            runs.setdefault((m[1], m[2]), []).append(json.loads(path.read_text()))
    systems = sorted({s for s, _ in runs}, key=sort_key)
    shapes = meta["shapes"]

    out = [TITLE, "", (HERE / "doc_intro.md").read_text().strip(), "", "### Latest results", ""]
    neutron_note = (f"neutron {meta['neutron_version']} under uWSGI {meta['uwsgi_version']}"
                    if meta["neutron_version"] else "no neutron-server (not installed or no "
                    "PostgreSQL): compared with the published figure only")
    pg = f", PostgreSQL {meta['postgresql_version']}" if meta["postgresql_version"] else ""
    out.append(f"Run of {meta['date']} on {meta['machine']} (`nproc` = {meta['ncpu']}): "
               f"{neutron_note}{pg}; Ferrostack `{meta['ferrostack_commit']}`. "
               f"Load average (1/5/15 min) {meta['load_before']} before and "
               f"{meta['load_after']} after the whole run. Every figure is the median of "
               f"{meta['rounds']} rounds; a round runs every shape on every system in turn.")
    out.append("")

    all_runs = [r for rs in runs.values() for r in rs]
    for shape in shapes:
        c, m = (int(x) for x in shape.split("x"))
        out.append(f"**{c} client{'s' if c > 1 else ''} × {m} ports = {c * m:,} ports** "
                   f"({'concurrent' if c > 1 else 'sequential: one request at a time'}):")
        out.append("")
        out.append("| system | create ports/s (each round) | create p50 | p90 | p99 | "
                   "server CPU / create | delete ports/s | delete p50 | p90 | p99 | "
                   "server CPU / delete |")
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for system in systems:
            rs = runs.get((system, shape))
            if not rs:
                continue
            cr = [r["create"] for r in rs]
            de = [r["delete"] for r in rs]
            each = ", ".join(fmt_rate(x["per_s"]) for x in cr)
            bold = "**" if system.startswith("ferrostack") else ""
            out.append(
                f"| {describe(system)} | {bold}{fmt_rate(median(x['per_s'] for x in cr))}{bold} "
                f"({each}) | {fmt_ms(median(x['p50_ms'] for x in cr))} | "
                f"{fmt_ms(median(x['p90_ms'] for x in cr))} | "
                f"{fmt_ms(median(x['p99_ms'] for x in cr))} | "
                f"{fmt_ms(median(x['server_cpu_ms_per_request'] for x in cr))} | "
                f"{fmt_rate(median(x['per_s'] for x in de))} | "
                f"{fmt_ms(median(x['p50_ms'] for x in de))} | "
                f"{fmt_ms(median(x['p90_ms'] for x in de))} | "
                f"{fmt_ms(median(x['p99_ms'] for x in de))} | "
                f"{fmt_ms(median(x['server_cpu_ms_per_request'] for x in de))} |")
        out.append(f"| Neutron at 200 nodes, published (the issue's figure) | "
                   f"{fmt_rate(1 / PUBLISHED_MEDIAN_S)} per client | "
                   f"{fmt_ms(PUBLISHED_MEDIAN_S * 1000)} | – | – | – | – | – | – | – | – |")
        out.append("")

        # Ratios: each Ferrostack backend against the best neutron-server configuration.
        best = None
        for system in systems:
            if system.startswith("neutron-w") and (system, shape) in runs:
                rate = median(r["create"]["per_s"] for r in runs[(system, shape)])
                if best is None or rate > best[1]:
                    best = (system, rate, median(r["create"]["p50_ms"] for r in runs[(system, shape)]),
                            median(r["create"]["p99_ms"] for r in runs[(system, shape)]),
                            median(r["create"]["server_cpu_ms_per_request"]
                                   for r in runs[(system, shape)]))
        lines = []
        for system in systems:
            if not system.startswith("ferrostack") or (system, shape) not in runs:
                continue
            rs = runs[(system, shape)]
            rate = median(r["create"]["per_s"] for r in rs)
            p50 = median(r["create"]["p50_ms"] for r in rs)
            p99 = median(r["create"]["p99_ms"] for r in rs)
            parts = []
            cpu = median(r["create"]["server_cpu_ms_per_request"] for r in rs)
            if best:
                parts.append(f"{fmt_ratio(rate / best[1])} the throughput of the faster "
                             f"neutron-server ({describe(best[0])}), p50 "
                             f"{fmt_ratio(best[2] / p50)} and p99 {fmt_ratio(best[3] / p99)} "
                             f"shorter" + (f", {fmt_ratio(best[4] / cpu)} less server CPU per port"
                                           if best[4] and cpu else ""))
            parts.append(f"p50 {fmt_ratio(PUBLISHED_MEDIAN_S * 1000 / p50)} below the "
                         f"published 0.37 s")
            server = median(r["create"]["server_cpu_s"] / r["create"]["seconds"] for r in rs
                            if r["create"].get("server_cpu_s") is not None)
            client = median(r["create"]["client_cpu_s"] / r["create"]["seconds"] for r in rs
                            if r["create"].get("client_cpu_s") is not None)
            if server is not None and client is not None:
                parts.append(f"while creating, the server kept {server:.2f} cores busy and the "
                             f"Python client {client:.2f}")
            lines.append(f"- {describe(system)}: " + "; ".join(parts) + ".")
        out.extend(lines)
        out.append("")

    loads = [float(r["loadavg"][0]) for r in all_runs if r.get("loadavg")]
    ok = all(r["ok"] for r in all_runs)
    errors = sum(r["create"]["errors"] + r["delete"]["errors"] for r in all_runs)
    probes = min(r["freed_addresses_checked"] for r in all_runs) if all_runs else 0
    out.append(
        f"Checks, every run: {'passed' if ok else 'FAILED (see the raw results)'} — each created "
        f"port answered 201 with one fixed IP in the subnet, the C×M addresses and MACs were "
        f"distinct and the server listed exactly those ports; after the deletes none was listed and "
        f"at least {probes} of the freed addresses (a sample) could be allocated again by address. "
        f"{errors} failed requests in {len(all_runs)} runs.")
    busy = [int(p.read_text()) for p in results.glob("*.busy")]
    if loads:
        out.append("")
        out.append(f"1-minute load average at the end of each run: {min(loads):.2f} to "
                   f"{max(loads):.2f} (the benchmark itself keeps up to about 2 busy: client and "
                   f"server)." + (
                       f" Other work took {min(busy)}–{max(busy)} % of the machine's CPU in the "
                       f"second before each run ({sum(b > 10 for b in busy)} of {len(busy)} runs "
                       f"started above 10 %, after waiting up to 10 s for a quieter machine)."
                       if busy else ""))
    notes = HERE / "doc_notes.md"
    if notes.exists():
        out.extend(["", notes.read_text().strip()])
    print("\n".join(out))


if __name__ == "__main__":
    main()
