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
/// the subnet given. With --ipv6 it has an IPv6 subnet too: the one given,
/// or a unique local /64 (fdXX:XXXX:XXXX::/64, from the network's ID).
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Its subnet, e.g. `10.90.1.0/24`; with --ipv6 an IPv6 one too, e.g.
    /// `fd00:90:1::/64` (repeat: one of each at most)
    #[arg(long, value_name = "CIDR")]
    pub subnet: Vec<String>,
    /// The gateway address inside the subnet of its family [default: the
    /// subnet's first address]; repeat for the other family
    #[arg(long, value_name = "IP")]
    pub gateway: Vec<String>,
    /// IPv6 too: containers get an IPv6 address beside their IPv4 one
    #[arg(long)]
    pub ipv6: bool,
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

/// The IPAM configs of `--subnet` and `--gateway`: one per family (an
/// address with `:` is IPv6), each gateway with the subnet of its family.
fn ipam_configs(
    subnets: &[String],
    gateways: &[String],
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, Failed> {
    // [IPv4, IPv6]
    let mut configs: [Option<serde_json::Map<String, serde_json::Value>>; 2] = [None, None];
    let family = |text: &str| usize::from(text.contains(':'));
    for s in subnets {
        let slot = &mut configs[family(s)];
        if slot.is_some() {
            return Err(Failed::Usage(format!(
                "--subnet {s}: one IPv4 and one IPv6 subnet at most"
            )));
        }
        let mut config = serde_json::Map::new();
        config.insert("Subnet".into(), s.clone().into());
        *slot = Some(config);
    }
    for g in gateways {
        let config = configs[family(g)].get_or_insert_with(serde_json::Map::new);
        if config.contains_key("Gateway") {
            return Err(Failed::Usage(format!(
                "--gateway {g}: one gateway per subnet"
            )));
        }
        config.insert("Gateway".into(), g.clone().into());
    }
    Ok(configs.into_iter().flatten().collect())
}

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
            let request = serde_json::json!({
                "Name": a.name,
                "Driver": "bridge",
                "Internal": a.internal,
                "EnableIPv6": a.ipv6,
                "IPAM": { "Driver": "default", "Config": ipam_configs(&a.subnet, &a.gateway)? },
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn texts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn subnets_and_gateways_pair_by_family() {
        let configs = ipam_configs(
            &texts(&["fd00:90:1::/64", "10.90.1.0/24"]),
            &texts(&["10.90.1.254", "fd00:90:1::fe"]),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&configs).unwrap(),
            serde_json::json!([
                {"Subnet": "10.90.1.0/24", "Gateway": "10.90.1.254"},
                {"Subnet": "fd00:90:1::/64", "Gateway": "fd00:90:1::fe"},
            ])
        );
        assert!(ipam_configs(&[], &[]).unwrap().is_empty());
        assert!(ipam_configs(&texts(&["10.1.0.0/24", "10.2.0.0/24"]), &[]).is_err());
        assert!(ipam_configs(&texts(&["10.1.0.0/24"]), &texts(&["10.1.0.9", "10.1.0.8"])).is_err());
    }
}
