//! Format detection over the regions the [`Inspector`](crate::Inspector) kept.

pub(crate) mod iso;
pub(crate) mod qcow2;
pub(crate) mod vhd;
pub(crate) mod vhdx;
pub(crate) mod vmdk;

use crate::{DiskFormat, Inspection, SafetyError};

/// What the inspector saw of the stream.
pub(crate) struct Seen<'a> {
    /// The first bytes of the image (all of it when `!head_capped`).
    pub head: &'a [u8],
    /// More bytes were fed than `head` holds.
    pub head_capped: bool,
    pub size: u64,
    /// The last 512 bytes, when at least 512 were fed.
    pub footer: Option<&'a [u8; crate::TAIL]>,
    pub vhdx: Option<&'a vhdx::Stream>,
}

/// A format's verdict.
pub(crate) struct Found {
    pub detected: DiskFormat,
    pub name: &'static str,
    pub virtual_size: u64,
    pub safety: Result<(), SafetyError>,
    pub notes: Vec<String>,
}

impl Found {
    pub fn new(detected: DiskFormat, name: &'static str) -> Self {
        Found {
            detected,
            name,
            virtual_size: 0,
            safety: Ok(()),
            notes: Vec::new(),
        }
    }

    pub fn unsafe_(mut self, e: SafetyError) -> Self {
        if self.safety.is_ok() {
            self.safety = Err(e);
        }
        self
    }

    /// A format qemu understands but Glance does not accept.
    fn unsupported(name: &'static str) -> Self {
        Found::new(DiskFormat::Raw, name).unsafe_(SafetyError::UnsupportedFormat(name))
    }
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

const QED_MAGIC: &[u8] = b"QED\0";
const LUKS_MAGIC: &[u8] = b"LUKS\xba\xbe";
const BOCHS_MAGIC: &[u8] = b"Bochs Virtual HD Image";
const CLOOP_MAGIC: &[u8] =
    b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";
const VDI_SIGNATURE: u32 = 0xbeda_107f;
const PARALLELS_MAGICS: [&[u8]; 2] = [b"WithoutFreeSpace", b"WithouFreSpacExt"];

/// Formats recognised by their first bytes, in qemu's probing spirit: if
/// any of these match, the content is never raw.
fn detect_start(seen: &Seen<'_>) -> Option<Found> {
    let h = seen.head;
    if h.starts_with(qcow2::MAGIC) {
        return Some(qcow2::inspect(h, seen.head_capped));
    }
    if h.starts_with(QED_MAGIC) {
        return Some(Found::unsupported("qed"));
    }
    if h.starts_with(vmdk::SPARSE_MAGIC) {
        return Some(vmdk::inspect_sparse(h));
    }
    if h.starts_with(vmdk::COWD_MAGIC) {
        return Some(
            Found::new(DiskFormat::Vmdk, "vmdk")
                .unsafe_(SafetyError::UnsupportedFormat("vmdk version 3 (COWD)")),
        );
    }
    if h.starts_with(vhdx::MAGIC) {
        return Some(vhdx::inspect(seen.vhdx));
    }
    if h.starts_with(vhd::MAGIC) {
        return Some(vhd::inspect(h, true));
    }
    if h.len() >= 68 && le32(h, 64) == VDI_SIGNATURE {
        return Some(inspect_vdi(h));
    }
    if PARALLELS_MAGICS.iter().any(|m| h.starts_with(m)) {
        return Some(inspect_parallels(h));
    }
    if h.starts_with(LUKS_MAGIC) {
        return Some(Found::unsupported("luks"));
    }
    if h.starts_with(BOCHS_MAGIC) {
        return Some(Found::unsupported("bochs"));
    }
    if h.starts_with(CLOOP_MAGIC) {
        return Some(Found::unsupported("cloop"));
    }
    if vmdk::qemu_probes_text_descriptor(h) {
        return Some(vmdk::inspect_descriptor_file(h, seen.head_capped));
    }
    None
}

pub(crate) fn inspect(seen: &Seen<'_>) -> Inspection {
    let iso = iso::inspect(seen.head);
    let found = match (detect_start(seen), iso) {
        (Some(start), Some(_)) => {
            let other = start.name;
            start.unsafe_(SafetyError::MultipleFormats(other, "iso"))
        }
        (Some(start), None) => start,
        (None, Some(iso)) => iso,
        (None, None) => match seen.footer.filter(|f| f.starts_with(vhd::MAGIC)) {
            Some(footer) => vhd::inspect(footer, false),
            None => inspect_raw(seen),
        },
    };
    Inspection {
        detected: found.detected,
        virtual_size: found.virtual_size,
        actual_size: seen.size,
        safety: found.safety,
        format_name: found.name,
        notes: found.notes,
    }
}

fn inspect_raw(seen: &Seen<'_>) -> Found {
    let h = seen.head;
    let mut f = Found::new(DiskFormat::Raw, "raw");
    f.virtual_size = seen.size;
    if h.len() >= 520 && &h[512..520] == b"EFI PART" {
        f.name = "gpt";
        f.notes.push("raw disk with a GPT partition table".into());
    } else if h.len() >= 512 && h[510..512] == [0x55, 0xaa] {
        f.name = "mbr";
        f.notes
            .push("raw disk with an MBR partition table (or boot sector)".into());
    }
    f
}

/// VirtualBox VDI: 512-byte little-endian header, signature at 0x40, disk
/// size at 0x170.
fn inspect_vdi(h: &[u8]) -> Found {
    let f = Found::new(DiskFormat::Vdi, "vdi");
    if h.len() < 0x178 {
        return f.unsafe_(SafetyError::Truncated("vdi"));
    }
    let mut f = f;
    f.virtual_size = le64(h, 0x170);
    let version = le32(h, 0x44);
    if version != 0x0001_0001 {
        return f.unsafe_(SafetyError::UnsupportedVersion {
            format: "vdi",
            version,
        });
    }
    match le32(h, 0x4c) {
        // 1 = dynamic, 2 = static (fixed).
        1 | 2 => f,
        // 3 = undo, 4 = differencing: both refer to a parent image.
        3 | 4 => f.unsafe_(SafetyError::Parent),
        t => f.unsafe_(SafetyError::InvalidHeader {
            format: "vdi",
            reason: format!("image type {t}"),
        }),
    }
}

/// Parallels / ploop: 64-byte little-endian header, sector count at 36.
fn inspect_parallels(h: &[u8]) -> Found {
    let mut f = Found::new(DiskFormat::Ploop, "ploop");
    if h.len() < 64 {
        return f.unsafe_(SafetyError::Truncated("ploop"));
    }
    let version = le32(h, 16);
    f.virtual_size = le64(h, 36).saturating_mul(512);
    if version != 2 {
        return f.unsafe_(SafetyError::UnsupportedVersion {
            format: "ploop",
            version,
        });
    }
    f
}
