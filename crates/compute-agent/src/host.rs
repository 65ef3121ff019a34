//! What this host offers, measured from the system: CPUs, memory (`/proc/meminfo`) and the size
//! of the file system holding the instances (`statvfs`).

use ferrostack_compute::rpc::HostResources;
use std::io;
use std::path::Path;

/// Sizes of a file system, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSize {
    pub total: u64,
    /// Free for unprivileged writers.
    pub available: u64,
}

/// `statvfs(3)` of the file system holding `path`.
pub fn filesystem(path: &Path) -> io::Result<FsSize> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: `st` is a plain C struct that statvfs(3) fills on success; `c_path` is a valid
    // NUL-terminated string that outlives the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let frsize = st.f_frsize as u64;
    Ok(FsSize {
        total: st.f_blocks as u64 * frsize,
        available: st.f_bavail as u64 * frsize,
    })
}

/// `MemTotal` of a `/proc/meminfo` text, in MiB.
pub fn mem_total_mb(meminfo: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// What the agent reports, minus what the operator reserves for the host itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reserved {
    pub cpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
}

/// Measures this host: available CPUs, `MemTotal` and the instances file system's size, each
/// less the reserved amount (never below zero).
pub fn measure(instances_path: &Path, reserved: Reserved) -> io::Result<HostResources> {
    let vcpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64;
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let memory_mb = mem_total_mb(&meminfo)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no MemTotal in meminfo"))?;
    let disk_gb = (filesystem(instances_path)?.total >> 30) as i64;
    Ok(HostResources {
        vcpus: (vcpus - reserved.cpus).max(0),
        memory_mb: (memory_mb - reserved.memory_mb).max(0),
        disk_gb: (disk_gb - reserved.disk_gb).max(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_total_is_read_in_mib() {
        let text = "MemTotal:       24682416 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total_mb(text), Some(24103));
        assert_eq!(mem_total_mb("MemFree: 1 kB"), None);
    }

    #[test]
    fn this_host_is_measured_and_reservations_are_subtracted() {
        let dir = std::env::temp_dir();
        let all = measure(&dir, Reserved::default()).unwrap();
        assert!(all.vcpus >= 1 && all.memory_mb > 0 && all.disk_gb > 0);
        let less = measure(
            &dir,
            Reserved {
                cpus: 1,
                memory_mb: 512,
                disk_gb: 1_000_000,
            },
        )
        .unwrap();
        assert_eq!(less.vcpus, all.vcpus - 1);
        assert_eq!(less.memory_mb, all.memory_mb - 512);
        assert_eq!(less.disk_gb, 0);
        let fs = filesystem(&dir).unwrap();
        assert!(fs.available <= fs.total);
    }
}
