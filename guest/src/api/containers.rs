//! The `/containers/...` and `/exec/...` calls, and `/events`. The handlers
//! check and answer; carrying an attach's or an exec's stdio over the
//! connection is [`super::attach`]'s and [`super::exec`]'s job.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard_stubs::models::{
    ContainerConfig, ContainerCreateResponse, ContainerInspectResponse, ContainerPruneResponse,
    ContainerState, ContainerSummary, ContainerSummaryHealth, ContainerSummaryHostConfig,
    ContainerSummaryNetworkSettings, ContainerWaitResponse, DriverData, EventMessage, ExecConfig,
    ExecInspectResponse, ExecStartConfig, HealthStatusEnum, ProcessConfig,
};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::attach::Attach;
use super::body;
use super::container_filter::{self, ContainerFilter};
use super::exec::Exec;
use super::routes::{Body, Query, empty, json, streaming, streaming_bounded, with_type};
use super::stream::{self, MULTIPLEXED, RAW, StreamKind, frame};
use crate::container::start::connect_attach;
use crate::container::wait::WaitCondition;
use crate::container::{Container, Status};
use crate::engine::Engine;
use crate::error::{ContainerError, Error, RequestError, Result};
use crate::events;
use crate::monitor::logs::{LogEntry, LogQuery, LogStream, follow_logs, read_logs};
use crate::timefmt;

/// How many pieces a streamed answer (`logs -f`, `/events`) holds while the
/// client has not read them; then what feeds it waits.
const STREAM_BUFFER: usize = 64;

/// Converts Docker's word to one of bollard's enums.
fn word<T: serde::de::DeserializeOwned>(w: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(w.to_string())).ok()
}

fn seconds(q: &Query, key: &str) -> Result<Option<i64>> {
    q.get(key)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                Error::from(RequestError::Invalid(format!(
                    "invalid {key} {v:?}: want whole seconds"
                )))
            })
        })
        .transpose()
}

/// Docker's `since`/`until`: unix seconds with an optional fraction.
fn time_param(q: &Query, key: &str) -> Result<Option<SystemTime>> {
    let Some(v) = q.get(key) else {
        return Ok(None);
    };
    let bad = || {
        Error::from(RequestError::Invalid(format!(
            "invalid {key} {v:?}: want unix seconds"
        )))
    };
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: u64 = secs.parse().map_err(|_| bad())?;
    let nanos = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}")
            .get(..9)
            .and_then(|d| d.parse::<u32>().ok())
            .ok_or_else(bad)?
    };
    if secs == 0 && nanos == 0 {
        return Ok(None);
    }
    Ok(Some(UNIX_EPOCH + Duration::new(secs, nanos)))
}

/// `POST /containers/create`.
pub async fn create(
    engine: &Arc<Engine>,
    query: &Query,
    version: Option<(u32, u32)>,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let body: super::legacy_mac::CreateBody =
        body::json_or_default(req.into_body(), "container create").await?;
    let (body, warning) = body.into_body(version)?;
    let (id, mut warnings) = engine.containers.create(query.get("name"), body)?;
    warnings.extend(warning);
    Ok(json(
        StatusCode::CREATED,
        &ContainerCreateResponse { id, warnings },
    ))
}

fn command_of(c: &Container) -> (String, Vec<String>) {
    let argv = crate::runtime::spec::command_line(&c.record.body, c.record.image_config.as_ref())
        .unwrap_or_default();
    let mut it = argv.into_iter();
    let path = it.next().unwrap_or_default();
    (path, it.collect())
}

/// Docker's human status: `Up 5 minutes (healthy)`, `Exited (0) 3 seconds ago`.
fn human_status(c: &Container) -> String {
    let s = c.state();
    let ago = |t: &str| {
        timefmt::parse_nanos(t)
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(human_duration)
            .unwrap_or_else(|| "a while".to_string())
    };
    match s.status {
        Status::Created => "Created".to_string(),
        Status::Running => {
            let health = s
                .health
                .and_then(|h| h.status)
                .map(|h| match h {
                    HealthStatusEnum::STARTING => " (health: starting)".to_string(),
                    other => format!(" ({other})"),
                })
                .unwrap_or_default();
            let paused = if s.paused { " (Paused)" } else { "" };
            format!("Up {}{health}{paused}", ago(&s.started_at))
        }
        Status::Restarting => format!("Restarting ({}) {} ago", s.exit_code, ago(&s.finished_at)),
        Status::Exited => format!("Exited ({}) {} ago", s.exit_code, ago(&s.finished_at)),
        Status::Dead => "Dead".to_string(),
        Status::Removing => "Removal In Progress".to_string(),
    }
}

