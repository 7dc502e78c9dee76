//! `servin volume`: create, ls, rm, inspect, prune.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};

use super::info::human_size;
use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Manage volumes
///
/// Volumes keep data apart from containers: a container mounts one with
/// `-v NAME:/path` (made on the way when missing) and the data outlives the
/// container. An empty volume gets the image's content at the mount path
/// on its first mount. A volume in use by a container, running or stopped,
/// cannot be removed.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: VolumeCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum VolumeCommand {
    Create(CreateArgs),
    #[command(alias = "list")]
    Ls(LsArgs),
    #[command(alias = "remove")]
    Rm(RmArgs),
    Inspect(InspectArgs),
    Prune(PruneArgs),
}

/// Create a volume
///
/// Prints the volume's name. Without NAME the volume gets a random one.
/// Creating a volume that exists is no error. Names are letters, digits
/// and `_.-`, starting with a letter or digit.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The volume's name [default: a random one]
    pub name: Option<String>,
    /// Set a label (`KEY=VALUE`, or `KEY` for an empty value); repeat for
    /// more
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Set a driver option of the local driver: `type`, `device` and `o`
    /// as for mount(8), e.g. `--opt type=tmpfs --opt device=tmpfs --opt
    /// o=size=64m`; repeat for more
    #[arg(short, long = "opt", value_name = "KEY=VALUE")]
    pub opts: Vec<String>,
    /// The volume driver; servin has `local` only
    #[arg(short, long, default_value = "local")]
    pub driver: String,
}

/// List volumes
///
/// A table of driver and name, like `docker volume ls`. Takes
/// `--format json` (the Docker API's volume objects).
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Print only the names
    #[arg(short, long)]
    pub quiet: bool,
    /// Keep volumes matching a filter: `name=PART`, `label=KEY[=VALUE]`,
    /// `label!=KEY`, `dangling=true|false` (used by no container),
    /// `driver=local`; repeat for more
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
}

/// Remove volumes
///
/// Refused for a volume a container uses, running or stopped: remove the
/// container first.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Volumes, by name
    #[arg(required = true)]
    pub volumes: Vec<String>,
    /// No error for a volume that does not exist
    #[arg(short, long)]
    pub force: bool,
}

/// Show volumes' details as JSON
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Volumes, by name
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

/// Remove unused volumes
///
/// Without `-a`, removes only anonymous volumes no container uses (those
/// made for `-v /path`); with `-a`, every volume no container uses.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove named volumes too
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Keep only volumes matching a filter: `label=KEY[=VALUE]`,
    /// `label!=KEY`; repeat for more
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
}

fn key_value(flag: &str, v: &str) -> Result<(String, String), Failed> {
    match v.split_once('=') {
        Some(("", _)) => Err(Failed::Usage(format!(
            "invalid {flag} {v:?}: want KEY=VALUE"
        ))),
        Some((k, val)) => Ok((k.to_string(), val.to_string())),
        None if v.is_empty() => Err(Failed::Usage(format!(
            "invalid {flag} {v:?}: want KEY=VALUE"
        ))),
        None => Ok((v.to_string(), String::new())),
    }
}

/// `label!=x` splits at `!=`; every other filter at `=`.
fn filters(values: &[String]) -> Result<Vec<(String, String)>, Failed> {
    values
        .iter()
        .map(|v| {
            if let Some((k, val)) = v.split_once("!=") {
                return Ok((format!("{k}!"), val.to_string()));
            }
            match v.split_once('=') {
                Some((k, val)) if !k.is_empty() => Ok((k.to_string(), val.to_string())),
                _ => Err(Failed::Usage(format!(
                    "invalid --filter {v:?}: want KEY=VALUE, e.g. label=app=web"
                ))),
            }
        })
        .collect()
}

/// Asks on the terminal; without one, asks for `-f`.
pub(super) fn confirm(question: &str) -> Result<bool, Failed> {
    confirm_for("prune", question)
}

