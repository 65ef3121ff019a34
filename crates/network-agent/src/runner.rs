//! The one place the agent runs host tools (`ip`, `bridge`, `nft`, `dnsmasq`, `sysctl`): every
//! command is logged, and a failure becomes an [`Error::Command`] carrying the command line and
//! its stderr.

use crate::error::{Error, Result};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Runs commands, logging each at debug level (with its duration).
#[derive(Debug, Clone, Default)]
pub struct Runner;

impl Runner {
    /// Runs `program args...`; returns its stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String> {
        self.run_with_input(program, args, None)
    }

    /// Runs `program args...` with `input` on its stdin (`nft -f -`, `ip -batch -`).
    pub fn run_with_input(
        &self,
        program: &str,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<String> {
        let line = command_line(program, args);
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| Error::Spawn {
                program: program.to_string(),
                source,
            })?;
        if let Some(input) = input {
            let mut stdin = child.stdin.take().expect("stdin is piped");
            // A tool that exits early closes its stdin; its status tells what went wrong.
            let _ = stdin.write_all(input.as_bytes());
        }
        let output = child
            .wait_with_output()
            .map_err(Error::io(format!("waiting for `{line}`")))?;
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        if !output.status.success() {
            tracing::debug!(command = %line, ?elapsed, %stderr, "command failed");
            return Err(Error::Command {
                command: line,
                status: output.status.to_string(),
                stderr,
            });
        }
        tracing::debug!(
            command = %line,
            ?elapsed,
            input_bytes = input.map_or(0, str::len),
            "ran"
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `ip args...`, inside `namespace` when given (`ip -n <ns> ...`).
    pub fn ip(&self, namespace: Option<&str>, args: &[&str]) -> Result<String> {
        match namespace {
            Some(ns) => {
                let mut all = vec!["-n", ns];
                all.extend_from_slice(args);
                self.run("ip", &all)
            }
            None => self.run("ip", args),
        }
    }

    /// Runs a list of `ip` commands in one process (`ip -force -batch -`): much faster than one
    /// process each. Every line runs; the error lists the ones that failed.
    pub fn ip_batch(&self, namespace: Option<&str>, lines: &[String]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut args = vec!["-force", "-batch", "-"];
        if let Some(ns) = namespace {
            args.splice(0..0, ["-n", ns]);
        }
        let input = lines.join("\n") + "\n";
        self.run_with_input("ip", &args, Some(&input)).map(drop)
    }

    /// Runs `program args...` inside network namespace `namespace` (`ip netns exec`).
    pub fn in_namespace(&self, namespace: &str, program: &str, args: &[&str]) -> Result<String> {
        let mut all = vec!["netns", "exec", namespace, program];
        all.extend_from_slice(args);
        self.run("ip", &all)
    }

    /// Applies an nftables script as one transaction (`nft -f -`), in `namespace` if given.
    pub fn nft_apply(&self, namespace: Option<&str>, script: &str) -> Result<()> {
        match namespace {
            Some(ns) => {
                self.run_with_input("ip", &["netns", "exec", ns, "nft", "-f", "-"], Some(script))
            }
            None => self.run_with_input("nft", &["-f", "-"], Some(script)),
        }
        .map(drop)
    }
}

/// A command as a shell would show it (arguments with spaces quoted).
pub fn command_line(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .map(|arg| {
            if arg.is_empty() || arg.contains(char::is_whitespace) {
                format!("'{arg}'")
            } else {
                arg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_carry_the_command_and_stderr() {
        let err = Runner
            .run("sh", &["-c", "echo oops >&2; exit 3"])
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c 'echo oops >&2; exit 3'"), "{text}");
        assert!(
            text.contains("exit status: 3") && text.ends_with("oops"),
            "{text}"
        );
    }

    #[test]
    fn stdin_reaches_the_command_and_missing_tools_are_named() {
        assert_eq!(
            Runner.run_with_input("cat", &[], Some("hello")).unwrap(),
            "hello"
        );
        let err = Runner.run("no-such-tool-here", &[]).unwrap_err();
        assert!(matches!(err, Error::Spawn { .. }), "{err}");
    }
}
