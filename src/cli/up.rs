//! `servin up` and `servin down`: apply the project, take it away.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use servin::project::desired::{DesiredOptions, desired};
use servin_proto::ActionKind;
use servin_proto::apply::{BuiltImage, Event, StepStatus, Summary};

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Create and start the project's containers, making what runs match the file
///
/// Loads the project, sends its desired state to the engine and applies the
/// plan (`servin plan` shows it): pulls missing images, makes the project's
/// networks and volumes, creates, recreates (when a container's
/// configuration changed) and starts containers, and removes the ones the
/// file no longer names. Meanwhile it builds the images that have `build`;
/// each container starts as soon as its own image is ready. Containers
/// start in `depends_on` order, in parallel where the order allows; a
/// container waits until its dependencies run (`started`), pass their
/// health check (`healthy`) or exit with status 0 (`completed`). Unchanged
/// containers are left alone.
/// Prints one line per step and a summary; exits non-zero when any step
/// failed. Then, without `-d`, prints the containers' output, each line
/// prefixed with the container's name, until Ctrl-C, which stops them.
///
/// Images run at the digests in `servin.lock` beside the project file; `up`
/// adds the images the lock lacks (see `servin lock`), so a tag moved in the
/// registry changes nothing until `servin lock --update`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub project: super::ProjectArgs,
    /// Only these services and the ones they depend on (orphans are then
    /// left alone)
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Run in the background: return once the containers are started
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Then watch the workspaces as `servin watch` does, with the
    /// containers' output, until Ctrl-C (which stops the containers)
    #[arg(long, conflicts_with_all = ["detach", "dry_run"])]
    pub watch: bool,
    /// Print the plan (as `servin plan` does, with the same services and
    /// `--recreate-volumes`) and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace a volume or network whose definition changed in the file,
    /// removing the containers using it first (they are recreated); the
    /// volume's data is lost. Without it, `up` refuses such a change
    #[arg(long)]
    pub recreate_volumes: bool,
    /// Include the containers of this profile (repeat for more)
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
}

/// Stop and remove the project's containers and networks
///
/// Finds the project's objects by their labels, so the project file is not
/// needed with `-p NAME`. Containers are stopped and removed in reverse
/// `depends_on` order (dependants first), then the project's networks; its
/// named volumes only with `--volumes` (their data is lost). Other projects
/// are untouched. Exits non-zero when anything could not be removed.
#[derive(Debug, clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub project: super::ProjectArgs,
    /// Remove the project's named volumes too
    #[arg(long)]
    pub volumes: bool,
    /// Remove images too: `all`, every image the project's containers ran
    /// (an image another container uses is kept)
    #[arg(long, value_name = "TYPE", value_parser = ["all"])]
    pub rmi: Option<String>,
    /// Seconds each container gets to stop before it is killed [default:
    /// its own `stop_timeout`, else 10]
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<u32>,
}

