//! Stages and steps: each stage a task (independent stages run at once),
//! each step a cache lookup, then, on a miss, the step itself and a new
//! image made from it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bollard_stubs::models::{Mount, MountBindOptions, MountTmpfsOptions, MountType};
use serde_json::{Value, json};
use servin_buildctx::ContextIndex;
use servin_buildctx::select::sources::SourceList;
use servin_dockerfile::{
    CacheSharing, Command, Dockerfile, Healthcheck, Instruction, InstructionKind, RunMount,
    RunNetwork, Stage,
};
use servin_proto::build::{BuildEvent, BuildRequest, DockerfileDiagnostic, StepRef};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;

use super::cache::{CopyRecord, Inputs, slot};
use super::copy::{self, CopyJob};
use super::error::BuildError;
use super::fetch;
use super::run::{self, RunSpec};
use super::{BuildOptions, Cancel};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::image::commit::{History, new_cache_image};
use crate::image::layer::{Exclusions, Take, commit_upper};
use crate::image::store::ImageRecord;

/// The args every build knows without an `ARG` (proxies), kept out of
/// history as Docker does.
const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The result of a stage, as its dependants wait for it.
type StageResult = Option<std::result::Result<ImageRecord, String>>;

/// A Dockerfile error as the wire carries it.
pub fn dockerfile_error(e: &servin_dockerfile::DockerfileError, file: &str) -> Error {
    let w = e.to_wire();
    BuildError::Dockerfile {
        file: file.to_string(),
        diagnostic: Box::new(DockerfileDiagnostic {
            message: w.message,
            code: serde_json::to_value(w.code)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            help: w.help,
            label: w.label,
            offset: w.offset,
            length: w.length,
            line: w.line,
            column: w.column,
        }),
    }
    .into()
}

/// A diagnostic for a span of the Dockerfile found while building.
fn span_error(
    df: &Dockerfile,
    span: &std::ops::Range<usize>,
    code: &str,
    message: String,
) -> Error {
    let before = &df.source[..span.start.min(df.source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    BuildError::Dockerfile {
        file: df.name.clone(),
        diagnostic: Box::new(DockerfileDiagnostic {
            message,
            code: code.to_string(),
            help: None,
            label: None,
            offset: span.start,
            length: span.end.saturating_sub(span.start),
            line,
            column,
        }),
    }
    .into()
}

/// Everything the stages share.
struct Shared {
    engine: Arc<Engine>,
    df: Dockerfile,
    request: BuildRequest,
    options: BuildOptions,
    index: Arc<ContextIndex>,
    events: UnboundedSender<BuildEvent>,
    cancel: Cancel,
    build_id: String,
    identity: String,
    global_args: BTreeMap<String, String>,
    results: HashMap<usize, watch::Receiver<StageResult>>,
    /// Step numbers: the first step of each stage in the whole build.
    first_number: HashMap<usize, usize>,
    total_steps: usize,
    /// The removals of the steps' containers under way: the build awaits
    /// them before it reports its end.
    removals: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Shared {
    fn send(&self, e: BuildEvent) {
        let _ = self.events.send(e);
    }

    /// Records a step container's removal (see [`super::run::Finished::release`]).
    fn removing(&self, removal: Option<tokio::task::JoinHandle<()>>) {
        if let Some(r) = removal {
            self.removals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(r);
        }
    }

    fn stage_name(&self, stage: &Stage) -> String {
        stage
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", stage.index))
    }

    fn find_stage(&self, name: &str, before: usize) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        for s in self.df.stages.iter().take(before) {
            if s.name.as_deref() == Some(lower.as_str()) {
                return Some(s.index);
            }
        }
        name.parse::<usize>().ok().filter(|i| *i < before)
    }

    async fn stage_image(&self, index: usize) -> Result<ImageRecord> {
        let Some(rx) = self.results.get(&index) else {
            return Err(
                BuildError::Invalid(format!("stage {index} is not part of this build")).into(),
            );
        };
        let mut rx = rx.clone();
        loop {
            if let Some(r) = rx.borrow_and_update().clone() {
                return r
                    .map_err(|e| BuildError::Invalid(format!("stage {index} failed: {e}")).into());
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return Err(BuildError::Cancelled.into());
                    }
                }
                () = self.cancel.cancelled() => return Err(BuildError::Cancelled.into()),
            }
        }
    }

    /// The image `name`, from the store, pulled when missing or asked.
    async fn image(&self, name: &str) -> Result<ImageRecord> {
        use crate::image::progress::Progress;
        use crate::image::pull::{self, Platform};
        use crate::image::reference::ImageRef;
        let engine = &self.engine;
        // A pinned image is the one at its locked digest, whatever the tag
        // names today.
        let name = self.request.pinned.get(name).map_or(name, String::as_str);
        if !self.request.pull
            && let Ok(found) = engine.store.resolve(name)
        {
            return Ok(found);
        }
        if self.request.dry_run {
            return Err(
                BuildError::Invalid(format!("the base image {name} is not here yet")).into(),
            );
        }
        let r = ImageRef::parse(name)?;
        let auth = engine.registries.auth(&r, None);
        let pulled = async {
            let resolved = pull::resolve(&engine.registries, &r, &Platform::host(), &auth).await?;
            pull::fetch(&engine.store, resolved, &Progress::silent()).await
        }
        .await;
        match pulled {
            Ok(img) => Ok(img),
            // Without a registry, a present image still builds.
            Err(e) => engine.store.resolve(name).map_err(|_| e),
        }
    }
}

/// The config object of an image (`{}` for none).
fn config_of(engine: &Engine, image: &ImageRecord) -> Value {
    engine
        .store
        .read_blob(&image.id)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("config").cloned())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}))
}

