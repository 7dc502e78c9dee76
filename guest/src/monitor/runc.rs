//! The runtime commands the monitor runs (`run --detach`, `delete`), and
//! reading the runtime's own error out of its JSON log. The monitor is a
//! process of its own, without the engine's async runtime, so it runs the
//! binary directly; the engine's calls (kill, delete, state) go through
//! [`crate::runtime::OciRuntime`].

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde::Deserialize;

/// One runtime (runc or crun) with its state root and log file.
pub(crate) struct Runtime {
    pub(crate) binary: PathBuf,
    pub(crate) root: PathBuf,
    pub(crate) log: PathBuf,
}

/// The container's stdio as the runtime's `create` gets it.
pub(crate) struct CreateStdio {
    pub(crate) stdin: Stdio,
    pub(crate) stdout: Stdio,
    pub(crate) stderr: Stdio,
}

impl Runtime {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--root")
            .arg(&self.root)
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json");
        command
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    /// `run --detach --bundle B --pid-file P [--console-socket S] ID`: create
    /// and start in one run of the runtime (a run of a Go program costs
    /// ~10 ms; create then start costs two), with the container's stdio as
    /// the runtime's own (it hands them to the container's init). Err: the
    /// runtime's message.
    pub(crate) fn run_detached(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: CreateStdio,
    ) -> Result<(), String> {
        let from = self.log_len();
        let status = {
            // The command holds the child's ends of the stdio; dropping it
            // (with this block) leaves them to the container alone.
            let mut command = self.command();
            command
                .arg("run")
                .arg("--detach")
                .arg("--bundle")
                .arg(bundle)
                .arg("--pid-file")
                .arg(pid_file);
            if let Some(socket) = console_socket {
                command.arg("--console-socket").arg(socket);
            }
            command
                .arg(id)
                .stdin(stdio.stdin)
                .stdout(stdio.stdout)
                .stderr(stdio.stderr);
            command
                .status()
                .map_err(|e| format!("run {}: {e}", self.binary.display()))?
        };
        if status.success() {
            Ok(())
        } else {
            Err(self.failure("run", status, from, b""))
        }
    }

    /// Whether the runtime has a container `id` (`state ID` succeeds).
    pub(crate) fn exists(&self, id: &str) -> bool {
        // The runtime keeps each container's state in `<root>/<id>/`; looking
        // there spares a `state` run (a Go program's start, ~10 ms) on the
        // path of every start.
        self.root.join(id).exists()
    }

    /// `delete -f ID`; failures (it may already be gone) are only logged.
    pub(crate) fn delete(&self, id: &str) {
        if let Err(message) = self.run_simple("delete", &["delete", "-f", id]) {
            super::supervise::note(&format!("delete container {id}: {message}"));
        }
    }

    fn run_simple(&self, step: &str, args: &[&str]) -> Result<(), String> {
        let from = self.log_len();
        let output = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("run {}: {e}", self.binary.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(self.failure(step, output.status, from, &output.stderr))
        }
    }

    /// The runtime's error: the last error its log gained since offset
    /// `from`, else its stderr, else its exit status.
    fn failure(&self, step: &str, status: ExitStatus, from: u64, stderr: &[u8]) -> String {
        if let Some(message) = last_error(&self.log, from) {
            return message;
        }
        let stderr = String::from_utf8_lossy(stderr);
        let stderr = stderr.trim();
        if !stderr.is_empty() {
            return stderr.to_owned();
        }
        format!("{} {step} failed ({status})", self.binary.display())
    }
}

#[derive(Deserialize)]
struct LogLine {
    level: String,
    msg: String,
}

/// The message of the last `"level":"error"` line of a runtime JSON log
/// after byte `from`.
pub(crate) fn last_error(log: &Path, from: u64) -> Option<String> {
    let mut file = std::fs::File::open(log).ok()?;
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut text = Vec::new();
    file.take(1024 * 1024).read_to_end(&mut text).ok()?;
    text.split(|&b| b == b'\n')
        .rev()
        .filter_map(|line| serde_json::from_slice::<LogLine>(line).ok())
        .find(|line| line.level == "error")
        .map(|line| line.msg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_last_error_after_the_offset_wins() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("runc.log");
        let old = "{\"level\":\"error\",\"msg\":\"old\",\"time\":\"t\"}\n";
        std::fs::write(
            &log,
            format!(
                "{old}{{\"level\":\"warning\",\"msg\":\"w\"}}\nnot json\n\
                 {{\"level\":\"error\",\"msg\":\"exec: \\\"x\\\": not found\"}}\n"
            ),
        )
        .unwrap();
        assert_eq!(
            last_error(&log, 0).as_deref(),
            Some("exec: \"x\": not found")
        );
        let all = std::fs::metadata(&log).unwrap().len();
        assert_eq!(last_error(&log, all), None);
        std::fs::write(&log, old).unwrap();
        assert_eq!(last_error(&log, 0).as_deref(), Some("old"));
        assert_eq!(last_error(&dir.path().join("none"), 0), None);
    }
}
