//! `RUN`: the command runs in a real container of the engine (the same
//! create, start and wait as `docker run`), from the step's parent image;
//! its output streams to the build's progress; the container's overlay
//! upper folder then becomes the step's layer. The container is removed
//! whatever happens: success, failure, or the build being cancelled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard_stubs::models::{ContainerCreateBody, HostConfig, Mount};

use super::Cancel;
use super::error::BuildError;
use crate::container::Container;
use crate::container::wait::WaitCondition;
use crate::engine::Engine;
use crate::error::Result;
use crate::monitor::logs::{LogQuery, follow_logs};

/// The label every build container carries (its value: the build's ID), so
/// the engine finds and removes those a crash left behind.
pub const BUILD_LABEL: &str = "servin.build";

/// How many of a failed step's last output lines are kept for the error.
const TAIL_LINES: usize = 20;

/// What a `RUN` step runs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The parent image's ID.
    pub image: String,
    /// The command, shell already applied.
    pub argv: Vec<String>,
    /// `KEY=value` pairs: the image's, the step's build args.
    pub env: Vec<String>,
    /// The working folder.
    pub workdir: String,
    /// The user (`USER`), empty for the image's.
    pub user: String,
    /// `default`, `none` or `host`.
    pub network: String,
    /// Cache, secret, tmpfs and bind mounts.
    pub mounts: Vec<Mount>,
    /// The build's ID (the containers' label).
    pub build_id: String,
}

/// A finished `RUN` container, removed when dropped.
pub struct Finished {
    /// Its exit code.
    pub exit_code: i64,
    /// The last lines of its output.
    pub tail: Vec<String>,
    /// The container (stopped, root unmounted), for the commit.
    pub container: Arc<Container>,
    engine: Arc<Engine>,
    keep: bool,
}

impl Finished {
    /// Keeps the container (Docker's `rm=false`).
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for Finished {
    fn drop(&mut self) {
        if !self.keep {
            remove_later(&self.engine, Arc::clone(&self.container));
        }
    }
}

fn remove_later(engine: &Arc<Engine>, c: Arc<Container>) {
    let containers = Arc::clone(&engine.containers);
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(async move {
            if let Err(e) = containers.remove(&c, true).await {
                tracing::warn!(
                    "remove build container {}: {}",
                    c.name(),
                    e.full_message()
                );
            }
        });
    }
}

/// Runs `spec`; `output` gets its output as it comes. Returns when the
/// command has exited and the container's root is unmounted.
pub async fn run(
    engine: &Arc<Engine>,
    spec: RunSpec,
    cancel: &Cancel,
    on_created: impl FnOnce(&str),
    mut output: impl FnMut(String),
) -> Result<Finished> {
    let network_mode = match spec.network.as_str() {
        "none" => "none",
        "host" => "host",
        _ => "bridge",
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(spec.argv.clone()),
        // The image's entrypoint plays no part in RUN.
        entrypoint: Some(Vec::new()),
        env: Some(spec.env.clone()),
        working_dir: Some(spec.workdir.clone()).filter(|w| !w.is_empty()),
        user: Some(spec.user.clone()).filter(|u| !u.is_empty()),
        labels: Some(HashMap::from([(
            BUILD_LABEL.to_string(),
            spec.build_id.clone(),
        )])),
        host_config: Some(HostConfig {
            network_mode: Some(network_mode.to_string()),
            mounts: Some(spec.mounts.clone()).filter(|m| !m.is_empty()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let containers = Arc::clone(&engine.containers);
    let (id, _) = {
        let containers = Arc::clone(&containers);
        tokio::task::spawn_blocking(move || containers.create(None, body))
            .await
            .map_err(|e| BuildError::Invalid(format!("create the RUN container: {e}")))??
    };
    let c = containers.get(&id)?;
    // From here on, every way out removes the container.
    let guard = Finished {
        exit_code: -1,
        tail: Vec::new(),
        container: Arc::clone(&c),
        engine: Arc::clone(engine),
        keep: false,
    };
    on_created(&id);
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let query = LogQuery {
        stdout: true,
        stderr: true,
        ..LogQuery::default()
    };
    containers.start(&c).await?;
    let waiter = {
        let (containers, c) = (Arc::clone(&containers), Arc::clone(&c));
        async move {
            containers.wait(&c, WaitCondition::NotRunning).await;
        }
    };
    let follower = tokio::spawn(follow_logs(c.log_config(), query, tx, waiter));
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut partial = String::new();
    loop {
        tokio::select! {
            entry = rx.recv() => {
                let Some(entry) = entry else { break };
                let text = String::from_utf8_lossy(&entry.line).into_owned();
                partial.push_str(&text);
                while let Some(nl) = partial.find('\n') {
                    let line: String = partial.drain(..=nl).collect();
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line.trim_end_matches(['\n', '\r']).to_string());
                }
                output(text);
            }
            () = cancel.cancelled() => {
                follower.abort();
                return Err(BuildError::Cancelled.into());
            }
        }
    }
    if !partial.is_empty() {
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(partial);
    }
    let _ = follower.await;
    let exit_code = containers.wait(&c, WaitCondition::NotRunning).await;
    // The exit handling unmounts the root; wait for it (briefly) so the
    // upper folder is quiet before it becomes a layer.
    let root = c.paths.rootfs();
    for _ in 0..200 {
        if !crate::runtime::rootfs::is_mounted(&root) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if crate::runtime::rootfs::is_mounted(&root) {
        crate::runtime::rootfs::unmount(&root)?;
    }
    let mut done = guard;
    done.exit_code = exit_code;
    done.tail = tail.into_iter().collect();
    Ok(done)
}

/// Removes the build containers a killed engine left behind (at start,
/// when no build runs).
pub async fn remove_leftovers(engine: Arc<Engine>) {
    for c in engine.containers.list() {
        let labels = c.record.body.labels.clone().unwrap_or_default();
        if !labels.contains_key(BUILD_LABEL) {
            continue;
        }
        if let Err(e) = engine.containers.remove(&c, true).await {
            tracing::warn!(
                "remove leftover build container {}: {}",
                c.name(),
                e.full_message()
            );
        }
    }
}