/// `3 seconds`, `About a minute`, `2 hours`: Docker's wording.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".to_string(),
        1 => "1 second".to_string(),
        2..60 => format!("{s} seconds"),
        60..120 => "About a minute".to_string(),
        120..3600 => format!("{} minutes", s / 60),
        3600..7200 => "About an hour".to_string(),
        7200..172_800 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

pub(super) fn summary(engine: &Engine, c: &Container) -> ContainerSummary {
    let state = c.state();
    let (path, args) = command_of(c);
    let command = std::iter::once(path)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ");
    let created = timefmt::parse_rfc3339(&c.record.created);
    ContainerSummary {
        id: Some(c.id().to_string()),
        names: Some(vec![format!("/{}", c.name())]),
        image: Some(c.record.image_name.clone()),
        image_id: Some(c.record.image_id.clone()),
        command: Some(command),
        created,
        ports: Some(crate::container::publish::summaries(c)),
        labels: Some(c.record.labels()),
        state: word(state.docker_status()),
        status: Some(human_status(c)),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: Some(
                c.record
                    .host_config()
                    .network_mode
                    .unwrap_or_else(|| "bridge".to_string()),
            ),
            ..Default::default()
        }),
        network_settings: Some(ContainerSummaryNetworkSettings {
            networks: Some(super::networks::container_networks(engine, c)),
        }),
        health: state.health.map(|h| ContainerSummaryHealth {
            status: h.status.and_then(|s| word(s.as_ref())),
            failing_streak: h.failing_streak,
        }),
        ..Default::default()
    }
}

/// `GET /containers/json`.
pub fn list(engine: &Arc<Engine>, query: &Query) -> Result<Response<Body>> {
    let all = query.flag("all");
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|n| *n > 0);
    let filter = ContainerFilter::new(engine, query.get("filters"), container_filter::LIST_KEYS)?;
    let mut out: Vec<ContainerSummary> = engine
        .containers
        .list()
        .into_iter()
        .rev()
        .filter(|c| {
            all || c.state().status.is_running()
                || c.state().status == Status::Restarting
                // Docker lists stopped containers when a filter or a
                // limit asks for them.
                || filter.asks_for_stopped()
                || limit.is_some()
        })
        .filter(|c| filter.matches(c))
        .map(|c| summary(engine, &c))
        .collect();
    if let Some(n) = limit {
        out.truncate(n);
    }
    Ok(json(StatusCode::OK, &out))
}

