//! `servin-guest`: the servin engine daemon.
//!
//! `servin-guest` or `servin-guest daemon` runs the engine on the socket
//! named by `SERVIN_HOST` with state under `SERVIN_ROOT`.
//! `servin-guest monitor DIR` is a container's monitor, started by the
//! engine (see `servin_guest::monitor`). `servin-guest init` (or the
//! binary started as PID 1 with no arguments) is the VM's init (see
//! `servin_guest::init`). `servin-guest channel PORT ENGINE_SOCK` serves
//! the host's streams in VM mode (see `servin_guest::channel`).

use std::process::ExitCode;
use std::sync::Arc;

use servin_guest::config::Config;
use servin_guest::engine::Engine;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const USAGE: &str = "\
servin-guest: the servin container engine

usage: servin-guest [daemon]
       servin-guest monitor DIR    (started by the engine, one per container)
       servin-guest init           (PID 1 of servin's VM, its /init)
       servin-guest channel PORT ENGINE_SOCK   (in a VM: the host's channel)
       servin-guest --version

environment:
  SERVIN_ROOT                 state folder (default /var/lib/servin)
  SERVIN_HOST                 socket, unix:///path or a path (default /run/servin/engine.sock)
  SERVIN_INSECURE_REGISTRIES  comma-separated registries reached over http (loopback ones always are)
  SERVIN_LOG                  log level: off, error, warn, info (default), debug, trace";

/// The level `SERVIN_LOG` names, by tracing's own names (any case, or
/// 0 for off to 5 for trace); unset or empty is `info`.
fn log_level(value: Option<&str>) -> Result<LevelFilter, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(LevelFilter::INFO),
        Some(v) => v.parse().map_err(|_| {
            format!("invalid SERVIN_LOG {v:?}: want off, error, warn, info, debug or trace")
        }),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The kernel starts `/init` with no arguments: PID 1 is the VM's init.
    if args.is_empty() && rustix::process::getpid() == rustix::process::Pid::INIT {
        return servin_guest::init::run();
    }
    match args.first().map(String::as_str) {
        None | Some("daemon") => {}
        Some("init") => return servin_guest::init::run(),
        Some("monitor") => {
            return match args.as_slice() {
                [_, dir] => servin_guest::monitor::run(std::path::Path::new(dir)),
                [_, flag, root] if flag == servin_guest::monitor::STANDBY_FLAG => {
                    servin_guest::monitor::standby(std::path::Path::new(root))
                }
                _ => {
                    eprintln!("error: usage: servin-guest monitor DIR");
                    ExitCode::from(2)
                }
            };
        }
        Some("channel") => {
            return match args.as_slice() {
                [_, port, engine] => servin_guest::channel::run(port, std::path::Path::new(engine)),
                _ => {
                    eprintln!("error: usage: servin-guest channel PORT ENGINE_SOCK");
                    ExitCode::from(2)
                }
            };
        }
        Some("--version" | "version") => {
            println!("servin-guest {}", servin_guest::VERSION);
            return ExitCode::SUCCESS;
        }
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("error: unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let level = match log_level(std::env::var("SERVIN_LOG").ok().as_deref()) {
        Ok(level) => level,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The DNS server logs every query at INFO: only its warnings.
    let dns_level = level.min(LevelFilter::WARN);
    let targets = tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target("hickory_server", dns_level)
        .with_target("hickory_proto", dns_level);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .finish()
        .with(targets)
        .init();
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        tracing::debug!("a TLS crypto provider was already installed");
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = Config::from_env();
    let result = runtime.block_on(async move {
        let engine = Arc::new(Engine::open(config)?);
        // Build containers a killed engine left behind.
        tokio::spawn(servin_guest::build::run::remove_leftovers(Arc::clone(
            &engine,
        )));
        servin_guest::api::server::serve(engine).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.full_message());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_by_tracing_names() {
        assert_eq!(log_level(None), Ok(LevelFilter::INFO));
        assert_eq!(log_level(Some("")), Ok(LevelFilter::INFO));
        assert_eq!(log_level(Some("debug")), Ok(LevelFilter::DEBUG));
        assert_eq!(log_level(Some("WARN")), Ok(LevelFilter::WARN));
        assert_eq!(log_level(Some("off")), Ok(LevelFilter::OFF));
        assert_eq!(
            log_level(Some("loud")),
            Err(
                "invalid SERVIN_LOG \"loud\": want off, error, warn, info, debug or trace"
                    .to_string()
            )
        );
        assert_eq!(LevelFilter::OFF.min(LevelFilter::WARN), LevelFilter::OFF);
        assert_eq!(LevelFilter::TRACE.min(LevelFilter::WARN), LevelFilter::WARN);
    }
}