fn env_list(config: &Value) -> Vec<String> {
    config
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn env_get(config: &Value, key: &str) -> Option<String> {
    env_list(config).into_iter().find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

fn env_set(config: &mut Value, key: &str, value: &str) {
    let mut list = env_list(config);
    list.retain(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) != key);
    list.push(format!("{key}={value}"));
    config["Env"] = json!(list);
}

fn duration_ns(d: Option<std::time::Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Runs the build. Its steps' images are build cache written without an
/// fsync each; the records are saved durably once, when it ends (failed
/// or not), before the result is reported.
pub async fn build(
    engine: &Arc<Engine>,
    request: BuildRequest,
    options: BuildOptions,
    events: UnboundedSender<BuildEvent>,
    cancel: Cancel,
) -> Result<String> {
    let t = Instant::now();
    let built = build_steps(engine, request, options, events, cancel).await;
    tracing::debug!(
        ms = t.elapsed().as_millis() as u64,
        "build timing: steps done"
    );
    let store = Arc::clone(&engine.store);
    let flushed = tokio::task::spawn_blocking(move || store.flush())
        .await
        .map_err(|e| BuildError::Invalid(format!("save the build cache: {e}")));
    tracing::debug!(ms = t.elapsed().as_millis() as u64, "build timing: saved");
    let id = built?;
    flushed??;
    Ok(id)
}

async fn build_steps(
    engine: &Arc<Engine>,
    request: BuildRequest,
    options: BuildOptions,
    events: UnboundedSender<BuildEvent>,
    cancel: Cancel,
) -> Result<String> {
    let name = if request.dockerfile_name.is_empty() {
        "Dockerfile".to_string()
    } else {
        request.dockerfile_name.clone()
    };
    let df = servin_dockerfile::parse(&name, &request.dockerfile)
        .map_err(|e| dockerfile_error(&e, &name))?;
    let index = engine
        .builder
        .contexts
        .get(&request.context)?
        .ok_or_else(|| BuildError::UnknownContext(request.context.clone()))?;
    let host = crate::image::pull::Platform::host();
    let plan = servin_dockerfile::plan(
        &df,
        &request.build_args,
        request.target.as_deref(),
        servin_dockerfile::Platform {
            os: host.os.clone(),
            arch: host.architecture.clone(),
            variant: host.variant.clone(),
        },
    )
    .map_err(|e| dockerfile_error(&e, &name))?;
    let needed: Vec<usize> = plan.stages.iter().map(|s| s.index).collect();
    // A stage for another platform cannot run here: refused, not built
    // for the host's platform instead.
    let host_platform = match &host.variant {
        Some(v) => format!("{}/{}/{v}", host.os, host.architecture),
        None => format!("{}/{}", host.os, host.architecture),
    };
    for s in &plan.stages {
        if let Some(p) = s.platform.as_deref().filter(|p| !p.is_empty()) {
            let asked = crate::image::pull::Platform::parse(p).map_err(|_| {
                span_error(
                    &df,
                    &df.stages[s.index].from.span,
                    "servin::dockerfile::platform",
                    format!("invalid platform {p:?}"),
                )
            })?;
            if asked.os != host.os || asked.architecture != host.architecture {
                return Err(span_error(
                    &df,
                    &df.stages[s.index].from.span,
                    "servin::dockerfile::platform",
                    format!(
                        "stage for platform {p} cannot be built on this {host_platform} engine: servin builds for the engine's own platform"
                    ),
                ));
            }
        }
    }
    let global_args = plan.global_args.clone();
    let mut first_number = HashMap::new();
    let mut total_steps = 0;
    for i in &needed {
        first_number.insert(*i, total_steps + 1);
        total_steps += 1 + df.stages[*i].instructions.len();
    }
    let mut senders = HashMap::new();
    let mut results = HashMap::new();
    for i in &needed {
        let (tx, rx) = watch::channel::<StageResult>(None);
        senders.insert(*i, tx);
        results.insert(*i, rx);
    }
    let (local_cancel, local_handle) = Cancel::new();
    let handle = Arc::new(local_handle);
    {
        let handle = Arc::clone(&handle);
        let outer = cancel.clone();
        tokio::spawn(async move {
            outer.cancelled().await;
            handle.cancel();
        });
    }
    let build_id = crate::state::new_id()?;
    let identity = format!("{}\0{}", name, request.tags.join(","));
    let shared = Arc::new(Shared {
        engine: Arc::clone(engine),
        df,
        request,
        options,
        index,
        events,
        cancel: local_cancel,
        build_id,
        identity,
        global_args,
        results,
        first_number,
        total_steps,
        removals: std::sync::Mutex::default(),
    });
    let mut tasks = Vec::new();
    for i in &needed {
        let shared = Arc::clone(&shared);
        let Some(tx) = senders.remove(i) else {
            continue;
        };
        let handle = Arc::clone(&handle);
        let index = *i;
        tasks.push((
            index,
            tokio::spawn(async move {
                let r = run_stage(&shared, index).await;
                let sent = match &r {
                    Ok(img) => Ok(img.clone()),
                    Err(e) => {
                        // One failed stage stops the others.
                        handle.cancel();
                        Err(e.full_message())
                    }
                };
                let _ = tx.send(Some(sent));
                r
            }),
        ));
    }
    let target = *needed
        .last()
        .ok_or_else(|| BuildError::Invalid("nothing to build".into()))?;
    let mut final_image = None;
    let mut first_error: Option<Error> = None;
    for (index, task) in tasks {
        match task.await {
            Ok(Ok(img)) if index == target => final_image = Some(img),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                // The first real failure wins over the cancellations it caused.
                let replace = match &first_error {
                    None => true,
                    Some(Error::Build(BuildError::Cancelled)) => {
                        !matches!(e, Error::Build(BuildError::Cancelled))
                    }
                    Some(_) => false,
                };
                if replace {
                    first_error = Some(e);
                }
            }
            Err(e) => {
                first_error
                    .get_or_insert(BuildError::Invalid(format!("a stage task failed: {e}")).into());
            }
        }
    }
    let removals = std::mem::take(
        &mut *shared
            .removals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    for r in removals {
        let _ = r.await;
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let mut image =
        final_image.ok_or_else(|| BuildError::Invalid("the target stage made no image".into()))?;
    let unused = plan.unused_args.clone();
    if !unused.is_empty() {
        shared.send(BuildEvent::Warning {
            message: format!(
                "One or more build-args [{}] were not consumed",
                unused.join(" ")
            ),
        });
    }
    if shared.request.dry_run {
        shared.send(BuildEvent::Built {
            id: image.id.clone(),
            tags: Vec::new(),
        });
        return Ok(image.id);
    }
    if !shared.request.labels.is_empty() {
        let mut config = config_of(engine, &image);
        for (k, v) in &shared.request.labels {
            config["Labels"][k] = json!(v);
        }
        let store = Arc::clone(&engine.store);
        let parent = image.clone();
        let created_by = format!(
            "LABEL {}",
            shared
                .request
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        image = tokio::task::spawn_blocking(move || {
            let gc = store.gc_lock.blocking_read();
            new_cache_image(
                &store,
                Some(&parent),
                None,
                config,
                History {
                    created_by,
                    comment: Some("buildkit.dockerfile.v0".to_string()),
                    author: None,
                    empty_layer: true,
                },
                &gc,
            )
        })
        .await
        .map_err(|e| BuildError::Invalid(format!("make the image: {e}")))??;
    }
    let mut tags = Vec::new();
    for t in &shared.request.tags {
        let r = crate::image::reference::ImageRef::parse(t)?;
        tags.push(r.tagged().unwrap_or_else(|| t.clone()));
    }
    // One save of the store for the build's cache records, the image and
    // its tags, before the result is reported.
    let store = Arc::clone(&engine.store);
    let (id, named) = (image.id.clone(), tags.clone());
    tokio::task::spawn_blocking(move || store.finish_build(&id, &named))
        .await
        .map_err(|e| BuildError::Invalid(format!("save the built image: {e}")))??;
    for full in &tags {
        engine.store.image_event("tag", full, full, Some(&image.id));
    }
    shared.send(BuildEvent::Built {
        id: image.id.clone(),
        tags,
    });
    Ok(image.id)
}

/// One stage's running state.
struct StageState {
    image: Option<ImageRecord>,
    config: Value,
    /// Args in scope, with their values.
    args: BTreeMap<String, String>,
    /// Whether `CMD` was set in this stage (an `ENTRYPOINT` then keeps it).
    cmd_here: bool,
}

impl StageState {
    fn lookup(&self, name: &str) -> Option<String> {
        env_get(&self.config, name).or_else(|| self.args.get(name).cloned())
    }

    fn workdir(&self) -> String {
        self.config
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    fn shell(&self) -> Vec<String> {
        self.config
            .get("Shell")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string()])
    }

    fn parent_id(&self) -> String {
        self.image
            .as_ref()
            .map_or_else(|| "scratch".to_string(), |i| i.id.clone())
    }
}

async fn run_stage(shared: &Arc<Shared>, index: usize) -> Result<ImageRecord> {
    let stage = shared.df.stages[index].clone();
    let stage_name = shared.stage_name(&stage);
    let total = stage.instructions.len() + 1;
    let first = shared.first_number.get(&index).copied().unwrap_or(1);
    let at = |step: usize| StepRef {
        stage: stage_name.clone(),
        step,
        total,
    };
    // FROM
    let from_word = servin_dockerfile::expand(&stage.from.image, shared.df.escape, &|k| {
        shared.global_args.get(k).cloned()
    })
    .map_err(|e| {
        span_error(
            &shared.df,
            &stage.from.span,
            "servin::dockerfile::bad-from",
            e.to_string(),
        )
    })?;
    shared.send(BuildEvent::Step {
        at: at(1),
        instruction: shared
            .df
            .source
            .get(stage.from.span.clone())
            .unwrap_or("FROM")
            .trim()
            .to_string(),
        number: first,
        of: shared.total_steps,
    });
    let started = Instant::now();
    let base: Option<ImageRecord> = if from_word.eq_ignore_ascii_case("scratch") {
        None
    } else if let Some(dep) = shared.find_stage(&from_word, index) {
        Some(shared.stage_image(dep).await?)
    } else {
        Some(shared.image(&from_word).await.map_err(|e| {
            if shared.request.dry_run {
                BuildError::WouldBuild {
                    at: at(1),
                    reason: format!("the base image {from_word} is pulled first"),
                }
            } else {
                BuildError::Step {
                    at: at(1),
                    instruction: format!("FROM {from_word}"),
                    message: e.full_message(),
                }
            }
        })?)
    };
    let mut state = StageState {
        config: base
            .as_ref()
            .map(|b| config_of(&shared.engine, b))
            .unwrap_or_else(|| json!({})),
        image: base,
        args: BTreeMap::new(),
        cmd_here: false,
    };
    match &state.image {
        Some(img) => shared.send(BuildEvent::Done {
            at: at(1),
            millis: started.elapsed().as_millis() as u64,
            image: img.id.clone(),
        }),
        None => shared.send(BuildEvent::Done {
            at: at(1),
            millis: 0,
            image: "scratch".to_string(),
        }),
    }
    // ONBUILD triggers of the base run first, then leave the config.
    let triggers: Vec<String> = state
        .config
        .get("OnBuild")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if !triggers.is_empty() {
        state.config["OnBuild"] = Value::Null;
        let text = format!("FROM scratch\n{}\n", triggers.join("\n"));
        let parsed = servin_dockerfile::parse("ONBUILD", &text).map_err(|e| BuildError::Step {
            at: at(1),
            instruction: "ONBUILD".to_string(),
            message: format!("a trigger of the base image is invalid: {}", e.message()),
        })?;
        for (i, ins) in parsed
            .stages
            .iter()
            .flat_map(|s| s.instructions.iter())
            .enumerate()
        {
            step(shared, &mut state, ins, &at(1), i, &stage_name).await?;
        }
    }
    for (i, ins) in stage.instructions.iter().enumerate() {
        if shared.cancel.is_cancelled() {
            return Err(BuildError::Cancelled.into());
        }
        let here = at(i + 2);
        shared.send(BuildEvent::Step {
            at: here.clone(),
            instruction: ins.original.clone(),
            number: first + i + 1,
            of: shared.total_steps,
        });
        step(shared, &mut state, ins, &here, 1000 + i, &stage_name).await?;
    }
    // A stage of only metadata on scratch ends with an image with no layer.
    ensure_image(shared, &mut state).await
}

/// What a step does once its inputs are known.
enum Work {
    /// Only the config changes.
    Meta { created_by: String },
    /// A command runs.
    Run {
        spec: RunSpec,
        created_by: String,
        secrets: Vec<PathBuf>,
        locks: Vec<tokio::sync::OwnedMutexGuard<()>>,
        temp_dirs: Vec<PathBuf>,
    },
    /// Files are copied.
    Copy {
        job: CopyJob,
        from: Option<ImageRecord>,
        created_by: String,
    },
}

fn expand_err(shared: &Shared, ins: &Instruction, e: impl std::fmt::Display) -> Error {
    span_error(
        &shared.df,
        &ins.span,
        "servin::dockerfile::expansion",
        e.to_string(),
    )
}

fn command_argv(state: &StageState, c: &Command) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut argv = state.shell();
            argv.push(s.clone());
            argv
        }
    }
}

