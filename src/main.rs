//! The `servin` command.

mod cli;
mod ui;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
