//! `servin pause` and `servin unpause`.

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Freeze every process of running containers
///
/// Uses the cgroup freezer: the processes stay in memory and take no CPU
/// until `servin unpause`. A paused container still counts as running;
/// `servin stop` and `servin kill` unpause it so it gets the signal. Prints
/// each container as given.
#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    /// Containers, by name or ID
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Thaw paused containers
///
/// Prints each container as given.
#[derive(Debug, clap::Args)]
pub struct UnpauseArgs {
    /// Containers, by name or ID
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn pause(cli: &Cli, args: &PauseArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    ui::each(&args.containers, |c| {
        engine.pause_container(c)?;
        ui::data(c)
    })
}

pub fn unpause(cli: &Cli, args: &UnpauseArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    ui::each(&args.containers, |c| {
        engine.unpause_container(c)?;
        ui::data(c)
    })
}