async fn step(
    shared: &Arc<Shared>,
    state: &mut StageState,
    ins: &Instruction,
    at: &StepRef,
    position: usize,
    stage_name: &str,
) -> Result<()> {
    let started = Instant::now();
    let esc = shared.df.escape;
    let mut used: Vec<String> = Vec::new();
    macro_rules! ex {
        ($w:expr) => {{
            let st = &*state;
            let r = servin_dockerfile::expand_tracked($w, esc, &|k| st.lookup(k))
                .map_err(|e| expand_err(shared, ins, e))?;
            used.extend(r.used.iter().cloned());
            r
        }};
    }
    let mut config = state.config.clone();
    let work = match &ins.kind {
        InstructionKind::Env(pairs) => {
            for (k, v) in pairs {
                let value = ex!(v).value;
                env_set(&mut config, k, &value);
                // Later pairs of the same ENV see earlier ones.
                state.config = config.clone();
            }
            Work::Meta {
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::Arg(decls) => {
            for d in decls {
                let value = if let Some(v) = shared.request.build_args.get(&d.name) {
                    Some(v.clone())
                } else if let Some(def) = &d.default {
                    Some(ex!(def).value)
                } else {
                    shared.global_args.get(&d.name).cloned()
                };
                if let Some(v) = value {
                    state.args.insert(d.name.clone(), v);
                } else {
                    state.args.remove(&d.name);
                }
            }
            Work::Meta {
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::Workdir(w) => {
            let w = ex!(w).value;
            let joined = if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", state.workdir().trim_end_matches('/'))
            };
            let clean = crate::container::archive_tar::clean(&joined);
            config["WorkingDir"] = json!(clean);
            // The folder is made when missing, as a layer.
            Work::Copy {
                job: CopyJob {
                    sources: Vec::new(),
                    heredocs: Vec::new(),
                    dest: clean,
                    dest_is_dir: true,
                    owner: None,
                    chmod: None,
                    extract_archives: false,
                    urls: Vec::new(),
                },
                from: None,
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::User(u) => {
            config["User"] = json!(ex!(u).value);
            Work::Meta {
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::Cmd(c) => {
            config["Cmd"] = json!(command_argv(state, c));
            state.cmd_here = true;
            Work::Meta {
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::Entrypoint(c) => {
            config["Entrypoint"] = json!(command_argv(state, c));
            if !state.cmd_here {
                config["Cmd"] = Value::Null;
            }
            Work::Meta {
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::Expose(ports) => {
            for p in ports {
                for word in ex!(p).words {
                    let spec = if word.contains('/') {
                        word.to_ascii_lowercase()
                    } else {
                        format!("{word}/tcp")
                    };
                    config["ExposedPorts"][spec] = json!({});
                }
            }
            Work::Meta {
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::Label(pairs) => {
            for (k, v) in pairs {
                let k = ex!(k).value;
                let v = ex!(v).value;
                config["Labels"][k] = json!(v);
            }
            Work::Meta {
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::Volume(paths) => {
            for p in paths {
                for word in ex!(p).words {
                    config["Volumes"][word] = json!({});
                }
            }
            Work::Meta {
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::StopSignal(s) => {
            config["StopSignal"] = json!(ex!(s).value);
            Work::Meta {
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::Healthcheck(h) => {
            config["Healthcheck"] = match h {
                Healthcheck::None => json!({ "Test": ["NONE"] }),
                Healthcheck::Cmd {
                    command,
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                } => {
                    let test: Vec<String> = match command {
                        Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                        Command::Exec(v) => std::iter::once("CMD".to_string())
                            .chain(v.iter().cloned())
                            .collect(),
                    };
                    let mut h = json!({ "Test": test });
                    for (k, d) in [
                        ("Interval", interval),
                        ("Timeout", timeout),
                        ("StartPeriod", start_period),
                        ("StartInterval", start_interval),
                    ] {
                        if let Some(ns) = duration_ns(*d) {
                            h[k] = json!(ns);
                        }
                    }
                    if let Some(r) = retries {
                        h["Retries"] = json!(r);
                    }
                    h
                }
            };
            Work::Meta {
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::Shell(argv) => {
            config["Shell"] = json!(argv);
            Work::Meta {
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::OnBuild(inner) => {
            let mut list: Vec<Value> = config
                .get("OnBuild")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            list.push(json!(inner.original));
            config["OnBuild"] = json!(list);
            Work::Meta {
                created_by: ins.original.clone(),
            }
        }
        InstructionKind::Maintainer(_) => Work::Meta {
            created_by: ins.original.clone(),
        },
        InstructionKind::Run {
            command,
            heredocs,
            mounts,
            network,
        } => {
            run_work(
                shared, state, ins, command, heredocs, mounts, *network, &mut used,
            )
            .await?
        }
        InstructionKind::Copy(c) => {
            let mut sources = Vec::new();
            for s in &c.sources {
                sources.push(ex!(s).value);
            }
            let dest_raw = ex!(&c.dest).value;
            let chown = match &c.chown {
                Some(o) => Some(ex!(o).value),
                None => None,
            };
            let chmod = match &c.chmod {
                Some(m) => Some(parse_mode(&ex!(m).value).map_err(|e| expand_err(shared, ins, e))?),
                None => None,
            };
            let from = match &c.from {
                Some(f) => {
                    let f = ex!(f).value;
                    Some(match shared.find_stage(&f, usize::MAX) {
                        Some(i) => shared.stage_image(i).await?,
                        None => shared.image(&f).await?,
                    })
                }
                None => None,
            };
            let heredocs = c
                .heredocs
                .iter()
                .map(|h| -> Result<(String, String)> {
                    let content = if h.expand {
                        ex!(&h.content).value
                    } else {
                        h.content.clone()
                    };
                    Ok((h.name.clone(), content))
                })
                .collect::<Result<Vec<_>>>()?;
            copy_work(
                shared, state, ins, sources, heredocs, dest_raw, chown, chmod, from, false,
            )?
        }
        InstructionKind::Add(a) => {
            let mut sources = Vec::new();
            let mut urls = Vec::new();
            let step_error = |message: String| -> Error {
                BuildError::Step {
                    at: at.clone(),
                    instruction: ins.original.clone(),
                    message,
                }
                .into()
            };
            for s in &a.sources {
                let s = ex!(s).value;
                if fetch::is_http(&s) {
                    urls.push(s);
                    continue;
                }
                if s.contains("://") || s.starts_with("git@") {
                    return Err(step_error(format!(
                        "ADD from a git repository ({s}) is not supported by servin's builder: clone it in a RUN step"
                    )));
                }
                sources.push(s);
            }
            let checksum = match &a.checksum {
                Some(c) => {
                    let c = ex!(c).value;
                    if urls.len() != 1 || !sources.is_empty() || !a.heredocs.is_empty() {
                        return Err(step_error(
                            "ADD --checksum applies to one source, an http(s) URL".to_string(),
                        ));
                    }
                    Some(fetch::parse_checksum(&c).map_err(step_error)?)
                }
                None => None,
            };
            let urls: Vec<fetch::UrlSource> = urls
                .into_iter()
                .map(|url| fetch::UrlSource {
                    url,
                    checksum: checksum.clone(),
                    fetched: None,
                })
                .collect();
            let dest_raw = ex!(&a.dest).value;
            let chown = match &a.chown {
                Some(o) => Some(ex!(o).value),
                None => None,
            };
            let chmod = match &a.chmod {
                Some(m) => Some(parse_mode(&ex!(m).value).map_err(|e| expand_err(shared, ins, e))?),
                None => None,
            };
            let heredocs = a
                .heredocs
                .iter()
                .map(|h| -> Result<(String, String)> {
                    let content = if h.expand {
                        ex!(&h.content).value
                    } else {
                        h.content.clone()
                    };
                    Ok((h.name.clone(), content))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut work = copy_work(
                shared, state, ins, sources, heredocs, dest_raw, chown, chmod, None, true,
            )?;
            if let Work::Copy { job, .. } = &mut work {
                job.urls = urls;
            }
            work
        }
    };
    // The cache key.
    let mut inputs = Inputs {
        parent: state.parent_id(),
        instruction: format!("{:?}", normalised(&ins.kind)),
        ..Inputs::default()
    };
    for u in &used {
        if let Some(v) = state.args.get(u) {
            inputs.args.insert(u.clone(), v.clone());
        }
    }
    let mut work = work;
    match &work {
        Work::Run { .. } => {
            // A RUN sees every arg in scope as its environment.
            for (k, v) in &state.args {
                if !PROXY_ARGS.contains(&k.as_str()) {
                    inputs.args.insert(k.clone(), v.clone());
                }
            }
            inputs.extra.insert("config".into(), config.to_string());
        }
        Work::Copy { job, from, .. } => {
            inputs.extra.insert("dest".into(), job.dest.clone());
            if let Some(o) = job.owner {
                inputs
                    .extra
                    .insert("owner".into(), format!("{}:{}", o.0, o.1));
            }
            if let Some(f) = from {
                inputs.extra.insert("from".into(), f.id.clone());
            } else {
                // Every selected entry by reference, then one compact
                // list of their identities (path order, each path once).
                let mut selected: Vec<&servin_buildctx::Entry> = Vec::new();
                for src in &job.sources {
                    let sels = shared.index.select(src).map_err(|e| {
                        span_error(
                            &shared.df,
                            &ins.span,
                            "servin::dockerfile::copy-source",
                            e.to_string(),
                        )
                    })?;
                    for sel in sels {
                        selected.extend(sel.entries);
                    }
                }
                inputs.sources = SourceList::of_entries(selected);
            }
            for (n, c) in &job.heredocs {
                inputs.extra.insert(format!("heredoc {n}"), c.clone());
            }

            inputs.extra.insert("config".into(), config.to_string());
        }
        Work::Meta { .. } => {
            inputs.extra.insert("config".into(), config.to_string());
        }
    }
    // A URL counts by its checksum when given (nothing downloaded
    // on a hit), else by its content, downloaded now.
    if let Work::Copy { job, .. } = &mut work {
        for u in &mut job.urls {
            let id = match &u.checksum {
                Some(c) => c.clone(),
                None => {
                    let path = shared.engine.builder.temp_path("url");
                    let got = fetch::fetch(&u.url, &path, None).await.map_err(|e| {
                        Error::from(BuildError::Step {
                            at: at.clone(),
                            instruction: ins.original.clone(),
                            message: e,
                        })
                    })?;
                    let d = got.digest.clone();
                    u.fetched = Some(got);
                    d
                }
            };
            inputs.extra.insert(format!("url {}", u.url), id);
        }
    }
    // What was downloaded for the key goes when the step ends.
    let _downloads = RemoveOnDrop(match &work {
        Work::Copy { job, .. } => job
            .urls
            .iter()
            .filter_map(|u| u.fetched.as_ref().map(|f| f.path.clone()))
            .collect(),
        _ => Vec::new(),
    });
    let key = inputs.key();
    tracing::debug!(step = %at, ms = started.elapsed().as_millis() as u64, "build timing: inputs and key");
    let slot_id = slot(&shared.identity, stage_name, position);
    let builder = &shared.engine.builder;
    if !shared.request.no_cache
        && let Some(id) = builder.cache.get(&key)
        && let Some(img) = shared.engine.store.image(&id)
    {
        shared.send(BuildEvent::Cached {
            at: at.clone(),
            image: img.id.clone(),
        });
        state.config = config_of(&shared.engine, &img);
        state.image = Some(img);
        release(work);
        return Ok(());
    }
    let reason = if shared.request.no_cache {
        "--no-cache".to_string()
    } else {
        inputs.why_not(builder.cache.last_run(&slot_id).as_deref())
    };
    tracing::debug!(step = %at, ms = started.elapsed().as_millis() as u64, "build timing: why it runs");
    if shared.request.dry_run {
        release(work);
        return Err(BuildError::WouldBuild {
            at: at.clone(),
            reason,
        }
        .into());
    }
    shared.send(BuildEvent::Reason {
        at: at.clone(),
        reason,
    });
    let shape = inputs.shape();
    let reuse = match &work {
        Work::Copy {
            job, from: None, ..
        } if !shared.request.no_cache && job.redone_as_changes() => builder
            .cache
            .last_copy(&slot_id)
            .filter(|r| r.shape == shape && r.parent == inputs.parent)
            // Too many layers of changes: all the changes since the full
            // copy go onto it again as one layer (a full copy when it is
            // gone).
            .and_then(|r| {
                if r.deltas < MAX_DELTAS {
                    Some(r)
                } else {
                    r.rebased()
                }
            })
            .and_then(|record| {
                let image = shared.engine.store.image(&record.image)?;
                // What the previous run gave, if kept; else its context,
                // to work that out from.
                let old = builder.copy_result(&slot_id, &record.context);
                let before = match old {
                    Some(_) => None,
                    None => Some(builder.contexts.get(&record.context).ok()??),
                };
                Some(Reuse {
                    record,
                    image,
                    before,
                    old,
                    slot: slot_id.clone(),
                })
            }),
        _ => None,
    };
    tracing::debug!(step = %at, ms = started.elapsed().as_millis() as u64, "build timing: previous copy found");
    let (image, copied) = execute(shared, state, ins, at, work, config, reuse).await?;
    tracing::debug!(step = %at, ms = started.elapsed().as_millis() as u64, "build timing: executed");
    builder.cache.put(&key, &image.id)?;
    if let Some(c) = copied {
        if let Some(flat) = c.flat {
            builder.keep_copy_result(&slot_id, &shared.request.context, flat);
        }
        builder.cache.remember_copy(
            &slot_id,
            &CopyRecord {
                shape,
                parent: inputs.parent.clone(),
                image: image.id.clone(),
                context: shared.request.context.clone(),
                dest_was_dir: c.dest_was_dir,
                deltas: c.deltas,
                base: c.base,
            },
        )?;
    }
    builder.cache.remember(&slot_id, inputs)?;
    tracing::debug!(step = %at, ms = started.elapsed().as_millis() as u64, "build timing: recorded");
    shared.send(BuildEvent::Done {
        at: at.clone(),
        millis: started.elapsed().as_millis() as u64,
        image: image.id.clone(),
    });
    state.config = config_of(&shared.engine, &image);
    state.image = Some(image);
    Ok(())
}

/// Releases what a step prepared and did not use (a cache hit).
fn release(work: Work) {
    if let Work::Run {
        secrets, temp_dirs, ..
    } = work
    {
        for s in secrets {
            let _ = std::fs::remove_file(s);
        }
        for d in temp_dirs {
            crate::runtime::rootfs::unmount_all_under(&d);
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// The instruction in a form for the cache key: its kind and operands as
/// written (expansion results go in through the config and the args).
fn normalised(kind: &InstructionKind) -> String {
    match kind {
        InstructionKind::Run {
            command,
            heredocs,
            mounts,
            network,
        } => format!(
            "RUN {command:?} {:?} {mounts:?} {network:?}",
            heredocs
                .iter()
                .map(|h| (&h.name, &h.content, h.expand))
                .collect::<Vec<_>>()
        ),
        InstructionKind::Copy(c) => format!(
            "COPY {:?} {:?} {:?} {:?} {:?} {:?}",
            c.sources,
            c.dest,
            c.from,
            c.chown,
            c.chmod,
            c.heredocs
                .iter()
                .map(|h| (&h.name, &h.content))
                .collect::<Vec<_>>()
        ),
        InstructionKind::Add(a) => format!(
            "ADD {:?} {:?} {:?} {:?} {:?}",
            a.sources,
            a.dest,
            a.chown,
            a.chmod,
            a.heredocs
                .iter()
                .map(|h| (&h.name, &h.content))
                .collect::<Vec<_>>()
        ),
        other => format!("{other:?}"),
    }
}

fn parse_mode(s: &str) -> std::result::Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("invalid --chmod {s:?}: give an octal mode such as 0755"))
}

/// Resolves `--chown` in the image's `/etc/passwd` and `/etc/group`.
fn resolve_owner(root: &std::path::Path, chown: &str) -> std::result::Result<(u32, u32), String> {
    let r = crate::runtime::user::resolve(root, chown).map_err(|e| e.full_message())?;
    Ok((r.uid, r.gid))
}

#[allow(clippy::too_many_arguments)]
fn copy_work(
    shared: &Shared,
    state: &StageState,
    ins: &Instruction,
    sources: Vec<String>,
    heredocs: Vec<(String, String)>,
    dest_raw: String,
    chown: Option<String>,
    chmod: Option<u32>,
    from: Option<ImageRecord>,
    add: bool,
) -> Result<Work> {
    let dest_is_dir = dest_raw.ends_with('/') || dest_raw.ends_with("/.") || dest_raw == ".";
    let joined = if dest_raw.starts_with('/') {
        dest_raw
    } else {
        format!("{}/{dest_raw}", state.workdir().trim_end_matches('/'))
    };
    let dest = crate::container::archive_tar::clean(&joined);
    if from.is_none() {
        // A missing source is a Dockerfile error at the instruction.
        for src in &sources {
            shared.index.select(src).map_err(|e| {
                span_error(
                    &shared.df,
                    &ins.span,
                    "servin::dockerfile::copy-source",
                    e.to_string(),
                )
            })?;
        }
    }
    Ok(Work::Copy {
        job: CopyJob {
            sources,
            heredocs,
            dest,
            dest_is_dir,
            owner: None,
            chmod,
            extract_archives: add,
            urls: Vec::new(),
        },
        from,
        created_by: match chown {
            // Resolved against the step's root when it runs.
            Some(c) => format!("{}\u{0}{c}", ins.original),
            None => ins.original.clone(),
        },
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_work(
    shared: &Arc<Shared>,
    state: &StageState,
    ins: &Instruction,
    command: &Command,
    heredocs: &[servin_dockerfile::Heredoc],
    mounts: &[RunMount],
    network: RunNetwork,
    used: &mut Vec<String>,
) -> Result<Work> {
    let esc = shared.df.escape;
    let ex = |w: &str, used: &mut Vec<String>| -> Result<String> {
        let r = servin_dockerfile::expand_tracked(w, esc, &|k| state.lookup(k))
            .map_err(|e| expand_err(shared, ins, e))?;
        used.extend(r.used.iter().cloned());
        Ok(r.value)
    };
    let mut temp_dirs = Vec::new();
    let mut secrets = Vec::new();
    let mut locks = Vec::new();
    let mut out_mounts = Vec::new();
    let mut env = env_list(&state.config);
    for (k, v) in &state.args {
        if env_get(&state.config, k).is_none() {
            env.push(format!("{k}={v}"));
        }
    }
    let builder = &shared.engine.builder;
    let abs = |t: String| -> String {
        if t.starts_with('/') {
            t
        } else {
            format!("{}/{t}", state.workdir().trim_end_matches('/'))
        }
    };
    let bind = |source: PathBuf, target: String, read_only: bool| Mount {
        target: Some(target),
        source: Some(source.display().to_string()),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        bind_options: Some(MountBindOptions {
            create_mountpoint: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    for m in mounts {
        match m {
            RunMount::Cache {
                target,
                id,
                sharing,
                from,
                source,
                mode,
                uid,
                gid,
                readonly,
            } => {
                if from.is_some() || source.is_some() {
                    return Err(span_error(
                        &shared.df,
                        &ins.span,
                        "servin::dockerfile::cache-from",
                        "a cache mount seeded `from` a stage or image is not supported by servin's builder".to_string(),
                    ));
                }
                let target = abs(ex(target, used)?);
                let id = ex(id, used)?;
                let id = if id.is_empty() { target.clone() } else { id };
                let mut dir = builder.cache_mount_dir(&id);
                match sharing {
                    CacheSharing::Shared => {}
                    CacheSharing::Locked => locks.push(builder.cache_lock(&id).lock_owned().await),
                    CacheSharing::Private => match builder.cache_lock(&id).try_lock_owned() {
                        Ok(g) => locks.push(g),
                        Err(_) => {
                            dir = builder.temp_path("cache");
                            temp_dirs.push(dir.clone());
                        }
                    },
                }
                if !dir.exists() {
                    std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
                    let mode = match mode {
                        Some(m) => {
                            parse_mode(&ex(m, used)?).map_err(|e| expand_err(shared, ins, e))?
                        }
                        None => 0o755,
                    };
                    let num = |v: &Option<String>, used: &mut Vec<String>| -> Result<u32> {
                        match v {
                            None => Ok(0),
                            Some(s) => {
                                let s = ex(s, used)?;
                                s.parse::<u32>().map_err(|_| {
                                    expand_err(
                                        shared,
                                        ins,
                                        format!("invalid uid/gid {s:?} of a cache mount"),
                                    )
                                })
                            }
                        }
                    };
                    let (u, g) = (num(uid, used)?, num(gid, used)?);
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
                        .map_err(Error::io("chmod", &dir))?;
                    std::os::unix::fs::chown(&dir, Some(u), Some(g))
                        .map_err(Error::io("chown", &dir))?;
                }
                out_mounts.push(bind(dir, target, *readonly));
            }
            RunMount::Secret {
                id,
                target,
                required,
                mode,
                uid,
                gid,
                env: env_name,
            } => {
                let id = ex(id, used)?;
                let Some(secret) = shared.request.secrets.iter().find(|s| s.id == id) else {
                    if *required {
                        return Err(BuildError::Invalid(format!(
                            "secret {id} is required by {} but was not given (--secret id={id},src=FILE)",
                            ins.original
                        ))
                        .into());
                    }
                    continue;
                };
                use base64::Engine as _;
                let data = base64::engine::general_purpose::STANDARD
                    .decode(&secret.data)
                    .map_err(|e| {
                        BuildError::Invalid(format!("secret {id}: malformed data: {e}"))
                    })?;
                if let Some(name) = env_name {
                    env.push(format!(
                        "{}={}",
                        ex(name, used)?,
                        String::from_utf8_lossy(&data)
                    ));
                }
                if target.is_some() || env_name.is_none() {
                    let target = match target {
                        Some(t) => abs(ex(t, used)?),
                        None => format!("/run/secrets/{id}"),
                    };
                    let file = builder.temp_path("secret");
                    std::fs::write(&file, &data).map_err(Error::io("write", &file))?;
                    secrets.push(file.clone());
                    let mode = match mode {
                        Some(m) => {
                            parse_mode(&ex(m, used)?).map_err(|e| expand_err(shared, ins, e))?
                        }
                        None => 0o400,
                    };
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
                        .map_err(Error::io("chmod", &file))?;
                    let u = uid
                        .as_ref()
                        .map(|s| ex(s, used))
                        .transpose()?
                        .and_then(|s| s.parse().ok());
                    let g = gid
                        .as_ref()
                        .map(|s| ex(s, used))
                        .transpose()?
                        .and_then(|s| s.parse().ok());
                    std::os::unix::fs::chown(&file, Some(u.unwrap_or(0)), Some(g.unwrap_or(0)))
                        .map_err(Error::io("chown", &file))?;
                    out_mounts.push(bind(file, target, true));
                }
            }
            RunMount::Tmpfs { target, size } => {
                let target = abs(ex(target, used)?);
                let size = match size {
                    Some(s) => {
                        let s = ex(s, used)?;
                        Some(
                            crate::container::parse_size(&s)
                                .and_then(|n| i64::try_from(n).ok())
                                .ok_or_else(|| {
                                    expand_err(shared, ins, format!("invalid tmpfs size {s:?}"))
                                })?,
                        )
                    }
                    None => None,
                };
                out_mounts.push(Mount {
                    target: Some(target),
                    typ: Some(MountType::TMPFS),
                    tmpfs_options: Some(MountTmpfsOptions {
                        size_bytes: size,
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            }
            RunMount::Bind {
                target,
                source,
                from,
                readwrite,
            } => {
                let target = abs(ex(target, used)?);
                let source = match source {
                    Some(s) => ex(s, used)?,
                    None => String::new(),
                };
                let dir = builder.temp_path("bind");
                temp_dirs.push(dir.clone());
                let from_image = match from {
                    Some(f) => {
                        let f = ex(f, used)?;
                        Some(match shared.find_stage(&f, usize::MAX) {
                            Some(i) => shared.stage_image(i).await?,
                            None => shared.image(&f).await?,
                        })
                    }
                    None => None,
                };
                let src_path = match from_image {
                    Some(img) => {
                        // The image's root, writable on a throwaway upper.
                        let lower = lowers(&shared.engine, &img)?;
                        let root = dir.join("root");
                        crate::runtime::rootfs::mount_overlay_with(
                            &lower,
                            &dir.join("upper"),
                            &dir.join("work"),
                            &root,
                            true,
                        )?;
                        let clean = crate::container::archive_tar::clean(&format!("/{source}"));
                        root.join(clean.trim_start_matches('/'))
                    }
                    None => {
                        // The context's part, materialised from the content store.
                        let root = dir.join("ctx");
                        std::fs::create_dir_all(&root).map_err(Error::io("create", &root))?;
                        let job = CopyJob {
                            sources: vec![if source.is_empty() {
                                ".".to_string()
                            } else {
                                source.clone()
                            }],
                            heredocs: Vec::new(),
                            dest: "/".to_string(),
                            dest_is_dir: true,
                            owner: None,
                            chmod: None,
                            extract_archives: false,
                            urls: Vec::new(),
                        };
                        let index = Arc::clone(&shared.index);
                        let engine = Arc::clone(&shared.engine);
                        let root2 = root.clone();
                        tokio::task::spawn_blocking(move || {
                            copy::copy_into(
                                &root2,
                                &job,
                                &copy::Source::Context {
                                    index: &index,
                                    blobs: &engine.builder.contexts.blobs,
                                },
                            )
                        })
                        .await
                        .map_err(|e| BuildError::Invalid(format!("bind mount: {e}")))?
                        .map_err(|e| expand_err(shared, ins, e))?;
                        root
                    }
                };
                out_mounts.push(bind(src_path, target, !*readwrite));
            }
        }
    }
    // Here-documents: a command that is only a here-document runs it as
    // the script; otherwise the shell reads them as written.
    let argv = match command {
        Command::Shell(text) if !heredocs.is_empty() => {
            let marker_only =
                heredocs.len() == 1 && text.trim().starts_with("<<") && !text.trim().contains(' ');
            let content =
                |h: &servin_dockerfile::Heredoc, used: &mut Vec<String>| -> Result<String> {
                    if h.expand {
                        ex(&h.content, used)
                    } else {
                        Ok(h.content.clone())
                    }
                };
            if marker_only {
                let h = &heredocs[0];
                let body = content(h, used)?;
                if body.starts_with("#!") {
                    let file = builder.temp_path("heredoc");
                    std::fs::write(&file, body.as_bytes()).map_err(Error::io("write", &file))?;
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                        .map_err(Error::io("chmod", &file))?;
                    secrets.push(file.clone());
                    let target = format!("/dev/pipes/{}", h.name);
                    out_mounts.push(bind(file, target.clone(), true));
                    vec![target]
                } else {
                    let mut argv = state.shell();
                    argv.push(body);
                    argv
                }
            } else {
                let mut script = text.clone();
                for h in heredocs {
                    script.push('\n');
                    script.push_str(&h.content);
                    script.push_str(&h.name);
                }
                let mut argv = state.shell();
                argv.push(script);
                argv
            }
        }
        other => command_argv(state, other),
    };
    let network = match network {
        RunNetwork::Default => shared.options.network.clone(),
        RunNetwork::None => "none".to_string(),
        RunNetwork::Host => "host".to_string(),
    };
    let created_by = match command {
        Command::Shell(_) => format!("RUN {} # buildkit", argv.join(" ")),
        Command::Exec(_) => format!(
            "RUN {} # buildkit",
            serde_json::to_string(&argv).unwrap_or_default()
        ),
    };
    Ok(Work::Run {
        spec: RunSpec {
            image: String::new(),
            argv,
            env,
            workdir: state.workdir(),
            user: state
                .config
                .get("User")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            network,
            mounts: out_mounts,
            build_id: shared.build_id.clone(),
        },
        created_by,
        secrets,
        locks,
        temp_dirs,
    })
}

/// The snapshot folders of `image`'s layers, top first.
fn lowers(engine: &Engine, image: &ImageRecord) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for c in image.chain_ids().iter().rev() {
        out.push(engine.store.snapshot_path(c)?);
    }
    Ok(out)
}

/// Makes sure `state` has an image record (a stage on scratch gets an
/// empty one), for a step that needs a parent in the store.
async fn ensure_image(shared: &Shared, state: &mut StageState) -> Result<ImageRecord> {
    if let Some(img) = &state.image {
        return Ok(img.clone());
    }
    let store = Arc::clone(&shared.engine.store);
    let config = state.config.clone();
    let img = tokio::task::spawn_blocking(move || {
        let gc = store.gc_lock.blocking_read();
        new_cache_image(
            &store,
            None,
            None,
            config,
            History {
                created_by: String::new(),
                comment: None,
                author: None,
                empty_layer: true,
            },
            &gc,
        )
    })
    .await
    .map_err(|e| BuildError::Invalid(format!("make the image: {e}")))??;
    state.image = Some(img.clone());
    Ok(img)
}

/// A step's upper folder, ready to become a layer.
struct Pending {
    upper: PathBuf,
    lower: Vec<PathBuf>,
    parent_chain: Option<String>,
    exclude: Exclusions,
    how: Take,
}

async fn execute(
    shared: &Arc<Shared>,
    state: &mut StageState,
    ins: &Instruction,
    at: &StepRef,
    work: Work,
    config: Value,
    reuse: Option<Reuse>,
) -> Result<(ImageRecord, Option<Copied>)> {
    let engine = &shared.engine;
    let step_err = |message: String| -> Error {
        BuildError::Step {
            at: at.clone(),
            instruction: ins.original.clone(),
            message,
        }
        .into()
    };
    // Kept alive until the layer is committed: the container (removed
    // when dropped) or the scratch folder of a copy.
    let mut finished_run: Option<run::Finished> = None;
    let mut scratch: Option<PathBuf> = None;
    // The image the layer goes on: the step's parent, or the previous
    // result of a copy that writes only what changed.
    let mut layer_parent = state.image.clone();
    let mut copied: Option<Copied> = None;
    let (pending, created_by) = match work {
        Work::Meta { created_by } => (None, created_by),
        Work::Run {
            mut spec,
            created_by,
            secrets,
            locks,
            temp_dirs,
        } => {
            let base = ensure_image(shared, state).await?;
            spec.image = base.id.clone();
            let cancel = shared.cancel.clone();
            let events = shared.events.clone();
            let here = at.clone();
            let events2 = shared.events.clone();
            let here2 = at.clone();
            let finished = run::run(
                engine,
                spec,
                &cancel,
                move |id| {
                    let _ = events2.send(BuildEvent::Running {
                        at: here2,
                        container: id.to_string(),
                    });
                },
                |text| {
                    let _ = events.send(BuildEvent::Output {
                        at: here.clone(),
                        text,
                    });
                },
            )
            .await;
            for s in &secrets {
                let _ = std::fs::remove_file(s);
            }
            for d in &temp_dirs {
                crate::runtime::rootfs::unmount_all_under(d);
                let _ = std::fs::remove_dir_all(d);
            }
            drop(locks);
            let mut finished = match finished {
                Ok(f) => f,
                Err(_) if shared.cancel.is_cancelled() => return Err(BuildError::Cancelled.into()),
                Err(e) => return Err(step_err(e.full_message())),
            };
            if shared.cancel.is_cancelled() {
                return Err(BuildError::Cancelled.into());
            }
            if finished.exit_code != 0 {
                let code = finished.exit_code;
                if shared.options.keep_failed {
                    finished.keep();
                }
                shared.removing(finished.release());
                return Err(BuildError::RunFailed {
                    at: at.clone(),
                    instruction: ins.original.clone(),
                    code,
                }
                .into());
            }
            let how = if shared.options.keep_containers {
                finished.keep();
                Take::Copy
            } else {
                Take::Move
            };
            let pending = Pending {
                upper: finished.container.paths.upper(),
                lower: lowers(engine, &base)?,
                parent_chain: base.chain_ids().last().cloned(),
                exclude: Exclusions::for_container(&finished.container.record),
                how,
            };
            finished_run = Some(finished);
            (Some(pending), created_by)
        }
        Work::Copy {
            mut job,
            from,
            created_by,
        } => {
            let (chown, original) = match created_by.split_once('\u{0}') {
                Some((o, c)) => (Some(c.to_string()), o.to_string()),
                None => (None, created_by.clone()),
            };
            // URLs with a checksum are downloaded only now, on a miss; a
            // mismatch fails the step before anything is copied.
            let mut downloads = RemoveOnDrop(Vec::new());
            for u in &mut job.urls {
                if u.fetched.is_none() {
                    let path = engine.builder.temp_path("url");
                    downloads.0.push(path.clone());
                    let got = fetch::fetch(&u.url, &path, u.checksum.as_deref())
                        .await
                        .map_err(step_err)?;
                    u.fetched = Some(got);
                }
            }
            let dir = engine.builder.temp_path("copy");
            scratch = Some(dir.clone());
            let mut done = None;
            if let Some(r) = reuse {
                let tried =
                    copy_changes(shared, state, &mut job, chown.as_deref(), r, &dir, at).await;
                crate::runtime::rootfs::unmount_all_under(&dir);
                match tried {
                    Ok(Some(d)) => done = Some(d),
                    Ok(None) => {
                        // Nothing of the attempt is kept: a full copy follows.
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                    Err(e) => {
                        let _ = std::fs::remove_dir_all(&dir);
                        return Err(step_err(e));
                    }
                }
            }
            let (pending, base, outcome) = match done {
                Some(d) => d,
                None => full_copy(
                    shared,
                    state,
                    &mut job,
                    chown.as_deref(),
                    from.as_ref(),
                    &dir,
                )
                .await
                .map_err(|e| {
                    let _ = std::fs::remove_dir_all(&dir);
                    step_err(e)
                })?,
            };
            drop(downloads);
            layer_parent = base;
            copied = outcome;
            (Some(pending), original)
        }
    };
    let store = Arc::clone(&engine.store);
    let parent = layer_parent;
    let history_created_by = if created_by.starts_with("RUN ") {
        created_by
    } else {
        format!("{created_by} # buildkit")
    };
    let comment = if copied.as_ref().is_some_and(|c| c.deltas > 0) {
        CHANGES_COMMENT
    } else {
        "buildkit.dockerfile.v0"
    };
    // Layer and image under one read guard of the garbage collection, so
    // it cannot take the layer before the image holds it.
    let t = Instant::now();
    let step_at = at.to_string();
    let made = tokio::task::spawn_blocking(move || -> Result<ImageRecord> {
        let gc = store.gc_lock.blocking_read();
        let layer = match &pending {
            Some(p) => commit_upper(
                &store,
                &p.upper,
                &p.lower,
                p.parent_chain.as_deref(),
                &p.exclude,
                p.how,
                &gc,
            )?,
            None => None,
        };
        tracing::debug!(step = %step_at, ms = t.elapsed().as_millis() as u64, "build timing: layer committed");
        let empty_layer = layer.is_none();
        let img = new_cache_image(
            &store,
            parent.as_ref(),
            layer,
            config,
            History {
                created_by: history_created_by,
                comment: Some(comment.to_string()),
                author: None,
                empty_layer,
            },
            &gc,
        )?;
        Ok(img)
    })
    .await
    .map_err(|e| step_err(format!("make the image: {e}")));
    if let Some(f) = finished_run {
        shared.removing(f.release());
    }
    if let Some(dir) = scratch {
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    }
    let image = made?.map_err(|e| step_err(format!("make the image: {}", e.full_message())))?;
    Ok((image, copied))
}

/// Files removed when it goes (a step's downloads, whatever its end).
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// How many layers of changes a copy step stacks on its last full copy
/// (each is one more overlay lower) before it writes all the changes
/// since that copy onto it again as one layer.
const MAX_DELTAS: u32 = 8;

/// The history comment of a layer that holds only what changed since the
/// step's previous run (the entry above it is that run's).
pub const CHANGES_COMMENT: &str = "servin: changes since this step's previous run";

/// The previous result of a copy step, to write only the changes onto.
struct Reuse {
    record: CopyRecord,
    image: ImageRecord,
    /// The context the previous result was copied from, when `old` is not
    /// at hand.
    before: Option<Arc<ContextIndex>>,
    /// What the previous result holds, if kept from that run.
    old: Option<Arc<copy::Flat>>,
    /// The step's slot, under which its last copy's result is kept.
    slot: String,
}

/// What a copy step made, for its [`CopyRecord`].
struct Copied {
    dest_was_dir: bool,
    deltas: u32,
    base: Option<super::cache::CopyBase>,
    /// What a full copy gave, to keep for the next run (a copy of changes
    /// keeps its own as it goes).
    flat: Option<copy::Flat>,
}

/// A copy step's layer ready to commit: its upper folder, the image it
/// goes on, and what to record.
type CopyDone = (Pending, Option<ImageRecord>, Option<Copied>);

/// Copies `job` in full onto the step's parent.
async fn full_copy(
    shared: &Arc<Shared>,
    state: &StageState,
    job: &mut CopyJob,
    chown: Option<&str>,
    from: Option<&ImageRecord>,
    dir: &std::path::Path,
) -> std::result::Result<CopyDone, String> {
    let engine = &shared.engine;
    let base = state.image.clone();
    let lower = match &base {
        Some(b) => lowers(engine, b).map_err(|e| e.full_message())?,
        None => Vec::new(),
    };
    let (upper, work_dir, root) = (dir.join("upper"), dir.join("work"), dir.join("root"));
    let from_dir = dir.join("from");
    let copied = async {
        // `volatile`, as in [`copy_changes`]: no writeback of the whole
        // filesystem when unmounted.
        crate::runtime::rootfs::mount_overlay_with(&lower, &upper, &work_dir, &root, true)
            .map_err(|e| e.full_message())?;
        if let Some(c) = chown {
            job.owner = Some(resolve_owner(&root, c)?);
        }
        if let Some(img) = from {
            let l = lowers(engine, img).map_err(|e| e.full_message())?;
            crate::runtime::rootfs::mount_overlay_with(
                &l,
                &from_dir.join("upper"),
                &from_dir.join("work"),
                &from_dir.join("root"),
                true,
            )
            .map_err(|e| e.full_message())?;
        }
        let index = Arc::clone(&shared.index);
        let engine2 = Arc::clone(engine);
        let root2 = root.clone();
        let from_root = from.map(|_| from_dir.join("root"));
        let job2 = job.clone();
        // What a copy from the context gave is kept for the next run's
        // changes, when that run can be done as changes (a `WORKDIR`, say,
        // cannot: it would only take the place of a result that can).
        let keep = from.is_none() && job.redone_as_changes();
        tokio::task::spawn_blocking(move || {
            let source = match &from_root {
                Some(r) => copy::Source::Root(r),
                None => copy::Source::Context {
                    index: &index,
                    blobs: &engine2.builder.contexts.blobs,
                },
            };
            copy::copy_into_keeping(&root2, &job2, &source, keep)
        })
        .await
        .map_err(|e| format!("copy: {e}"))?
    }
    .await;
    crate::runtime::rootfs::unmount_all_under(dir);
    let (dest_was_dir, flat) = copied?;
    let pending = Pending {
        upper,
        lower,
        parent_chain: base.as_ref().and_then(|b| b.chain_ids().last().cloned()),
        exclude: Exclusions::none(),
        how: Take::Move,
    };
    let outcome = from.is_none().then_some(Copied {
        dest_was_dir,
        deltas: 0,
        base: None,
        flat,
    });
    Ok((pending, base, outcome))
}

/// Writes only what changed since the step's previous run onto that
/// run's result; `None` when a full copy is needed (nothing kept then).
/// Mounts under `dir`; the caller unmounts.
async fn copy_changes(
    shared: &Arc<Shared>,
    state: &StageState,
    job: &mut CopyJob,
    chown: Option<&str>,
    reuse: Reuse,
    dir: &std::path::Path,
    at: &StepRef,
) -> std::result::Result<Option<CopyDone>, String> {
    let engine = &shared.engine;
    let t = Instant::now();
    let lower = lowers(engine, &reuse.image).map_err(|e| e.full_message())?;
    let (upper, work_dir, root) = (dir.join("upper"), dir.join("work"), dir.join("root"));
    // `volatile`: unmounting a normal overlay syncs the whole filesystem
    // the engine's state is on, which costs a one-file change the
    // writeback of whatever else was written lately (150 ms after an
    // editor or a package manager wrote a few hundred MB). What is
    // written here is left to the kernel's writeback, as an unpacked
    // layer's is; the layer's blob is synced when committed.
    crate::runtime::rootfs::mount_overlay_with(&lower, &upper, &work_dir, &root, true)
        .map_err(|e| e.full_message())?;
    tracing::debug!(step = %at, ms = t.elapsed().as_millis() as u64, "build timing: copy onto the previous result mounted");
    // The parent's own view: `--chown` names resolve there, as in a full
    // copy, and a deleted source must not have hidden anything of it.
    let parent_root = match &state.image {
        Some(img) => {
            let l = lowers(engine, img).map_err(|e| e.full_message())?;
            let p = dir.join("parent");
            crate::runtime::rootfs::mount_overlay_with(
                &l,
                &p.join("upper"),
                &p.join("work"),
                &p.join("root"),
                true,
            )
            .map_err(|e| e.full_message())?;
            Some(p.join("root"))
        }
        None => None,
    };
    if let Some(c) = chown {
        job.owner = Some(match &parent_root {
            Some(p) => resolve_owner(p, c)?,
            None => resolve_owner(&root, c)?,
        });
    }
    let index = Arc::clone(&shared.index);
    let engine2 = Arc::clone(engine);
    let root2 = root.clone();
    let job2 = job.clone();
    let before = reuse.before.clone();
    let dest_was_dir = reuse.record.dest_was_dir;
    let old = reuse.old.clone();
    let (delta, new) = tokio::task::spawn_blocking(move || {
        let parent_fd = match &parent_root {
            Some(p) => Some(
                crate::container::archive_tar::open_root(p)
                    .map_err(|e| format!("open the parent's root: {e}"))?,
            ),
            None => None,
        };
        let in_parent = |path: &str| {
            parent_fd
                .as_ref()
                .is_some_and(|fd| crate::container::archive_tar::stat(fd, path).is_ok())
        };
        copy::copy_changes(
            &root2,
            &job2,
            &index,
            copy::Previous {
                before: before.as_deref(),
                old: old.as_deref(),
            },
            &engine2.builder.contexts.blobs,
            dest_was_dir,
            &in_parent,
        )
    })
    .await
    .map_err(|e| format!("copy: {e}"))??;
    tracing::debug!(step = %at, ms = t.elapsed().as_millis() as u64, "build timing: changes written");
    let copy::Delta::Applied { written, removed } = delta else {
        return Ok(None);
    };
    if let Some(new) = new {
        engine
            .builder
            .keep_copy_result(&reuse.slot, &shared.request.context, new);
    }
    shared.send(BuildEvent::Output {
        at: at.clone(),
        text: format!(
            "wrote {written} changed entr{}, deleted {removed} entr{}, onto this step's previous result\n",
            if written == 1 { "y" } else { "ies" },
            if removed == 1 { "y" } else { "ies" },
        ),
    });
    let pending = Pending {
        upper,
        lower,
        parent_chain: reuse.image.chain_ids().last().cloned(),
        exclude: Exclusions::none(),
        how: Take::Move,
    };
    let outcome = Copied {
        dest_was_dir,
        deltas: reuse.record.deltas + 1,
        base: reuse.record.base_for_next(),
        flat: None,
    };
    Ok(Some((pending, Some(reuse.image), Some(outcome))))
}
