//! A byte range of the stream to keep, filled as chunks go by.

/// Keeps `len` bytes of the stream starting at `offset`.
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    pub offset: u64,
    pub len: usize,
    pub data: Vec<u8>,
    /// The range started before the point where the capture was created.
    pub missed: bool,
}

impl Capture {
    pub fn new(offset: u64, len: usize) -> Self {
        Capture {
            offset,
            len,
            data: Vec::new(),
            missed: false,
        }
    }

    pub fn complete(&self) -> bool {
        self.data.len() >= self.len
    }

    /// Take whatever part of `chunk` (which starts at stream offset `start`)
    /// continues the captured bytes.
    pub fn apply(&mut self, start: u64, chunk: &[u8]) {
        if self.complete() || self.missed {
            return;
        }
        let want = self.offset + self.data.len() as u64;
        let end = start + chunk.len() as u64;
        if want < start {
            self.missed = true;
            return;
        }
        if want >= end {
            return;
        }
        let from = (want - start) as usize;
        let n = (self.len - self.data.len()).min(chunk.len() - from);
        self.data.extend_from_slice(&chunk[from..from + n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_across_chunks_and_detects_miss() {
        let data: Vec<u8> = (0..100u8).collect();
        for step in [1, 3, 10, 100] {
            let mut c = Capture::new(40, 20);
            let mut pos = 0u64;
            for chunk in data.chunks(step) {
                c.apply(pos, chunk);
                pos += chunk.len() as u64;
            }
            assert!(c.complete());
            assert_eq!(c.data, &data[40..60]);
        }
        let mut late = Capture::new(5, 4);
        late.apply(10, &data[10..20]);
        assert!(late.missed && !late.complete());
    }
}