/// As [`confirm`], for `command` (named when there is no terminal).
pub(super) fn confirm_for(command: &str, question: &str) -> Result<bool, Failed> {
    if !std::io::stdin().is_terminal() {
        return Err(Failed::Usage(format!(
            "{command} asks for confirmation and there is no terminal: pass -f"
        )));
    }
    let mut err = std::io::stderr().lock();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    match &args.command {
        VolumeCommand::Create(a) => {
            cli.format(&[Format::Text, Format::Json], Format::Text)?;
            let labels: HashMap<String, String> = a
                .labels
                .iter()
                .map(|l| key_value("--label", l))
                .collect::<Result<_, _>>()?;
            let opts: HashMap<String, String> = a
                .opts
                .iter()
                .map(|o| key_value("--opt", o))
                .collect::<Result<_, _>>()?;
            let engine = servin::client::Engine::connect()?;
            let v = engine.create_volume(a.name.as_deref(), labels, opts, Some(&a.driver))?;
            if cli.format == Some(Format::Json) {
                return ui::data(&serde_json::to_string_pretty(&v)?);
            }
            ui::data(&v.name)
        }
        VolumeCommand::Ls(a) => {
            let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
            let filters = filters(&a.filters)?;
            let engine = servin::client::Engine::connect()?;
            let list = engine.volumes(&filters)?;
            if format == Format::Json {
                return ui::data(&serde_json::to_string_pretty(&list)?);
            }
            if a.quiet {
                if list.is_empty() {
                    return Ok(());
                }
                let names: Vec<&str> = list.iter().map(|v| v.name.as_str()).collect();
                return ui::data(&names.join("\n"));
            }
            let mut rows = vec![["DRIVER", "VOLUME NAME"].map(String::from)];
            for v in &list {
                rows.push([v.driver.clone(), v.name.clone()]);
            }
            ui::table(&rows)
        }
        VolumeCommand::Rm(a) => {
            cli.format(&[Format::Text], Format::Text)?;
            let engine = servin::client::Engine::connect()?;
            ui::each(&a.volumes, |name| {
                engine.remove_volume(name, a.force)?;
                ui::data(name)
            })
        }
        VolumeCommand::Inspect(a) => {
            cli.format(&[Format::Json], Format::Json)?;
            let engine = servin::client::Engine::connect()?;
            let mut out = Vec::new();
            let found = ui::each(&a.volumes, |name| {
                out.push(engine.inspect_volume(name)?);
                Ok(())
            });
            ui::data(&serde_json::to_string_pretty(&out)?)?;
            found
        }
        VolumeCommand::Prune(a) => {
            cli.format(&[Format::Text], Format::Text)?;
            let filters = filters(&a.filters)?;
            let what = if a.all {
                "every volume no container uses"
            } else {
                "the anonymous volumes no container uses"
            };
            if !a.force && !confirm(&format!("This removes {what}. Go on?"))? {
                return Ok(());
            }
            let engine = servin::client::Engine::connect()?;
            let r = engine.prune_volumes(a.all, &filters)?;
            let deleted = r.volumes_deleted.unwrap_or_default();
            if !deleted.is_empty() {
                ui::data(&format!("Deleted Volumes:\n{}\n", deleted.join("\n")))?;
            }
            ui::data(&format!(
                "Total reclaimed space: {}",
                human_size(r.space_reclaimed.unwrap_or(0))
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn filters_and_labels_parse_like_docker() {
        let f = filters(&[
            "label=app=web".to_string(),
            "label!=tier".to_string(),
            "dangling=true".to_string(),
        ])
        .unwrap();
        assert_eq!(
            f,
            [
                ("label".to_string(), "app=web".to_string()),
                ("label!".to_string(), "tier".to_string()),
                ("dangling".to_string(), "true".to_string()),
            ]
        );
        assert!(filters(&["nonsense".to_string()]).is_err());
        assert_eq!(
            key_value("--label", "k").unwrap(),
            ("k".to_string(), String::new())
        );
        assert!(key_value("--label", "=v").is_err());
    }
}
