//! `servin top`.

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Show the processes of a running container
///
/// Runs the host's `ps` with the given options (`-ef` by default) and
/// shows the rows of the container's processes, with host PIDs, like
/// `docker top`. Takes `--format json` (the Docker API's `Titles` and
/// `Processes`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container, by name or ID
    pub container: String,
    /// Options for ps, e.g. `-o pid,user,args` [default: -ef]
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PS OPTIONS"
    )]
    pub ps_options: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let ps_args = (!args.ps_options.is_empty()).then(|| args.ps_options.join(" "));
    let top = engine.top(&args.container, ps_args.as_deref())?;
    if format == Format::Json {
        return ui::data(&serde_json::to_string_pretty(&top)?);
    }
    let mut rows = vec![top.titles.unwrap_or_default()];
    rows.extend(top.processes.unwrap_or_default());
    ui::table(&rows)
}
