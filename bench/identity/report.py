"""Renders the identity benchmark's results as Markdown.

Reads the directory scripts/bench-identity.sh filled:
  meta.json                              date, machine, versions, wrk parameters
  bcrypt.json                            bench/identity/bcrypt_bound.py's output
  {keystone,ferrostack}/{op}.json        one wrk run each (bench/identity/common.lua's done())
  {keystone,ferrostack}/memory.json      RSS / peak RSS / PSS of the server's processes

Usage: python3 report.py --line RUN_JSON SYSTEM OP  prints one run's numbers
       python3 report.py RESULTS_DIR            prints the results section
       python3 report.py RESULTS_DIR --doc FILE also writes its section of docs/benchmarks.md
Standard library only, so any python3 runs it.
"""

import json
import sys
from pathlib import Path

OPS = [
    ("validate", "token validate (`GET /v3/auth/tokens`)"),
    ("rescope", "token issue, re-scope (`token` method)"),
    ("password", "token issue, password (bcrypt)"),
]
SYSTEMS = ("keystone", "ferrostack")

# The targets.
VALIDATE_RATIO, VALIDATE_P99_MS, RESCOPE_RATIO, RSS_MB = 50, 5.0, 30, 40
PASSWORD_BOUND_SHARE = 0.8  # "bound only by the hash cost": within 80 % of the bcrypt ceiling


def load(path: Path):
    return json.loads(path.read_text())


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:.2f}"


def fmt_ms(x: float) -> str:
    return f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms" if x >= 1 else f"{x:.2f} ms"


def fmt_ratio(x: float) -> str:
    return f"**{x:,.0f}×**" if x >= 10 else f"**{x:.1f}×**"


def cpu_per_op(c: dict, run: dict) -> float:
    """Server CPU seconds per request."""
    return c["server_ticks"] / c["clk_tck"] / max(run["requests"], 1)


def fmt_cpu(secs: float) -> str:
    return f"{secs * 1e3:.0f} ms" if secs >= 0.01 else f"{secs * 1e3:.2f} ms" if secs >= 1e-3 \
        else f"{secs * 1e6:.0f} µs"


def cpu_use(c: dict) -> str:
    """Cores used by the server and by wrk during the run, e.g. `1.2 / 0.7 cores`."""
    wall = c["wall_ns"] / 1e9 * c["clk_tck"]
    return f"{c['server_ticks'] / wall:.2f} / {c['wrk_ticks'] / wall:.2f} cores"


def errors(run: dict) -> int:
    return sum(run["errors"].values())


