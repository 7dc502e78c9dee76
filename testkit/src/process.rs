//! Running a command with something on its stdin, as a user pipes into
//! `docker run -i`, `servin run -i` or `servin login --password-stdin`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `cmd` with `input` on its stdin (closed after it, so the command
/// sees the end of its input) and returns what it did, stdout and stderr
/// captured.
pub fn with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Dropping the handle closes the pipe: the end of the input.
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}
