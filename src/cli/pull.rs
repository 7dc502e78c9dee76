//! `servin pull`.

use super::progress::Progress;
use super::{Cli, Format};
use crate::ui::Failed;

/// Pull an image from a registry
///
/// Shows one progress bar per layer (plain lines when stderr is not a
/// terminal). Credentials for the image's registry come from `servin login`
/// (`~/.servin/auth.json`), else `~/.docker/config.json`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image, e.g. `busybox:1.36` or `registry.example:5000/team/app:dev`
    pub image: String,
    /// The platform to pull from a multi-platform image (`os/arch[/variant]`)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Print only the image name when done
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let mut progress = Progress::new(args.quiet);
    let result = engine.pull(&args.image, args.platform.as_deref(), |e| progress.event(e));
    progress.finish();
    result?;
    if args.quiet {
        crate::ui::data(&args.image)?;
    }
    Ok(())
}