def check(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(results: Path) -> tuple[str, list[str]]:
    meta = load(results / "meta.json")
    bound = load(results / "bcrypt.json")
    runs = {s: {op: load(results / s / f"{op}.json") for op, _ in OPS} for s in SYSTEMS}
    mem = {s: load(results / s / "memory.json") for s in SYSTEMS}
    cpu = {s: {op: load(results / s / f"{op}.cpu.json") for op, _ in OPS} for s in SYSTEMS}
    ks, fs = runs["keystone"], runs["ferrostack"]
    verdicts = []

    out = []
    w = meta["wrk"]
    out.append(
        f"Run of {meta['date']} on {meta['machine']}: Keystone {meta['keystone_version']} "
        f"({meta['keystone_server']}), Ferrostack `{meta['ferrostack_commit']}`, "
        f"bcrypt cost {meta['rounds']} on both, SQLite and Fernet on both."
    )
    out.append("")
    out.append(
        f"Load: `wrk -t{w['threads']} -c{w['connections']} -d{w['duration']} --latency` for "
        f"validate and re-scope, `wrk -t{w['threads']} -c{w['password_connections']} "
        f"-d{w['password_duration']}` for password issue, each after a {w['warmup']} warm-up run "
        "with the same parameters; the same Lua scripts (`bench/identity/*.lua`) send "
        "byte-identical requests to both systems."
    )
    out.append("")
    out.append(
        "| operation | Keystone ops/s | Ferrostack ops/s | throughput ratio | Keystone p50 "
        "| Ferrostack p50 | Keystone p99 | Ferrostack p99 | target |"
    )
    out.append("|---|--:|--:|--:|--:|--:|--:|--:|---|")
    for op, label in OPS:
        k, f = ks[op], fs[op]
        ratio = f["rps"] / k["rps"] if k["rps"] else float("inf")
        if op == "validate":
            ok = ratio >= VALIDATE_RATIO and f["p99_ms"] < VALIDATE_P99_MS
            target = f"≥ {VALIDATE_RATIO}×, p99 < {VALIDATE_P99_MS:g} ms: {check(ok)}"
        elif op == "rescope":
            ok = ratio >= RESCOPE_RATIO
            target = f"≥ {RESCOPE_RATIO}×: {check(ok)}"
        else:
            share = f["rps"] / bound["max_issue_per_s"]
            ok = share >= PASSWORD_BOUND_SHARE
            target = (
                f"hash-bound ({bound['max_issue_per_s']:.1f}/s ceiling): "
                f"{share:.0%} of it, {check(ok)}"
            )
        verdicts.append(ok)
        out.append(
            f"| {label} | {fmt_rate(k['rps'])} | {fmt_rate(f['rps'])} | {fmt_ratio(ratio)} "
            f"| {fmt_ms(k['p50_ms'])} | {fmt_ms(f['p50_ms'])} | {fmt_ms(k['p99_ms'])} "
            f"| {fmt_ms(f['p99_ms'])} | {target} |"
        )
    out.append("")

    kmem, fmem = mem["keystone"], mem["ferrostack"]
    ok = fmem["rss_kb"] / 1024 < RSS_MB
    verdicts.append(ok)
    out.append("| resident memory after the load | Keystone | Ferrostack | ratio | target |")
    out.append("|---|--:|--:|--:|---|")
    out.append(
        f"| RSS (VmRSS; Keystone: sum over {kmem['processes']} processes) "
        f"| {kmem['rss_kb'] / 1024:.0f} MB | {fmem['rss_kb'] / 1024:.1f} MB "
        f"| {fmt_ratio(kmem['rss_kb'] / fmem['rss_kb'])} less | < {RSS_MB} MB: {check(ok)} |"
    )
    out.append(
        f"| peak RSS (VmHWM, summed likewise) | {kmem['hwm_kb'] / 1024:.0f} MB "
        f"| {fmem['hwm_kb'] / 1024:.1f} MB | {fmt_ratio(kmem['hwm_kb'] / fmem['hwm_kb'])} less | |"
    )
    out.append(
        f"| PSS (shared pages counted once) | {kmem['pss_kb'] / 1024:.0f} MB "
        f"| {fmem['pss_kb'] / 1024:.1f} MB | {fmt_ratio(kmem['pss_kb'] / fmem['pss_kb'])} less | |"
    )
    out.append("")

    out.append(
        "| server CPU per operation (CPU time of the server's processes ÷ requests) "
        "| Keystone | Ferrostack | ratio | server / wrk CPU use, Keystone | same, Ferrostack |"
    )
    out.append("|---|--:|--:|--:|--:|--:|")
    for op, label in OPS:
        k, f = cpu_per_op(cpu["keystone"][op], ks[op]), cpu_per_op(cpu["ferrostack"][op], fs[op])
        out.append(
            f"| {label} | {fmt_cpu(k)} | {fmt_cpu(f)} | {fmt_ratio(k / f)} less "
            f"| {cpu_use(cpu['keystone'][op])} | {cpu_use(cpu['ferrostack'][op])} |"
        )
    out.append("")
    size = {s: int((results / s / "validate.bytes").read_text()) for s in SYSTEMS}
    out.append(
        f"Both catalogs hold the same services and endpoints; a validate answer is "
        f"{size['keystone']:,} bytes from Keystone and {size['ferrostack']:,} from Ferrostack."
    )
    out.append("")
    out.append(
        f"Password issue ceiling: one bcrypt verify at cost {bound['rounds']} takes "
        f"{bound['verify_ms']:.0f} ms here (pyca/bcrypt {bound['bcrypt_version']}, median of "
        f"{bound['samples']}), so {bound['cores']} cores verify at most "
        f"{bound['max_issue_per_s']:.1f} passwords/s."
    )
    bad = [
        f"{s} {op}: {errors(runs[s][op])} ({runs[s][op]['errors']})"
        for s in SYSTEMS
        for op, _ in OPS
        if errors(runs[s][op])
    ]
    busy = {f"{s} {op}": cpu[s][op]["foreign_pct"] for s in SYSTEMS for op, _ in OPS}
    noisy = {k: v for k, v in busy.items() if v > 10}
    if noisy:
        out.append("")
        out.append(
            "**Caution:** other work on the machine took CPU during some runs (share of the "
            "machine's CPU used by neither the server nor wrk: "
            + ", ".join(f"{k} {v}%" for k, v in noisy.items())
            + "); those numbers are low."
        )
    out.append("")
    if bad:
        out.append("Failed requests (non-2xx answers, socket errors, or wrk time-outs): "
                   + "; ".join(bad) + ".")
    else:
        out.append("Every request of every run succeeded (no non-2xx answer, no socket error).")
    summary = [
        f"validate {fs['validate']['rps'] / ks['validate']['rps']:,.0f}×",
        f"re-scope {fs['rescope']['rps'] / ks['rescope']['rps']:,.0f}×",
        f"password {fs['password']['rps'] / ks['password']['rps']:.1f}×",
        f"RSS {fmem['rss_kb'] / 1024:.1f} MB",
    ]
    return "\n".join(out) + "\n", summary + [f"targets met: {sum(verdicts)}/{len(verdicts)}"]


DOC_HEAD = """## Identity: Ferrostack vs Keystone

```sh
make bench-identity      # = scripts/bench-identity.sh; about 3 minutes; rewrites this file
```

The real Keystone and Ferrostack run side by side on the same machine and get the same load.
`scripts/bench-identity.sh` installs what it needs (`wrk` from Debian; Keystone and uWSGI from
PyPI into `~/.cache/ferrostack/keystone-venv`), builds Ferrostack (`cargo build --release`),
starts both on 127.0.0.1 in a temporary directory, measures one system while the other idles,
writes this file, and stops everything it started (also on failure or Ctrl-C). It stays under
10 minutes.

- **Keystone**: `pip install keystone uwsgi`, served by uWSGI with 2 worker processes of one
  thread each plus the master (`keystone.wsgi.api:application`; `lazy-apps`, `thunder-lock`,
  `Connection: close`, as Keystone's sample uWSGI configuration and the usual deployments).
  `keystone.conf` sets only the SQLite database, the Fernet token provider and key repository,
  and bcrypt at the same cost as Ferrostack; everything else is Keystone's default, notably
  caching off (`[cache] enabled = false`), SQL catalog, default policies. Set up with
  `keystone-manage db_sync`, `fernet_setup` and `bootstrap`.
- **Ferrostack**: the release binary, `ferrostack up` with a fresh state dir (SQLite, Fernet keys
  and bootstrap made on first start), `[identity] password_hash_rounds` = Keystone's bcrypt
  cost, `[log] level = "warn"`. One process; its tokio runtime has one worker thread per core.
- **Same answers**: `ferrostack up` registers every service of the cloud (6 services, 18
  endpoints) while `keystone-manage bootstrap` registers only identity, so the script copies
  Ferrostack's other services and endpoints into Keystone (`bench/identity/mirror_catalog.py`):
  both then return token bodies of about the same size (sizes below).
- **Operations**, all as user `admin` on project `admin`: *validate* = `GET /v3/auth/tokens`
  with the admin token in `X-Auth-Token` and a second project-scoped token in
  `X-Subject-Token`; *re-scope* = `POST /v3/auth/tokens` with the `token` method, from that
  project-scoped token to project `admin`; *password* = `POST /v3/auth/tokens` with the
  `password` method, scoped to project `admin` (one bcrypt verify each). Every answer carries
  the catalog.
- **Load**: `wrk` (HTTP/1.1, keep-alive where the server offers it: Ferrostack does, Keystone
  under uWSGI closes each connection), with the same Lua scripts (`bench/identity/*.lua`) for
  both; latency percentiles are wrk's `--latency` over every request of the measured run. wrk
  runs on the same 2 cores as the server under test, which costs the faster server the most
  (see the CPU table). p50 and p99 under 32 connections are mostly queueing: by Little's law
  the mean latency is connections ÷ throughput.
- **Password ceiling**: bcrypt verify time at the same cost, measured with pyca/bcrypt (the
  library Keystone uses) on one core, times the number of cores: no server can issue password
  tokens faster. "Bound only by the hash cost" is taken as reaching 80 % of it.
- **Memory**: `VmRSS` and `VmHWM` from `/proc/PID/status` right after the load (Ferrostack: its
  one process; Keystone: the uWSGI master and both workers summed), and PSS from
  `/proc/PID/smaps_rollup`, which counts the pages Keystone's workers share only once.
- **CPU**: the CPU time the server's processes used during each measured run (from
  `/proc/PID/stat`) divided by the requests served, which does not depend on how much CPU wrk
  took; and the machine's CPU used by neither server nor wrk, including hypervisor steal. The
  script waits for the machine to be idle before each run and repeats (once, time allowing) a
  run that other work disturbed by more than 15 %; the report flags any that remain.
- **Caching**: Ferrostack keeps a token's validation until the identity data changes
  (ARCHITECTURE.md), so validating the same token again is a hash lookup plus rendering the
  answer. Keystone with its default configuration (no cache) decrypts the token and reads the
  user, project, roles, revocations and catalog from the database on every request, for both
  the `X-Auth-Token` and the `X-Subject-Token`.

Environment knobs: `BENCH_THREADS` (2), `BENCH_CONNECTIONS` (32), `BENCH_DURATION` (15s),
`BENCH_WARMUP` (3s), `BENCH_PASSWORD_CONNECTIONS` (4), `BENCH_PASSWORD_DURATION` (15s),
`BENCH_ROUNDS` (12, Keystone's default bcrypt cost), `BENCH_KEYSTONE_WORKERS` (2),
`BENCH_QUIET_WAIT` (20 s to wait for an idle machine), `BENCH_DEADLINE` (360 s after which
disturbed runs are no longer repeated), `BENCH_SKIP_BUILD` (0), `BENCH_WRITE_DOCS` (1; 0 leaves
this file alone), `BENCH_KEEP` (0; 1 keeps the temporary directory with configurations, logs
and raw wrk output), `KEYSTONE_VENV`, `KEYSTONE_PIP_SPEC` (`keystone`; e.g. `keystone==30.0.0`).

### Latest results

"""

DOC_TAIL = """
### Where Ferrostack's time goes

`perf record` on the Ferrostack process during validate and re-scope load (commit `a6dbd26`,
2026-11-22; flat profile, 2 cores shared with wrk): about 40 % of the samples are in
Ferrostack's own code, a third in glibc's allocator and `memmove`, a quarter in the kernel
(loopback TCP, wake-ups). Within Ferrostack almost all of it is building the token body as a
`serde_json::Value` tree (`BTreeMap` inserts, then serialising and dropping it) on every request,
cached validation included; the Fernet cryptography (AES-128-CBC, HMAC-SHA256, base64) is under
1 % of re-scope. Serialising typed structs directly, or keeping the rendered body with the cached
validation, and a faster allocator are the obvious levers if the validate p99 target (< 5 ms
under 32 connections) gets tight.
"""


def main() -> None:
    if sys.argv[1] == "--line":  # one run, one line: --line RUN_JSON SYSTEM OP
        r = load(Path(sys.argv[2]))
        print(
            f"    {sys.argv[3]:<10} {sys.argv[4]:<9} {r['rps']:>10.1f}/s  p50 {r['p50_ms']:8.2f} ms"
            f"  p99 {r['p99_ms']:8.2f} ms  {r['requests']} requests, {errors(r)} failed"
        )
        return
    results = Path(sys.argv[1])
    body, summary = render(results)
    print(body)
    print("summary: " + ", ".join(summary))
    if len(sys.argv) == 4 and sys.argv[2] == "--doc":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from doc_section import update

        update(Path(sys.argv[3]), "identity", DOC_HEAD + body + DOC_TAIL)
        print(f"wrote {sys.argv[3]}")


if __name__ == "__main__":
    main()
