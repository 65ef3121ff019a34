//! vmdk: the sparse extent header ("KDMV", little-endian) with an embedded
//! text descriptor, and descriptor-only text files.
//!
//! ```text
//!   0 magic "KDMV"   4 version   8 flags   12 capacity (sectors, u64)
//!  20 grain size    28 descriptor offset (sectors)   36 descriptor size (sectors)
//!  44 numGTEsPerGT  48 rgd offset   56 gd offset (u64::MAX: footer at end)
//! ```
//!
//! The only vmdk images accepted are single-file sparse images
//! (monolithicSparse / streamOptimized) whose descriptor names exactly one
//! SPARSE extent with a bare file name (the image itself). A descriptor-only
//! file cannot hold data of its own, so every extent it has names another
//! file: it is always refused.

use super::{Found, le32, le64};
use crate::{DiskFormat, HEAD_DEFAULT, SafetyError, VMDK_DESC_MAX};

pub(crate) const SPARSE_MAGIC: &[u8] = b"KDMV";
pub(crate) const COWD_MAGIC: &[u8] = b"COWD";
const GD_AT_END: u64 = u64::MAX;
const NAME: &str = "vmdk";
const ALLOWED_CREATE_TYPES: [&str; 2] = ["monolithicSparse", "streamOptimized"];

/// How much of the start the inspector keeps: enough for the embedded
/// descriptor of a sparse vmdk (at most qemu's 1 MiB), else the default.
pub(crate) fn head_limit(h: &[u8]) -> usize {
    if h.len() < 64 || !h.starts_with(SPARSE_MAGIC) || le64(h, 28) != 1 {
        return HEAD_DEFAULT;
    }
    let size = le64(h, 36).saturating_mul(512).min(VMDK_DESC_MAX as u64) as usize;
    (512 + size).max(HEAD_DEFAULT)
}

fn descriptor_error(reason: impl Into<String>) -> SafetyError {
    SafetyError::VmdkDescriptor(reason.into())
}

pub(crate) fn inspect_sparse(h: &[u8]) -> Found {
    let mut f = Found::new(DiskFormat::Vmdk, NAME);
    if h.len() < 64 {
        return f.unsafe_(SafetyError::Truncated(NAME));
    }
    let version = le32(h, 4);
    f.virtual_size = le64(h, 12).saturating_mul(512);
    if !(1..=3).contains(&version) {
        return f.unsafe_(SafetyError::UnsupportedVersion {
            format: NAME,
            version,
        });
    }
    if le64(h, 56) == GD_AT_END {
        return f.unsafe_(SafetyError::VmdkFooter);
    }
    let (desc_sector, desc_sectors) = (le64(h, 28), le64(h, 36));
    if desc_sector == 0 || desc_sectors == 0 {
        return f.unsafe_(descriptor_error("no embedded descriptor"));
    }
    if desc_sector != 1 {
        return f.unsafe_(descriptor_error("descriptor is not at sector 1"));
    }
    let end = 512 + (desc_sectors.saturating_mul(512).min(VMDK_DESC_MAX as u64) as usize);
    if h.len() < end {
        return f.unsafe_(SafetyError::Truncated("vmdk descriptor"));
    }
    match parse_descriptor(&h[512..end]).and_then(|d| d.check(true)) {
        Ok(_) => f,
        Err(e) => f.unsafe_(e),
    }
}

/// A text descriptor file (what qemu probes as vmdk even though it is text).
pub(crate) fn inspect_descriptor_file(h: &[u8], head_capped: bool) -> Found {
    let mut f = Found::new(DiskFormat::Vmdk, NAME);
    f.notes.push("descriptor-only vmdk".into());
    let desc = match parse_descriptor(&h[..h.len().min(VMDK_DESC_MAX)]) {
        Ok(d) => d,
        Err(e) => return f.unsafe_(e),
    };
    f.virtual_size = desc.extents.iter().map(|e| e.sectors).sum::<u64>() * 512;
    let verdict = desc.check(false).and_then(|_| {
        Err(descriptor_error(if head_capped {
            "descriptor-only vmdk larger than the inspected area"
        } else {
            "descriptor-only vmdk has no data of its own"
        }))
    });
    match verdict {
        Ok(()) => f,
        Err(e) => f.unsafe_(e),
    }
}

/// qemu's `vmdk_probe` for text: skip `#` comment lines and blank lines made
/// of spaces; the first other line must be `version=1|2|3`. qemu looks at the
/// first 2048 bytes.
pub(crate) fn qemu_probes_text_descriptor(h: &[u8]) -> bool {
    let buf = &h[..h.len().min(2048)];
    let mut p = 0;
    while p < buf.len() {
        match buf[p] {
            b'#' => {
                while p < buf.len() && buf[p] != b'\n' {
                    p += 1;
                }
                p += 1;
            }
            b' ' => {
                while p < buf.len() && buf[p] == b' ' {
                    p += 1;
                }
                if p < buf.len() && buf[p] == b'\r' {
                    p += 1;
                }
                if p == buf.len() || buf[p] != b'\n' {
                    return false;
                }
                p += 1;
            }
            _ => {
                let rest = &buf[p..];
                return [b'1', b'2', b'3'].iter().any(|v| {
                    let mut line = b"version=".to_vec();
                    line.push(*v);
                    rest.starts_with(&[line.as_slice(), b"\n"].concat())
                        || rest.starts_with(&[line.as_slice(), b"\r\n"].concat())
                });
            }
        }
    }
    false
}

#[derive(Debug)]
struct Extent {
    sectors: u64,
    kind: String,
    file: Option<String>,
}

#[derive(Debug, Default)]
struct Descriptor {
    create_type: Option<String>,
    parent_hint: Option<String>,
    extents: Vec<Extent>,
}

