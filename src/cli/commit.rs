//! `servin commit`, `servin diff` and `servin export`: a container's files
//! as a new image, as a change list, or as a tar.

use std::io::Write;
use std::path::PathBuf;

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Make an image of a container's changes
///
/// The new image is the container's image plus what the container wrote
/// (mount points, volumes and the generated /etc files left out), with the
/// container's configuration. Works on running, paused and stopped
/// containers; a running one is paused meanwhile unless `--pause=false`.
/// Prints the new image's ID.
#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// The container, by name or ID
    pub container: String,
    /// Name for the image: REPO[:TAG]
    #[arg(value_name = "REPO[:TAG]")]
    pub name: Option<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Author (e.g. "Name <email>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Dockerfile instruction for the image's configuration: CMD,
    /// ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME,
    /// WORKDIR (repeatable)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Pause the container while committing
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub pause: bool,
}

/// List the files a container changed
///
/// One line per path, sorted: `A` added, `C` changed, `D` deleted, as
/// `docker diff` prints them.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The container, by name or ID
    pub container: String,
}

/// Write a container's filesystem as a tar
///
/// The whole root as the container sees it, without the content of its
/// volumes, binds, /proc or /sys. To stdout unless `-o`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The container, by name or ID
    pub container: String,
    /// The file to write (default: stdout)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn commit(cli: &Cli, args: &CommitArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let id = engine.commit_container(
        &args.container,
        &servin::client::commit::CommitOptions {
            name: args.name.clone(),
            message: args.message.clone(),
            author: args.author.clone(),
            changes: args.changes.clone(),
            pause: args.pause,
        },
    )?;
    ui::data(&id)
}

pub fn diff(cli: &Cli, args: &DiffArgs) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let changes = engine.container_changes(&args.container)?;
    if format == Format::Json {
        let list: Vec<serde_json::Value> = changes
            .iter()
            .map(|c| serde_json::json!({"Path": c.path, "Kind": c.kind}))
            .collect();
        return ui::data(&serde_json::to_string_pretty(&list)?);
    }
    for c in changes {
        ui::data(&format!("{} {}", c.letter(), c.path))?;
    }
    Ok(())
}

pub fn export(cli: &Cli, args: &ExportArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    match &args.output {
        Some(file) => {
            engine.export_container_to(&args.container, file)?;
            ui::info(&format!("wrote {}", ui::shown(file)));
        }
        None => {
            if ui::stdout_is_terminal() {
                return Err(Failed::Usage(
                    "refusing to write a tar to a terminal: give -o FILE or redirect stdout"
                        .to_string(),
                ));
            }
            let mut out = std::io::stdout().lock();
            engine.export_container(&args.container, &mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}
