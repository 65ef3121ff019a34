//! qcow2: big-endian header at offset 0.
//!
//! ```text
//!   0 magic "QFI\xfb"         4 version            8 backing_file_offset (u64)
//!  16 backing_file_size     20 cluster_bits      24 size (u64)
//!  32 crypt_method          ... (v3) 72 incompatible_features (u64)
//! 100 header_length (v3); header extensions follow the header (v2: at 72)
//! ```

use super::{Found, be32, be64};
use crate::{DiskFormat, SafetyError};

pub(crate) const MAGIC: &[u8] = b"QFI\xfb";

/// Incompatible feature bits qemu knows and that are harmless here:
/// dirty (0), corrupt (1), compression type (3), extended L2 (4).
const KNOWN_INCOMPAT: u64 = 0b1_1011;
const INCOMPAT_DATA_FILE: u64 = 1 << 2;

const EXT_END: u32 = 0;
const EXT_DATA_FILE: u32 = 0x4441_5441;

const NAME: &str = "qcow2";

fn invalid(reason: impl Into<String>) -> SafetyError {
    SafetyError::InvalidHeader {
        format: NAME,
        reason: reason.into(),
    }
}

pub(crate) fn inspect(h: &[u8], head_capped: bool) -> Found {
    let mut f = Found::new(DiskFormat::Qcow2, NAME);
    if h.len() < 72 {
        return f.unsafe_(SafetyError::Truncated(NAME));
    }
    let version = be32(h, 4);
    if version == 1 {
        return Found::new(DiskFormat::Raw, "qcow")
            .unsafe_(SafetyError::UnsupportedFormat("qcow (version 1)"));
    }
    f.virtual_size = be64(h, 24);
    if version != 2 && version != 3 {
        return f.unsafe_(SafetyError::UnsupportedVersion {
            format: NAME,
            version,
        });
    }
    if be64(h, 8) != 0 {
        return f.unsafe_(SafetyError::BackingFile);
    }
    let cluster_bits = be32(h, 20);
    if !(9..=21).contains(&cluster_bits) {
        return f.unsafe_(invalid(format!("cluster_bits {cluster_bits}")));
    }
    let crypt = be32(h, 32);
    if crypt != 0 {
        f.notes.push(format!("encrypted qcow2 (method {crypt})"));
    }
    let ext_start = if version == 3 {
        if h.len() < 104 {
            return f.unsafe_(SafetyError::Truncated(NAME));
        }
        let incompat = be64(h, 72);
        if incompat & INCOMPAT_DATA_FILE != 0 {
            return f.unsafe_(SafetyError::DataFile);
        }
        if incompat & !KNOWN_INCOMPAT != 0 {
            return f.unsafe_(SafetyError::UnknownFeatures(incompat & !KNOWN_INCOMPAT));
        }
        let header_length = be32(h, 100) as usize;
        if header_length < 104 || !header_length.is_multiple_of(8) {
            return f.unsafe_(invalid(format!("header_length {header_length}")));
        }
        header_length
    } else {
        72
    };
    if let Err(e) = walk_extensions(h, ext_start, 1usize << cluster_bits, head_capped) {
        return f.unsafe_(e);
    }
    f
}

/// Walk the header extensions (all inside the first cluster); refuse a data
/// file name and anything we cannot see to the end.
fn walk_extensions(
    h: &[u8],
    mut off: usize,
    cluster: usize,
    head_capped: bool,
) -> Result<(), SafetyError> {
    loop {
        if off + 8 > cluster {
            return Err(invalid("header extensions overrun the first cluster"));
        }
        if off + 8 > h.len() {
            return Err(if head_capped {
                invalid(format!(
                    "header extensions extend beyond the first {} bytes",
                    h.len()
                ))
            } else {
                SafetyError::Truncated(NAME)
            });
        }
        let kind = be32(h, off);
        let len = be32(h, off + 4) as usize;
        match kind {
            EXT_END => return Ok(()),
            EXT_DATA_FILE => return Err(SafetyError::DataFile),
            _ => {}
        }
        off = off + 8 + len.div_ceil(8) * 8;
    }
}
