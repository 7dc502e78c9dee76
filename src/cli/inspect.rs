//! `servin inspect`.

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Show containers' full details as JSON
///
/// Prints a JSON array with one object per container, in the Docker API's
/// form (`State`, `Config`, `HostConfig`, `GraphDriver`...), as
/// `docker inspect` does. Images have `servin image inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Containers, by name or ID
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Json], Format::Json)?;
    let engine = servin::client::Engine::connect()?;
    let mut out = Vec::new();
    let found = ui::each(&args.containers, |c| {
        out.push(engine.inspect_container(c)?);
        Ok(())
    });
    ui::data(&serde_json::to_string_pretty(&out)?)?;
    found
}
