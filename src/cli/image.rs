//! `servin image`: prune, import, export, inspect.

use std::path::PathBuf;

use super::info::human_size;
use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Manage images
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    Prune(PruneArgs),
    Import(ImportArgs),
    Export(ExportArgs),
    Inspect(InspectArgs),
}

/// Remove unused images
///
/// Without `-a`, removes only dangling images (no name left).
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove every image no container uses, named or not
    #[arg(short, long)]
    pub all: bool,
}

/// Load images from a tar file
///
/// Takes an OCI image layout tar or a `docker save` tar.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The tar file
    #[arg(value_name = "FILE")]
    pub archive: PathBuf,
}

/// Write images to a tar file
///
/// Writes a tar that `servin image import` and `docker load` read.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Images, by name or id
    #[arg(required = true)]
    pub images: Vec<String>,
    /// The file to write
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// Show images' details as JSON
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Images, by name or id
    #[arg(required = true)]
    pub images: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    match &args.command {
        ImageCommand::Prune(a) => {
            cli.format(&[Format::Text], Format::Text)?;
            let engine = servin::client::Engine::connect()?;
            let r = engine.prune(a.all)?;
            for item in r.images_deleted.unwrap_or_default() {
                if let Some(t) = item.untagged {
                    ui::data(&format!("Untagged: {t}"))?;
                }
                if let Some(d) = item.deleted {
                    ui::data(&format!("Deleted: {d}"))?;
                }
            }
            ui::data(&format!(
                "Total reclaimed space: {}",
                human_size(r.space_reclaimed.unwrap_or(0))
            ))
        }
        ImageCommand::Import(a) => {
            cli.format(&[Format::Text], Format::Text)?;
            let engine = servin::client::Engine::connect()?;
            for line in engine.load(&a.archive)? {
                ui::data(&line)?;
            }
            Ok(())
        }
        ImageCommand::Export(a) => {
            cli.format(&[Format::Text], Format::Text)?;
            let engine = servin::client::Engine::connect()?;
            engine.export(&a.images, &a.output)?;
            ui::info(&format!("wrote {}", ui::shown(&a.output)));
            Ok(())
        }
        ImageCommand::Inspect(a) => {
            cli.format(&[Format::Json], Format::Json)?;
            let engine = servin::client::Engine::connect()?;
            let mut out = Vec::new();
            for image in &a.images {
                out.push(engine.inspect(image)?);
            }
            ui::data(&serde_json::to_string_pretty(&out)?)
        }
    }
}
