//! Streaming disk-image format inspection for the image service.
//!
//! This is Ferrostack's counterpart of Glance's `format_inspector`: every
//! uploaded image is fed through an [`Inspector`] chunk by chunk *before* any
//! `qemu-img` call touches it. The inspector keeps only the few regions it
//! needs (never the whole image) and at the end says what the content is
//! ([`Inspection::detected`]), how big the virtual disk is, and whether the
//! image is safe to hand to qemu: no qcow2 backing file or external data file,
//! no vmdk extent that names another file, no differencing disk that names a
//! parent (OSSA-2024-001 and the 2022 vmdk/qcow2 advisories).
//!
//! [`Inspection::check`] applies Glance's rule: the content must match the
//! declared `disk_format` and must be safe.
//!
//! ```
//! use ferrostack_image_format::{DiskFormat, Inspector};
//!
//! let mut inspector = Inspector::new();
//! inspector.feed(&[0u8; 4096]);
//! let inspection = inspector.finish();
//! assert_eq!(inspection.detected, DiskFormat::Raw);
//! assert_eq!(inspection.virtual_size, 4096);
//! assert!(inspection.check(DiskFormat::Raw).is_ok());
//! assert!(inspection.check(DiskFormat::Qcow2).is_err());
//! ```

mod capture;
mod formats;

use std::fmt;
use std::str::FromStr;

/// Glance's `disk_format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiskFormat {
    Raw,
    Qcow2,
    Vmdk,
    Vhd,
    Vhdx,
    Iso,
    Ami,
    Ari,
    Aki,
    Vdi,
    Ploop,
}

impl DiskFormat {
    /// Every disk format, in Glance's documentation order.
    pub const ALL: [DiskFormat; 11] = [
        DiskFormat::Ami,
        DiskFormat::Ari,
        DiskFormat::Aki,
        DiskFormat::Vhd,
        DiskFormat::Vhdx,
        DiskFormat::Vmdk,
        DiskFormat::Raw,
        DiskFormat::Qcow2,
        DiskFormat::Vdi,
        DiskFormat::Iso,
        DiskFormat::Ploop,
    ];

    /// The string Glance uses for this format.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vmdk => "vmdk",
            DiskFormat::Vhd => "vhd",
            DiskFormat::Vhdx => "vhdx",
            DiskFormat::Iso => "iso",
            DiskFormat::Ami => "ami",
            DiskFormat::Ari => "ari",
            DiskFormat::Aki => "aki",
            DiskFormat::Vdi => "vdi",
            DiskFormat::Ploop => "ploop",
        }
    }

    /// Formats whose content is plain bytes ("raw" to qemu).
    fn is_raw_kind(self) -> bool {
        matches!(
            self,
            DiskFormat::Raw | DiskFormat::Ami | DiskFormat::Ari | DiskFormat::Aki
        )
    }
}

impl fmt::Display for DiskFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `disk_format` string that is not one of Glance's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Invalid disk format '{0}' (expected one of ami, ari, aki, vhd, vhdx, vmdk, raw, qcow2, vdi, iso, ploop)"
)]
pub struct UnknownDiskFormat(pub String);

impl FromStr for DiskFormat {
    type Err = UnknownDiskFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DiskFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownDiskFormat(s.to_string()))
    }
}

/// Why an image is unsafe to hand to qemu. The messages are user facing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafetyError {
    #[error("Image has a backing file")]
    BackingFile,
    #[error("Image has an external data file")]
    DataFile,
    #[error("Image uses unknown qcow2 incompatible features (0x{0:x})")]
    UnknownFeatures(u64),
    #[error("Image is {format} version {version}, which is not supported")]
    UnsupportedVersion { format: &'static str, version: u32 },
    #[error("Image has an invalid {format} header: {reason}")]
    InvalidHeader {
        format: &'static str,
        reason: String,
    },
    #[error("Image is truncated: the {0} header is incomplete")]
    Truncated(&'static str),
    #[error("Image has a VMDK extent that refers to another file ({0:?})")]
    VmdkExtentFile(String),
    #[error(
        "Image has VMDK createType {0:?}; only monolithicSparse and streamOptimized are allowed"
    )]
    VmdkCreateType(String),
    #[error("Image has an invalid VMDK descriptor: {0}")]
    VmdkDescriptor(String),
    #[error("Image is a VMDK with a footer, which cannot be verified while streaming")]
    VmdkFooter,
    #[error("Image is a differencing disk that refers to a parent image")]
    Parent,
    #[error("Image content is {0}, which is not a supported disk format")]
    UnsupportedFormat(&'static str),
    #[error("Image content matches several formats ({0} and {1})")]
    MultipleFormats(&'static str, &'static str),
}

