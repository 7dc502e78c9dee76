//! `servin completions SHELL`.

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, Format};
use crate::ui::Failed;

/// Print a shell completion script
///
/// For example: `servin completions bash > /etc/bash_completion.d/servin`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell: bash, elvish, fish, powershell or zsh
    shell: Shell,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "servin", &mut std::io::stdout());
    Ok(())
}
