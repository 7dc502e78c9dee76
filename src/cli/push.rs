//! `servin push`.

use super::progress::Progress;
use super::{Cli, Format};
use crate::ui::Failed;

/// Push an image to a registry
///
/// Tag it first with the registry's name (`servin tag app localhost:5000/app`).
/// Credentials come from `servin login`, else `~/.docker/config.json`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image, e.g. `registry.example:5000/team/app:dev`
    pub image: String,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let mut progress = Progress::new(args.quiet);
    let result = engine.push(&args.image, |e| progress.event(e));
    progress.finish();
    Ok(result?)
}