/// `servin up`.
pub fn up(cli: &Cli, args: &UpArgs) -> Result<(), Failed> {
    let format = if args.dry_run {
        cli.format(&[Format::Text, Format::Json], Format::Text)?
    } else {
        cli.format(&[Format::Text], Format::Text)?
    };
    let loaded = cli.load_project()?;
    let engine = servin::client::Engine::connect()?;
    let mut image_digests = if args.dry_run {
        super::lock::read(&loaded)?
    } else {
        super::lock::refresh(&engine, &loaded, &[], false)?.0
    };
    let (builds, jobs) = if args.dry_run {
        let builds =
            super::build::plan_builds(&engine, &loaded, &args.profiles, &mut image_digests)?;
        (builds, Vec::new())
    } else {
        // The images to build are pending in the desired state: the apply
        // starts at once, and each container running one waits for its
        // build (the engine then runs it by ID, so a rebuild that changes
        // the image recreates it and one that changes nothing keeps it).
        let jobs = super::build::jobs_for_up(&loaded, &args.profiles, &image_digests)?;
        (Vec::new(), jobs)
    };
    let project_file = std::path::absolute(&loaded.path).map_err(|e| {
        Failed::Usage(format!(
            "cannot make {} absolute: {e}",
            loaded.path.display()
        ))
    })?;
    let options = DesiredOptions {
        profiles: args.profiles.clone(),
        image_digests,
        project_file: Some(project_file),
    };
    let mut desired = desired(&loaded.project, &options).map_err(|e| Failed::Error(Box::new(e)))?;
    desired.pending_images = jobs.iter().map(super::build::Job::reference).collect();
    if let Some(s) = args
        .services
        .iter()
        .find(|s| !desired.containers.iter().any(|c| &c.service == *s))
    {
        return Err(Failed::Usage(format!(
            "no service {s} in project {} (or its profile is not active)",
            desired.name
        )));
    }
    if args.dry_run {
        let mut plan = engine.plan_project(&desired, &args.services, args.recreate_volumes)?;
        super::build::add_builds(&mut plan, &desired, &builds);
        return super::plan::print(&plan, format);
    }
    let since = super::watch::now();
    let selected = selected_services(&desired, &args.services);
    let selected_list: Vec<String> = selected.iter().cloned().collect();
    let syncers = std::thread::scope(|scope| {
        // The builds run from now on, beside the workspaces' copy and the
        // apply, which waits for each only where a container needs it.
        let (built_tx, built_rx) = std::sync::mpsc::channel::<BuiltImage>();
        let project_name = desired.name.clone();
        scope.spawn(move || {
            if !jobs.is_empty() {
                super::build::build_each(jobs, &project_name, &|reference, outcome| {
                    let (id, error) = match outcome {
                        Ok(id) => (Some(id), None),
                        Err(e) => (None, Some(e)),
                    };
                    let _ = built_tx.send(BuiltImage {
                        reference,
                        id,
                        error,
                    });
                });
            }
        });
        // Synced workspaces are copied before any container starts.
        let syncers = super::watch::initial_sync(&engine, &loaded, &selected_list)?;
        let (apply_tx, apply_rx) = std::sync::mpsc::channel::<String>();
        let (name, pending) = (&desired.name, &desired.pending_images);
        scope.spawn(move || report_builds(name, pending, &apply_rx, &built_rx));
        apply_started(
            &engine,
            &desired,
            &args.services,
            args.recreate_volumes,
            "up",
            move |apply| {
                if let Some(apply) = apply {
                    let _ = apply_tx.send(apply);
                }
            },
        )?;
        Ok::<_, Failed>(syncers)
    })?;
    if args.detach {
        return Ok(());
    }
    if args.watch {
        let names: Vec<String> = desired
            .containers
            .iter()
            .filter(|c| selected.contains(&c.service))
            .map(|c| c.name.clone())
            .collect();
        let watched = super::watch::watch_until_interrupted(
            engine,
            &loaded,
            &selected_list,
            &args.profiles,
            syncers,
            &names,
            &since,
        );
        ui::info("stopping the containers (Ctrl-C)");
        let engine = servin::client::Engine::connect()?;
        for name in names.iter().rev() {
            if let Err(e) = engine.stop_container(name, None, None) {
                ui::error(&format!("stop {name}: {e}"));
            }
        }
        return watched;
    }
    let followed: Vec<super::attach::Followed> = desired
        .containers
        .iter()
        .filter(|c| selected.contains(&c.service))
        .map(|c| super::attach::Followed {
            name: c.name.clone(),
            tty: c.body.tty.unwrap_or(false),
        })
        .collect();
    drop(engine);
    super::attach::follow(&followed, &since)
}

/// Applies `desired` (only `services` and their dependencies, when any
/// are named), showing each step, then the summary; `Err` when any step
/// failed.
pub(super) fn apply(
    engine: &servin::client::Engine,
    desired: &servin_proto::DesiredProject,
    services: &[String],
    recreate_volumes: bool,
    command: &str,
) -> Result<(), Failed> {
    apply_started(engine, desired, services, recreate_volumes, command, |_| {})
}

/// As [`apply`], calling `started` with the apply's ID (when it waits for
/// pending images) once the engine has accepted it.
fn apply_started(
    engine: &servin::client::Engine,
    desired: &servin_proto::DesiredProject,
    services: &[String],
    recreate_volumes: bool,
    command: &str,
    started: impl FnOnce(Option<String>),
) -> Result<(), Failed> {
    // Builds print their lines beside the steps: plain lines for all, as
    // lines updated in place would overwrite theirs.
    let mut view = if desired.pending_images.is_empty() {
        View::new()
    } else {
        View::plain()
    };
    let summary =
        engine.apply_project_started(desired, services, recreate_volumes, started, |e| {
            view.event(e)
        })?;
    view.finish();
    report(&summary, command)
}

/// Tells the apply of project `name` (its ID comes on `apply`, once the
/// engine has accepted it) about each built image as it comes on `built`,
/// then that any of `pending` left unreported was not built, so the apply
/// never waits for an image no build will report. Nothing is reported
/// when the apply never began; a report the ended apply refuses (404) is
/// dropped, the apply's own summary says why it ended.
fn report_builds(
    name: &str,
    pending: &[String],
    apply: &std::sync::mpsc::Receiver<String>,
    built: &std::sync::mpsc::Receiver<BuiltImage>,
) {
    let Ok(apply) = apply.recv() else { return };
    let engine = match servin::client::Engine::connect() {
        Ok(e) => e,
        Err(e) => {
            ui::error(&format!("cannot report the built images to the apply: {e}"));
            return;
        }
    };
    let send = |image: &BuiltImage| match engine.report_built_image(name, &apply, image) {
        Ok(()) => {}
        Err(servin::client::Error::Engine { status: 404, .. }) => {}
        Err(e) => ui::warning(&e.to_string()),
    };
    let mut left: Vec<&String> = pending.iter().collect();
    for image in built {
        left.retain(|r| **r != image.reference);
        send(&image);
    }
    for reference in left {
        send(&BuiltImage {
            reference: reference.clone(),
            id: None,
            error: Some("its build did not run".to_string()),
        });
    }
}