/// `GET /containers/{id}/json`.
pub fn inspect(
    engine: &Arc<Engine>,
    key: &str,
    version: Option<(u32, u32)>,
) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let s = c.state();
    let (path, args) = command_of(&c);
    let body = &c.record.body;
    let mut data = HashMap::new();
    let lower: Vec<String> = c
        .record
        .layers
        .iter()
        .rev()
        .filter_map(|l| engine.store.snapshot_path(l).ok())
        .map(|p| p.display().to_string())
        .collect();
    data.insert("LowerDir".to_string(), lower.join(":"));
    data.insert(
        "UpperDir".to_string(),
        c.paths.upper().display().to_string(),
    );
    data.insert("WorkDir".to_string(), c.paths.work().display().to_string());
    data.insert(
        "MergedDir".to_string(),
        c.paths.rootfs().display().to_string(),
    );
    let mut env: Vec<String> = c
        .record
        .image_config
        .as_ref()
        .and_then(|i| i.env().clone())
        .unwrap_or_default();
    env.extend(body.env.clone().unwrap_or_default());
    let config = ContainerConfig {
        hostname: Some(
            body.hostname
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| c.id().chars().take(12).collect()),
        ),
        domainname: body.domainname.clone(),
        user: body.user.clone().or_else(|| {
            c.record
                .image_config
                .as_ref()
                .and_then(|i| i.user().clone())
        }),
        attach_stdin: body.attach_stdin,
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
        tty: body.tty,
        open_stdin: body.open_stdin,
        stdin_once: body.stdin_once,
        env: Some(env),
        cmd: body
            .cmd
            .clone()
            .or_else(|| c.record.image_config.as_ref().and_then(|i| i.cmd().clone())),
        healthcheck: body.healthcheck.clone(),
        image: Some(c.record.image_name.clone()),
        working_dir: body.working_dir.clone().or_else(|| {
            c.record
                .image_config
                .as_ref()
                .and_then(|i| i.working_dir().clone())
        }),
        entrypoint: body.entrypoint.clone().or_else(|| {
            c.record
                .image_config
                .as_ref()
                .and_then(|i| i.entrypoint().clone())
        }),
        labels: Some(c.record.labels()),
        stop_signal: body.stop_signal.clone(),
        stop_timeout: body.stop_timeout,
        ..Default::default()
    };
    let out = ContainerInspectResponse {
        id: Some(c.id().to_string()),
        created: Some(c.record.created.clone()),
        path: Some(path),
        args: Some(args),
        state: Some(ContainerState {
            status: word(s.docker_status()),
            running: Some(s.status == Status::Running),
            paused: Some(s.paused && s.status == Status::Running),
            restarting: Some(s.status == Status::Restarting),
            oom_killed: Some(s.oom_killed),
            dead: Some(s.status == Status::Dead),
            pid: Some(s.pid),
            exit_code: Some(s.exit_code),
            error: Some(s.error.clone()),
            started_at: Some(s.started_at.clone()),
            finished_at: Some(s.finished_at.clone()),
            health: s.health.clone(),
        }),
        image: Some(c.record.image_id.clone()),
        resolv_conf_path: Some(c.paths.resolv_conf().display().to_string()),
        hostname_path: Some(c.paths.hostname().display().to_string()),
        hosts_path: Some(c.paths.hosts().display().to_string()),
        log_path: Some(c.paths.log().display().to_string()),
        name: Some(format!("/{}", c.name())),
        restart_count: Some(s.restart_count),
        driver: Some("overlay".to_string()),
        platform: Some("linux".to_string()),
        mount_label: Some(String::new()),
        process_label: Some(String::new()),
        app_armor_profile: Some(String::new()),
        exec_ids: Some(engine.containers.exec_ids(c.id())).filter(|v| !v.is_empty()),
        host_config: Some({
            let mut hc = c.host_config();
            if let Some(links) = hc.links.as_mut() {
                *links = crate::container::links::inspect_form(&c.name(), links);
            }
            hc
        }),
        graph_driver: Some(DriverData {
            name: "overlay".to_string(),
            data,
        }),
        mounts: Some(crate::container::volumes::mount_points(&c, &engine.volumes)),
        config: Some(config),
        ..Default::default()
    };
    // Docker still reports the first network's address at the top of
    // NetworkSettings, which the API model no longer has.
    let mut out = serde_json::to_value(&out).map_err(Error::json("container inspect"))?;
    if let Some(map) = out.as_object_mut() {
        map.insert(
            "NetworkSettings".to_string(),
            super::networks::network_settings(engine, &c),
        );
    }
    let runtime = engine
        .containers
        .runtime()
        .map(|r| r.name.clone())
        .unwrap_or_else(|_| "runc".to_string());
    super::inspect_shape::complete(&mut out, &runtime);
    super::legacy_mac::add_to_inspect(&mut out, &c, version);
    Ok(json(StatusCode::OK, &out))
}

/// `POST /containers/{id}/start`.
pub async fn start(engine: &Arc<Engine>, key: &str) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let started = engine.containers.start(&c).await?;
    Ok(empty(if started {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    }))
}

/// `POST /containers/{id}/stop`.
pub async fn stop(engine: &Arc<Engine>, key: &str, query: &Query) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let t = seconds(query, "t")?;
    let stopped = engine.containers.stop(&c, t, query.get("signal")).await?;
    Ok(empty(if stopped {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_MODIFIED
    }))
}

/// `POST /containers/{id}/restart`.
pub async fn restart(engine: &Arc<Engine>, key: &str, query: &Query) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let t = seconds(query, "t")?;
    engine
        .containers
        .restart(&c, t, query.get("signal"))
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/kill`.
pub async fn kill(engine: &Arc<Engine>, key: &str, query: &Query) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let signal = query.get("signal").unwrap_or("KILL");
    engine.containers.kill(&c, signal).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/rename?name=NEW`: in any state, as Docker.
