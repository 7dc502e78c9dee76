//! `servin system df`, `servin system prune` and `servin system reset`.

use serde_json::Value;
use servin::client::stats::disk_size;

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Engine-wide views and clean-up
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: SystemCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SystemCommand {
    Df(DfArgs),
    Prune(PruneArgs),
    Reset(ResetArgs),
}

/// Remove everything servin made on this machine
///
/// Every container (running ones are killed), every image, every volume and
/// every network, the default `bridge` network too, with what they hold on
/// the host: Linux bridges, veths, nftables tables or iptables chains,
/// mounts, the DNS server's listeners. Then the engine stops and its state
/// folder (`SERVIN_ROOT`) and socket are deleted. Only this engine's
/// objects go, found from its own records: another engine on the machine
/// (another `SERVIN_ROOT`) keeps its own. An engine that is not running is
/// started to do it. Asks for confirmation first; without a terminal it
/// wants `-f`. Prints what was removed (`--format json` for the report).
#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// Remove what nothing uses
///
/// Like `docker system prune`: stopped containers, networks no container
/// joins, and dangling images (with `-a`, every image no container uses);
/// with `--volumes`, the anonymous volumes no container uses too. Asks for
/// confirmation first; without a terminal it wants `-f`. Prints what was
/// removed, then the space given back.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Remove every image no container uses, not only dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Remove the anonymous volumes no container uses too
    #[arg(long)]
    pub volumes: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// Show the disk space images, containers and volumes take
///
/// A summary per kind, like `docker system df`: how many there are, how
/// many are in use, their size, and what removing the unused ones would
/// free. Image sizes are the unpacked layers (a layer shared by images
/// counts once in the total); a container's size is its writable layer; a
/// volume's is its data. Takes `--format json` (the Docker API's answer).
#[derive(Debug, clap::Args)]
pub struct DfArgs {
    /// Show every image, container and volume (`-v`; servin's global
    /// `--verbose` is another flag)
    #[arg(short = 'v', id = "details")]
    pub details: bool,
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v[key].as_array().map_or(&[], Vec::as_slice)
}

/// `SIZE (PERCENT%)` of what is reclaimable.
fn reclaimable(part: u64, total: u64) -> String {
    let pct = if total > 0 {
        part as f64 * 100.0 / total as f64
    } else {
        0.0
    };
    format!("{} ({pct:.0}%)", disk_size(part))
}

fn summary(v: &Value) -> Vec<[String; 5]> {
    let images = list(v, "Images");
    let active_images = images.iter().filter(|i| num(&i["Containers"]) > 0).count();
    let layers = num(&v["LayersSize"]);
    let unused_images: u64 = images
        .iter()
        .filter(|i| num(&i["Containers"]) == 0)
        .map(|i| num(&i["Size"]).saturating_sub(num(&i["SharedSize"])))
        .sum();
    let containers = list(v, "Containers");
    let running = |c: &&Value| matches!(c["State"].as_str(), Some("running" | "paused"));
    let active_containers = containers.iter().filter(running).count();
    let rw: u64 = containers.iter().map(|c| num(&c["SizeRw"])).sum();
    let stopped_rw: u64 = containers
        .iter()
        .filter(|c| !running(c))
        .map(|c| num(&c["SizeRw"]))
        .sum();
    let volumes = list(v, "Volumes");
    let used = |x: &&Value| num(&x["UsageData"]["RefCount"]) > 0;
    let active_volumes = volumes.iter().filter(used).count();
    let vol_size: u64 = volumes.iter().map(|x| num(&x["UsageData"]["Size"])).sum();
    let unused_vol: u64 = volumes
        .iter()
        .filter(|x| !used(x))
        .map(|x| num(&x["UsageData"]["Size"]))
        .sum();
    vec![
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"].map(String::from),
        [
            "Images".to_string(),
            images.len().to_string(),
            active_images.to_string(),
            disk_size(layers),
            reclaimable(unused_images.min(layers), layers),
        ],
        [
            "Containers".to_string(),
            containers.len().to_string(),
            active_containers.to_string(),
            disk_size(rw),
            reclaimable(stopped_rw, rw),
        ],
        [
            "Local Volumes".to_string(),
            volumes.len().to_string(),
            active_volumes.to_string(),
            disk_size(vol_size),
            reclaimable(unused_vol, vol_size),
        ],
        [
            "Build Cache".to_string(),
            "0".to_string(),
            "0".to_string(),
            "0B".to_string(),
            "0B".to_string(),
        ],
    ]
}

