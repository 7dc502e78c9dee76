//! `servin start`, `stop`, `restart`, `kill`, `rm` and `wait`.

use super::stream;
use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Start stopped containers
///
/// With `-a`, attaches to the (single) container's output until it exits
/// and exits with its exit code; with `-i` too, sends this terminal's input.
///
/// In a project folder (or with `-f` / `-p` before the command), services
/// are taken too: when the first argument is a service of the project, the
/// arguments are services and stand for all their containers.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Attach to the output and exit with the container's exit code
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Send this terminal's input to the container (with `-a`)
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Containers, by name or ID (or services, see above)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Stop running containers
///
/// Sends the stop signal (the container's, else SIGTERM), waits for the
/// process to exit, and sends SIGKILL after the timeout.
///
/// In a project folder (or with `-f` / `-p` before the command), services
/// are taken too: when the first argument is a service of the project, the
/// arguments are services and stand for all their containers.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL [default: the container's stop
    /// timeout, else 10]
    #[arg(short = 't', long = "time", value_name = "SECS")]
    pub time: Option<i64>,
    /// The signal to send first [default: the container's stop signal, else
    /// SIGTERM]
    #[arg(short = 's', long, value_name = "SIGNAL")]
    pub signal: Option<String>,
    /// Containers, by name or ID
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Restart containers: stop (when running), then start
///
/// In a project folder (or with `-f` / `-p` before the command), services
/// are taken too: when the first argument is a service of the project, the
/// arguments are services and stand for all their containers.
#[derive(Debug, clap::Args)]
pub struct RestartArgs {
    /// Seconds to wait for the stop before SIGKILL
    #[arg(short = 't', long = "time", value_name = "SECS")]
    pub time: Option<i64>,
    /// Containers, by name or ID
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Send a signal to running containers
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// The signal, by name (`TERM`, `SIGHUP`) or number
    #[arg(short = 's', long, value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,
    /// Containers, by name or ID
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Remove containers
///
/// A running container is refused unless `-f`, which kills it first.
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Kill running containers and remove them
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the containers' anonymous volumes too
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove every container
    #[arg(long, conflicts_with = "containers")]
    pub all: bool,
    /// Containers, by name or ID
    #[arg(required_unless_present = "all")]
    pub containers: Vec<String>,
}

/// Wait for containers to stop and print their exit codes
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Containers, by name or ID
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn start(cli: &Cli, args: &StartArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    if args.attach {
        let [one] = args.containers.as_slice() else {
            return Err(Failed::Usage("start -a takes one container".to_string()));
        };
        let info = engine.inspect_container(one)?;
        let tty = info.config.as_ref().and_then(|c| c.tty).unwrap_or(false);
        stream::check_tty(tty, args.interactive)?;
        let opts = stream::Attach {
            id: info.id.unwrap_or_else(|| one.clone()),
            tty,
            stdin: args.interactive,
            start: true,
            wait_condition: Some("next-exit"),
        };
        return match stream::attach(&engine, &opts) {
            Ok(code) => super::run::exit_with(code),
            Err(stream::AttachError::Start(e) | stream::AttachError::Other(e)) => Err(e.into()),
        };
    }
    let containers = super::services::expand(cli, &engine, &args.containers)?;
    ui::each(&containers, |c| {
        engine.start_container(c)?;
        ui::data(c)
    })
}

pub fn stop(cli: &Cli, args: &StopArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let containers = super::services::expand(cli, &engine, &args.containers)?;
    ui::each(&containers, |c| {
        engine.stop_container(c, args.time, args.signal.as_deref())?;
        ui::data(c)
    })
}

pub fn restart(cli: &Cli, args: &RestartArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let containers = super::services::expand(cli, &engine, &args.containers)?;
    ui::each(&containers, |c| {
        engine.restart_container(c, args.time)?;
        ui::data(c)
    })
}

pub fn kill(cli: &Cli, args: &KillArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let signal = servin::project::values::signal::parse_signal(&args.signal)
        .map_err(|e| Failed::Usage(format!("invalid --signal: {e}")))?;
    let engine = servin::client::Engine::connect()?;
    ui::each(&args.containers, |c| {
        engine.kill_container(c, &signal)?;
        ui::data(c)
    })
}

pub fn rm(cli: &Cli, args: &RmArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    let targets: Vec<String> = if args.all {
        engine
            .containers(true)?
            .into_iter()
            .filter_map(|c| {
                c.names
                    .and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string()))
                    .filter(|n| !n.is_empty())
                    .or(c.id)
            })
            .collect()
    } else {
        args.containers.clone()
    };
    ui::each(&targets, |c| {
        engine.remove_container(c, args.force, args.volumes)?;
        ui::data(c)
    })
}

pub fn wait(cli: &Cli, args: &WaitArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let engine = servin::client::Engine::connect()?;
    ui::each(&args.containers, |c| {
        let code = engine.wait_container(c, "not-running")?;
        ui::data(&code.to_string())
    })
}
