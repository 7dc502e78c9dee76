//! `servin plan`: what `up` would do, without doing it.

use servin::project::desired::{DesiredOptions, desired};

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Show what `up` would change, changing nothing
///
/// Loads the project, sends its desired state to the engine and prints the
/// plan: one row per container with its action and the reason. `create`:
/// the container is missing; `recreate`: its configuration changed (the
/// changed fields are named) or a network or volume it uses is replaced;
/// `start`: it is stopped; `keep`: it is up to date; `remove`: the project
/// no longer wants it (a service gone from the file, a replica beyond
/// `replicas`, a leftover of an interrupted `up`). Then one row per
/// network, volume and image that `up` would change: `create`, `recreate`
/// (with `--recreate-volumes`), `pull`, `remove` (a network the file no
/// longer names), or `refuse` with the reason `up` would fail. Takes
/// `--format json` (the plan as the engine returns it).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub project: super::ProjectArgs,
    /// Include the containers of this profile (repeat for more)
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Plan as `up --recreate-volumes` would: replace a volume or network
    /// whose definition changed, with the containers using it
    #[arg(long)]
    pub recreate_volumes: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let loaded = cli.load_project()?;
    let engine = servin::client::Engine::connect()?;
    let mut image_digests = super::lock::read(&loaded)?;
    let builds = super::build::plan_builds(&engine, &loaded, &args.profiles, &mut image_digests)?;
    let options = DesiredOptions {
        profiles: args.profiles.clone(),
        image_digests,
        ..Default::default()
    };
    let desired = desired(&loaded.project, &options).map_err(|e| Failed::Error(Box::new(e)))?;
    let mut plan = engine.plan_project(&desired, &[], args.recreate_volumes)?;
    super::build::add_builds(&mut plan, &desired, &builds);
    print(&plan, format)
}

/// Prints a plan as a table, or as JSON.
pub fn print(plan: &servin_proto::Plan, format: Format) -> Result<(), Failed> {
    if format == Format::Json {
        return ui::data(&serde_json::to_string_pretty(plan)?);
    }
    if plan.actions.is_empty() {
        ui::info(&format!("project {} has no containers", plan.project));
    } else {
        let mut rows = vec![["ACTION", "CONTAINER", "SERVICE", "REASON"].map(String::from)];
        for a in &plan.actions {
            rows.push([
                a.kind.as_str().to_string(),
                a.name.clone(),
                a.service.clone().unwrap_or_else(|| "-".to_string()),
                a.reason.clone(),
            ]);
        }
        ui::table(&rows)?;
    }
    // Networks, volumes and images: only what `up` would change (or
    // refuse), as kept ones say nothing.
    let changes: Vec<&servin_proto::Action> = plan
        .resources
        .iter()
        .filter(|a| a.kind != servin_proto::ActionKind::Keep)
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    let mut rows = vec![["ACTION", "OBJECT", "NAME", "REASON"].map(String::from)];
    for a in changes {
        rows.push([
            a.kind.as_str().to_string(),
            a.object.as_str().to_string(),
            a.name.clone(),
            a.reason.clone(),
        ]);
    }
    if !plan.actions.is_empty() {
        ui::data("")?;
    }
    ui::table(&rows)
}
