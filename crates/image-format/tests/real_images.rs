//! Real images made by `qemu-img` (and by hand where qemu-img cannot make
//! the attack), fed in 1-byte, 7-byte, 64 KiB and whole-file chunks.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferrostack_image_format::{DiskFormat, FormatError, Inspection, Inspector, SafetyError};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ferrostack-image-format-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn have_qemu_img() -> bool {
    Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

macro_rules! require_qemu_img {
    () => {
        if !have_qemu_img() {
            eprintln!("skipping: qemu-img is not installed");
            return;
        }
    };
}

fn qemu_img(args: &[&str]) {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "qemu-img {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `qemu-img info --output=json` virtual-size (and detected format).
fn qemu_info(path: &Path, format: Option<&str>) -> (u64, String) {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["info", "--output=json"]);
    if let Some(f) = format {
        cmd.args(["-f", f]);
    }
    let out = cmd.arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "qemu-img info failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["virtual-size"].as_u64().unwrap(),
        v["format"].as_str().unwrap().to_string(),
    )
}

fn inspect_chunked(data: &[u8], step: usize) -> Inspection {
    let mut ins = Inspector::new();
    for chunk in data.chunks(step.max(1)) {
        ins.feed(chunk);
    }
    ins.finish()
}

/// Inspect with every chunk size; all must agree.
fn inspect_bytes(data: &[u8]) -> Inspection {
    let whole = inspect_chunked(data, data.len());
    for step in [1, 7, 65536] {
        assert_eq!(inspect_chunked(data, step), whole, "chunk size {step}");
    }
    assert_eq!(whole.actual_size, data.len() as u64);
    whole
}

fn inspect_file(path: &Path) -> Inspection {
    inspect_bytes(&std::fs::read(path).unwrap())
}

fn assert_refused(i: &Inspection, declared: DiskFormat, want: SafetyError) {
    assert_eq!(i.safety, Err(want.clone()), "{i:?}");
    assert_eq!(i.check(declared), Err(FormatError::Unsafe(want)));
}

fn assert_mismatch(i: &Inspection, declared: DiskFormat) {
    let err = i.check(declared).unwrap_err();
    assert_eq!(
        err,
        FormatError::Mismatch {
            detected: i.detected,
            declared
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "Image content is {} but disk_format is {declared}",
            i.detected
        )
    );
}

fn find(data: &[u8], needle: &[u8]) -> usize {
    data.windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

#[test]
fn qcow2_v3_and_v2_are_accepted_with_qemu_virtual_size() {
    require_qemu_img!();
    let dir = TempDir::new();
    for (name, compat) in [("v3.qcow2", "1.1"), ("v2.qcow2", "0.10")] {
        let f = dir.path(name);
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-o",
            &format!("compat={compat}"),
            p(&f),
            "1G",
        ]);
        let i = inspect_file(&f);
        assert_eq!(i.detected, DiskFormat::Qcow2);
        assert_eq!(i.safety, Ok(()));
        assert_eq!(i.virtual_size, qemu_info(&f, None).0);
        assert_eq!(i.virtual_size, 1 << 30);
        assert_eq!(i.check(DiskFormat::Qcow2), Ok(()));
        // qcow2 content declared as raw (or anything else) is refused.
        for declared in [
            DiskFormat::Raw,
            DiskFormat::Ami,
            DiskFormat::Iso,
            DiskFormat::Vmdk,
        ] {
            assert_mismatch(&i, declared);
        }
    }
}

#[test]
fn qcow2_with_backing_file_is_refused() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("evil.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "/etc/passwd",
        "-F",
        "raw",
        p(&f),
        "1M",
    ]);
    let i = inspect_file(&f);
    assert_eq!(i.detected, DiskFormat::Qcow2);
    assert_refused(&i, DiskFormat::Qcow2, SafetyError::BackingFile);
    assert_eq!(
        i.check(DiskFormat::Qcow2).unwrap_err().to_string(),
        "Image has a backing file: refused"
    );
    // Declaring it raw does not help.
    assert!(i.check(DiskFormat::Raw).is_err());
}