pub async fn rename(engine: &Arc<Engine>, key: &str, query: &Query) -> Result<Response<Body>> {
    let name = query
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Error::from(RequestError::Invalid(
                "rename: the new name is missing (name=)".to_string(),
            ))
        })?
        .to_string();
    let c = engine.containers.get(key)?;
    let containers = Arc::clone(&engine.containers);
    tokio::task::spawn_blocking(move || containers.rename(&c, &name))
        .await
        .map_err(|e| Error::Runtime {
            context: "container rename".to_string(),
            message: e.to_string(),
        })??;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/wait`: the status line goes out at once, the
/// body when the condition is met (the docker CLI waits for the headers
/// before it starts the container).
pub fn wait(engine: &Arc<Engine>, key: &str, query: &Query) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let condition = WaitCondition::parse(query.get("condition"))?;
    let (tx, rx) = mpsc::unbounded_channel();
    let containers = Arc::clone(&engine.containers);
    tokio::spawn(async move {
        let code = containers.wait(&c, condition).await;
        let body = ContainerWaitResponse {
            status_code: code,
            error: None,
        };
        if let Ok(mut bytes) = serde_json::to_vec(&body) {
            bytes.push(b'\n');
            let _ = tx.send(Bytes::from(bytes));
        }
    });
    Ok(streaming("application/json", rx))
}

/// `DELETE /containers/{id}`.
pub async fn remove(engine: &Arc<Engine>, key: &str, query: &Query) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    engine.containers.remove(&c, query.flag("force")).await?;
    if query.flag("v") {
        engine.containers.drop_anonymous_volumes(&c).await;
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/prune`: removes every stopped container.
pub async fn prune(engine: &Arc<Engine>, query: &Query) -> Result<Response<Body>> {
    let filter = ContainerFilter::new(engine, query.get("filters"), container_filter::PRUNE_KEYS)?;
    let mut deleted = Vec::new();
    let mut reclaimed: u64 = 0;
    for c in engine.containers.list() {
        let s = c.state().status;
        if matches!(s, Status::Created | Status::Exited | Status::Dead) && filter.matches(&c) {
            // What the container wrote (its overlay's upper folder) is what
            // its removal gives back, as Docker counts it.
            let upper = c.paths.upper();
            let size = tokio::task::spawn_blocking(move || crate::volume::dir_size(&upper))
                .await
                .unwrap_or(0);
            engine.containers.remove(&c, false).await?;
            reclaimed = reclaimed.saturating_add(size);
            deleted.push(c.id().to_string());
        }
    }
    Ok(json(
        StatusCode::OK,
        &ContainerPruneResponse {
            containers_deleted: Some(deleted),
            space_reclaimed: Some(i64::try_from(reclaimed).unwrap_or(i64::MAX)),
        },
    ))
}

fn log_query(query: &Query) -> Result<LogQuery> {
    let tail = match query.get("tail") {
        None | Some("all") => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            Error::from(RequestError::Invalid(format!(
                "invalid tail {n:?}: want a number or all"
            )))
        })?),
    };
    let (stdout, stderr) = (query.flag("stdout"), query.flag("stderr"));
    if !stdout && !stderr {
        return Err(Error::from(RequestError::Invalid(
            "choose at least one stream: stdout=1 or stderr=1".to_string(),
        )));
    }
    Ok(LogQuery {
        stdout,
        stderr,
        since: time_param(query, "since")?,
        until: time_param(query, "until")?,
        tail,
    })
}

fn entry_bytes(e: &LogEntry, tty: bool, timestamps: bool) -> Bytes {
    let kind = match e.stream {
        LogStream::Stdout => StreamKind::Stdout,
        LogStream::Stderr => StreamKind::Stderr,
    };
    if timestamps {
        let mut line = Vec::with_capacity(e.time.len() + 1 + e.line.len());
        line.extend_from_slice(e.time.as_bytes());
        line.push(b' ');
        line.extend_from_slice(&e.line);
        frame(kind, &line, tty)
    } else {
        frame(kind, &e.line, tty)
    }
}

