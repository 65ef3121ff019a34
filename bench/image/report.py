"""Renders the image data benchmark (scripts/bench-image.sh) as Markdown.

Usage: python3 report.py RUNS_CSV META_JSON

runs.csv: one line per measured step:
  round,system,op,bytes,seconds,sync_seconds,server_cpu_s,busy_pct,caches_dropped,status
  system dd (ops write, read), ferrostack / glance (ops upload, download); seconds is the wall
  time of the step (for uploads: until the 204), sync_seconds the `sync` of the store's
  filesystem right after an upload, server_cpu_s the server processes' user+system CPU during
  the step, busy_pct the machine's CPU use just before it, status "ok" or what went wrong.
meta.json: date, machine, disk, sizes, each server's version/status/peak RSS (the script's).
Medians over the successful rounds; MB = 10^6 bytes. Standard library only.
"""

import csv
import json
import statistics
import sys


def load_runs(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def fmt_mb(x):
    return "–" if x is None else f"{x:,.0f}"


def fmt_pct(x, base):
    return "–" if x is None or not base else f"{100 * x / base:.0f} %"


def fmt_mem(kb):
    return "–" if not kb else f"{kb / 1024:,.0f} MiB"


def median_of(rows, key):
    vals = [key(r) for r in rows]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def main():
    runs = load_runs(sys.argv[1])
    meta = json.load(open(sys.argv[2]))
    ok = [r for r in runs if r["status"] == "ok"]

    def sel(system, op):
        return [r for r in ok if r["system"] == system and r["op"] == op]

    def rate(r, with_sync=False):
        s = float(r["seconds"]) + (float(r["sync_seconds"] or 0) if with_sync else 0)
        return int(r["bytes"]) / 1e6 / s if s > 0 else None

    dd_w = median_of(sel("dd", "write"), rate)
    dd_r = median_of(sel("dd", "read"), rate)
    dropped = {r["caches_dropped"] for r in runs}
    out = []
    out.append(f"## Image upload / download throughput ({meta['size_mib']:,} MiB image, "
               f"median of {meta['rounds']} round{'s' if meta['rounds'] != 1 else ''})")
    out.append("")
    out.append(f"{meta['date']} · {meta['machine']} · disk {meta['disk']}")
    out.append("")
    out.append("| | upload (until 204) MB/s | upload + sync MB/s | % of dd write | download MB/s "
               "| % of dd read | server CPU s up / down | server peak RSS |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    out.append(f"| dd (`bs=1M conv=fsync` / `of=/dev/null`) | {fmt_mb(dd_w)} | {fmt_mb(dd_w)} | 100 % "
               f"| {fmt_mb(dd_r)} | 100 % | – | – |")
    notes = []
    for system, label in (("ferrostack", f"Ferrostack {meta['ferrostack']['commit']}"),
                          ("glance", f"Glance {meta['glance'].get('version') or ''}".strip())):
        m = meta[system]
        up, down = sel(system, "upload"), sel(system, "download")
        if not up and not down:
            failures = [r["status"] for r in runs if r["system"] == system and r["status"] != "ok"]
            why = m["status"] if m["status"] != "ok" else (failures[0] if failures else "no result")
            out.append(f"| {label} | {why} | | | | | | {fmt_mem(m['hwm_kb'])} |")
            continue
        u = median_of(up, rate)
        ud = median_of(up, lambda r: rate(r, True))
        d = median_of(down, rate)
        cu = median_of(up, lambda r: float(r["server_cpu_s"]))
        cd = median_of(down, lambda r: float(r["server_cpu_s"]))
        cpu = f"{cu:.1f} / {cd:.1f}" if cu is not None and cd is not None else "–"
        out.append(f"| {label} | {fmt_mb(u)} | {fmt_mb(ud)} | {fmt_pct(ud, dd_w)} | {fmt_mb(d)} "
                   f"| {fmt_pct(d, dd_r)} | {cpu} | {fmt_mem(m['hwm_kb'])} |")
        bad = [r for r in runs if r["system"] == system and r["status"] != "ok"]
        for r in bad:
            notes.append(f"{label}, round {r['round']} {r['op']}: {r['status']} (not counted)")
        if m["status"] != "ok":
            notes.append(f"{label}: {m['status']}")
    out.append("")
    out.append("- Upload: `POST /v2/images` (raw/bare) then `PUT /v2/images/{id}/file` with "
               "`curl -T` (streamed, `Expect:` off); the image is then checked to be `active` "
               "with the file's size and md5. Download: `GET /v2/images/{id}/file` to /dev/null. "
               "\"upload + sync\" adds a `sync` of the store's filesystem after the 204 "
               "(Ferrostack fsyncs before answering, Glance's file store does not), the figure "
               "that compares with dd's `conv=fsync`; \"% of dd\" uses it.")
    if dropped == {"yes"}:
        out.append("- Page caches were dropped (`echo 3 > /proc/sys/vm/drop_caches`) before "
                   "every measured step: reads come from the disk.")
    else:
        out.append("- **Page caches could not be dropped** before some or all steps (not root?): "
                   "reads may come from memory, for dd and the servers alike.")
    out.append(f"- Same filesystem for the test file, dd's target and both stores: "
               f"{meta['same_filesystem']}.")
    line = (f"- Ferrostack: release binary `{meta['ferrostack']['binary']}`, idle RSS "
            f"{fmt_mem(meta['ferrostack']['idle_rss_kb'])}.")
    if meta["glance"]["idle_rss_kb"]:
        line += (f" Glance: {meta['glance']['server']}, single file store, sqlite, no keystone, "
                 f"no image cache, idle RSS {fmt_mem(meta['glance']['idle_rss_kb'])}.")
    out.append(line + " Peak RSS is VmHWM (summed over a server's processes).")
    busy = [int(r["busy_pct"]) for r in runs if r["busy_pct"]]
    if busy and max(busy) > 10:
        out.append(f"- Other work on the machine: up to {max(busy)} % of the CPU just before a "
                   f"step (waited up to the quiet-wait limit first).")
    for n in notes:
        out.append(f"- {n}")
    out.append("")
    out.append("<details><summary>every round</summary>")
    out.append("")
    out.append("| round | system | step | MB/s | seconds | sync s | server CPU s | busy % | status |")
    out.append("|---:|---|---|---:|---:|---:|---:|---:|---|")
    for r in runs:
        secs = float(r["seconds"] or 0)
        mb = int(r["bytes"]) / 1e6 / secs if secs > 0 and r["status"] == "ok" else None
        out.append(f"| {r['round']} | {r['system']} | {r['op']} | {fmt_mb(mb)} | {r['seconds']} "
                   f"| {r['sync_seconds']} | {r['server_cpu_s']} | {r['busy_pct']} | {r['status']} |")
    out.append("")
    out.append("</details>")
    print("\n".join(out))


if __name__ == "__main__":
    main()
