//! `servin network`: create, ls, rm, inspect, connect, disconnect, prune.

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Manage networks
///
/// A network is a bridge with a subnet of its own: containers on one
/// network reach each other, containers on different networks do not.
/// Containers join the default `bridge` network unless given `--network`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: NetworkCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum NetworkCommand {
    Create(CreateArgs),
    #[command(alias = "list")]
    Ls(LsArgs),
    #[command(alias = "remove")]
    Rm(RmArgs),
    Inspect(InspectArgs),
    Connect(ConnectArgs),
    Disconnect(DisconnectArgs),
    Prune(PruneArgs),
}

/// Create a network
///
/// Takes the first free /24 of the engine's pool (10.89.0.0/16 unless
/// SERVIN_SUBNET_POOL says otherwise) that no route on the host uses, or
/// the subnet given.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Its subnet, e.g. `10.90.1.0/24`
    #[arg(long, value_name = "CIDR")]
    pub subnet: Option<String>,
    /// The gateway address inside the subnet [default: its first address]
    #[arg(long, value_name = "IP")]
    pub gateway: Option<String>,
    /// No traffic out of the network (containers reach each other only)
    #[arg(long)]
    pub internal: bool,
    /// Set a label (`KEY=VALUE`); repeat for more
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// The network's name
    pub name: String,
}

/// List networks
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Print only the IDs
    #[arg(short, long)]
    pub quiet: bool,
}

/// Remove networks
///
/// A network that containers join (running or not) is not removed: the
/// error names them.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Networks, by name or ID
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// Show networks' details as JSON
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Networks, by name or ID
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// Connect a container to a network
///
/// A running container gets its new interface at once.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Another name for the container on this network; repeat for more
    #[arg(long, value_name = "NAME")]
    pub alias: Vec<String>,
    /// A fixed IPv4 address on the network
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// The network
    pub network: String,
    /// The container
    pub container: String,
}

/// Disconnect a container from a network
#[derive(Debug, clap::Args)]
pub struct DisconnectArgs {
    /// Disconnect even when the container is not running (accepted for
    /// Docker's sake; servin always may)
    #[arg(short, long)]
    pub force: bool,
    /// The network
    pub network: String,
    /// The container
    pub container: String,
}

/// Remove every network no container joins
///
/// The default `bridge` network stays.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {}

fn labels(list: &[String]) -> Result<serde_json::Map<String, serde_json::Value>, Failed> {
    let mut out = serde_json::Map::new();
    for l in list {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        if k.is_empty() {
            return Err(Failed::Usage(format!(
                "invalid --label {l:?}: want KEY=VALUE"
            )));
        }
        out.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    Ok(out)
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    match &args.command {
        NetworkCommand::Create(a) => {
            cli.format(&[Format::Text], Format::Text)?;
            let mut config = serde_json::Map::new();
            if let Some(s) = &a.subnet {
                config.insert("Subnet".into(), s.clone().into());
            }
            if let Some(g) = &a.gateway {
                config.insert("Gateway".into(), g.clone().into());
            }
            let request = serde_json::json!({
                "Name": a.name,
                "Driver": "bridge",
                "Internal": a.internal,
                "IPAM": { "Driver": "default", "Config": if config.is_empty() { vec![] } else { vec![config] } },
                "Labels": labels(&a.label)?,
            });
            let engine = servin::client::Engine::connect()?;
            let id = engine.create_network(&request)?;
            ui::data(&id)
        }
        NetworkCommand::Ls(a) => {
            let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
            let engine = servin::client::Engine::connect()?;
            let nets = engine.networks()?;
            if format == Format::Json {
                return ui::data(&serde_json::to_string_pretty(&nets)?);
            }
            if a.quiet {
                let ids: Vec<String> = nets
                    .iter()
                    .map(|n| {
                        n["Id"]
                            .as_str()
                            .unwrap_or_default()
                            .chars()
                            .take(12)
                            .collect()
                    })
                    .collect();
                return ui::data(&ids.join("\n"));
            }
            let mut rows = vec![[
                "NETWORK ID".to_string(),
                "NAME".to_string(),
                "SUBNET".to_string(),
                "INTERNAL".to_string(),
            ]];
            for n in &nets {
                rows.push([
                    n["Id"]
                        .as_str()
                        .unwrap_or_default()
                        .chars()
                        .take(12)
                        .collect(),
                    n["Name"].as_str().unwrap_or_default().to_string(),
                    n["IPAM"]["Config"][0]["Subnet"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    if n["Internal"].as_bool().unwrap_or(false) {
                        "yes"
                    } else {
                        "no"
                    }
                    .to_string(),
                ]);
            }
            ui::table(&rows)
        }
        NetworkCommand::Rm(a) => {
            cli.format(&[Format::Text], Format::Text)?;
            let engine = servin::client::Engine::connect()?;
            ui::each(&a.networks, |n| {
                engine.remove_network(n)?;
                ui::data(n)
            })
        }
        NetworkCommand::Inspect(a) => {
            cli.format(&[Format::Json], Format::Json)?;
            let engine = servin::client::Engine::connect()?;
            let mut out = Vec::new();
            for n in &a.networks {
                out.push(engine.inspect_network(n)?);
            }
            ui::data(&serde_json::to_string_pretty(&out)?)
        }
        NetworkCommand::Connect(a) => {
            cli.format(&[Format::Text], Format::Text)?;
            let engine = servin::client::Engine::connect()?;
            engine.connect_network(&a.network, &a.container, &a.alias, a.ip.as_deref())?;
            Ok(())
        }
        NetworkCommand::Disconnect(a) => {
            cli.format(&[Format::Text], Format::Text)?;
            let engine = servin::client::Engine::connect()?;
            engine.disconnect_network(&a.network, &a.container, a.force)?;
            Ok(())
        }
        NetworkCommand::Prune(_) => {
            cli.format(&[Format::Text], Format::Text)?;
            let engine = servin::client::Engine::connect()?;
            let removed = engine.prune_networks()?;
            if removed.is_empty() {
                return Ok(());
            }
            ui::data(&format!("Deleted Networks:\n{}", removed.join("\n")))
        }
    }
}
