//! `servin version`.

use serde::Serialize;

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Show servin's version
///
/// Prints the version and the platform servin was built for. Takes
/// `--format json`.
#[derive(Debug, clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Version {
    version: &'static str,
    os: &'static str,
    arch: &'static str,
}

pub fn run(cli: &Cli, _args: &Args) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let v = Version {
        version: env!("CARGO_PKG_VERSION"),
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
    };
    match format {
        Format::Json => ui::data(&serde_json::to_string_pretty(&v)?),
        _ => ui::data(&format!("servin {} ({}/{})", v.version, v.os, v.arch)),
    }
}