/// Why an upload is refused by [`Inspection::check`]. The messages are user facing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("{0}: refused")]
    Unsafe(SafetyError),
    #[error("Image content is {detected} but disk_format is {declared}")]
    Mismatch {
        detected: DiskFormat,
        declared: DiskFormat,
    },
}

/// The verdict on a fully streamed image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The Glance format the content is. Content of a format Glance does not
    /// know (qed, luks, ...) is reported as `Raw` with an unsafe verdict and
    /// its name in [`Inspection::format_name`].
    pub detected: DiskFormat,
    /// Size of the virtual disk in bytes (for raw: the actual size). `0` when
    /// it could not be determined (then [`Inspection::notes`] says why).
    pub virtual_size: u64,
    /// Number of bytes fed.
    pub actual_size: u64,
    pub safety: Result<(), SafetyError>,
    /// The precise content name ("qcow2", "vmdk", "qed", "luks", "gpt", ...).
    pub format_name: &'static str,
    /// Remarks for logs (e.g. "virtual size unknown: ...", "encrypted qcow2").
    pub notes: Vec<String>,
}

impl Inspection {
    /// Glance's rule: the content must be safe and must match `declared`.
    ///
    /// raw/ami/ari/aki accept raw content (and an ISO 9660 image, which is
    /// raw to qemu); iso accepts raw content and ISO content; every other
    /// format must be detected as itself.
    pub fn check(&self, declared: DiskFormat) -> Result<(), FormatError> {
        if let Err(e) = &self.safety {
            return Err(FormatError::Unsafe(e.clone()));
        }
        let ok = match declared {
            d if d.is_raw_kind() => {
                matches!(self.detected, DiskFormat::Raw | DiskFormat::Iso)
            }
            DiskFormat::Iso => matches!(self.detected, DiskFormat::Raw | DiskFormat::Iso),
            d => self.detected == d,
        };
        if ok {
            Ok(())
        } else {
            Err(FormatError::Mismatch {
                detected: self.detected,
                declared,
            })
        }
    }
}

/// Bytes kept from the start of the image: every start-of-file header, the
/// qcow2 header extensions and the ISO 9660 volume descriptors (at 32 KiB).
pub(crate) const HEAD_DEFAULT: usize = 64 * 1024;
/// qemu's limit on the vmdk embedded descriptor.
pub(crate) const VMDK_DESC_MAX: usize = (1 << 20) - 1;
/// The vhd footer.
pub(crate) const TAIL: usize = 512;

/// Streaming inspector: feed every chunk of the upload, then [`finish`](Inspector::finish).
///
/// Memory is bounded: 64 KiB of head (up to 1 MiB + 512 bytes for a vmdk
/// whose header announces a large embedded descriptor), the last 512 bytes,
/// and for vhdx the 64 KiB region table, the 64 KiB metadata table and two
/// 8-byte metadata items.
#[derive(Debug, Clone)]
pub struct Inspector {
    pos: u64,
    head: Vec<u8>,
    head_limit: usize,
    head_limit_decided: bool,
    tail: Box<[u8; TAIL]>,
    tail_next: usize,
    vhdx_decided: bool,
    vhdx: Option<formats::vhdx::Stream>,
}

impl Default for Inspector {
    fn default() -> Self {
        Self::new()
    }
}

impl Inspector {
    pub fn new() -> Self {
        Inspector {
            pos: 0,
            head: Vec::new(),
            head_limit: HEAD_DEFAULT,
            head_limit_decided: false,
            tail: Box::new([0; TAIL]),
            tail_next: 0,
            vhdx_decided: false,
            vhdx: None,
        }
    }

    /// Number of bytes fed so far.
    pub fn bytes_seen(&self) -> u64 {
        self.pos
    }

    /// Feed the next chunk of the image (any size, including empty).
    pub fn feed(&mut self, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        let start = self.pos;
        self.fill_head(start, chunk);
        if !self.head_limit_decided && self.head.len() >= 512 {
            self.head_limit_decided = true;
            self.head_limit = formats::vmdk::head_limit(&self.head);
            self.fill_head(start, chunk);
        }
        if !self.vhdx_decided && self.head.len() >= 8 {
            self.vhdx_decided = true;
            if self.head.starts_with(formats::vhdx::MAGIC) {
                self.vhdx = Some(formats::vhdx::Stream::new());
            }
        }
        if let Some(v) = &mut self.vhdx {
            v.feed(start, chunk);
        }
        self.fill_tail(chunk);
        self.pos += chunk.len() as u64;
    }

