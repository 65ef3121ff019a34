"""Renders the block storage benchmark's results as its Markdown section of docs/benchmarks.md.

Reads the directory bench/volume/run.sh filled (meta.json: date, machine, versions, load;
bench.json: volume_bench.py's output) and bench/volume/doc_intro.md and doc_notes.md (written
by hand; doc_notes.md is optional).

Usage: python3 report.py RESULTS_DIR   prints the section. Standard library only.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TITLE = "## Block storage: volume create, from an image, snapshots, attach/detach"
MIB = 1 << 20


def ms(x) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f} ms" if x >= 100 else f"{x:.1f} ms" if x >= 1 else f"{x:.2f} ms"


def secs(x) -> str:
    return "–" if x is None else f"{x:.2f} s"


def sec_or_ms(seconds) -> str:
    """Seconds as ms below 10 s, else as s."""
    if seconds is None:
        return "–"
    return ms(seconds * 1000) if seconds < 10 else secs(seconds)


def pct(s, keys=("p50_ms", "p90_ms", "p99_ms")) -> str:
    if not s:
        return "–"
    return " / ".join(ms(s[k]) for k in keys)


def rate(x) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def main() -> None:
    results = Path(sys.argv[1])
    meta = json.loads((results / "meta.json").read_text())
    bench = json.loads((results / "bench.json").read_text())
    out = [TITLE, "", (HERE / "doc_intro.md").read_text().strip(), "", "### Latest results", ""]
    out.append(
        f"Run of {meta['date']} on {meta['machine']}; disk {meta['disk']}, the volumes, the "
        f"image store, the scratch files and the test image all on it. Ferrostack "
        f"`{meta['ferrostack_commit']}` (release build), {meta['qemu_img']}. Load average "
        f"(1/5/15 min) {meta['load_before']} before and {meta['load_after']} after the "
        f"measurements, which took {meta['elapsed_s'] // 60} min {meta['elapsed_s'] % 60} s. "
        f"Status polls: after 2, 5, 10, 20 and 40 ms, then every {bench['poll_s'] * 1000:.0f} "
        f"ms. Page caches dropped before every data step: "
        f"{'yes' if bench['drop_caches'] else 'no (not root)'}.")
    out.append("")

    # 1. blank volumes
    blank = [b for b in bench.get("blank", []) if "failed" not in b]
    if blank:
        out += ["**Blank 1 GiB volumes** (API, scheduling, the manager's sparse file; C clients "
                "each create M volumes one after the other, then delete them):", ""]
        out.append("| C × M | created/s | POST → 202 p50 / p90 / p99 | POST → `available` "
                   "p50 / p90 / p99 | server `created_at` → `updated_at` p50 / p90 / p99 | "
                   "server CPU / volume | deleted/s | DELETE → 202 p50 / p90 / p99 | DELETE → "
                   "404 p50 / p90 / p99 |")
        out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
        for b in blank:
            cpu = b["server_cpu_ms_per_create"]
            out.append(
                f"| {b['clients']} × {b['per_client']} | **{rate(b['create_per_s'])}** | "
                f"{pct(b['post_202'])} | **{pct(b['to_available'])}** | "
                f"{pct(b['server_created_to_available'])} | "
                f"{'–' if cpu is None else ms(cpu)} | {rate(b['delete_per_s'])} | "
                f"{pct(b['delete_202'])} | {pct(b['to_gone'])} |")
        out.append("")

    # 2. volume from an image
    img = bench.get("image")
    if img and "failed" not in img:
        rounds = img["rounds"]
        med = img["median_seconds"]
        n = len([r for r in rounds if r["system"] == "ferrostack"])
        each = lambda system: ", ".join(  # noqa: E731
            f"{r['seconds']:.2f}" for r in rounds if r["system"] == system)
        mbs = lambda s: f"{img['image_bytes'] / s / 1e6:,.0f}"  # noqa: E731
        q = med["qemu-img"]
        out += [f"**Volume from a 1 GiB raw image** (median of {n} rounds, interleaved; "
                f"MB/s = 1,073.7 MB over the median):", ""]
        out.append("| | median | each round (s) | MB/s | × `qemu-img convert` |")
        out.append("|---|--:|--:|--:|--:|")
        out.append(f"| `qemu-img convert -f raw -O raw` of the image file + fsync (the limit) | "
                   f"{secs(q)} | {each('qemu-img')} | {mbs(q)} | 1.0× |")
        d = med["download+qemu-img"]
        out.append(f"| the same steps by hand: `curl` download from the image API to a "
                   f"file + fsync, then the same convert + fsync | {secs(d)} | "
                   f"{each('download+qemu-img')} | {mbs(d)} | {d / q:.1f}× |")
        f = med["ferrostack"]
        out.append(f"| **Ferrostack**: `POST /volumes` with `imageRef` → `available` | "
                   f"**{secs(f)}** | {each('ferrostack')} | {mbs(f)} | **{f / q:.1f}×** |")
        out.append("")
        lines = []
        log = img.get("ferrostack_log_median_s")
        if log:
            if "inspect_s" in log and "convert_s" in log:
                after = (f"{secs(log['inspect_s'])} inspecting the download (a full read "
                         f"through the format inspector) and {secs(log['convert_s'])} in "
                         f"`qemu-img convert` into the volume's temporary file, fsync and "
                         f"rename (split where that file appeared)")
            else:
                after = (f"{secs(log['inspect_convert_s'])} inspecting the download (a full "
                         f"read), `qemu-img convert` into the volume file and fsync")
            lines.append(
                f"- Where Ferrostack's time goes (medians, from its INFO log lines): the volume "
                f"manager took {secs(log['manager_s'])} from taking the task to `volume "
                f"created`: {secs(log['download_s'])} downloading the image from the image API "
                f"into its scratch directory (md5 checked on the way, then fsync), then "
                f"{after}. The rest of the {secs(f)} is the API, the bus and status polling.")
        if img.get("download_fsync_median_s") is not None:
            lines.append(
                f"- By hand (medians): `curl` downloaded in {secs(img['download_median_s'])}, "
                f"its fsync took {secs(img['download_fsync_median_s'])}, the convert + fsync "
                f"after it {secs(img['download_convert_median_s'])}: the same convert that "
                f"takes {secs(q)} alone, on a disk that has just absorbed a GiB.")
        lines.append(f"- The image upload before the rounds "
                     f"(`PUT /image/v2/images/{{id}}/file`, from Python) took "
                     f"{secs(img['upload_seconds'])}.")
        post = img.get("ferrostack_post_202")
        if post:
            lines.append(f"- `POST /volumes` answered 202 in {ms(post['median_ms'])} (median; "
                         f"the page cache had just been emptied).")
        out += lines + [""]

    # 3. snapshots
    snap = bench.get("snapshot")
    if snap and "failed" not in snap:
        n = len(snap["rounds"])
        rng = lambda s: f"{ms(s['min_ms'])} – {ms(s['max_ms'])}"  # noqa: E731
        out += [f"**Snapshots of a 1 GiB volume full of data** (the volume made from the image "
                f"above; {n} rounds, each snapshot deleted before the next):", ""]
        out.append("| step | median | min – max |")
        out.append("|---|--:|--:|")
        out.append(f"| POST `/snapshots` → 202 | {ms(snap['post_202']['median_ms'])} | "
                   f"{rng(snap['post_202'])} |")
        out.append(f"| POST → snapshot `available` | **{ms(snap['to_available']['median_ms'])}** "
                   f"| {rng(snap['to_available'])} |")
        out.append(f"| server `created_at` → `updated_at` | {ms(snap['server']['median_ms'])} | "
                   f"{rng(snap['server'])} |")
        out.append(f"| DELETE → 404 | **{ms(snap['to_gone']['median_ms'])}** | "
                   f"{rng(snap['to_gone'])} |")
        if img and "failed" not in img:
            out.append(f"| for comparison: `qemu-img convert` of the same 1 GiB + fsync "
                       f"(above) | {ms(img['median_seconds']['qemu-img'] * 1000)} | |")
            if img.get("unlink_median_s") is not None:
                out.append(f"| for comparison: unlinking that fresh 1 GiB file | "
                           f"{ms(img['unlink_median_s'] * 1000)} | |")
        out.append("")

    # 4. attach / detach
    att = bench.get("attach")
    if att and "failed" not in att:
        n = len(att["rounds"])
        out += [f"**Attach and detach** a 1 GiB volume to a running guest ({n} cycles on one "
                f"guest; it became ACTIVE {att['server_active_s']:.1f} s after `POST /servers` "
                f"and printed its first disk list {att['guest_up_s']:.1f} s after):", ""]
        out.append("| step | median | p90 | max |")
        out.append("|---|--:|--:|--:|")
        rows = (
            ("attach_post_s", "POST `/servers/{id}/os-volume_attachments` → 200", False),
            ("in_use_s", "POST → volume `in-use` (disk plugged into the domain)", True),
            ("agent_plug", "of which the agent's `attaching a volume` → `volume attached` "
             "(libvirt attach-device, live + persistent; from the log)", False),
            ("guest_sees_s", "POST → the guest's console lists `vdb` (guest checks every 2 s)", False),
            ("detach_delete_s", "DELETE `/servers/{id}/os-volume_attachments/{volume}` → 202", False),
            ("available_s", "DELETE → volume `available` (disk unplugged)", True),
            ("agent_unplug", "of which the agent's `detaching a volume` → `volume detached` "
             "(libvirt detach-device until the guest has released the disk; from the log)", False),
            ("guest_gone_s", "DELETE → the guest's console no longer lists it", False),
        )
        for key, label, bold in rows:
            s = att.get(key)
            if not s:
                continue
            b = "**" if bold else ""
            out.append(f"| {label} | {b}{ms(s['median_ms'])}{b} | {ms(s['p90_ms'])} | "
                       f"{ms(s['max_ms'])} |")
        out.append("")

    failed = [f"{k}: {v['failed']}" for k, v in bench.items()
              if isinstance(v, dict) and "failed" in v]
    failed += [f"blank: {b['failed']}" for b in bench.get("blank", []) if "failed" in b]
    if bench["ok"]:
        checks = []
        if blank:
            allocated = max(b["max_allocated_bytes"] for b in blank) // 1024
            checks.append(
                "every blank volume reached `available` with a file `volume-<id>` of 1 GiB "
                f"(sparse: at most {allocated} KiB allocated) and was listed; after the deletes "
                "none was listed and no file was left")
        if img and "failed" not in img:
            checks.append(
                "every volume made from the image is `bootable` and its file holds the image's "
                "bytes (md5 of the whole file), as did the first output of each reference "
                "pipeline")
        if snap and "failed" not in snap:
            checks.append("every snapshot file holds the volume's bytes (md5); deleted "
                          "snapshots and volumes left no file")
        if att and "failed" not in att:
            checks.append(
                "every attach answered `/dev/vdb` and the server listed exactly that volume; "
                "when the volume turned `in-use` libvirt's domain held its file "
                "(`virsh domblklist`), when it turned `available` again the domain no longer "
                "did; the guest saw a disk of 2,097,152 sectors appear and disappear")
        out.append("Checks, every run: passed: " + "; ".join(checks) + ".")
    else:
        out.append("Checks: **failed**: " + "; ".join(bench["problems"] + failed))
    out.append("")
    out.append("Guest-side I/O (inside the guest) is not a target here: the guests run under "
               "QEMU's TCG (software emulation, no KVM on these machines), so it measures the "
               "emulator, not the storage path.")
    notes = HERE / "doc_notes.md"
    if notes.exists():
        out += ["", notes.read_text().strip()]
    print("\n".join(out))


if __name__ == "__main__":
    main()
