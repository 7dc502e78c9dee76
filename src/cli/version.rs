//! `servin version`.

use serde::Serialize;

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Show servin's version
///
/// Prints the version and the platform servin was built for, and the mode
/// and version of the engine when one answers (it does not start one).
/// Takes `--format json`.
#[derive(Debug, clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Version {
    version: &'static str,
    os: &'static str,
    arch: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<EngineVersion>,
}

#[derive(Serialize)]
struct EngineVersion {
    address: String,
    mode: String,
    version: String,
}

fn engine() -> Option<EngineVersion> {
    let engine = servin::client::Engine::running()?;
    let info = engine.servin_info().ok()?;
    let field = |k: &str| {
        info.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .to_string()
    };
    // The mode is the host's choice: the engine in the VM cannot tell.
    let mode =
        servin::vm::Mode::from_env().map_or_else(|_| field("mode"), |m| m.as_str().to_string());
    Some(EngineVersion {
        address: engine.address().to_string(),
        mode,
        version: field("version"),
    })
}

pub fn run(cli: &Cli, _args: &Args) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let v = Version {
        version: env!("CARGO_PKG_VERSION"),
        os: std::env::consts::OS,
        arch: std::env::consts::ARCH,
        engine: engine(),
    };
    match format {
        Format::Json => ui::data(&serde_json::to_string_pretty(&v)?),
        _ => {
            ui::data(&format!("servin {} ({}/{})", v.version, v.os, v.arch))?;
            match &v.engine {
                Some(e) => ui::data(&format!("engine {} ({}, {})", e.version, e.mode, e.address)),
                None => ui::data("engine not running"),
            }
        }
    }
}