/// Resolves when `c` is not running (at once if it is not).
async fn until_stopped(c: Arc<Container>) {
    let mut signals = c.signals();
    loop {
        let removed = signals.borrow_and_update().removed;
        if removed || !matches!(c.state().status, Status::Running | Status::Restarting) {
            return;
        }
        if signals.changed().await.is_err() {
            return;
        }
    }
}

/// `GET /containers/{id}/logs`.
pub fn logs(engine: &Arc<Engine>, key: &str, query: &Query) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let q = log_query(query)?;
    let tty = c.record.tty();
    let timestamps = query.flag("timestamps");
    let log = c.log_config();
    let content_type = if tty { RAW } else { MULTIPLEXED };
    if !query.flag("follow") {
        let mut out = Vec::new();
        for e in read_logs(&log, &q)? {
            out.extend_from_slice(&entry_bytes(&e, tty, timestamps));
        }
        return Ok(with_type(StatusCode::OK, content_type, Bytes::from(out)));
    }
    // Bounded both ways: a client that reads slowly stops the follower,
    // which leaves the rest in the log file until there is room.
    let (tx, mut rx) = mpsc::channel::<LogEntry>(256);
    let (out_tx, out_rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(follow_logs(log, q, tx, until_stopped(Arc::clone(&c))));
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if out_tx.send(entry_bytes(&e, tty, timestamps)).await.is_err() {
                return;
            }
        }
    });
    Ok(streaming_bounded(content_type, out_rx))
}

/// `POST /containers/{id}/attach`: output (and input) of the container,
/// from now on; before a start, from the start on.
pub fn attach(
    engine: &Arc<Engine>,
    key: &str,
    query: &Query,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let status = c.state().status;
    if status == Status::Restarting {
        return Err(ContainerError::WrongState(format!(
            "container {key} is restarting, wait until the container is running"
        ))
        .into());
    }
    if c.state().paused {
        return Err(ContainerError::Paused(format!(
            "container {key} is paused, unpause the container before attach"
        ))
        .into());
    }
    let tty = c.record.tty();
    let want_stdin = query.flag("stdin");
    let want_stdout = query.flag("stdout") || !query.flag("stderr");
    let want_stderr = query.flag("stderr") || !query.flag("stdout");
    let stdin_once = c.record.body.stdin_once.unwrap_or(false);
    let detach_keys = detach_keys(query.get("detachKeys"), tty)?;
    // `logs=1`: the whole log first, as Docker replays it.
    let history = if query.flag("logs") {
        let q = LogQuery {
            stdout: want_stdout,
            stderr: want_stderr,
            ..Default::default()
        };
        read_logs(&c.log_config(), &q)?
            .iter()
            .map(|e| entry_bytes(e, tty, false))
            .collect()
    } else {
        Vec::new()
    };
    engine
        .containers
        .events
        .container("attach", c.id(), c.attributes());
    // `stream=1`: the live output (and input) from now on. Queue before
    // answering, so a start that follows the answer connects us.
    let connect = query.flag("stream").then(|| {
        let (waiter_tx, waiter_rx) = tokio::sync::oneshot::channel();
        let running = status == Status::Running;
        if !running {
            c.add_attach_waiter(waiter_tx);
        }
        let dir = c.paths.dir.clone();
        async move {
            if running {
                connect_attach(&dir).await
            } else {
                waiter_rx.await.map_err(|_| Error::Runtime {
                    context: "attach".to_string(),
                    message: "the container was removed before it started".to_string(),
                })?
            }
        }
    });
    let upgrade = stream::wants_upgrade(&req).then(|| hyper::upgrade::on(req));
    Ok(Attach {
        tty,
        stdin: want_stdin,
        stdout: want_stdout,
        stderr: want_stderr,
        stdin_once,
        detach_keys,
    }
    .serve(history, connect, upgrade))
}

/// The detach sequence of an attach or exec on a terminal: the client's
/// `detachKeys`, else Docker's ctrl-p ctrl-q; none without a terminal.
fn detach_keys(asked: Option<&str>, tty: bool) -> Result<Option<Vec<u8>>> {
    if !tty {
        return Ok(None);
    }
    match asked.filter(|k| !k.is_empty()) {
        None => Ok(Some(super::detach::DEFAULT_KEYS.to_vec())),
        Some(k) => Ok(Some(
            super::detach::parse_keys(k).map_err(RequestError::Invalid)?,
        )),
    }
}