#[test]
fn qcow2_with_external_data_file_is_refused() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("evil.qcow2");
    let data = dir.path("data.raw");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        &format!("data_file={},data_file_raw=on", p(&data)),
        p(&f),
        "1M",
    ]);
    let bytes = std::fs::read(&f).unwrap();
    let i = inspect_bytes(&bytes);
    assert_refused(&i, DiskFormat::Qcow2, SafetyError::DataFile);

    // Clear the incompatible "external data file" bit: the data-file header
    // extension alone is still refused.
    let mut no_bit = bytes.clone();
    no_bit[79] &= !0x04;
    assert_refused(
        &inspect_bytes(&no_bit),
        DiskFormat::Qcow2,
        SafetyError::DataFile,
    );
}

#[test]
fn qcow2_with_unknown_incompatible_feature_is_refused() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("plain.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", p(&f), "1M"]);
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[78] |= 0x04; // incompatible feature bit 10
    assert_refused(
        &inspect_bytes(&bytes),
        DiskFormat::Qcow2,
        SafetyError::UnknownFeatures(1 << 10),
    );
}

#[test]
fn qcow2_header_sanity() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("plain.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", p(&f), "1M"]);
    let bytes = std::fs::read(&f).unwrap();

    let mut v4 = bytes.clone();
    v4[7] = 4;
    assert!(matches!(
        inspect_bytes(&v4).safety,
        Err(SafetyError::UnsupportedVersion { version: 4, .. })
    ));

    let mut huge_clusters = bytes.clone();
    huge_clusters[23] = 40;
    let i = inspect_bytes(&huge_clusters);
    assert!(matches!(i.safety, Err(SafetyError::InvalidHeader { .. })));

    // A truncated header is qcow2 (never raw) and unsafe.
    let i = inspect_bytes(&bytes[..50]);
    assert_eq!(i.detected, DiskFormat::Qcow2);
    assert_refused(&i, DiskFormat::Qcow2, SafetyError::Truncated("qcow2"));
    assert!(i.check(DiskFormat::Raw).is_err());
}

#[test]
fn vmdk_monolithic_sparse_and_stream_optimized_are_accepted() {
    require_qemu_img!();
    let dir = TempDir::new();
    for sub in ["monolithicSparse", "streamOptimized"] {
        let f = dir.path(&format!("{sub}.vmdk"));
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "vmdk",
            "-o",
            &format!("subformat={sub}"),
            p(&f),
            "100M",
        ]);
        let i = inspect_file(&f);
        assert_eq!(i.detected, DiskFormat::Vmdk, "{sub}");
        assert_eq!(i.safety, Ok(()), "{sub}");
        assert_eq!(i.virtual_size, qemu_info(&f, None).0, "{sub}");
        assert_eq!(i.check(DiskFormat::Vmdk), Ok(()));
        assert_mismatch(&i, DiskFormat::Raw);
        assert_mismatch(&i, DiskFormat::Qcow2);
    }
}

#[test]
fn vmdk_descriptor_with_absolute_extent_is_refused() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("evil.vmdk");
    let text = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
createType=\"monolithicFlat\"\n\n# Extent description\nRW 2048 FLAT \"/etc/shadow\" 0\n\n\
ddb.virtualHWVersion = \"4\"\nddb.adapterType = \"ide\"\n";
    std::fs::write(&f, text).unwrap();
    let i = inspect_file(&f);
    // qemu probes this text file as vmdk, so it is never raw ...
    assert_eq!(i.detected, DiskFormat::Vmdk);
    assert_refused(
        &i,
        DiskFormat::Vmdk,
        SafetyError::VmdkExtentFile("/etc/shadow".into()),
    );
    // ... and declaring it raw is refused as well.
    assert!(i.check(DiskFormat::Raw).is_err());

    // Relative extent names and allowed createTypes do not help a
    // descriptor-only file: its data always lives in another file.
    let relative = text
        .replace("/etc/shadow", "../../etc/shadow")
        .replace("monolithicFlat", "monolithicSparse");
    std::fs::write(&f, &relative).unwrap();
    assert_refused(
        &inspect_file(&f),
        DiskFormat::Vmdk,
        SafetyError::VmdkExtentFile("../../etc/shadow".into()),
    );
    let bare = text.replace("/etc/shadow", "shadow");
    std::fs::write(&f, bare).unwrap();
    assert_refused(
        &inspect_file(&f),
        DiskFormat::Vmdk,
        SafetyError::VmdkExtentFile("shadow".into()),
    );
}

