//! The small subset of MessagePack that Keystone's payloads use, written the
//! way Python's `msgpack.packb(..., use_bin_type=True)` writes it: every
//! integer in its most compact form, Python floats as float64, `str` in the
//! str family and `bytes` in the bin family, tuples and lists as arrays.

/// A value that did not have the expected MessagePack shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

pub(crate) fn write_array_len(buf: &mut Vec<u8>, len: usize) {
    match len {
        0..=15 => buf.push(0x90 | len as u8),
        16..=0xffff => {
            buf.push(0xdc);
            buf.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            buf.push(0xdd);
            buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

pub(crate) fn write_uint(buf: &mut Vec<u8>, v: u64) {
    match v {
        0..=0x7f => buf.push(v as u8),
        0x80..=0xff => buf.extend_from_slice(&[0xcc, v as u8]),
        0x100..=0xffff => {
            buf.push(0xcd);
            buf.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            buf.push(0xce);
            buf.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            buf.push(0xcf);
            buf.extend_from_slice(&v.to_be_bytes());
        }
    }
}

pub(crate) fn write_f64(buf: &mut Vec<u8>, v: f64) {
    buf.push(0xcb);
    buf.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn write_bool(buf: &mut Vec<u8>, v: bool) {
    buf.push(if v { 0xc3 } else { 0xc2 });
}

/// Callers keep lengths far below `u32::MAX` (tokens are bounded).
pub(crate) fn write_str(buf: &mut Vec<u8>, s: &str) {
    let len = s.len();
    match len {
        0..=31 => buf.push(0xa0 | len as u8),
        32..=0xff => buf.extend_from_slice(&[0xd9, len as u8]),
        0x100..=0xffff => {
            buf.push(0xda);
            buf.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            buf.push(0xdb);
            buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
    buf.extend_from_slice(s.as_bytes());
}

pub(crate) fn write_bin(buf: &mut Vec<u8>, b: &[u8]) {
    let len = b.len();
    match len {
        0..=0xff => buf.extend_from_slice(&[0xc4, len as u8]),
        0x100..=0xffff => {
            buf.push(0xc5);
            buf.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            buf.push(0xc6);
            buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
    buf.extend_from_slice(b);
}

/// A zero-copy reader over a MessagePack buffer.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        self.take(N)?.try_into().map_err(|_| Malformed)
    }

    fn len8(&mut self) -> Result<usize, Malformed> {
        Ok(self.byte()? as usize)
    }

    fn len16(&mut self) -> Result<usize, Malformed> {
        Ok(u16::from_be_bytes(self.be()?) as usize)
    }

    fn len32(&mut self) -> Result<usize, Malformed> {
        Ok(u32::from_be_bytes(self.be()?) as usize)
    }

    pub(crate) fn array_len(&mut self) -> Result<usize, Malformed> {
        match self.byte()? {
            m @ 0x90..=0x9f => Ok((m & 0x0f) as usize),
            0xdc => self.len16(),
            0xdd => self.len32(),
            _ => Err(Malformed),
        }
    }

    /// A non-negative integer in any integer encoding.
    pub(crate) fn uint(&mut self) -> Result<u64, Malformed> {
        match self.byte()? {
            m @ 0x00..=0x7f => Ok(m as u64),
            0xcc => Ok(self.byte()? as u64),
            0xcd => Ok(u16::from_be_bytes(self.be()?) as u64),
            0xce => Ok(u32::from_be_bytes(self.be()?) as u64),
            0xcf => Ok(u64::from_be_bytes(self.be()?)),
            0xd0 => u64::try_from(i8::from_be_bytes(self.be()?)).map_err(|_| Malformed),
            0xd1 => u64::try_from(i16::from_be_bytes(self.be()?)).map_err(|_| Malformed),
            0xd2 => u64::try_from(i32::from_be_bytes(self.be()?)).map_err(|_| Malformed),
            0xd3 => u64::try_from(i64::from_be_bytes(self.be()?)).map_err(|_| Malformed),
            _ => Err(Malformed),
        }
    }

    /// A float (float64 or float32); integers are accepted too, as Python
    /// treats them alike when converting to a datetime.
    pub(crate) fn float(&mut self) -> Result<f64, Malformed> {
        match self.buf.first() {
            Some(0xcb) => {
                self.byte()?;
                Ok(f64::from_be_bytes(self.be()?))
            }
            Some(0xca) => {
                self.byte()?;
                Ok(f32::from_be_bytes(self.be()?) as f64)
            }
            _ => self.uint().map(|v| v as f64),
        }
    }

    pub(crate) fn boolean(&mut self) -> Result<bool, Malformed> {
        match self.byte()? {
            0xc3 => Ok(true),
            0xc2 => Ok(false),
            _ => Err(Malformed),
        }
    }

    /// The bytes of a str- or bin-family value. Both are accepted wherever
    /// either may appear: tokens from msgpack < 1.0 (no bin type) carried
    /// bytes in str values, which Keystone still reads.
    pub(crate) fn raw(&mut self) -> Result<&'a [u8], Malformed> {
        self.raw_with_kind().map(|(_, raw)| raw)
    }

    /// Like [`Reader::raw`], also telling whether the value was in the bin
    /// family (`true`) or the str family (`false`).
    pub(crate) fn raw_with_kind(&mut self) -> Result<(bool, &'a [u8]), Malformed> {
        let (is_bin, len) = match self.byte()? {
            m @ 0xa0..=0xbf => (false, (m & 0x1f) as usize),
            0xd9 => (false, self.len8()?),
            0xda => (false, self.len16()?),
            0xdb => (false, self.len32()?),
            0xc4 => (true, self.len8()?),
            0xc5 => (true, self.len16()?),
            0xc6 => (true, self.len32()?),
            _ => return Err(Malformed),
        };
        Ok((is_bin, self.take(len)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_encodings_are_compact_and_read_back() {
        for (v, len) in [
            (0u64, 1),
            (127, 1),
            (128, 2),
            (255, 2),
            (256, 3),
            (65535, 3),
            (65536, 5),
            (u32::MAX as u64, 5),
            (u32::MAX as u64 + 1, 9),
            (u64::MAX, 9),
        ] {
            let mut buf = Vec::new();
            write_uint(&mut buf, v);
            assert_eq!(buf.len(), len, "{v}");
            let mut r = Reader::new(&buf);
            assert_eq!(r.uint().unwrap(), v);
            assert!(r.is_empty());
        }
        // negative ints are not uints
        assert_eq!(Reader::new(&[0xd0, 0xff]).uint(), Err(Malformed));
        assert_eq!(Reader::new(&[0xd0, 0x05]).uint(), Ok(5));
    }

    #[test]
    fn str_bin_array_headers() {
        for (len, hdr) in [
            (0usize, 1usize),
            (31, 1),
            (32, 2),
            (255, 2),
            (256, 3),
            (70000, 5),
        ] {
            let s = "x".repeat(len);
            let mut buf = Vec::new();
            write_str(&mut buf, &s);
            assert_eq!(buf.len(), len + hdr);
            assert_eq!(Reader::new(&buf).raw().unwrap(), s.as_bytes());
            let mut buf = Vec::new();
            write_bin(&mut buf, s.as_bytes());
            assert_eq!(buf.len(), len + if len < 256 { 2 } else { hdr });
            assert_eq!(Reader::new(&buf).raw().unwrap(), s.as_bytes());
        }
        for len in [0usize, 15, 16, 65535, 65536] {
            let mut buf = Vec::new();
            write_array_len(&mut buf, len);
            assert_eq!(Reader::new(&buf).array_len().unwrap(), len);
        }
    }

    #[test]
    fn truncated_input_is_malformed() {
        let mut buf = Vec::new();
        write_str(&mut buf, "hello world");
        assert_eq!(Reader::new(&buf[..5]).raw(), Err(Malformed));
        assert_eq!(Reader::new(&[]).boolean(), Err(Malformed));
        assert_eq!(Reader::new(&[0xcb, 0, 0]).float(), Err(Malformed));
    }
}
