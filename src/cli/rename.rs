//! `servin rename`.

use super::{Cli, Format};
use crate::ui::Failed;

/// Rename a container
///
/// Works in any state, as `docker rename` does: the container keeps its ID,
/// its networks answer for the new name at once, and a rename event names
/// the old one. A name another container has is refused.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container, by name or ID
    pub container: String,
    /// Its new name (letters, digits and `_.-`, starting with a letter or
    /// digit)
    pub new_name: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    engine.rename_container(&args.container, &args.new_name)?;
    Ok(())
}
