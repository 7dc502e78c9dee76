//! `servin watch` and `servin up --watch`: the initial copy of synced
//! workspaces, then the watcher with the services' logs interleaved.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use servin::project::Loaded;
use servin::project::desired::{DesiredOptions, desired};
use servin::project::normal::{OnChange, WorkspaceMode};
use servin::sync::matcher::Matcher;
use servin::sync::watch::{self, Follow, Hooks, Watched};
use servin::sync::{Report, Syncer};
use servin_proto::labels;

use super::Cli;
use crate::ui::{self, Failed};

/// Watch the project's workspaces and keep them in sync until Ctrl-C
///
/// For each container with a `workspace` (of the SERVICEs given, or all):
/// with `mode = "sync"`, copies what changed since the last sync into the
/// container's workspace volume, then sends each batch of changes as it
/// happens; with either mode, runs the workspace's `on_change` once per
/// batch (`restart`, `rebuild`, `exec`). Changes are grouped into a batch
/// until the files are quiet for 20 ms (at most 250 ms), and events that
/// arrive while a follow-up runs make up the next batch. The containers'
/// output is printed meanwhile, each line prefixed with its container's
/// name, as `servin up` does. The project must be up (`servin up -d`);
/// Ctrl-C stops watching and leaves the containers running.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub project: super::ProjectArgs,
    /// Only the workspaces of these services
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Include the containers of this profile (repeat for more)
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// Do not print the containers' output
    #[arg(long)]
    pub no_logs: bool,
}

/// `servin watch`.
pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[super::Format::Text], super::Format::Text)?;
    let loaded = cli.load_project()?;
    if let Some(s) = args
        .services
        .iter()
        .find(|s| !loaded.project.containers.contains_key(*s))
    {
        return Err(Failed::Usage(format!(
            "no service {s} in project {}",
            loaded.project.project.name
        )));
    }
    let engine = servin::client::Engine::connect()?;
    let syncers = initial_sync(&engine, &loaded, &args.services)?;
    let since = now();
    let followed = if args.no_logs {
        Vec::new()
    } else {
        containers_of(&loaded, &args.services)
    };
    watch_until_interrupted(
        engine,
        &loaded,
        &args.services,
        &args.profiles,
        syncers,
        &followed,
        &since,
    )
}

/// The time now as the engine's `since` takes it.
pub(super) fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// The engine names of the containers of `services` (all when empty).
fn containers_of(loaded: &Loaded, services: &[String]) -> Vec<String> {
    let p = &loaded.project;
    p.containers
        .iter()
        .filter(|(k, _)| services.is_empty() || services.contains(k))
        .flat_map(|(k, c)| {
            (1..=c.replicas.max(1)).map(move |r| labels::container_name(&p.project.name, k, r))
        })
        .collect()
}

/// The project file's absolute path.
fn project_file(loaded: &Loaded) -> Result<std::path::PathBuf, Failed> {
    std::path::absolute(&loaded.path).map_err(|e| {
        Failed::Usage(format!(
            "cannot make {} absolute: {e}",
            loaded.path.display()
        ))
    })
}

/// Brings every synced workspace of `services` (all when empty) up to
/// date with its source, printing one line each; returns them ready to
/// watch. Runs before the containers start, so none starts on a stale
/// copy.
pub(super) fn initial_sync(
    engine: &servin::client::Engine,
    loaded: &Loaded,
    services: &[String],
) -> Result<Vec<Syncer>, Failed> {
    let file = project_file(loaded)?;
    let mut out = Vec::new();
    for ws in servin::sync::synced(&loaded.project, &file, services) {
        let name = ws.container.clone();
        let started = std::time::Instant::now();
        let mut s = Syncer::open(engine, ws).map_err(|e| Failed::Error(Box::new(e)))?;
        let report = s
            .sync(engine, None)
            .map_err(|e| Failed::Error(Box::new(e)))?;
        s.flush().map_err(|e| Failed::Error(Box::new(e)))?;
        show(&name, &report, started.elapsed());
        out.push(s);
    }
    Ok(out)
}

