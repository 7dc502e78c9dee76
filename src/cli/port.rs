//! `servin port`.

use super::Cli;
use crate::ui::{self, Failed};

/// List a container's published ports
///
/// One line per host socket, `CONTAINER_PORT/PROTO -> HOST_IP:HOST_PORT`,
/// like `docker port`; with a port (`80` or `80/tcp`), only where that one
/// is published. Ports are published while the container runs.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container's name or ID
    pub container: String,
    /// Only this container port, `PORT[/tcp|udp]`
    pub port: Option<String>,
}

pub fn run(_cli: &Cli, args: &Args) -> Result<(), Failed> {
    let engine = servin::client::Engine::connect()?;
    let c = engine.inspect_container(&args.container)?;
    let wanted = args.port.as_deref().map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let map = c.network_settings.and_then(|n| n.ports).unwrap_or_default();
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| {
        let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), ""));
        (port.parse::<u32>().unwrap_or(u32::MAX), proto.to_string())
    });
    let mut lines = Vec::new();
    for key in keys {
        if wanted.as_ref().is_some_and(|w| w != key) {
            continue;
        }
        for b in map.get(key).and_then(Option::as_ref).into_iter().flatten() {
            let ip = b.host_ip.clone().unwrap_or_default();
            let ip = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip
            };
            lines.push(format!(
                "{key} -> {ip}:{}",
                b.host_port.clone().unwrap_or_default()
            ));
        }
    }
    if lines.is_empty() {
        if let Some(w) = wanted {
            return Err(Failed::Error(
                format!("no public port {w} published for {}", args.container).into(),
            ));
        }
        return Ok(());
    }
    ui::data(&lines.join("\n"))
}