fn verbose(v: &Value) -> Result<(), Failed> {
    ui::data("Images space usage:\n")?;
    let mut rows = vec![
        [
            "REPOSITORY:TAG",
            "IMAGE ID",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ]
        .map(String::from),
    ];
    for i in list(v, "Images") {
        let tags: Vec<&str> = i["RepoTags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let name = if tags.is_empty() {
            "<none>".to_string()
        } else {
            tags.join(", ")
        };
        let id = i["Id"].as_str().unwrap_or_default();
        let short: String = id.trim_start_matches("sha256:").chars().take(12).collect();
        let size = num(&i["Size"]);
        let shared = num(&i["SharedSize"]);
        rows.push([
            name,
            short,
            disk_size(size),
            disk_size(shared),
            disk_size(size.saturating_sub(shared)),
            num(&i["Containers"]).to_string(),
        ]);
    }
    ui::table(&rows)?;
    ui::data("\nContainers space usage:\n")?;
    let mut rows = vec![["CONTAINER ID", "IMAGE", "SIZE", "STATUS", "NAMES"].map(String::from)];
    for c in list(v, "Containers") {
        let id: String = c["Id"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(12)
            .collect();
        let names: Vec<&str> = c["Names"]
            .as_array()
            .map(|n| {
                n.iter()
                    .filter_map(Value::as_str)
                    .map(|n| n.trim_start_matches('/'))
                    .collect()
            })
            .unwrap_or_default();
        rows.push([
            id,
            c["Image"].as_str().unwrap_or_default().to_string(),
            disk_size(num(&c["SizeRw"])),
            c["Status"].as_str().unwrap_or_default().to_string(),
            names.join(","),
        ]);
    }
    ui::table(&rows)?;
    ui::data("\nLocal Volumes space usage:\n")?;
    let mut rows = vec![["VOLUME NAME", "LINKS", "SIZE"].map(String::from)];
    for x in list(v, "Volumes") {
        rows.push([
            x["Name"].as_str().unwrap_or_default().to_string(),
            num(&x["UsageData"]["RefCount"]).to_string(),
            disk_size(num(&x["UsageData"]["Size"])),
        ]);
    }
    ui::table(&rows)
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    match &args.command {
        SystemCommand::Df(a) => df(cli, a),
        SystemCommand::Prune(a) => prune(cli, a),
        SystemCommand::Reset(a) => reset(cli, a),
    }
}

fn reset(cli: &Cli, args: &ResetArgs) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let addr = servin::client::Address::from_env();
    let question = format!(
        "This removes every container, image, volume and network of the engine at {}, stops it and deletes {}. Go on?",
        addr,
        addr.root.display()
    );
    if !args.force && !super::volume::confirm_for("reset", &question)? {
        return Ok(());
    }
    let done = servin::client::reset::reset()?;
    if format == Format::Json {
        return ui::data(&serde_json::to_string_pretty(&done)?);
    }
    ui::data(&reset_text(&done))
}

/// The report of a reset, in sections; empty sections are left out.
fn reset_text(done: &servin::client::reset::Reset) -> String {
    let mut out = String::new();
    let mut section = |title: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            out.push_str(&format!("{title}:\n{}\n\n", lines.join("\n")));
        }
    };
    if let Some(r) = &done.engine {
        section(
            "Removed containers",
            r.containers
                .iter()
                .map(|c| {
                    let id: String = c.id.chars().take(12).collect();
                    let killed = if c.was_running { ", killed" } else { "" };
                    format!("{} ({id}{killed})", c.name)
                })
                .collect(),
        );
        section(
            "Removed images",
            r.images
                .iter()
                .map(|i| {
                    if i.tags.is_empty() {
                        i.id.clone()
                    } else {
                        format!("{} ({})", i.id, i.tags.join(", "))
                    }
                })
                .collect(),
        );
        section("Removed volumes", r.volumes.clone());
        section(
            "Removed networks",
            r.networks
                .iter()
                .map(|n| format!("{}: bridge {}, {}", n.name, n.bridge, n.firewall))
                .collect(),
        );
        section("Stopped DNS listeners", r.dns_listeners.clone());
        section("Unmounted", r.mounts.clone());
        out.push_str(&format!("Stopped the engine (pid {}).\n", r.engine_pid));
    } else {
        out.push_str("No engine was running and there was no state to remove.\n");
    }
    out.push_str(&format!(
        "Removed {} and {}.",
        done.root.display(),
        done.socket.display()
    ));
    out
}

fn prune(cli: &Cli, args: &PruneArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let mut what = vec![
        "all stopped containers",
        "all networks no container uses",
        if args.all {
            "all images no container uses"
        } else {
            "all dangling images"
        },
    ];
    if args.volumes {
        what.push("all anonymous volumes no container uses");
    }
    let question = format!("This removes {}. Go on?", what.join(", "));
    if !args.force && !super::volume::confirm(&question)? {
        return Ok(());
    }
    let engine = servin::client::Engine::connect()?;
    let mut freed: u64 = 0;
    let mut out = String::new();
    let mut section = |title: &str, names: &[String]| {
        if !names.is_empty() {
            out.push_str(&format!("{title}:\n{}\n\n", names.join("\n")));
        }
    };
    // Containers first: what they held (networks, images, volumes) is
    // unused once they are gone.
    let c = engine.prune_containers()?;
    freed += c
        .space_reclaimed
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    section(
        "Deleted Containers",
        &c.containers_deleted.unwrap_or_default(),
    );
    section("Deleted Networks", &engine.prune_networks()?);
    if args.volumes {
        let v = engine.prune_volumes(false, &[])?;
        freed += v
            .space_reclaimed
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        section("Deleted Volumes", &v.volumes_deleted.unwrap_or_default());
    }
    let i = engine.prune(args.all)?;
    freed += i
        .space_reclaimed
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0);
    let images: Vec<String> = i
        .images_deleted
        .unwrap_or_default()
        .into_iter()
        .flat_map(|d| {
            d.untagged
                .map(|t| format!("untagged: {t}"))
                .into_iter()
                .chain(d.deleted.map(|t| format!("deleted: {t}")))
        })
        .collect();
    section("Deleted Images", &images);
    out.push_str(&format!("Total reclaimed space: {}", disk_size(freed)));
    ui::data(&out)
}

fn df(cli: &Cli, args: &DfArgs) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let v = engine.disk_usage()?;
    if format == Format::Json {
        return ui::data(&serde_json::to_string_pretty(&v)?);
    }
    if args.details {
        verbose(&v)
    } else {
        ui::table(&summary(&v))
    }
}
