//! `servin image`: prune, import, import-rootfs, export, inspect.

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
    ImportRootfs(ImportRootfsArgs),
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

/// Make an image of a root filesystem tar
///
/// What `docker import` does: the tar (plain, gzip or zstd; `-` for
/// stdin), e.g. from `servin export`, becomes a one-layer image with no
/// parent. Prints the new image's ID.
#[derive(Debug, clap::Args)]
pub struct ImportRootfsArgs {
    /// The tar file, or - for stdin
    #[arg(value_name = "FILE|-")]
    pub archive: PathBuf,
    /// Name for the image: REPO[:TAG]
    #[arg(value_name = "REPO[:TAG]")]
    pub name: Option<String>,
    /// Commit message (default: "Imported from -")
    #[arg(short, long)]
    pub message: Option<String>,
    /// Dockerfile instruction for the image's configuration: CMD,
    /// ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
    /// WORKDIR (repeatable)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
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
        ImageCommand::ImportRootfs(a) => {
            cli.format(&[Format::Text], Format::Text)?;
            let tar = if a.archive.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf)?;
                buf
            } else {
                std::fs::read(&a.archive).map_err(|source| servin::client::Error::File {
                    path: a.archive.clone(),
                    source,
                })?
            };
            let engine = servin::client::Engine::connect()?;
            let id =
                engine.import_rootfs(tar, a.name.as_deref(), a.message.as_deref(), &a.changes)?;
            ui::data(&id)
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
