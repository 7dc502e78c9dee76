//! `servin run` and `servin create`: make a container from flags, start it
//! and, unless detached, stay attached to it.
//!
//! - [`flags`]: the flags that describe the container ([`ContainerArgs`]).
//! - [`container`]: those flags as a [`servin::project::normal::Container`]
//!   and the create body the project path builds from one too.

mod container;
mod flags;
#[cfg(test)]
mod tests;

pub use flags::ContainerArgs;

use super::stream;
use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Run a command in a new container
///
/// Creates the container (pulling the image when it is missing), starts it,
/// and, unless `-d`, prints its output until it exits and exits with its
/// exit code. With `-t` the container gets a terminal; with `-i` this
/// terminal's input goes to it. Exit codes of servin itself: 125 when the
/// engine refuses, 126 when the command cannot be run, 127 when it is not
/// found in the image.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run in the background and print the container's ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub container: ContainerArgs,
}

/// Create a container without starting it
///
/// Takes the same flags as `run` (but `-d` and `--rm`), pulls the image when
/// it is missing, and prints the new container's ID.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub container: ContainerArgs,
}

/// Creates the container, pulling the image when the engine does not have
/// it; returns the ID.
fn create(
    engine: &servin::client::Engine,
    args: &ContainerArgs,
    auto_remove: bool,
    attached: bool,
) -> Result<String, Failed> {
    let mut body = args.body()?;
    if let Some(hc) = body.host_config.as_mut() {
        if auto_remove {
            hc.auto_remove = Some(true);
        }
        // As Docker does, a terminal attached here starts at this one's size.
        if attached && args.tty {
            hc.console_size =
                stream::size().map(|(rows, cols)| vec![usize::from(rows), usize::from(cols)]);
        }
    }
    let first = engine.create_container(args.name.as_deref(), &body);
    let created = match first {
        Err(servin::client::Error::Engine {
            status: 404,
            ref message,
            ..
        }) if message.to_ascii_lowercase().contains("no such image") => {
            ui::info(&format!("Unable to find image '{}' locally", args.image));
            let mut progress = super::progress::Progress::new(false);
            let pulled = engine.pull(&args.image, None, |e| progress.event(e));
            progress.finish();
            pulled?;
            engine.create_container(args.name.as_deref(), &body)?
        }
        other => other?,
    };
    for w in &created.warnings {
        ui::warning(w);
    }
    Ok(created.id)
}

/// Docker's exit codes for a failed start: 127 not found, 126 cannot run,
/// 125 anything else.
fn start_failure(e: &servin::client::Error) -> Failed {
    ui::error_chain(e);
    let text = e.to_string();
    let code = if text.contains("executable file not found")
        || text.contains("no such file or directory")
    {
        127
    } else if text.contains("permission denied") {
        126
    } else {
        125
    };
    Failed::Code(code)
}

pub fn run(cli: &Cli, args: &RunArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    if !args.detach {
        stream::check_tty(args.container.tty, args.container.interactive)?;
    }
    let engine = servin::client::Engine::connect()?;
    let id = match create(&engine, &args.container, args.rm, !args.detach) {
        Ok(id) => id,
        Err(Failed::Error(e)) => {
            ui::error_chain(e.as_ref());
            return Err(Failed::Code(125));
        }
        Err(other) => return Err(other),
    };
    if args.detach {
        if let Err(e) = engine.start_container(&id) {
            return Err(start_failure(&e));
        }
        return ui::data(&id);
    }
    let condition = if args.rm { "removed" } else { "next-exit" };
    let opts = stream::Attach {
        id: id.clone(),
        tty: args.container.tty,
        stdin: args.container.interactive,
        start: true,
        wait_condition: Some(condition),
    };
    match stream::attach(&engine, &opts) {
        Ok(code) => exit_with(code),
        Err(stream::AttachError::Start(e)) => Err(start_failure(&e)),
        Err(stream::AttachError::Other(e)) => Err(e.into()),
    }
}

/// Returns the container's exit code as servin's.
pub fn exit_with(code: i64) -> Result<(), Failed> {
    if code == 0 {
        Ok(())
    } else {
        Err(Failed::Code(
            u8::try_from(code.rem_euclid(256)).unwrap_or(1),
        ))
    }
}

pub fn create_cmd(cli: &Cli, args: &CreateArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let id = create(&engine, &args.container, false, false)?;
    ui::data(&id)
}