fn size_params(query: &Query) -> Result<(u16, u16)> {
    let get = |k: &str| -> Result<u16> {
        query
            .get(k)
            .and_then(|v| v.parse::<u16>().ok())
            .ok_or_else(|| {
                Error::from(RequestError::Invalid(format!(
                    "invalid or missing {k}: want a number 0-65535"
                )))
            })
    };
    Ok((get("h")?, get("w")?))
}

/// `POST /containers/{id}/resize`.
pub async fn resize(engine: &Arc<Engine>, key: &str, query: &Query) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let (rows, cols) = size_params(query)?;
    if c.state().status != Status::Running {
        return Err(Error::from(ContainerError::NotRunning(format!(
            "container {} is not running",
            c.id()
        ))));
    }
    if c.record.tty() {
        let (_r, mut w) = connect_attach(&c.paths.dir).await?;
        w.resize(rows, cols).await?;
    }
    Ok(empty(StatusCode::OK))
}

/// `POST /containers/{id}/exec`.
pub async fn exec_create(
    engine: &Arc<Engine>,
    key: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>> {
    let c = engine.containers.get(key)?;
    let config: ExecConfig = body::json_or_default(req.into_body(), "exec create").await?;
    if let Some(keys) = config.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        super::detach::parse_keys(keys).map_err(RequestError::Invalid)?;
    }
    let id = engine.containers.exec_create(&c, config)?;
    Ok(json(StatusCode::CREATED, &serde_json::json!({ "Id": id })))
}

