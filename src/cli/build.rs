//! `servin build`: a context folder and its Dockerfile, or the project's
//! images that have `build`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use servin_proto::build::{BuildEvent, BuildRequest, BuildSecret, DockerfileDiagnostic, StepRef};

use super::Cli;
use crate::ui::{self, Failed};

/// How build progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A live line per step on a terminal (output folded), plain lines otherwise
    Auto,
    /// Plain lines, every line of output included
    Plain,
    /// One JSON event per line on stdout
    Json,
}

/// Build an image from a Dockerfile
///
/// `servin build [OPTIONS] CONTEXT` builds the folder CONTEXT with its
/// `Dockerfile` (or `-f FILE`), as `docker build` does: every `RUN` runs
/// in a container of servin's engine, and every step is cached by its
/// content (touching files changes nothing). Only the files the engine
/// does not hold yet are sent. Each step that is not taken from the cache
/// says why (the file, the build arg or the step before it that changed).
///
/// In a project folder, `servin build` without a context builds the
/// project's images that have `build` (all, or those named by image or
/// container name), named `PROJECT-IMAGE` as `servin up` uses them.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A context folder (`.` or a path), or in a project, image or container names
    #[arg(value_name = "CONTEXT|NAME")]
    pub targets: Vec<String>,
    /// Name the result `NAME[:TAG]` (repeat for more names)
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// The Dockerfile [default: CONTEXT/Dockerfile]
    #[arg(short = 'f', long = "file", value_name = "DOCKERFILE")]
    pub file: Option<PathBuf>,
    /// A build arg, `K=V`, or `K` to take its value from the environment
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<String>,
    /// The stage to build [default: the last]
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Run every step, using no cached result
    #[arg(long)]
    pub no_cache: bool,
    /// Pull the base images again even when present
    #[arg(long)]
    pub pull: bool,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=PATH` or `id=ID,env=VAR`
    #[arg(long = "secret", value_name = "id=ID,src=PATH")]
    pub secrets: Vec<String>,
    /// A label for the image, `K=V`
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// How to show progress
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Print only the image ID
    #[arg(short, long)]
    pub quiet: bool,
}

fn key_values(
    items: &[String],
    what: &str,
    from_env: bool,
) -> Result<BTreeMap<String, String>, Failed> {
    let mut out = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env && !item.is_empty() => {
                // Docker: `--build-arg K` takes K from the environment, and
                // drops it when unset.
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            _ => return Err(Failed::Usage(format!("{what} {item:?}: write it as K=V"))),
        }
    }
    Ok(out)
}

fn secrets(items: &[String]) -> Result<Vec<BuildSecret>, Failed> {
    let mut out = Vec::new();
    for item in items {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        for part in item.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("env", v)) => env = Some(v.to_string()),
                Some(("type", "file" | "env")) => {}
                _ => {
                    return Err(Failed::Usage(format!(
                        "--secret {item:?}: write it as id=ID,src=PATH or id=ID,env=VAR"
                    )));
                }
            }
        }
        let Some(id) = id.or_else(|| env.clone()) else {
            return Err(Failed::Usage(format!("--secret {item:?}: give id=ID")));
        };
        let data = match (src, env) {
            (Some(p), _) => std::fs::read(&p).map_err(|e| {
                Failed::Usage(format!("--secret {id}: cannot read {}: {e}", p.display()))
            })?,
            (None, Some(v)) => std::env::var(&v)
                .map_err(|_| Failed::Usage(format!("--secret {id}: the variable {v} is not set")))?
                .into_bytes(),
            (None, None) => {
                return Err(Failed::Usage(format!(
                    "--secret {item:?}: give src=PATH or env=VAR"
                )));
            }
        };
        out.push(BuildSecret {
            id,
            data: base64::engine::general_purpose::STANDARD.encode(data),
        });
    }
    Ok(out)
}

/// One build to run.
pub struct Job {
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    pub request: BuildRequest,
}

impl Job {
    /// The reference the project's containers run the result by.
    pub fn reference(&self) -> String {
        self.request.tags.first().cloned().unwrap_or_default()
    }
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[super::Format::Text], super::Format::Text)?;
    // One folder is a context; a bare word that is also a folder counts
    // as a name when the project here has an image or container so named.
    let context_given = match args.targets.as_slice() {
        [t] if Path::new(t).is_dir() => {
            t.contains('/')
                || t == "."
                || t == ".."
                || !cli.load_project().is_ok_and(|l| {
                    l.project.images.contains_key(t) || l.project.containers.contains_key(t)
                })
        }
        _ => false,
    };
    let build_args = key_values(&args.build_args, "--build-arg", true)?;
    let labels = key_values(&args.labels, "--label", false)?;
    let secrets = secrets(&args.secrets)?;
    let jobs: Vec<Job> = if context_given
        || (args.targets.len() == 1
            && Path::new(&args.targets[0]).is_dir()
            && !args.tags.is_empty())
    {
        let context = PathBuf::from(&args.targets[0]);
        if !context.is_dir() {
            return Err(Failed::Usage(format!(
                "the build context {} is not a folder",
                context.display()
            )));
        }
        let dockerfile = args
            .file
            .clone()
            .unwrap_or_else(|| context.join("Dockerfile"));
        vec![Job {
            request: BuildRequest {
                dockerfile_name: ui::shown(&dockerfile),
                tags: args.tags.clone(),
                build_args,
                target: args.target.clone(),
                no_cache: args.no_cache,
                pull: args.pull,
                labels,
                secrets,
                ..BuildRequest::default()
            },
            context,
            dockerfile,
        }]
    } else {
        if args.file.is_some() || !args.tags.is_empty() || args.target.is_some() {
            return Err(Failed::Usage(
                "-f, -t and --target go with a context folder: `servin build -t NAME CONTEXT`; a project's builds take theirs from the project file".to_string(),
            ));
        }
        project_jobs(
            cli,
            &args.targets,
            &build_args,
            &labels,
            &secrets,
            args.no_cache,
            args.pull,
        )?
    };
    if jobs.is_empty() {
        ui::info("nothing to build: the project has no image with `build`");
        return Ok(());
    }
    let engine = servin::client::Engine::connect()?;
    for job in jobs {
        let id = build_one(&engine, job, args.progress, args.quiet)?;
        if args.quiet {
            ui::data(&id)?;
        }
    }
    Ok(())
}

/// The builds of a project's images (all, or those `names` name).
fn project_jobs(
    cli: &Cli,
    names: &[String],
    build_args: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
    secrets: &[BuildSecret],
    no_cache: bool,
    pull: bool,
) -> Result<Vec<Job>, Failed> {
    let loaded = cli.load_project()?;
    let project = &loaded.project;
    let mut wanted: Vec<String> = Vec::new();
    for n in names {
        if project.images.get(n).is_some_and(|i| i.build.is_some()) {
            wanted.push(n.clone());
        } else if let Some(c) = project.containers.get(n) {
            if project
                .images
                .get(&c.image)
                .is_some_and(|i| i.build.is_some())
            {
                wanted.push(c.image.clone());
            } else {
                return Err(Failed::Usage(format!(
                    "container {n} runs image {}, which is pulled, not built",
                    c.image
                )));
            }
        } else {
            return Err(Failed::Usage(format!(
                "{n} is neither an image with `build` nor a container of project {}",
                project.project.name
            )));
        }
    }
    // The bases the lock pins, as `up` builds on them (read, not written).
    let locked = super::lock::read(&loaded)?;
    jobs_of(
        project, &wanted, build_args, labels, secrets, no_cache, pull, &locked,
    )
}

/// The builds of `project`'s images named in `wanted` (all when empty).
#[allow(clippy::too_many_arguments)]
fn jobs_of(
    project: &servin::project::normal::Project,
    wanted: &[String],
    build_args: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
    secrets: &[BuildSecret],
    no_cache: bool,
    pull: bool,
    locked: &BTreeMap<String, String>,
) -> Result<Vec<Job>, Failed> {
    let mut jobs = Vec::new();
    for (name, image) in &project.images {
        let Some(b) = &image.build else { continue };
        if !wanted.is_empty() && !wanted.contains(name) {
            continue;
        }
        let host = host_platform().to_string();
        if let Some(p) = image.platform.as_ref().filter(|p| **p != host) {
            return Err(Failed::Usage(format!(
                "image {name}: platform {p} cannot be built: servin builds for the engine's own platform, {host}"
            )));
        }
        let mut args = b.args.clone();
        args.extend(build_args.clone());
        let dockerfile = PathBuf::from(&b.dockerfile);
        jobs.push(Job {
            context: PathBuf::from(&b.context),
            request: BuildRequest {
                dockerfile_name: ui::shown(&dockerfile),
                tags: vec![servin::project::desired::image_reference(project, name)],
                build_args: args,
                target: b.target.clone(),
                no_cache,
                pull,
                labels: labels.clone(),
                secrets: secrets.to_vec(),
                pinned: servin::project::lock::pinned_bases(b, locked),
                ..BuildRequest::default()
            },
            dockerfile,
        });
    }
    Ok(jobs)
}

/// The images with `build` that the project's active containers run.
fn built_images_in_use(
    project: &servin::project::normal::Project,
    profiles: &[String],
) -> Vec<String> {
    let mut used: Vec<String> = Vec::new();
    for c in project.containers.values() {
        let active = c.profiles.is_empty() || c.profiles.iter().any(|p| profiles.contains(p));
        if active
            && project
                .images
                .get(&c.image)
                .is_some_and(|i| i.build.is_some())
            && !used.contains(&c.image)
        {
            used.push(c.image.clone());
        }
    }
    used
}

/// Builds the images with `build` that the project's active containers
/// run (missing ones, or those whose inputs changed; unchanged ones are a
/// cache hit), as `up` does ([`jobs_for_up`], [`build_each`]), and
/// returns their image IDs by the reference the containers use; the
/// first failure is the error (the other builds finish). For `watch`'s
/// rebuilds, whose apply follows the builds.
pub fn build_for_up(
    loaded: &servin::project::Loaded,
    profiles: &[String],
    locked: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Failed> {
    let jobs = jobs_for_up(loaded, profiles, locked)?;
    let results = std::sync::Mutex::new(Vec::new());
    build_each(jobs, &loaded.project.project.name, &|reference, outcome| {
        if let Ok(mut r) = results.lock() {
            r.push((reference, outcome));
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| Failed::Usage("a build thread panicked".to_string()))?;
    let mut out = BTreeMap::new();
    for (reference, outcome) in results {
        match outcome {
            Ok(id) => {
                out.insert(reference, id);
            }
            Err(message) => return Err(Failed::Usage(format!("build {reference}: {message}"))),
        }
    }
    Ok(out)
}

/// The builds `up` runs: the images with `build` that the project's
/// active containers run (missing ones, or those whose inputs changed;
/// unchanged ones are a cache hit). None when nothing is built.
pub fn jobs_for_up(
    loaded: &servin::project::Loaded,
    profiles: &[String],
    locked: &BTreeMap<String, String>,
) -> Result<Vec<Job>, Failed> {
    let project = &loaded.project;
    let used = built_images_in_use(project, profiles);
    if used.is_empty() {
        return Ok(Vec::new());
    }
    jobs_of(
        project,
        &used,
        &BTreeMap::new(),
        &BTreeMap::new(),
        &[],
        false,
        false,
        locked,
    )
}

/// Runs `jobs` (of project `project_name`) [`PARALLEL_BUILDS`] at a time,
/// each on a connection of its own and shown as plain lines prefixed with
/// its image's name (they run beside the apply's steps); calls `done` with
/// each image's reference and its ID, or the build's error, as each build
/// ends. Every job gets its call; a failed build does not stop the others.
pub fn build_each(
    jobs: Vec<Job>,
    project_name: &str,
    done: &(dyn Fn(String, Result<String, String>) + Sync),
) {
    let workers = jobs.len().clamp(1, PARALLEL_BUILDS);
    let queue = std::sync::Mutex::new(jobs.into_iter().collect::<VecDeque<_>>());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let engine = servin::client::Engine::connect();
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(job) = next else { break };
                    let reference = job.reference();
                    let shown = reference
                        .strip_prefix(&format!("{project_name}-"))
                        .unwrap_or(&reference)
                        .to_string();
                    let outcome = match &engine {
                        Ok(engine) => build_one_shown(
                            engine,
                            job,
                            ProgressMode::Plain,
                            false,
                            &format!("{shown}: "),
                        )
                        .map_err(|(_, message)| message),
                        Err(e) => Err(format!("cannot build: {e}")),
                    };
                    done(reference, outcome);
                }
            });
        }
    });
}

/// How many of a project's builds run at once.
const PARALLEL_BUILDS: usize = 3;

/// For `plan` and `up --dry-run`: walks the builds `up` would run through
/// the cache without running anything. Cached ones add their image ID to
/// `image_digests`; the others are returned with the reason they run.
pub fn plan_builds(
    engine: &servin::client::Engine,
    loaded: &servin::project::Loaded,
    profiles: &[String],
    image_digests: &mut BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, Failed> {
    let project = &loaded.project;
    let used = built_images_in_use(project, profiles);
    let mut out = Vec::new();
    if used.is_empty() {
        return Ok(out);
    }
    let locked = image_digests.clone();
    for mut job in jobs_of(
        project,
        &used,
        &BTreeMap::new(),
        &BTreeMap::new(),
        &[],
        false,
        false,
        &locked,
    )? {
        let reference = job.request.tags.first().cloned().unwrap_or_default();
        let text = std::fs::read_to_string(&job.dockerfile).map_err(|e| {
            Failed::Usage(format!(
                "cannot read the Dockerfile {}: {e}",
                job.dockerfile.display()
            ))
        })?;
        job.request.dockerfile = text;
        job.request.dry_run = true;
        let (digest, _) = engine.send_context_with(&job.context, &job.dockerfile, false)?;
        job.request.context = digest;
        match engine.build(&job.request, |_| {})? {
            BuildEvent::Built { id, .. } => {
                image_digests.insert(reference, id);
            }
            BuildEvent::WouldBuild { at, reason } => {
                out.push((reference, format!("{at} {reason}")))
            }
            BuildEvent::Failed { message, .. } => {
                out.push((reference, format!("fails: {message}")))
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Adds the builds to a plan: a `build` row per image, containers running
/// a rebuilt image recreated, no pull of an image that is built.
pub fn add_builds(
    plan: &mut servin_proto::Plan,
    desired: &servin_proto::DesiredProject,
    builds: &[(String, String)],
) {
    use servin_proto::{Action, ActionKind, ObjectKind};
    for (reference, reason) in builds {
        plan.resources
            .retain(|a| !(a.kind == ActionKind::Pull && a.name == *reference));
        for a in plan
            .actions
            .iter_mut()
            .filter(|a| a.kind == ActionKind::Keep)
        {
            if desired
                .containers
                .iter()
                .any(|c| c.name == a.name && c.image == *reference)
            {
                a.kind = ActionKind::Recreate;
                a.reason = format!("its image {reference} is rebuilt");
            }
        }
        plan.resources.push(Action {
            kind: ActionKind::Build,
            object: ObjectKind::Image,
            name: reference.clone(),
            service: None,
            replica: None,
            id: None,
            reason: reason.clone(),
            changed: Vec::new(),
        });
    }
}

/// Renders a Dockerfile diagnostic over the file's text.
fn render_diagnostic(name: &str, source: &str, d: &DockerfileDiagnostic) -> String {
    let Ok(code) = serde_json::from_value(serde_json::json!(d.code)) else {
        return format!("error: {name}:{}:{}: {}\n", d.line, d.column, d.message);
    };
    let wire = servin_dockerfile::WireError {
        message: d.message.clone(),
        code,
        help: d.help.clone(),
        label: d.label.clone(),
        offset: d.offset,
        length: d.length,
        line: d.line,
        column: d.column,
    };
    let e = servin_dockerfile::DockerfileError::from_wire(&wire, name, source);
    render_error(&e)
}

fn render_error(e: &servin_dockerfile::DockerfileError) -> String {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme).with_links(false);
    let mut out = String::new();
    if handler.render_report(&mut out, e).is_err() {
        out = format!("{e}\n");
    }
    out
}

/// Runs one build, showing its progress; returns the image ID.
pub fn build_one(
    engine: &servin::client::Engine,
    job: Job,
    mode: ProgressMode,
    quiet: bool,
) -> Result<String, Failed> {
    build_one_shown(engine, job, mode, quiet, "").map_err(|(f, _)| f)
}

/// As [`build_one`], each progress line starting with `prefix`; a failure
/// comes with its message in one line (for the engine, when `up` reports
/// a build it waits for).
fn build_one_shown(
    engine: &servin::client::Engine,
    job: Job,
    mode: ProgressMode,
    quiet: bool,
    prefix: &str,
) -> Result<String, (Failed, String)> {
    let Job {
        context,
        dockerfile,
        mut request,
    } = job;
    let engine_error = |e: servin::client::Error| {
        let message = e.to_string();
        (Failed::from(e), message)
    };
    let text = std::fs::read_to_string(&dockerfile).map_err(|e| {
        let message = format!("cannot read the Dockerfile {}: {e}", dockerfile.display());
        (Failed::Usage(message.clone()), message)
    })?;
    // The Dockerfile is checked here first: a mistake is shown at once,
    // before anything is sent.
    let name = request.dockerfile_name.clone();
    let checked = servin_dockerfile::parse(&name, &text).and_then(|df| {
        servin_dockerfile::plan(
            &df,
            &request.build_args,
            request.target.as_deref(),
            host_platform(),
        )
        .map(|_| ())
    });
    if let Err(e) = checked {
        let _ = write!(std::io::stderr().lock(), "{}", render_error(&e));
        return Err((Failed::Reported, format!("{name}: {e}")));
    }
    request.dockerfile = text.clone();
    let (digest, sent) = engine
        .send_context(&context, &dockerfile)
        .map_err(engine_error)?;
    request.context = digest;
    let mut view = View::new(mode, quiet);
    view.prefix = prefix.to_string();
    if mode == ProgressMode::Plain && !quiet {
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        ui::info(&format!(
            "{prefix}context: {} file{} ({} read), sent {} file{} ({} bytes)",
            sent.index.files,
            plural(sent.index.files),
            sent.index.hashed,
            sent.files,
            plural(sent.files as u64),
            sent.bytes
        ));
    }
    let last = engine
        .build(&request, |e| view.event(e))
        .map_err(engine_error)?;
    view.finish();
    for message in sent.saving.finish() {
        ui::warning(&message);
    }
    match last {
        BuildEvent::Built { id, .. } => Ok(id),
        BuildEvent::Failed {
            message,
            at,
            diagnostic,
            ..
        } => {
            if let Some(d) = diagnostic {
                let _ = write!(
                    std::io::stderr().lock(),
                    "{}",
                    render_diagnostic(&name, &text, &d)
                );
                return Err((Failed::Reported, message));
            }
            if let Some(at) = &at
                && let Some(tail) = view.tail(at)
                && mode != ProgressMode::Plain
            {
                let mut err = std::io::stderr().lock();
                for line in tail {
                    let _ = writeln!(err, "  {at} | {line}");
                }
            }
            ui::error(&format!("{prefix}{message}"));
            Err((Failed::Reported, message))
        }
        _ => Err((
            Failed::Reported,
            "the engine ended the build without its outcome".to_string(),
        )),
    }
}

fn millis(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

/// Shows build events.
struct View {
    mode: ProgressMode,
    quiet: bool,
    terminal: bool,
    bars: HashMap<String, ProgressBar>,
    instructions: HashMap<String, String>,
    tails: HashMap<String, VecDeque<String>>,
    partial: HashMap<String, String>,
    /// Before every line (the image's name when builds run together).
    prefix: String,
}

impl View {
    fn new(mode: ProgressMode, quiet: bool) -> Self {
        Self {
            mode,
            quiet,
            terminal: std::io::stderr().is_terminal(),
            bars: HashMap::new(),
            instructions: HashMap::new(),
            tails: HashMap::new(),
            partial: HashMap::new(),
            prefix: String::new(),
        }
    }

    fn tail(&self, at: &StepRef) -> Option<&VecDeque<String>> {
        self.tails.get(&at.to_string())
    }

    fn line(&self, text: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{}{text}", self.prefix);
        }
    }

    fn live(&self) -> bool {
        self.mode == ProgressMode::Auto && self.terminal && !self.quiet
    }

    fn end_bar(&mut self, key: &str, text: String) {
        if let Some(bar) = self.bars.remove(key) {
            bar.finish_and_clear();
        }
        self.line(&text);
    }

    fn event(&mut self, e: &BuildEvent) {
        if self.mode == ProgressMode::Json {
            if let Ok(s) = serde_json::to_string(e) {
                let _ = writeln!(std::io::stdout().lock(), "{s}");
            }
            return;
        }
        match e {
            BuildEvent::Step {
                at, instruction, ..
            } => {
                let key = at.to_string();
                self.instructions.insert(key.clone(), instruction.clone());
                if self.live() {
                    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix} {msg} {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(format!("{key} {instruction}"));
                    bar.enable_steady_tick(Duration::from_millis(120));
                    self.bars.insert(key, bar);
                } else {
                    self.line(&format!("{key} {instruction}"));
                }
            }
            BuildEvent::Cached { at, .. } => {
                let key = at.to_string();
                let ins = self.instructions.get(&key).cloned().unwrap_or_default();
                if self.live() {
                    self.end_bar(&key, format!("{key} {ins} CACHED"));
                } else {
                    self.line(&format!("{key} CACHED"));
                }
            }
            BuildEvent::Reason { at, reason } => {
                let key = at.to_string();
                if let Some(bar) = self.bars.get(&key) {
                    bar.println(format!("{key} runs: {reason}"));
                } else {
                    self.line(&format!("{key} runs: {reason}"));
                }
            }
            BuildEvent::Running { .. } => {}
            BuildEvent::Output { at, text } => {
                let key = at.to_string();
                let partial = self.partial.entry(key.clone()).or_default();
                partial.push_str(text);
                let mut lines = Vec::new();
                while let Some(i) = partial.find('\n') {
                    let line: String = partial.drain(..=i).collect();
                    lines.push(line.trim_end_matches(['\n', '\r']).to_string());
                }
                for line in lines {
                    let tail = self.tails.entry(key.clone()).or_default();
                    if tail.len() == 20 {
                        tail.pop_front();
                    }
                    tail.push_back(line.clone());
                    if let Some(bar) = self.bars.get(&key) {
                        bar.set_message(format!("| {}", line.chars().take(60).collect::<String>()));
                    } else if !self.live() {
                        self.line(&format!("{key} | {line}"));
                    }
                }
            }
            BuildEvent::Done { at, millis: ms, .. } => {
                let key = at.to_string();
                if let Some(rest) = self.partial.remove(&key).filter(|p| !p.is_empty()) {
                    if self.live() {
                        self.tails.entry(key.clone()).or_default().push_back(rest);
                    } else {
                        self.line(&format!("{key} | {rest}"));
                    }
                }
                let ins = self.instructions.get(&key).cloned().unwrap_or_default();
                if self.live() {
                    self.end_bar(&key, format!("{key} {ins} {}", millis(*ms)));
                } else {
                    self.line(&format!("{key} DONE {}", millis(*ms)));
                }
            }
            BuildEvent::Warning { message } => {
                if !self.quiet {
                    ui::warning(message);
                }
            }
            BuildEvent::Built { id, tags } => {
                if !self.quiet {
                    let named = if tags.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " as {}",
                            tags.iter()
                                .map(|t| familiar(t))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    };
                    self.line(&format!("built {}{named}", short(id)));
                }
            }
            BuildEvent::WouldBuild { .. } => {}
            BuildEvent::Failed { at, .. } => {
                if let Some(at) = at {
                    let key = at.to_string();
                    if let Some(bar) = self.bars.remove(&key) {
                        bar.finish_and_clear();
                    }
                }
            }
        }
    }

    fn finish(&mut self) {
        for (_, bar) in self.bars.drain() {
            bar.finish_and_clear();
        }
    }
}

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// A name as Docker shows it: without `docker.io/library/`.
fn familiar(name: &str) -> String {
    name.strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name)
        .to_string()
}

/// This machine's platform, as the engine builds for it.
fn host_platform() -> servin_dockerfile::Platform {
    servin_dockerfile::Platform::host()
}
