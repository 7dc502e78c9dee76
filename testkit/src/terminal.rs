//! Running a shell line on a terminal of its own, with `script(1)`, for the
//! tests of what `-t` and `-it` do (a pipe is not a terminal).

use std::process::{Command, Stdio};

/// A command running `line` under `sh` on a new pseudo-terminal: `script
/// -qec line /dev/null`, bounded to 120 s by `timeout` so that a program
/// left waiting for input cannot hang the test run. Its exit code is the
/// line's; what the line wrote to the terminal comes out on stdout (with
/// `\r\n` line ends).
pub fn on_a_terminal(line: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["120", "script", "-qec", line, "/dev/null"])
        .stdin(Stdio::null());
    cmd
}
