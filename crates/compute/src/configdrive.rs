//! Config drives: the metadata documents on an ISO 9660 + Joliet + Rock Ridge image labelled
//! `config-2`, made with `genisoimage` as Nova does (`nova/virt/configdrive.py`).

use crate::metadata::InstanceMetadata;
use std::collections::BTreeMap;
use std::path::Path;

/// Writes the config drive of `instance` to `output` (built in a temporary directory next to
/// it, then renamed, so a crash never leaves a half-written drive under the final name).
pub async fn build(instance: &InstanceMetadata, output: &Path) -> std::io::Result<()> {
    let files: BTreeMap<String, Vec<u8>> = instance.config_drive_files().into_iter().collect();
    build_from_files(&files, output).await
}

/// Writes a config drive holding `files` (path inside the drive → content) to `output`,
/// atomically as [`build`] does. The compute agent uses this with the files the conductor sent.
pub async fn build_from_files(
    files: &BTreeMap<String, Vec<u8>>,
    output: &Path,
) -> std::io::Result<()> {
    let parent = output.parent().unwrap_or(Path::new("."));
    let staging = parent.join(format!(".configdrive-{}", uuid::Uuid::new_v4().simple()));
    let result = async {
        for (name, content) in files {
            if name.starts_with('/') || name.split('/').any(|part| part == "..") {
                return Err(std::io::Error::other(format!(
                    "bad config drive path {name}"
                )));
            }
            let path = staging.join(name);
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            tokio::fs::write(&path, content).await?;
        }
        let partial = output.with_extension("partial");
        let out = tokio::process::Command::new("genisoimage")
            .arg("-o")
            .arg(&partial)
            .args(["-ldots", "-allow-lowercase", "-allow-multidot", "-l"])
            .args([
                "-publisher",
                "OpenStack Nova ferrostack",
                "-quiet",
                "-J",
                "-r",
            ])
            .args(["-V", "config-2"])
            .arg(&staging)
            .output()
            .await?;
        if !out.status.success() {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(std::io::Error::other(format!(
                "genisoimage failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        tokio::fs::rename(&partial, output).await
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    result
}
