"""Renders the identity benchmark's results as Markdown.

Reads the directory scripts/bench-identity.sh filled:
  meta.json                              date, machine, versions, wrk parameters
  bcrypt.json                            bench/identity/bcrypt_bound.py's output
  {keystone,ferrostack}/{op}.json        one wrk run each (bench/identity/common.lua's done())
  {keystone,ferrostack}/memory.json      RSS / peak RSS / PSS of the server's processes

Usage: python3 report.py --line RUN_JSON SYSTEM OP  prints one run's numbers
       python3 report.py RESULTS_DIR            prints the results section
       python3 report.py RESULTS_DIR --doc FILE also writes docs/benchmarks.md (whole file)
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


def errors(run: dict) -> int:
    return sum(run["errors"].values())


def check(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(results: Path) -> tuple[str, list[str]]:
    meta = load(results / "meta.json")
    bound = load(results / "bcrypt.json")
    runs = {s: {op: load(results / s / f"{op}.json") for op, _ in OPS} for s in SYSTEMS}
    mem = {s: load(results / s / "memory.json") for s in SYSTEMS}
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
    busy = {
        f"{s} {op}": int((results / s / f"{op}.foreign").read_text())
        for s in SYSTEMS
        for op, _ in OPS
        if (results / s / f"{op}.foreign").exists()
    }
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


DOC_HEAD = """# Benchmarks

Numbers are recorded here with the command that reproduces them.

## Identity: Ferrostack vs Keystone

```sh
make bench-identity      # = scripts/bench-identity.sh; about 4 minutes; rewrites this file
```

The real Keystone and Ferrostack run side by side on the same machine and get the same load;
`scripts/bench-identity.sh` installs what it needs (`wrk` from Debian; Keystone and uWSGI from
PyPI into `/root/.cache/ferrostack/keystone-venv`), builds Ferrostack (`cargo build --release`),
starts both on 127.0.0.1 in a temporary directory, measures, writes this file and stops
everything it started.

- **Keystone**: `pip install keystone uwsgi`, served by uWSGI with 2 worker processes of one
  thread each plus the master (`keystone.wsgi.api:application`, `lazy-apps`, `thunder-lock`,
  `Connection: close` as in the usual uWSGI deployments); `keystone.conf` sets only the SQLite
  database, the Fernet token provider and key repository, and bcrypt with the same cost as
  Ferrostack. Everything else is Keystone's default: caching off (`[cache] enabled = false`),
  catalog in the SQL backend, policy defaults. Set up with `keystone-manage db_sync`,
  `fernet_setup`, `bootstrap` (admin user, project, role, region, identity endpoints).
- **Ferrostack**: the release binary, `ferrostack up` with a fresh state dir (SQLite, Fernet keys
  and bootstrap made on first start), `[identity] password_hash_rounds` = Keystone's bcrypt cost,
  `[log] level = "warn"`. One process; its tokio runtime has one worker thread per core.
- **Operations** (all as admin of project `admin`): validate = `GET /v3/auth/tokens` with the
  admin token in `X-Auth-Token` and a second project-scoped token in `X-Subject-Token` (the
  answer includes the catalog on both); re-scope = `POST /v3/auth/tokens` with the `token`
  method from that project-scoped token to project `admin`; password = `POST /v3/auth/tokens`
  with the `password` method, scoped to project `admin`.
- **Load**: `wrk` (HTTP/1.1; keep-alive where the server offers it, which Ferrostack does and
  Keystone under uWSGI does not), `--latency` percentiles over every request. wrk runs on the
  same 2 cores as the server under test, which costs the faster server the most. The idle
  system stays up while the other is measured.
- **Memory**: `VmRSS` and `VmHWM` from `/proc/PID/status` right after the load (Ferrostack: its
  one process; Keystone: the uWSGI master and both workers summed), and PSS from
  `/proc/PID/smaps_rollup`, which counts pages the Keystone workers share only once.
- Ferrostack caches a token's validation until the identity data changes (ARCHITECTURE.md), so
  repeated validation of the same token is a hash lookup; Keystone with its default
  configuration (no cache) decrypts the token and reads the user, project, roles and catalog
  from the database on every request.

Environment knobs: `BENCH_THREADS` (2), `BENCH_CONNECTIONS` (32), `BENCH_DURATION` (15s),
`BENCH_WARMUP` (3s), `BENCH_PASSWORD_CONNECTIONS` (4), `BENCH_PASSWORD_DURATION` (15s),
`BENCH_ROUNDS` (12, Keystone's default bcrypt cost), `BENCH_KEYSTONE_WORKERS` (2),
`BENCH_WRITE_DOCS` (1; 0 leaves this file alone), `BENCH_KEEP` (0; 1 keeps the temp dir with
configs, logs and raw wrk results).

### Latest results

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
        Path(sys.argv[3]).write_text(DOC_HEAD + body)
        print(f"wrote {sys.argv[3]}")


if __name__ == "__main__":
    main()
