//! `servin stats`.

use std::time::{Duration, Instant};

use servin::client::stats::{StatsRow, row};

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Show containers' resource use
///
/// A table of CPU %, memory use and limit, memory %, network and block
/// I/O, and process count per container, like `docker stats`, refreshed
/// every second (in place on a terminal) until interrupted. CPU % is the
/// container's share of the host's CPU time since the previous sample,
/// times the number of CPUs (so 200% is two busy CPUs); memory leaves out
/// the inactive page cache.
///
/// Without containers, shows every running container (every container with
/// `-a`), following containers that start and stop. Takes `--format json`:
/// one JSON object per container and sample, with docker's keys.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show stopped containers too (with zero figures)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Print one sample and exit
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Containers, by name or ID [default: every running container]
    pub containers: Vec<String>,
}

const HEADER: [&str; 8] = [
    "CONTAINER ID",
    "NAME",
    "CPU %",
    "MEM USAGE / LIMIT",
    "MEM %",
    "NET I/O",
    "BLOCK I/O",
    "PIDS",
];

fn cells(r: &StatsRow) -> [String; 8] {
    [
        r.container.clone(),
        r.name.clone(),
        r.cpu_perc.clone(),
        r.mem_usage.clone(),
        r.mem_perc.clone(),
        r.net_i_o.clone(),
        r.block_i_o.clone(),
        r.pids.clone(),
    ]
}

/// One sample of the containers asked for (or of every running one); a
/// named container that fails is an error, a listed one that went in the
/// meantime is left out.
fn sample(engine: &servin::client::Engine, args: &Args) -> Result<Vec<StatsRow>, Failed> {
    let named = !args.containers.is_empty();
    let ids: Vec<String> = if named {
        args.containers.clone()
    } else {
        engine
            .containers(args.all)?
            .into_iter()
            .filter_map(|c| c.id)
            .collect()
    };
    let mut rows = Vec::new();
    for result in engine.stats_once(&ids) {
        match result {
            Ok(v) => rows.push(row(&v)),
            Err(e) if named => return Err(e.into()),
            Err(_) => {}
        }
    }
    Ok(rows)
}

fn print(rows: &[StatsRow], format: Format, live: bool) -> Result<(), Failed> {
    if format == Format::Json {
        for r in rows {
            ui::data(&serde_json::to_string(r)?)?;
        }
        return Ok(());
    }
    let mut table = vec![HEADER.map(String::from)];
    table.extend(rows.iter().map(cells));
    if live {
        ui::screen(&ui::table_text(&table))
    } else {
        ui::table(&table)
    }
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let live = !args.no_stream && format == Format::Text && ui::stdout_is_terminal();
    if live {
        ui::clear_screen()?;
    }
    loop {
        let began = Instant::now();
        let rows = sample(&engine, args)?;
        print(&rows, format, live)?;
        if args.no_stream {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(began.elapsed()));
    }
}
