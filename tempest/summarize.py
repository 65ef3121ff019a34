#!/usr/bin/env python3
"""Summarise a Tempest (stestr) subunit v2 stream: counts, then each failure with its first error.

Usage: summarize.py RESULTS.subunit [RERUN.subunit ...] [--csv OUT.csv] [--failing OUT.txt]
                    [--log tempest.log]

Reads the stream `stestr last --subunit` writes (the one scripts/tempest.sh saves), prints
passed/failed/skipped counts and, per failing test, the exception line and the first line of
Tempest's `Details:`; `--csv` writes id,status,seconds,first error; `--failing` writes the
failing test ids one a line (the class for a class-level failure). With several streams a later
one's results replace an earlier one's (a serial rerun of the failures). Exit status 0.
"""
import argparse
import csv
import re
import sys

import subunit
import testtools

# A class-level failure (setUpClass, resource_setup) is reported under a pseudo test id.
FIXTURE_RE = re.compile(r"^(setUpClass|tearDownClass|setUpModule|tearDownModule) \((.*)\)$")
# Tempest's log line for each HTTP request (in the test's captured log).
REQUEST_RE = re.compile(r"Request \([^)]*\): (\d{3}) (\w+) (\S+)")


def text_of(details):
    out = {}
    for name, content in (details or {}).items():
        try:
            out[name] = "".join(content.iter_text())
        except Exception:  # noqa: BLE001 - a binary attachment
            continue
    return out


def first_error(tb):
    """The exception line of a traceback plus the first line of a Tempest `Details:` block."""
    lines = [l.rstrip() for l in (tb or "").splitlines() if l.strip()]
    if not lines:
        return ""
    last_tb = max((i for i, l in enumerate(lines) if l.startswith("Traceback")), default=-1)
    tail = [l for l in lines[last_tb + 1:] if not l.startswith(" ")]
    if not tail:
        return lines[-1][:300]
    out = tail[0][:300]
    details = next((l for l in tail[1:] if l.startswith("Details:")), None)
    if details:
        out += " | " + details[:300]
    return out


def failed_request(log):
    """The last request that got a 4xx/5xx, else the last request, from the captured log."""
    reqs = REQUEST_RE.findall(log or "")
    if not reqs:
        return ""
    bad = [r for r in reqs if r[0] >= "400"]
    status, method, url = (bad or reqs)[-1]
    url = re.sub(r"^https?://[^/]+", "", url)
    return f"{'last failed' if bad else 'last'} request: {status} {method} {url}"


_LOG = {}


def log_lines(path):
    if path not in _LOG:
        try:
            with open(path, errors="replace") as f:
                _LOG[path] = [l for l in f if "Request (" in l]
        except OSError:
            _LOG[path] = []
    return _LOG[path]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("streams", nargs="+")
    ap.add_argument("--csv")
    ap.add_argument("--failing")
    ap.add_argument("--log", help="tempest.log, for the requests of class-level failures")
    args = ap.parse_args()

    tests = {}
    for path in args.streams:
        batch = {}
        with open(path, "rb") as f:
            result = testtools.StreamToDict(lambda t: batch.__setitem__(t["id"], t))
            result.startTestRun()
            subunit.ByteStreamToStreamResult(f, non_subunit_name="stdout").run(result)
            result.stopTestRun()
        if tests:  # a rerun: forget class-level failures of the classes it ran again
            rerun_classes = {re.sub(r"\[.*\]$", "", t).rsplit(".", 1)[0] for t in batch}
            rerun_classes |= {m.group(2) for m in map(FIXTURE_RE.match, batch) if m}
            for tid in list(tests):
                m = FIXTURE_RE.match(tid)
                if m and m.group(2) in rerun_classes and tid not in batch:
                    del tests[tid]
        tests.update(batch)

    counts = {"success": 0, "fail": 0, "skip": 0, "other": 0}
    failing, skipped, rows = [], [], []
    for tid, t in sorted(tests.items()):
        status = t["status"]
        texts = text_of(t["details"])
        if status in ("success", "xfail"):
            counts["success"] += 1
            err = ""
        elif status in ("fail", "uxsuccess"):
            counts["fail"] += 1
            err = first_error(texts.get("traceback", "")) or status
            log = texts.get("pythonlogging:''", "")
            m = FIXTURE_RE.match(tid)
            if m and not log and args.log:  # class fixtures log only to tempest.log
                cls = m.group(2).rsplit(".", 1)[-1]
                log = "\n".join(l for l in log_lines(args.log) if f"({cls}:{m.group(1)})" in l)
            req = failed_request(log)
            failing.append((tid, err + (f"\n      {req}" if req else "")))
        elif status == "skip":
            counts["skip"] += 1
            err = (texts.get("reason") or "").strip().splitlines()[0:1]
            err = err[0] if err else ""
            skipped.append((tid, err))
        else:  # exists / inprogress: the worker died under it
            counts["other"] += 1
            err = f"no result ({status}): the test worker probably died"
            failing.append((tid, err))
        start, stop = t.get("timestamps", (None, None))
        secs = f"{(stop - start).total_seconds():.2f}" if start and stop else ""
        rows.append((tid, status, secs, err.replace("\n      ", " | ")))

    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["test", "status", "seconds", "first_error"])
            w.writerows(rows)
    if args.failing:
        with open(args.failing, "w") as f:
            for tid, _ in failing:
                m = FIXTURE_RE.match(tid)
                f.write((m.group(2) if m else re.sub(r"\[.*\]$", "", tid)) + "\n")

    def short(tid):
        return re.sub(r"\[.*\]$", "", tid).replace("tempest.api.identity.", "")

    print(f"passed: {counts['success']}  failed: {counts['fail'] + counts['other']}  "
          f"skipped: {counts['skip']}  (total {len(tests)})")
    if skipped:
        reasons = {}
        for _, r in skipped:
            reasons[r] = reasons.get(r, 0) + 1
        print("skip reasons:")
        for r, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print(f"  {n:4d}  {r[:150]}")
    if failing:
        print("failing tests (first error):")
        for tid, err in failing:
            print(f"  {short(tid)}")
            print(f"      {err}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
