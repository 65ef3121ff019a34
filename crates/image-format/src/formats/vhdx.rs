//! vhdx: "vhdxfile" at 0; region table at 192 KiB ("regi", entry count at
//! +8, 32-byte entries from +16: GUID, file offset u64, length u32); the
//! metadata region ("metadata", entry count u16 at +10, 32-byte entries from
//! +32: GUID, offset u32 relative to the region, length u32) holds the
//! Virtual Disk Size item (u64) and the File Parameters item (flags u32 at
//! +4; bit 1 = has parent). Everything is little-endian; GUIDs are stored
//! in Microsoft's mixed-endian layout.
//!
//! The regions are captured as they stream by; a region that lies before
//! the point where its location became known cannot be read any more, and
//! the virtual size is then reported as 0 with a note.

use super::{Found, le16, le32, le64};
use crate::capture::Capture;
use crate::{DiskFormat, SafetyError};

pub(crate) const MAGIC: &[u8] = b"vhdxfile";
const REGION_TABLE: u64 = 192 * 1024;
const TABLE_LEN: usize = 64 * 1024;
const MAX_ENTRIES: usize = 2047;

const METADATA_REGION: &str = "8B7CA206-4790-4B9A-B8FE-575F050F886E";
const VIRTUAL_DISK_SIZE: &str = "2FA54224-CD1B-4876-B211-5DBED83BF4B8";
const FILE_PARAMETERS: &str = "CAA16737-FA36-4D43-B3B6-33F0AA44E76B";
const PARENT_LOCATOR: &str = "A8D35F2D-B30B-454D-ABF7-D3D84834AB0C";
const HAS_PARENT: u32 = 1 << 1;

/// Mixed-endian bytes of a GUID written as text.
fn guid(text: &str) -> [u8; 16] {
    let hex: Vec<u8> = text
        .split('-')
        .flat_map(|p| {
            (0..p.len())
                .step_by(2)
                .map(move |i| u8::from_str_radix(&p[i..i + 2], 16).unwrap())
        })
        .collect();
    let mut out = [0u8; 16];
    out.copy_from_slice(&hex);
    out[0..4].reverse();
    out[4..6].reverse();
    out[6..8].reverse();
    out
}

#[derive(Debug, Clone)]
pub(crate) struct Stream {
    region_table: Capture,
    metadata: Option<Capture>,
    size_item: Option<Capture>,
    params_item: Option<Capture>,
    has_parent_locator: bool,
    /// Why the virtual size cannot be known.
    problem: Option<String>,
}

impl Stream {
    pub fn new() -> Self {
        Stream {
            region_table: Capture::new(REGION_TABLE, TABLE_LEN),
            metadata: None,
            size_item: None,
            params_item: None,
            has_parent_locator: false,
            problem: None,
        }
    }

    pub fn feed(&mut self, start: u64, chunk: &[u8]) {
        self.region_table.apply(start, chunk);
        if self.problem.is_some() {
            return;
        }
        if self.metadata.is_none() && self.region_table.complete() {
            match find_metadata_region(&self.region_table.data) {
                Ok(offset) => self.metadata = Some(Capture::new(offset, TABLE_LEN)),
                Err(e) => self.problem = Some(e),
            }
        }
        let Some(meta) = &mut self.metadata else {
            return;
        };
        meta.apply(start, chunk);
        if meta.missed {
            self.problem = Some("metadata region lies before the region table".into());
            return;
        }
        if self.size_item.is_none() {
            match read_metadata_table(meta) {
                Ok(None) => return,
                Ok(Some(t)) => {
                    self.has_parent_locator = t.parent_locator;
                    self.size_item = Some(Capture::new(t.size_at, 8));
                    self.params_item = t.params_at.map(|at| Capture::new(at, 8));
                }
                Err(e) => {
                    self.problem = Some(e);
                    return;
                }
            }
        }
        for item in [&mut self.size_item, &mut self.params_item]
            .into_iter()
            .flatten()
        {
            item.apply(start, chunk);
        }
    }
}

fn find_metadata_region(t: &[u8]) -> Result<u64, String> {
    if &t[..4] != b"regi" {
        return Err("region table signature not found".into());
    }
    let count = le32(t, 8) as usize;
    if count > MAX_ENTRIES {
        return Err(format!("region table has {count} entries"));
    }
    let want = guid(METADATA_REGION);
    (0..count)
        .map(|i| 16 + i * 32)
        .find(|&at| t[at..at + 16] == want)
        .map(|at| le64(t, at + 16))
        .ok_or_else(|| "no metadata region".into())
}

struct MetadataTable {
    size_at: u64,
    params_at: Option<u64>,
    parent_locator: bool,
}

/// `Ok(None)`: not enough of the table yet.
fn read_metadata_table(meta: &Capture) -> Result<Option<MetadataTable>, String> {
    let t = &meta.data;
    if t.len() < 32 {
        return Ok(None);
    }
    if &t[..8] != b"metadata" {
        return Err("metadata table signature not found".into());
    }
    let count = le16(t, 10) as usize;
    if count > MAX_ENTRIES {
        return Err(format!("metadata table has {count} entries"));
    }
    if t.len() < 32 + count * 32 {
        return Ok(None);
    }
    let (size, params, parent) = (
        guid(VIRTUAL_DISK_SIZE),
        guid(FILE_PARAMETERS),
        guid(PARENT_LOCATOR),
    );
    let mut out = MetadataTable {
        size_at: 0,
        params_at: None,
        parent_locator: false,
    };
    let mut found_size = false;
    for at in (0..count).map(|i| 32 + i * 32) {
        let id = &t[at..at + 16];
        let item = meta.offset + u64::from(le32(t, at + 16));
        if id == size {
            out.size_at = item;
            found_size = true;
        } else if id == params {
            out.params_at = Some(item);
        } else if id == parent {
            out.parent_locator = true;
        }
    }
    if !found_size {
        return Err("no virtual disk size item".into());
    }
    Ok(Some(out))
}

pub(crate) fn inspect(stream: Option<&Stream>) -> Found {
    let mut f = Found::new(DiskFormat::Vhdx, "vhdx");
    let Some(s) = stream else {
        return f.unsafe_(SafetyError::Truncated("vhdx"));
    };
    if s.has_parent_locator {
        f = f.unsafe_(SafetyError::Parent);
    }
    if let Some(p) = s.params_item.as_ref().filter(|p| p.complete())
        && le32(&p.data, 4) & HAS_PARENT != 0
    {
        f = f.unsafe_(SafetyError::Parent);
    }
    match &s.size_item {
        Some(c) if c.complete() => f.virtual_size = le64(&c.data, 0),
        Some(c) if c.missed => f
            .notes
            .push("virtual size unknown: size item lies before the metadata table".into()),
        _ => {
            let why = s.problem.clone().unwrap_or_else(|| {
                if s.region_table.complete() {
                    "metadata not reached before the end of the image".into()
                } else {
                    "image ends before the region table".into()
                }
            });
            f.notes.push(format!("virtual size unknown: {why}"));
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_layout() {
        assert_eq!(
            guid(METADATA_REGION),
            [
                0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b, 0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f,
                0x88, 0x6e
            ]
        );
    }
}
