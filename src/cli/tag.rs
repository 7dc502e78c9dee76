//! `servin tag`.

use super::{Cli, Format};
use crate::ui::Failed;

/// Give an image another name
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image, by name or id
    pub source: String,
    /// The new name, `[registry/]repository[:tag]`
    pub target: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    Ok(engine.tag(&args.source, &args.target)?)
}