    fn fill_head(&mut self, start: u64, chunk: &[u8]) {
        let have = self.head.len() as u64;
        let end = start + chunk.len() as u64;
        if have < start || have >= end || self.head.len() >= self.head_limit {
            return;
        }
        let from = (have - start) as usize;
        let n = (self.head_limit - self.head.len()).min(chunk.len() - from);
        self.head.extend_from_slice(&chunk[from..from + n]);
    }

    fn fill_tail(&mut self, chunk: &[u8]) {
        if chunk.len() >= TAIL {
            self.tail.copy_from_slice(&chunk[chunk.len() - TAIL..]);
            self.tail_next = 0;
            return;
        }
        for &b in chunk {
            self.tail[self.tail_next] = b;
            self.tail_next = (self.tail_next + 1) % TAIL;
        }
    }

    /// The last 512 bytes, in order (only when at least 512 bytes were fed).
    fn footer(&self) -> Option<[u8; TAIL]> {
        if self.pos < TAIL as u64 {
            return None;
        }
        let mut out = [0u8; TAIL];
        let (a, b) = self.tail.split_at(self.tail_next);
        out[..b.len()].copy_from_slice(b);
        out[b.len()..].copy_from_slice(a);
        Some(out)
    }

    /// After the last chunk: what the data is.
    pub fn finish(self) -> Inspection {
        let footer = self.footer();
        formats::inspect(&formats::Seen {
            head: &self.head,
            head_capped: (self.head.len() as u64) < self.pos,
            size: self.pos,
            footer: footer.as_ref(),
            vhdx: self.vhdx.as_ref(),
        })
    }
}

/// Runs the inspector over the whole file at `path` (blocking: async callers run it in
/// `spawn_blocking`).
pub fn inspect_file(path: &std::path::Path) -> std::io::Result<Inspection> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut inspector = Inspector::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        inspector.feed(&buf[..n]);
    }
    Ok(inspector.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_format_strings_round_trip() {
        for f in DiskFormat::ALL {
            assert_eq!(f.to_string().parse::<DiskFormat>(), Ok(f));
        }
        assert!("QCOW2".parse::<DiskFormat>().is_err());
        assert!("qed".parse::<DiskFormat>().is_err());
    }

    #[test]
    fn inspector_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Inspector>();
        assert_send::<Inspection>();
    }

    #[test]
    fn empty_and_tiny_inputs_are_raw() {
        let i = Inspector::new().finish();
        assert_eq!(i.detected, DiskFormat::Raw);
        assert_eq!((i.virtual_size, i.actual_size), (0, 0));
        let mut ins = Inspector::new();
        ins.feed(b"QF");
        assert_eq!(ins.finish().detected, DiskFormat::Raw);
    }

    #[test]
    fn tail_ring_keeps_last_bytes_in_order() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        for step in [1usize, 7, 300, 511, 512, 513, 3000] {
            let mut ins = Inspector::new();
            for c in data.chunks(step) {
                ins.feed(c);
            }
            assert_eq!(&ins.footer().unwrap()[..], &data[data.len() - 512..]);
        }
    }

    #[test]
    fn head_is_bounded() {
        let mut ins = Inspector::new();
        for _ in 0..100 {
            ins.feed(&[0u8; 65536]);
        }
        assert_eq!(ins.head.len(), HEAD_DEFAULT);
        assert!(ins.vhdx.is_none());
    }

    #[test]
    fn check_messages() {
        let i = Inspection {
            detected: DiskFormat::Qcow2,
            virtual_size: 1,
            actual_size: 1,
            safety: Ok(()),
            format_name: "qcow2",
            notes: vec![],
        };
        assert_eq!(
            i.check(DiskFormat::Raw).unwrap_err().to_string(),
            "Image content is qcow2 but disk_format is raw"
        );
        let bad = Inspection {
            safety: Err(SafetyError::BackingFile),
            ..i
        };
        assert_eq!(
            bad.check(DiskFormat::Qcow2).unwrap_err().to_string(),
            "Image has a backing file: refused"
        );
    }
}
