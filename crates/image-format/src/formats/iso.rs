//! ISO 9660 / UDF: volume descriptors start at 32 KiB, one per 2 KiB sector;
//! the standard identifier ("CD001", or "NSR02"/"NSR03" for UDF) is at
//! byte 1 of each. The primary volume descriptor (type 1) holds the volume
//! space size (both-endian u32 at 80) and the logical block size
//! (both-endian u16 at 128).

use super::{Found, le16, le32};
use crate::DiskFormat;

const DESCRIPTORS: [usize; 3] = [32768, 34816, 36864];
const IDS: [&[u8]; 3] = [b"CD001", b"NSR02", b"NSR03"];

pub(crate) fn inspect(h: &[u8]) -> Option<Found> {
    let present = |off: usize| h.len() >= off + 6 && IDS.contains(&&h[off + 1..off + 6]);
    if !DESCRIPTORS.iter().any(|&off| present(off)) {
        return None;
    }
    let mut f = Found::new(DiskFormat::Iso, "iso");
    let pvd = DESCRIPTORS
        .iter()
        .find(|&&off| h.len() >= off + 2048 && h[off] == 1 && &h[off + 1..off + 6] == b"CD001");
    match pvd {
        Some(&off) => {
            let blocks = u64::from(le32(h, off + 80));
            let block_size = match le16(h, off + 128) {
                0 => 2048,
                n => u64::from(n),
            };
            f.virtual_size = blocks * block_size;
        }
        None => f
            .notes
            .push("no ISO 9660 primary volume descriptor: virtual size unknown".into()),
    }
    Some(f)
}
