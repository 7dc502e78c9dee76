//! `servin rmi`.

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Remove images
///
/// Removes each name (untagging it; the image goes when its last name does).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Images, by name or id
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove even when the image has several names; an image a container
    /// uses is only untagged
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    ui::each(&args.images, |image| {
        for item in engine.remove(image, args.force)? {
            if let Some(t) = item.untagged {
                ui::data(&format!("Untagged: {t}"))?;
            }
            if let Some(d) = item.deleted {
                ui::data(&format!("Deleted: {d}"))?;
            }
        }
        Ok(())
    })
}
