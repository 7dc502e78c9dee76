//! `servin dashboard`: serve the local web dashboard.

use servin::client::Engine;
use servin::dashboard::{Dashboard, browser};

use super::Cli;
use crate::ui::{self, Failed};

/// Serve a local web dashboard of projects and containers
///
/// Serves a page on 127.0.0.1 (on a free port, or `--port`) showing the
/// projects with their services and containers (state, health, ports,
/// live), each container's logs, a terminal into it, its inspect and
/// stats, and the images, volumes and networks; with buttons to start,
/// stop, restart and remove. Opens it in the browser (`$BROWSER`, else
/// `xdg-open` or `open`) unless `--no-open`; the address printed on stdout
/// carries this start's secret, which the page exchanges for a cookie:
/// only that browser gets in. Runs in the foreground: Ctrl-C (or SIGTERM)
/// stops it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the address instead of opening it in the browser
    #[arg(long)]
    pub no_open: bool,
    /// Listen on this port of 127.0.0.1 [default: a free one]
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
}

pub fn run(_cli: &Cli, args: &Args) -> Result<(), Failed> {
    let engine = Engine::connect()?;
    let dashboard = Dashboard::bind(args.port.unwrap_or(0))?;
    let url = dashboard.login_url();
    // The address is data (a script may read it): stdout, on a line of its own.
    ui::data(&url)?;
    if args.no_open {
        ui::info("the dashboard is at the address above; Ctrl-C stops it");
    } else {
        match browser::open(&url) {
            Ok(cmd) => ui::info(&format!("opened the dashboard with {cmd}; Ctrl-C stops it")),
            Err(why) => ui::info(&format!(
                "{why}; open the address above in a browser; Ctrl-C stops the dashboard"
            )),
        }
    }
    dashboard.serve(engine)?;
    Ok(())
}