/// One line for a synced batch; a warning for each path not synced.
fn show(container: &str, r: &Report, took: Duration) {
    for (path, why) in &r.failed {
        ui::warning(&format!("workspace of {container}: {path}: {why}"));
    }
    if r.changed_anything() {
        ui::info(&format!(
            "workspace of {container}: {} written, {} removed ({} bytes) in {} ms",
            r.written,
            r.deleted,
            r.bytes,
            took.as_millis()
        ));
    } else {
        ui::info(&format!(
            "workspace of {container}: up to date ({} ms)",
            took.as_millis()
        ));
    }
}

/// What follows a change of `on_change`.
fn follow_of(o: &OnChange) -> Follow {
    match o {
        OnChange::None => Follow::None,
        OnChange::Restart => Follow::Restart,
        OnChange::Rebuild => Follow::Rebuild,
        OnChange::Exec { exec } => Follow::Exec(exec.clone()),
    }
}

/// Watches until Ctrl-C, with the `followed` containers' output printed.
pub(super) fn watch_until_interrupted(
    engine: servin::client::Engine,
    loaded: &Loaded,
    services: &[String],
    profiles: &[String],
    syncers: Vec<Syncer>,
    followed: &[String],
    since: &str,
) -> Result<(), Failed> {
    let targets = targets(loaded, services, syncers)?;
    if targets.is_empty() {
        return Err(Failed::Usage(format!(
            "no workspace to watch in project {}: give a container `workspace = {{ source, target }}`",
            loaded.project.project.name
        )));
    }
    let stop = Arc::new(AtomicBool::new(false));
    interrupt_sets(&stop)?;
    let logs = follow_logs(followed, since, &stop);
    let mut hooks = CliHooks {
        loaded,
        profiles,
        project: loaded.project.project.name.clone(),
    };
    let result = watch::watch(
        &engine,
        targets,
        watch::Options::default(),
        &mut hooks,
        &stop,
    );
    stop.store(true, Ordering::SeqCst);
    drop(logs);
    result.map_err(|e| Failed::Error(Box::new(e)))
}

/// The watched workspaces: the synced ones (already copied) and the bound
/// ones that have an `on_change`.
fn targets(
    loaded: &Loaded,
    services: &[String],
    syncers: Vec<Syncer>,
) -> Result<Vec<Watched>, Failed> {
    let mut out = Vec::new();
    for s in syncers {
        let Some(c) = loaded.project.containers.get(&s.ws.container) else {
            continue;
        };
        let follow = c
            .workspace
            .as_ref()
            .map_or(Follow::None, |w| follow_of(&w.on_change));
        out.push(Watched {
            container: s.ws.container.clone(),
            source: s.ws.source.clone(),
            matcher: s.matcher().clone(),
            sync: Some(s),
            follow,
        });
    }
    for (k, c) in &loaded.project.containers {
        let Some(w) = &c.workspace else { continue };
        if w.mode != WorkspaceMode::Bind
            || w.on_change == OnChange::None
            || !(services.is_empty() || services.contains(k))
        {
            continue;
        }
        let source = Path::new(&w.source).to_path_buf();
        let matcher = Matcher::new(&source, &w.ignore).map_err(|e| Failed::Error(Box::new(e)))?;
        out.push(Watched {
            container: k.clone(),
            source,
            sync: None,
            matcher,
            follow: follow_of(&w.on_change),
        });
    }
    Ok(out)
}

/// Sets `stop` on Ctrl-C (or SIGTERM).
fn interrupt_sets(stop: &Arc<AtomicBool>) -> Result<(), Failed> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let stop = Arc::clone(stop);
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                let _ = ready_tx.send(Err("cannot listen for Ctrl-C".to_string()));
                return;
            };
            let _ = ready_tx.send(Ok(()));
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            stop.store(true, Ordering::SeqCst);
        });
    });
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(m)) => Err(Failed::Usage(m)),
        Err(_) => Err(Failed::Usage("cannot listen for Ctrl-C".to_string())),
    }
}

/// Prints the output of `names` from `since` on, each line prefixed, until
/// `stop`: a container's log that ends (it was restarted or recreated) is
/// followed again from where it ended.
fn follow_logs(
    names: &[String],
    since: &str,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    let width = names.iter().map(String::len).max().unwrap_or(0);
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let prefix = format!("{name:<width$} |");
            let prefix = if colour {
                let c = super::attach::COLOURS[i % super::attach::COLOURS.len()];
                format!("\x1b[{c}m{prefix}\x1b[0m")
            } else {
                prefix
            };
            let name = name.clone();
            let stop = Arc::clone(stop);
            let mut since = since.to_string();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let tty = servin::client::Engine::connect()
                        .and_then(|e| e.inspect_container(&name))
                        .ok()
                        .and_then(|c| c.config.and_then(|c| c.tty))
                        .unwrap_or(false);
                    let _ = super::attach::stream(&name, tty, &since, &prefix);
                    since = now();
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        })
        .collect()
}

