//! `servin plan`: what `up` would do, without doing it.

use servin::project::desired::{DesiredOptions, desired};

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Show what `up` would change, changing nothing
///
/// Loads the project, sends its desired state to the engine and prints the
/// plan: one row per container with its action and the reason. `create`:
/// the container is missing; `recreate`: its configuration changed (the
/// changed fields are named); `start`: it is stopped; `keep`: it is up to
/// date; `remove`: the project no longer wants it (a service gone from the
/// file, a replica beyond `replicas`). Takes `--format json` (the plan as
/// the engine returns it).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub project: super::ProjectArgs,
    /// Include the containers of this profile (repeat for more)
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let loaded = cli.load_project()?;
    let options = DesiredOptions {
        profiles: args.profiles.clone(),
        image_digests: super::lock::read(&loaded)?,
    };
    let desired = desired(&loaded.project, &options).map_err(|e| Failed::Error(Box::new(e)))?;
    let engine = servin::client::Engine::connect()?;
    let plan = engine.plan_project(&desired)?;
    print(&plan, format)
}

/// Prints a plan as a table, or as JSON.
pub fn print(plan: &servin_proto::Plan, format: Format) -> Result<(), Failed> {
    if format == Format::Json {
        return ui::data(&serde_json::to_string_pretty(plan)?);
    }
    if plan.actions.is_empty() {
        ui::info(&format!("project {} has no containers", plan.project));
        return Ok(());
    }
    let mut rows = vec![["ACTION", "CONTAINER", "SERVICE", "REASON"].map(String::from)];
    for a in &plan.actions {
        rows.push([
            a.kind.as_str().to_string(),
            a.name.clone(),
            a.service.clone().unwrap_or_else(|| "-".to_string()),
            a.reason.clone(),
        ]);
    }
    ui::table(&rows)
}