/// Parse cautiously: every line must be a comment, a `ddb.` entry, a
/// `key=value` header field or an extent line; anything else is refused.
fn parse_descriptor(raw: &[u8]) -> Result<Descriptor, SafetyError> {
    // qemu reads the descriptor as a C string.
    let raw = raw.split(|&b| b == 0).next().unwrap_or_default();
    let text = std::str::from_utf8(raw)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| descriptor_error("not ASCII text"))?;
    let mut d = Descriptor::default();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        if ["rw", "rdonly", "noaccess"]
            .iter()
            .any(|a| first.eq_ignore_ascii_case(a))
        {
            d.extents.push(parse_extent(line)?);
        } else if line.len() >= 4 && line[..4].eq_ignore_ascii_case("ddb.") {
            continue;
        } else if let Some((key, value)) = line.split_once('=')
            && !key.trim().is_empty()
            && !key.trim().contains(char::is_whitespace)
        {
            let value = value.trim().trim_matches('"').to_string();
            match key.trim().to_ascii_lowercase().as_str() {
                "createtype" => d.create_type = Some(value),
                "parentfilenamehint" => d.parent_hint = Some(value),
                _ => {}
            }
        } else {
            return Err(descriptor_error(format!(
                "unrecognised line {:?}",
                truncate(line)
            )));
        }
    }
    Ok(d)
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `ACCESS SECTORS TYPE ["FILE" [OFFSET]]`
fn parse_extent(line: &str) -> Result<Extent, SafetyError> {
    let bad = || descriptor_error(format!("malformed extent line {:?}", truncate(line)));
    let (before, file) = match line.find('"') {
        Some(q) => {
            let rest = &line[q + 1..];
            let end = rest.find('"').ok_or_else(bad)?;
            let tail = rest[end + 1..].trim();
            if !tail.is_empty() && !tail.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            (&line[..q], Some(rest[..end].to_string()))
        }
        None => (line, None),
    };
    let fields: Vec<&str> = before.split_whitespace().collect();
    if fields.len() != 3 {
        return Err(bad());
    }
    let sectors = fields[1].parse::<u64>().map_err(|_| bad())?;
    Ok(Extent {
        sectors,
        kind: fields[2].to_ascii_uppercase(),
        file,
    })
}

impl Descriptor {
    /// `embedded`: the descriptor lives inside a sparse extent, whose single
    /// SPARSE extent is the file itself.
    fn check(&self, embedded: bool) -> Result<(), SafetyError> {
        if self.parent_hint.as_deref().is_some_and(|p| !p.is_empty()) {
            return Err(SafetyError::Parent);
        }
        for e in &self.extents {
            let Some(file) = &e.file else {
                continue;
            };
            let is_path = file.contains('/') || file.contains('\\') || file.contains(':');
            if !embedded || is_path || file.is_empty() || e.kind != "SPARSE" {
                return Err(SafetyError::VmdkExtentFile(truncate(file)));
            }
        }
        let files: Vec<&String> = self
            .extents
            .iter()
            .filter_map(|e| e.file.as_ref())
            .collect();
        if embedded && files.len() > 1 {
            return Err(SafetyError::VmdkExtentFile(truncate(files[1])));
        }
        if self.extents.is_empty() {
            return Err(descriptor_error("no extents"));
        }
        if embedded && files.is_empty() {
            return Err(descriptor_error("no sparse extent"));
        }
        match &self.create_type {
            Some(t)
                if ALLOWED_CREATE_TYPES
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(t)) =>
            {
                Ok(())
            }
            Some(t) => Err(SafetyError::VmdkCreateType(truncate(t))),
            None => Err(SafetyError::VmdkCreateType(String::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_text_probe() {
        assert!(qemu_probes_text_descriptor(
            b"# Disk DescriptorFile\nversion=1\n"
        ));
        assert!(qemu_probes_text_descriptor(b"  \n#x\nversion=3\r\nfoo"));
        assert!(!qemu_probes_text_descriptor(b"hello\nversion=1\n"));
        assert!(!qemu_probes_text_descriptor(b"\nversion=1\n"));
        assert!(!qemu_probes_text_descriptor(b"version=4\n"));
    }

    #[test]
    fn embedded_descriptor_rules() {
        let ok = b"# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\n\
createType=\"monolithicSparse\"\nRW 2048 SPARSE \"disk.vmdk\"\nddb.adapterType = \"ide\"\n";
        parse_descriptor(ok).unwrap().check(true).unwrap();
        let cases: [(&[u8], SafetyError); 5] = [
            (
                b"createType=\"monolithicSparse\"\nRW 2048 SPARSE \"/etc/passwd\"\n",
                SafetyError::VmdkExtentFile("/etc/passwd".into()),
            ),
            (
                b"createType=\"monolithicSparse\"\nRW 2048 FLAT \"other\" 0\n",
                SafetyError::VmdkExtentFile("other".into()),
            ),
            (
                b"createType=\"monolithicSparse\"\nRW 8 SPARSE \"a\"\nRW 8 SPARSE \"b\"\n",
                SafetyError::VmdkExtentFile("b".into()),
            ),
            (
                b"createType=\"vmfs\"\nRW 2048 SPARSE \"a\"\n",
                SafetyError::VmdkCreateType("vmfs".into()),
            ),
            (
                b"createType=\"monolithicSparse\"\nparentFileNameHint=\"/x\"\nRW 8 SPARSE \"a\"\n",
                SafetyError::Parent,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_descriptor(text).and_then(|d| d.check(true)),
                Err(want)
            );
        }
        assert!(parse_descriptor(b"rm -rf /\n").is_err());
        assert!(parse_descriptor(b"RW 2048 SPARSE \"a\" junk\n").is_err());
    }
}
