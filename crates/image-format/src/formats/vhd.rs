//! vhd (qemu "vpc"): a 512-byte big-endian footer ("conectix") at the end of
//! the file; dynamic disks also carry a copy at offset 0.
//!
//! ```text
//!   0 cookie "conectix"   40 original size (u64)   48 current size (u64)
//!  60 disk type (2 fixed, 3 dynamic, 4 differencing)
//! ```

use super::{Found, be32, be64};
use crate::{DiskFormat, SafetyError};

pub(crate) const MAGIC: &[u8] = b"conectix";

/// `footer` is the copy at the start of the file (`at_start`) or the last
/// 512 bytes.
pub(crate) fn inspect(footer: &[u8], at_start: bool) -> Found {
    let mut f = Found::new(DiskFormat::Vhd, "vhd");
    if footer.len() < 64 {
        return f.unsafe_(SafetyError::Truncated("vhd"));
    }
    f.virtual_size = be64(footer, 48);
    match be32(footer, 60) {
        2 => {
            if at_start {
                f.notes.push("fixed vhd footer copy at start".into());
            }
            f
        }
        3 => f,
        4 => f.unsafe_(SafetyError::Parent),
        t => f.unsafe_(SafetyError::InvalidHeader {
            format: "vhd",
            reason: format!("disk type {t}"),
        }),
    }
}