/// Runs follow-ups and reports through the CLI's printer.
struct CliHooks<'a> {
    loaded: &'a Loaded,
    profiles: &'a [String],
    project: String,
}

impl CliHooks<'_> {
    fn replicas(&self, container: &str) -> Vec<String> {
        let n = self
            .loaded
            .project
            .containers
            .get(container)
            .map_or(1, |c| c.replicas.max(1));
        (1..=n)
            .map(|r| labels::container_name(&self.project, container, r))
            .collect()
    }

    fn rebuild(&self, container: &str) -> Result<(), String> {
        let engine = servin::client::Engine::connect().map_err(|e| e.to_string())?;
        // As `up` does: the lock's digests, and the built images' IDs.
        let mut digests =
            super::lock::read(self.loaded).map_err(|e| format!("rebuild: {}", failed_text(e)))?;
        let built = super::build::build_for_up(self.loaded, self.profiles, &digests)
            .map_err(|e| format!("rebuild: {}", failed_text(e)))?;
        digests.extend(built);
        let file = project_file(self.loaded).map_err(failed_text)?;
        let options = DesiredOptions {
            profiles: self.profiles.to_vec(),
            image_digests: digests,
            project_file: Some(file),
        };
        let d = desired(&self.loaded.project, &options).map_err(|e| e.to_string())?;
        super::up::apply(&engine, &d, &[container.to_string()], false, "rebuild")
            .map_err(|e| format!("rebuild: {}", failed_text(e)))
    }
}

fn failed_text(f: Failed) -> String {
    match f {
        Failed::Reported => "failed (see above)".to_string(),
        Failed::Code(c) => format!("exit status {c}"),
        Failed::Usage(m) => m,
        Failed::Error(e) => e.to_string(),
    }
}

impl Hooks for CliHooks<'_> {
    fn watching(&mut self) {
        ui::info("watching the workspaces (Ctrl-C to stop)");
    }

    fn synced(&mut self, container: &str, report: &Report, took: Duration) {
        if report.changed_anything() || !report.failed.is_empty() {
            show(container, report, took);
        }
    }

    fn follow_up(
        &mut self,
        container: &str,
        follow: &Follow,
        changed: &[String],
    ) -> Result<(), String> {
        let first = changed.first().map_or("", String::as_str);
        let more = if changed.len() > 1 {
            format!(" and {} more", changed.len() - 1)
        } else {
            String::new()
        };
        match follow {
            Follow::None => Ok(()),
            Follow::Restart => {
                ui::info(&format!("{container}: restarting ({first}{more} changed)"));
                let engine = servin::client::Engine::connect().map_err(|e| e.to_string())?;
                for name in self.replicas(container) {
                    engine
                        .restart_container(&name, None)
                        .map_err(|e| format!("restart {name}: {e}"))?;
                }
                Ok(())
            }
            Follow::Rebuild => {
                ui::info(&format!("{container}: rebuilding ({first}{more} changed)"));
                self.rebuild(container)
            }
            Follow::Exec(cmd) => {
                let engine = servin::client::Engine::connect().map_err(|e| e.to_string())?;
                for name in self.replicas(container) {
                    ui::info(&format!(
                        "{name}: exec {} ({first}{more} changed)",
                        cmd.join(" ")
                    ));
                    let config = bollard_stubs::models::ExecConfig {
                        cmd: Some(cmd.clone()),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        ..Default::default()
                    };
                    let id = engine
                        .exec_create(&name, &config)
                        .map_err(|e| format!("exec in {name}: {e}"))?;
                    let code = super::stream::exec(&engine, &id, false, false)
                        .map_err(|e| format!("exec in {name}: {e}"))?;
                    let _ = std::io::stdout().flush();
                    if code != 0 {
                        return Err(format!(
                            "exec in {name}: {} exited with status {code}",
                            cmd.join(" ")
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    fn problem(&mut self, container: &str, message: &str) {
        ui::warning(&format!("workspace of {container}: {message}"));
    }
}