/// `wanted` and the services they depend on, or every service.
fn selected_services(
    desired: &servin_proto::DesiredProject,
    wanted: &[String],
) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut todo: Vec<String> = if wanted.is_empty() {
        desired
            .containers
            .iter()
            .map(|c| c.service.clone())
            .collect()
    } else {
        wanted.to_vec()
    };
    while let Some(s) = todo.pop() {
        if out.insert(s.clone()) {
            for c in desired.containers.iter().filter(|c| c.service == s) {
                todo.extend(c.depends_on.iter().map(|d| d.service.clone()));
            }
        }
    }
    out
}

/// `servin down`.
pub fn down(cli: &Cli, args: &DownArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let name = match &cli.project_name {
        Some(n) => n.clone(),
        None => cli.load_project()?.project.project.name,
    };
    take_down(&name, args.volumes, args.rmi.is_some(), args.timeout)
}

/// Removes project `name`'s containers and networks (and its volumes with
/// `volumes`, its images with `images`), showing each step, then the
/// summary; `Err` when anything could not be removed.
pub(super) fn take_down(
    name: &str,
    volumes: bool,
    images: bool,
    timeout: Option<u32>,
) -> Result<(), Failed> {
    let engine = servin::client::Engine::connect()?;
    let mut view = View::new();
    let summary = engine.down_project(name, volumes, images, timeout.map(i64::from), |e| {
        view.event(e)
    })?;
    view.finish();
    report(&summary, "down")
}

/// Prints the summary; `Err` when anything failed.
fn report(summary: &Summary, command: &str) -> Result<(), Failed> {
    let mut parts: Vec<String> = [
        (ActionKind::Create, "created"),
        (ActionKind::Recreate, "recreated"),
        (ActionKind::Start, "started"),
        (ActionKind::Keep, "unchanged"),
        (ActionKind::Remove, "removed"),
    ]
    .iter()
    .filter_map(|(k, word)| {
        let n = summary.done_of(*k);
        (n > 0).then(|| format!("{n} {word}"))
    })
    .collect();
    if !summary.others.is_empty() {
        parts.push(format!("{} other objects changed", summary.others.len()));
    }
    if parts.is_empty() {
        parts.push("nothing to do".to_string());
    }
    if summary.failed.is_empty() {
        ui::info(&format!(
            "project {}: {}",
            summary.project,
            parts.join(", ")
        ));
        return Ok(());
    }
    ui::error(&format!(
        "project {}: {command} failed for {} object(s) ({})",
        summary.project,
        summary.failed.len(),
        parts.join(", ")
    ));
    for f in &summary.failed {
        ui::info(&format!("  {} {}: {}", f.object.as_str(), f.name, f.error));
    }
    Err(Failed::Reported)
}

/// Shows the steps: a spinner per object on a terminal, a plain line per
/// step otherwise.
struct View {
    multi: Option<MultiProgress>,
    bars: HashMap<String, ProgressBar>,
}

impl View {
    fn new() -> Self {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            multi,
            bars: HashMap::new(),
        }
    }

    /// A plain line per step, on a terminal too.
    fn plain() -> Self {
        Self {
            multi: None,
            bars: HashMap::new(),
        }
    }

    fn event(&mut self, e: &Event) {
        let Event::Step(step) = e else { return };
        let key = format!("{} {}", step.object.as_str(), step.name);
        let mark = match step.status {
            StepStatus::Working => "…",
            StepStatus::Done => "✔",
            StepStatus::Failed => "✘",
        };
        let Some(multi) = &self.multi else {
            ui::info(&format!("{mark} {key}: {}", step.message));
            return;
        };
        let bar = self.bars.entry(key.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold}: {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(key);
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        match step.status {
            StepStatus::Working => bar.set_message(step.message.clone()),
            _ => {
                bar.set_style(
                    ProgressStyle::with_template("{prefix:.bold}: {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.finish_with_message(format!("{mark} {}", step.message));
            }
        }
    }

    fn finish(&mut self) {
        for bar in self.bars.values() {
            if !bar.is_finished() {
                bar.finish();
            }
        }
    }
}
