//! `servin config`: print the project in canonical form.

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Print the project in canonical form
///
/// Every default is filled in, variables interpolated, paths made absolute
/// and shorthands expanded. The output is itself a valid servin.toml. Takes
/// `--format toml` (the default) or `--format json`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub project: super::ProjectArgs,
}

pub fn run(cli: &Cli, _args: &Args) -> Result<(), Failed> {
    let format = cli.format(&[Format::Toml, Format::Json], Format::Toml)?;
    let loaded = cli.load_project()?;
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&loaded.project)?,
        _ => toml::to_string_pretty(&loaded.project)?,
    };
    ui::data(&text)
}
