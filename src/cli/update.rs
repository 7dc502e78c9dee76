//! `servin update`.

use bollard_stubs::models::ContainerUpdateBody;
use servin::project::values::{misc, size};

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Change containers' resource limits and restart policy
///
/// A running container gets the new limits at once (in its cgroup); every
/// container keeps them in its record, so `servin inspect` shows them and
/// the next start uses them. Limits not given stay as they are. Prints
/// each container as given.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Memory limit, e.g. `256m`, `1g` (at least 6m)
    #[arg(short = 'm', long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Memory plus swap limit (`-1` for no limit); needed when the new
    /// memory limit is above the current one of memory plus swap
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU limit, e.g. `0.5` or `2`
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<String>,
    /// Relative CPU weight against other containers (1024 is the usual)
    #[arg(short = 'c', long = "cpu-shares", value_name = "N")]
    pub cpu_shares: Option<i64>,
    /// Most processes the container may have (`0` or `-1` for no limit)
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy: no, on-failure[:RETRIES], always or unless-stopped
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,
    /// Containers, by name or ID
    #[arg(required = true)]
    pub containers: Vec<String>,
}

fn usage(msg: String) -> Failed {
    Failed::Usage(msg)
}

fn bytes(flag: &str, v: &str) -> Result<i64, Failed> {
    let n = size::parse_size(v).map_err(|e| usage(format!("invalid {flag} {v:?}: {e}")))?;
    i64::try_from(n).map_err(|_| usage(format!("invalid {flag} {v:?}: too large")))
}

/// The update body the flags ask for.
fn body(args: &Args) -> Result<ContainerUpdateBody, Failed> {
    let mut b = ContainerUpdateBody {
        memory: args
            .memory
            .as_deref()
            .map(|m| bytes("--memory", m))
            .transpose()?,
        memory_swap: match args.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            Some(s) => Some(bytes("--memory-swap", s)?),
            None => None,
        },
        cpu_shares: args.cpu_shares,
        pids_limit: args.pids_limit,
        ..Default::default()
    };
    if let Some(c) = args.cpus.as_deref() {
        let n: f64 = c
            .parse()
            .map_err(|_| usage(format!("invalid --cpus {c:?}: want a number like 0.5 or 2")))?;
        let n = misc::parse_cpus(n).map_err(|e| usage(format!("invalid --cpus: {e}")))?;
        b.nano_cpus = Some((n * 1e9).round() as i64);
    }
    if let Some(r) = args.restart.as_deref() {
        let policy =
            misc::parse_restart(r).map_err(|e| usage(format!("invalid --restart: {e}")))?;
        b.restart_policy = Some(servin::project::container_body::restart_policy(policy));
    }
    if b == ContainerUpdateBody::default() {
        return Err(usage(
            "nothing to update: give at least one of --memory, --memory-swap, --cpus, --cpu-shares, --pids-limit, --restart".to_string(),
        ));
    }
    Ok(b)
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let body = body(args)?;
    let engine = servin::client::Engine::connect()?;
    ui::each(&args.containers, |c| {
        for w in engine.update_container(c, &body)? {
            ui::warning(&w);
        }
        ui::data(c)
    })
}
