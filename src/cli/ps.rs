//! `servin ps`.

use bollard_stubs::models::PortSummary;
use servin_proto::labels;

use super::images::ago;
use super::{Cli, Format};
use crate::ui::{self, Failed};

/// List containers
///
/// A table of running containers (all with `-a`): ID, image, command,
/// creation time, status (with the health: `Up 2 minutes (healthy)`),
/// ports and name, like `docker ps`. Takes `--format json` (the Docker API's
/// container summaries).
///
/// In a project folder (or with `-f` / `-p` before the command), lists only
/// the project's containers, in service and replica order, with a SERVICE
/// column; `--global` lists every container there too.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// List every container, not only the project's, in a project folder
    #[arg(long)]
    pub global: bool,
    /// Show stopped containers too
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Print only the IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let cut: String = s.chars().take(n.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// The PORTS column, as `docker ps` writes it: `127.0.0.1:8080->80/tcp`
/// for a published port, `9000/udp` for one only exposed.
pub fn ports_text(ports: &[PortSummary]) -> String {
    let mut items: Vec<(u16, String, String)> = ports
        .iter()
        .map(|p| {
            let proto = p.typ.map(|t| t.to_string()).unwrap_or_default();
            let text = match (&p.ip, p.public_port) {
                (Some(ip), Some(public)) => {
                    let ip = if ip.contains(':') {
                        format!("[{ip}]")
                    } else {
                        ip.clone()
                    };
                    format!("{ip}:{public}->{}/{proto}", p.private_port)
                }
                _ => format!("{}/{proto}", p.private_port),
            };
            (p.private_port, proto, text)
        })
        .collect();
    items.sort();
    items.dedup();
    items
        .into_iter()
        .map(|(_, _, t)| t)
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let mut list = engine.containers(args.all)?;
    let project = if args.global {
        None
    } else {
        super::services::context(cli).map(|(name, _)| name)
    };
    let label = |c: &bollard_stubs::models::ContainerSummary, key: &str| {
        c.labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default()
    };
    if let Some(p) = &project {
        list.retain(|c| label(c, labels::PROJECT) == *p);
        list.sort_by_key(|c| {
            (
                label(c, labels::NAME),
                label(c, labels::REPLICA).parse::<u32>().unwrap_or(0),
            )
        });
    }
    if format == Format::Json {
        return ui::data(&serde_json::to_string_pretty(&list)?);
    }
    if args.quiet {
        let ids: Vec<String> = list
            .iter()
            .filter_map(|c| c.id.as_ref().map(|i| i.chars().take(12).collect()))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        return ui::data(&ids.join("\n"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut rows = vec![
        [
            "CONTAINER ID",
            "SERVICE",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ]
        .map(String::from),
    ];
    for c in &list {
        let id: String = c.id.clone().unwrap_or_default().chars().take(12).collect();
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default();
        let created = ago(
            now,
            c.created.and_then(|t| u64::try_from(t).ok()).unwrap_or(0),
        );
        rows.push([
            id,
            label(c, labels::NAME),
            c.image.clone().unwrap_or_default(),
            format!(
                "\"{}\"",
                shorten(&c.command.clone().unwrap_or_default(), 20)
            ),
            created,
            c.status.clone().unwrap_or_default(),
            ports_text(c.ports.as_deref().unwrap_or_default()),
            name,
        ]);
    }
    if project.is_none() {
        // Outside a project the SERVICE column is left out.
        let rows: Vec<[String; 7]> = rows
            .into_iter()
            .map(|[id, _, image, command, created, status, ports, name]| {
                [id, image, command, created, status, ports, name]
            })
            .collect();
        return ui::table(&rows);
    }
    ui::table(&rows)
}