#[test]
fn vmdk_monolithic_flat_from_qemu_is_refused() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("flat.vmdk");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "vmdk",
        "-o",
        "subformat=monolithicFlat",
        p(&f),
        "1M",
    ]);
    let i = inspect_file(&f);
    assert_eq!(i.detected, DiskFormat::Vmdk);
    assert_eq!(qemu_info(&f, None).1, "vmdk");
    assert_refused(
        &i,
        DiskFormat::Vmdk,
        SafetyError::VmdkExtentFile("flat-flat.vmdk".into()),
    );
}

#[test]
fn sparse_vmdk_with_extent_pointing_elsewhere_is_refused() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("disk.vmdk");
    qemu_img(&["create", "-q", "-f", "vmdk", p(&f), "1M"]);
    let bytes = std::fs::read(&f).unwrap();
    let at = find(&bytes, b"SPARSE \"disk.vmdk\"");

    // Same length replacements inside the embedded descriptor.
    let mut abs = bytes.clone();
    abs[at..at + 18].copy_from_slice(b"SPARSE \"/etc/pass\"");
    assert_refused(
        &inspect_bytes(&abs),
        DiskFormat::Vmdk,
        SafetyError::VmdkExtentFile("/etc/pass".into()),
    );
    let mut flat = bytes.clone();
    flat[at..at + 18].copy_from_slice(b"FLAT  \"other.img\" ");
    assert_refused(
        &inspect_bytes(&flat),
        DiskFormat::Vmdk,
        SafetyError::VmdkExtentFile("other.img".into()),
    );
    let mut create = bytes.clone();
    let ct = find(&create, b"monolithicSparse");
    create[ct..ct + 16].copy_from_slice(b"twoGbMaxExtentSp");
    assert_refused(
        &inspect_bytes(&create),
        DiskFormat::Vmdk,
        SafetyError::VmdkCreateType("twoGbMaxExtentSp".into()),
    );
}

#[test]
fn vmdk_with_parent_is_refused() {
    require_qemu_img!();
    let dir = TempDir::new();
    let base = dir.path("base.vmdk");
    let child = dir.path("child.vmdk");
    qemu_img(&["create", "-q", "-f", "vmdk", p(&base), "1M"]);
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "vmdk",
        "-b",
        p(&base),
        "-F",
        "vmdk",
        p(&child),
    ]);
    assert_refused(&inspect_file(&child), DiskFormat::Vmdk, SafetyError::Parent);
}

#[test]
fn vhd_dynamic_and_fixed_are_detected_with_qemu_virtual_size() {
    require_qemu_img!();
    let dir = TempDir::new();
    for sub in ["dynamic", "fixed"] {
        let f = dir.path(&format!("{sub}.vhd"));
        qemu_img(&[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            &format!("subformat={sub}"),
            p(&f),
            "10M",
        ]);
        let i = inspect_file(&f);
        assert_eq!(i.detected, DiskFormat::Vhd, "{sub}");
        assert_eq!(i.safety, Ok(()), "{sub}");
        assert_eq!(i.virtual_size, qemu_info(&f, Some("vpc")).0, "{sub}");
        assert_eq!(i.check(DiskFormat::Vhd), Ok(()));
        assert_mismatch(&i, DiskFormat::Raw);
    }
}

#[test]
fn vhdx_is_detected_with_qemu_virtual_size() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("disk.vhdx");
    qemu_img(&["create", "-q", "-f", "vhdx", p(&f), "64M"]);
    let i = inspect_file(&f);
    assert_eq!(i.detected, DiskFormat::Vhdx);
    assert_eq!(i.safety, Ok(()));
    assert_eq!(i.virtual_size, qemu_info(&f, None).0);
    assert_eq!(i.virtual_size, 64 << 20);
    assert_eq!(i.check(DiskFormat::Vhdx), Ok(()));
    assert_mismatch(&i, DiskFormat::Raw);

    // Cut before the metadata region: still vhdx, size unknown and said so.
    let bytes = std::fs::read(&f).unwrap();
    let i = inspect_bytes(&bytes[..300 * 1024]);
    assert_eq!(i.detected, DiskFormat::Vhdx);
    assert_eq!(i.virtual_size, 0);
    assert!(i.notes.iter().any(|n| n.contains("virtual size unknown")));
}

#[test]
fn vdi_is_detected_with_qemu_virtual_size() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("disk.vdi");
    qemu_img(&["create", "-q", "-f", "vdi", p(&f), "32M"]);
    let i = inspect_file(&f);
    assert_eq!(i.detected, DiskFormat::Vdi);
    assert_eq!(i.safety, Ok(()));
    assert_eq!(i.virtual_size, qemu_info(&f, None).0);
    assert_eq!(i.check(DiskFormat::Vdi), Ok(()));
    assert_mismatch(&i, DiskFormat::Raw);
}

