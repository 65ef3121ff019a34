//! `os-getConsoleOutput`, as Nova's libvirt driver and compute manager read it: the last
//! [`MAX_CONSOLE_BYTES`] of `console.log`, continued into the rotated `console.log.0`,
//! `console.log.1`, ... while room is left; then the last `length` lines; then ASCII with
//! replacement characters.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Nova's `MAX_CONSOLE_BYTES`: 100 KiB.
pub const MAX_CONSOLE_BYTES: u64 = 100 * 1024;

/// The last `max` bytes of `path` (fewer if the file is shorter); `None` if it does not exist.
fn last_bytes(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max);
    file.seek(SeekFrom::Start(start))?;
    let mut data = Vec::with_capacity((len - start) as usize);
    file.take(max).read_to_end(&mut data)?;
    Ok(Some(data))
}

/// The log's tail in chronological order (Nova's `_get_console_output_file`).
pub fn read_log(console_log: &Path) -> std::io::Result<Vec<u8>> {
    let mut budget = MAX_CONSOLE_BYTES;
    let mut log = Vec::new();
    let mut path = console_log.to_path_buf();
    let mut rotation = 0;
    while budget > 0 {
        let Some(mut data) = last_bytes(&path, budget)? else {
            break;
        };
        budget -= data.len() as u64;
        // Older files come before.
        data.extend_from_slice(&log);
        log = data;
        let mut rotated = console_log.as_os_str().to_owned();
        rotated.push(format!(".{rotation}"));
        path = rotated.into();
        rotation += 1;
    }
    Ok(log)
}

/// Nova's `_tail_log`: `b"\n".join(log.split(b"\n")[-length:])`, with `0` giving nothing (and
/// Python's slicing: a negative `length` drops the first `-length` lines).
pub fn tail_lines(log: &[u8], length: i64) -> Vec<u8> {
    if length == 0 {
        return Vec::new();
    }
    let lines: Vec<&[u8]> = log.split(|&b| b == b'\n').collect();
    let n = lines.len() as i64;
    // Python's `lines[-length:]`: a negative index counts from the end (clamped at 0), a
    // positive one from the start (clamped at n).
    let start = if length > 0 {
        (n - length).max(0)
    } else {
        (-length).min(n)
    } as usize;
    lines[start..].join(&b'\n')
}

/// Python's `bytes.decode("ascii", "replace")`: each non-ASCII byte becomes U+FFFD.
pub fn decode_ascii(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| if b.is_ascii() { b as char } else { '\u{FFFD}' })
        .collect()
}

/// The console output of a guest whose serial log is `console_log`; `""` when there is none.
pub fn console_output(console_log: &Path, length: Option<i64>) -> std::io::Result<String> {
    let log = read_log(console_log)?;
    let log = match length {
        Some(length) => tail_lines(&log, length),
        None => log,
    };
    Ok(decode_ascii(&log))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(log: &str, length: i64) -> String {
        String::from_utf8(tail_lines(log.as_bytes(), length)).unwrap()
    }

    #[test]
    fn tails_follow_python_slicing() {
        let log = "a\nb\nc\nd\n";
        // split gives ["a", "b", "c", "d", ""]
        assert_eq!(tail(log, 2), "d\n");
        assert_eq!(tail(log, 3), "c\nd\n");
        assert_eq!(tail(log, 100), log);
        assert_eq!(tail(log, 0), "");
        assert_eq!(tail(log, -1), "b\nc\nd\n");
        assert_eq!(tail(log, -100), "");
        assert_eq!(tail("", 5), "");
        // Tempest: length=3 yields exactly three \n-separated parts.
        assert_eq!(tail("1\n2\n3\n4\n5", 3).split('\n').count(), 3);
    }

    #[test]
    fn non_ascii_bytes_become_replacement_characters() {
        assert_eq!(decode_ascii(b"ok\xc3\xa9!"), "ok\u{FFFD}\u{FFFD}!");
    }

    #[test]
    fn the_log_continues_into_rotated_files_within_100_kib() {
        let dir = std::env::temp_dir().join(format!("console-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("console.log");
        assert_eq!(console_output(&log, None).unwrap(), "");
        std::fs::write(&log, "new-1\nnew-2\n").unwrap();
        assert_eq!(console_output(&log, None).unwrap(), "new-1\nnew-2\n");
        std::fs::write(dir.join("console.log.0"), "old-1\nold-2\n").unwrap();
        assert_eq!(
            console_output(&log, None).unwrap(),
            "old-1\nold-2\nnew-1\nnew-2\n"
        );
        assert_eq!(console_output(&log, Some(2)).unwrap(), "new-2\n");
        // A large current log fills the budget alone: the rotated file is not read.
        let big = "x".repeat(MAX_CONSOLE_BYTES as usize + 10);
        std::fs::write(&log, format!("head\n{big}")).unwrap();
        let out = console_output(&log, None).unwrap();
        assert_eq!(out.len() as u64, MAX_CONSOLE_BYTES);
        assert!(!out.contains("old") && !out.contains("head"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