/// `POST /exec/{id}/start`.
pub async fn exec_start(
    engine: &Arc<Engine>,
    id: &str,
    mut req: Request<Incoming>,
) -> Result<Response<Body>> {
    let e = engine.containers.exec_get(id)?;
    let upgrade = stream::wants_upgrade(&req);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let start: ExecStartConfig = body::json_or_default(req.into_body(), "exec start").await?;
    let tty = start.tty.or(e.config.tty).unwrap_or(false);
    let detach_keys = detach_keys(e.config.detach_keys.as_deref(), tty)?;
    let process = match engine.containers.exec_start(&e, Some(tty)).await {
        Ok(p) => p,
        // As Docker: the stream opens and carries the reason; the exec's
        // exit code (127 or 126) says the rest.
        Err(err @ Error::CommandNotFound(_)) if !start.detach.unwrap_or(false) => {
            let text = format!(
                "OCI runtime exec failed: exec failed: {}\r\n",
                err.full_message()
            );
            let bytes = frame(StreamKind::Stdout, text.as_bytes(), tty);
            if upgrade {
                return Ok(stream::hijack(on_upgrade, tty, move |io| async move {
                    let (_, mut wr) = tokio::io::split(io);
                    let _ = wr.write_all(&bytes).await;
                    let _ = wr.shutdown().await;
                }));
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let _ = tx.send(bytes);
            return Ok(streaming(if tty { RAW } else { MULTIPLEXED }, rx));
        }
        Err(err) => return Err(err),
    };
    let containers = Arc::clone(&engine.containers);
    let want_stdin = e.config.attach_stdin.unwrap_or(false);
    let finish = move |code: i32| {
        e.exited(i64::from(code));
        if let Ok(c) = containers.get(&e.container) {
            let mut attrs = c.attributes();
            attrs.insert("execID".to_string(), e.id.clone());
            attrs.insert("exitCode".to_string(), code.to_string());
            containers.events.container("exec_die", c.id(), attrs);
        }
    };
    let exec = Exec {
        process,
        tty,
        stdin: want_stdin,
        detach_keys,
        finish,
    };
    if start.detach.unwrap_or(false) {
        exec.detach();
        return Ok(empty(StatusCode::OK));
    }
    Ok(exec.serve(upgrade.then_some(on_upgrade)))
}

/// `POST /exec/{id}/resize`.
pub fn exec_resize(engine: &Arc<Engine>, id: &str, query: &Query) -> Result<Response<Body>> {
    let e = engine.containers.exec_get(id)?;
    let (rows, cols) = size_params(query)?;
    e.resize(rows, cols)?;
    Ok(empty(StatusCode::OK))
}

/// `GET /exec/{id}/json`.
pub fn exec_inspect(engine: &Arc<Engine>, id: &str) -> Result<Response<Body>> {
    let e = engine.containers.exec_get(id)?;
    let s = e.state();
    let cmd = e.config.cmd.clone().unwrap_or_default();
    let out = ExecInspectResponse {
        can_remove: Some(false),
        id: Some(e.id.clone()),
        running: Some(s.running),
        exit_code: s.exit_code,
        process_config: Some(ProcessConfig {
            privileged: e.config.privileged,
            user: e.config.user.clone(),
            tty: e.config.tty,
            entrypoint: cmd.first().cloned(),
            arguments: Some(cmd.iter().skip(1).cloned().collect()),
        }),
        open_stdin: e.config.attach_stdin,
        open_stderr: e.config.attach_stderr,
        open_stdout: e.config.attach_stdout,
        container_id: Some(e.container.clone()),
        pid: s.pid,
        ..Default::default()
    };
    Ok(json(StatusCode::OK, &out))
}

/// `GET /events`.
pub fn events(engine: &Arc<Engine>, query: &Query) -> Result<Response<Body>> {
    let filter = events::Filter::parse(query.get("filters"))?;
    let since = nanos(time_param(query, "since")?);
    let until = nanos(time_param(query, "until")?);
    let (past, rx) = engine.events.subscribe(since);
    let (tx, out) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(send_events(past, rx, filter, until, tx));
    Ok(streaming_bounded("application/json", out))
}

/// Nanoseconds since the epoch, as events carry their time.
fn nanos(t: Option<SystemTime>) -> Option<i64> {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
}

/// Sends the kept events `past`, then new ones from `rx`, that `filter`
/// selects, as JSON lines, until `until` (nanoseconds) or the client goes.
/// `tx` is bounded: while the client reads slowly this waits, and new
/// events queue in the broadcast channel, whose fixed capacity drops the
/// oldest for a reader that far behind (as Docker's event queue does), so
/// a slow reader costs the engine bounded memory.
async fn send_events(
    past: Vec<EventMessage>,
    mut rx: tokio::sync::broadcast::Receiver<EventMessage>,
    filter: events::Filter,
    until: Option<i64>,
    tx: mpsc::Sender<Bytes>,
) {
    let line = |e: &EventMessage| {
        serde_json::to_vec(&events::Wire::new(e)).ok().map(|mut b| {
            b.push(b'\n');
            Bytes::from(b)
        })
    };
    let before_until = |e: &EventMessage| until.is_none_or(|u| e.time_nano.unwrap_or(0) <= u);
    for e in past.iter().filter(|e| filter.matches(e) && before_until(e)) {
        if let Some(b) = line(e)
            && tx.send(b).await.is_err()
        {
            return;
        }
    }
    let deadline = until.and_then(|u| {
        let now = nanos(Some(SystemTime::now()))?;
        Some(Duration::from_nanos(
            u64::try_from(u.saturating_sub(now)).unwrap_or(0),
        ))
    });
    let live = async {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if filter.matches(&e)
                        && let Some(b) = line(&e)
                        && tx.send(b).await.is_err()
                    {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    };
    match deadline {
        Some(d) => {
            let _ = tokio::time::timeout(d, live).await;
        }
        None => live.await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_slow_events_reader_holds_the_engine_to_bounded_buffers() {
        let events = events::Events::default();
        let (past, rx) = events.subscribe(None);
        let (tx, mut out) = mpsc::channel(STREAM_BUFFER);
        let pump = tokio::spawn(send_events(past, rx, events::Filter::default(), None, tx));
        let published = 10_000;
        for i in 0..published {
            events.container("start", &format!("{i:05}"), HashMap::new());
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // Nobody read: the pump waits on a full channel, it does not queue.
        assert_eq!(out.len(), STREAM_BUFFER);
        assert!(!pump.is_finished());
        let mut seen = Vec::new();
        while let Ok(Some(b)) = tokio::time::timeout(Duration::from_millis(200), out.recv()).await {
            let e: EventMessage = serde_json::from_slice(&b).unwrap();
            seen.push(e.actor.and_then(|a| a.id).unwrap());
        }
        // A reader that far behind loses the oldest, never the order.
        assert!(!seen.is_empty() && seen.len() < published);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert_eq!(seen.last().map(String::as_str), Some("09999"));
        pump.abort();
    }
}