#[test]
fn parallels_is_detected_as_ploop() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("disk.hds");
    qemu_img(&["create", "-q", "-f", "parallels", p(&f), "32M"]);
    let i = inspect_file(&f);
    assert_eq!(i.detected, DiskFormat::Ploop);
    assert_eq!(i.safety, Ok(()));
    assert_eq!(i.virtual_size, qemu_info(&f, None).0);
    assert_eq!(i.check(DiskFormat::Ploop), Ok(()));
    assert_mismatch(&i, DiskFormat::Raw);
}

#[test]
fn qed_is_never_raw() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("disk.qed");
    qemu_img(&["create", "-q", "-f", "qed", p(&f), "1M"]);
    let i = inspect_file(&f);
    assert_eq!(i.format_name, "qed");
    assert_refused(&i, DiskFormat::Raw, SafetyError::UnsupportedFormat("qed"));
}

#[test]
fn raw_is_accepted_as_raw_kinds_and_refused_as_anything_else() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("disk.raw");
    qemu_img(&["create", "-q", "-f", "raw", p(&f), "3M"]);
    let mut bytes = std::fs::read(&f).unwrap();
    // Some non-zero content.
    for (n, b) in bytes.iter_mut().enumerate().step_by(4099) {
        *b = (n % 253) as u8 | 1;
    }
    let i = inspect_bytes(&bytes);
    assert_eq!(i.detected, DiskFormat::Raw);
    assert_eq!(i.virtual_size, 3 << 20);
    assert_eq!(i.safety, Ok(()));
    for declared in [
        DiskFormat::Raw,
        DiskFormat::Ami,
        DiskFormat::Ari,
        DiskFormat::Aki,
        DiskFormat::Iso,
    ] {
        assert_eq!(i.check(declared), Ok(()), "{declared}");
    }
    for declared in [
        DiskFormat::Qcow2,
        DiskFormat::Vmdk,
        DiskFormat::Vhd,
        DiskFormat::Vhdx,
        DiskFormat::Vdi,
        DiskFormat::Ploop,
    ] {
        assert_mismatch(&i, declared);
    }
    assert_eq!(
        i.check(DiskFormat::Qcow2).unwrap_err().to_string(),
        "Image content is raw but disk_format is qcow2"
    );
}

#[test]
fn mbr_and_gpt_disks_are_raw() {
    let mut mbr = vec![0u8; 1 << 20];
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    let i = inspect_bytes(&mbr);
    assert_eq!((i.detected, i.format_name), (DiskFormat::Raw, "mbr"));
    assert_eq!(i.check(DiskFormat::Raw), Ok(()));
    let mut gpt = mbr.clone();
    gpt[512..520].copy_from_slice(b"EFI PART");
    let i = inspect_bytes(&gpt);
    assert_eq!((i.detected, i.format_name), (DiskFormat::Raw, "gpt"));
    assert_eq!(i.check(DiskFormat::Raw), Ok(()));
}

/// A minimal ISO 9660 image: primary volume descriptor at sector 16 and a
/// terminator at sector 17.
fn handmade_iso(blocks: u32) -> Vec<u8> {
    let mut iso = vec![0u8; blocks as usize * 2048];
    let pvd = 16 * 2048;
    iso[pvd] = 1;
    iso[pvd + 1..pvd + 6].copy_from_slice(b"CD001");
    iso[pvd + 6] = 1;
    iso[pvd + 80..pvd + 84].copy_from_slice(&blocks.to_le_bytes());
    iso[pvd + 84..pvd + 88].copy_from_slice(&blocks.to_be_bytes());
    iso[pvd + 128..pvd + 130].copy_from_slice(&2048u16.to_le_bytes());
    iso[pvd + 130..pvd + 132].copy_from_slice(&2048u16.to_be_bytes());
    let term = 17 * 2048;
    iso[term] = 255;
    iso[term + 1..term + 6].copy_from_slice(b"CD001");
    iso[term + 6] = 1;
    iso
}

