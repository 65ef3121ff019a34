//! The agent's long-running helper processes (dnsmasq): found by their command line in `/proc`
//! (a process is the agent's when its `--pid-file` lies under the agent's state directory),
//! signalled, and stopped.

use crate::error::{Error, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// A running process and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Process {
    pub pid: i32,
    pub argv: Vec<String>,
}

/// Every process whose arguments include `--pid-file=<dir>/...`, with the first path component
/// below `dir` (for DHCP: the network id).
pub(crate) fn find_by_pid_file_dir(dir: &Path) -> Vec<(String, Process)> {
    let prefix = format!("--pid-file={}/", dir.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let key = argv.iter().find_map(|arg| {
            let rest = arg.strip_prefix(&prefix)?;
            Some(rest.split('/').next().unwrap_or_default().to_string())
        });
        if let Some(key) = key {
            found.push((key, Process { pid, argv }));
        }
    }
    found
}

/// Sends `signal` to `pid`.
pub(crate) fn signal(pid: i32, signal: i32) -> Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(Error::Io {
            context: format!("signalling process {pid}"),
            source: std::io::Error::last_os_error(),
        })
    }
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                // A zombie (state Z) has exited; its parent just has not reaped it.
                stat.rsplit_once(')')
                    .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
                    .unwrap_or(false)
            })
            .unwrap_or(false)
}

/// Stops `pid`: SIGTERM, then SIGKILL if it is still there after two seconds.
pub(crate) fn stop(pid: i32) -> Result<()> {
    if !alive(pid) {
        return Ok(());
    }
    signal(pid, libc::SIGTERM)?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if !alive(pid) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(pid, libc::SIGKILL)?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_found_by_their_pid_file_and_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("net-1").join("pid");
        // `sh` waits in its `read` builtin: one process, no child carrying the same argv
        // (a `python3` found on PATH may be a shim that forks several).
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("read _")
            .arg("sh")
            .arg(format!("--pid-file={}", pid_file.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Held open so that `read` waits until `stop`, not until `wait` closes the pipe.
        let _stdin = child.stdin.take();
        // Until the child has exec'd, /proc shows the parent's command line.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut found = find_by_pid_file_dir(dir.path());
        while found.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            found = find_by_pid_file_dir(dir.path());
        }
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "net-1");
        assert_eq!(found[0].1.pid, pid);
        std::thread::spawn(move || child.wait());
        stop(pid).unwrap();
        assert!(!alive(pid));
        assert!(find_by_pid_file_dir(dir.path()).is_empty());
    }
}