#[test]
fn iso_is_detected_with_volume_size() {
    let iso = handmade_iso(200);
    let i = inspect_bytes(&iso);
    assert_eq!(i.detected, DiskFormat::Iso);
    assert_eq!(i.virtual_size, 200 * 2048);
    assert_eq!(i.check(DiskFormat::Iso), Ok(()));
    // An ISO is raw bytes to qemu.
    assert_eq!(i.check(DiskFormat::Raw), Ok(()));
    assert_mismatch(&i, DiskFormat::Qcow2);
    if have_qemu_img() {
        let dir = TempDir::new();
        let f = dir.path("cd.iso");
        std::fs::write(&f, &iso).unwrap();
        assert_eq!(qemu_info(&f, None).1, "raw");
    }
}

#[test]
fn qcow2_iso_polyglot_is_refused() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("poly.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", p(&f), "1M"]);
    let mut bytes = std::fs::read(&f).unwrap();
    let iso = handmade_iso(40);
    bytes.resize(bytes.len().max(iso.len()), 0);
    bytes[32768..36864].copy_from_slice(&iso[32768..36864]);
    let i = inspect_bytes(&bytes);
    assert_eq!(i.detected, DiskFormat::Qcow2);
    assert_refused(
        &i,
        DiskFormat::Iso,
        SafetyError::MultipleFormats("qcow2", "iso"),
    );
}

#[test]
fn text_that_qemu_probes_as_vmdk_is_not_raw() {
    let i = inspect_bytes(b"# just a comment\nversion=1\n");
    assert_eq!(i.detected, DiskFormat::Vmdk);
    assert!(i.check(DiskFormat::Raw).is_err());
    assert!(i.check(DiskFormat::Vmdk).is_err());
    // Ordinary text is raw.
    let i = inspect_bytes(b"hello world\nversion=1\n");
    assert_eq!(i.detected, DiskFormat::Raw);
}

#[test]
fn luks_is_never_raw() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("disk.luks");
    let args = [
        "create",
        "-q",
        "--object",
        "secret,id=sec0,data=abc",
        "-f",
        "luks",
        "-o",
        "key-secret=sec0,iter-time=10",
        p(&f),
        "1M",
    ];
    // qemu-img 7.2 times its PBKDF2 benchmark with the thread's CPU clock and gives up with
    // "Unable to get accurate CPU usage" when a busy machine leaves that clock unchanged; the
    // header it writes is all this test needs, so a few attempts are made.
    let mut last = String::new();
    let made = (0..5).any(|_| {
        let out = Command::new("qemu-img").args(args).output().unwrap();
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        out.status.success()
    });
    assert!(made, "qemu-img {args:?} failed: {last}");
    let i = inspect_file(&f);
    assert_eq!(i.format_name, "luks");
    assert_refused(&i, DiskFormat::Raw, SafetyError::UnsupportedFormat("luks"));
}

#[test]
fn differencing_vhd_and_vdi_are_refused() {
    require_qemu_img!();
    let dir = TempDir::new();
    let vhd = dir.path("disk.vhd");
    qemu_img(&["create", "-q", "-f", "vpc", p(&vhd), "10M"]);
    let mut bytes = std::fs::read(&vhd).unwrap();
    let footer = bytes.len() - 512;
    bytes[63] = 4; // disk type: differencing (copy at start)
    bytes[footer + 63] = 4;
    assert_refused(&inspect_bytes(&bytes), DiskFormat::Vhd, SafetyError::Parent);

    let vdi = dir.path("disk.vdi");
    qemu_img(&["create", "-q", "-f", "vdi", p(&vdi), "10M"]);
    let mut bytes = std::fs::read(&vdi).unwrap();
    bytes[0x4c] = 4; // image type: differencing
    assert_refused(&inspect_bytes(&bytes), DiskFormat::Vdi, SafetyError::Parent);
}

#[test]
fn memory_stays_bounded_on_a_large_stream() {
    require_qemu_img!();
    let dir = TempDir::new();
    let f = dir.path("big.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", p(&f), "1G"]);
    let header = std::fs::read(&f).unwrap();
    // 64 MiB stream: the header followed by zeroes, fed in 1 MiB chunks.
    let mut ins = Inspector::new();
    ins.feed(&header);
    let zeroes = vec![0u8; 1 << 20];
    for _ in 0..64 {
        ins.feed(&zeroes);
    }
    assert_eq!(ins.bytes_seen(), header.len() as u64 + (64 << 20));
    let i = ins.finish();
    assert_eq!(i.detected, DiskFormat::Qcow2);
    assert_eq!(i.virtual_size, 1 << 30);
    assert_eq!(i.actual_size, header.len() as u64 + (64 << 20));
}
