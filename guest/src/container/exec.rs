//! Exec instances: extra processes in a running container (`docker exec`).
//!
//! An instance is created (`POST /containers/{id}/exec`), started once
//! (`POST /exec/{id}/start`) and inspected for its exit code. The engine
//! runs `runc exec` itself (see [`crate::monitor::exec`]); an exec does not
//! outlive the engine.

use std::sync::{Arc, Mutex};

use bollard_stubs::models::ExecConfig;

use super::record::Status;
use super::{Container, Containers};
use crate::error::{ContainerError, Error, Result};
use crate::monitor::exec::{ExecProcess, ExecRequest, Resizer};
use crate::runtime::host::HostFacts;
use crate::runtime::spec;

/// What an exec instance is doing.
#[derive(Debug, Clone, Default)]
pub struct ExecState {
    /// Whether its process runs.
    pub running: bool,
    /// Whether it has been started (an instance starts once).
    pub started: bool,
    /// Its exit code, once it has exited.
    pub exit_code: Option<i64>,
    /// The PID of `runc exec`, while it runs.
    pub pid: Option<i64>,
}

/// One exec instance.
pub struct ExecInstance {
    /// Its ID.
    pub id: String,
    /// The container's ID.
    pub container: String,
    /// What to run.
    pub config: ExecConfig,
    state: Mutex<ExecState>,
    resizer: Mutex<Option<Resizer>>,
}

impl ExecInstance {
    /// A copy of its state.
    pub fn state(&self) -> ExecState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Records the exit of its process.
    pub fn exited(&self, code: i64) {
        if let Ok(mut s) = self.state.lock() {
            s.running = false;
            s.exit_code = Some(code);
            s.pid = None;
        }
        if let Ok(mut r) = self.resizer.lock() {
            *r = None;
        }
    }

    /// Resizes its terminal.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        let resizer = self.resizer.lock().ok().and_then(|r| r.clone());
        match resizer {
            Some(r) => r.resize(rows, cols),
            None => Err(ContainerError::Exec {
                id: self.id.clone(),
                why: "has no running terminal to resize".to_string(),
            }
            .into()),
        }
    }
}

impl Containers {
    /// Creates an exec instance in a running container.
    pub fn exec_create(&self, c: &Arc<Container>, config: ExecConfig) -> Result<String> {
        if c.state().status != Status::Running {
            return Err(Error::from(ContainerError::NotRunning(format!(
                "container {} is not running",
                c.id()
            ))));
        }
        if c.state().paused {
            return Err(Error::from(ContainerError::Paused(format!(
                "container {} is paused, unpause the container before exec",
                c.id()
            ))));
        }
        if config.cmd.as_ref().is_none_or(Vec::is_empty) {
            return Err(Error::from(ContainerError::InvalidConfig(
                "no exec command specified".to_string(),
            )));
        }
        let id = crate::state::new_id()?;
        let instance = Arc::new(ExecInstance {
            id: id.clone(),
            container: c.id().to_string(),
            config,
            state: Mutex::new(ExecState::default()),
            resizer: Mutex::new(None),
        });
        if let Ok(mut m) = self.execs.lock() {
            m.insert(id.clone(), instance);
        }
        let mut attrs = c.attributes();
        attrs.insert("execID".to_string(), id.clone());
        self.events.container("exec_create", c.id(), attrs);
        Ok(id)
    }

    /// Finds an exec instance.
    pub fn exec_get(&self, id: &str) -> Result<Arc<ExecInstance>> {
        self.execs
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .ok_or_else(|| Error::NoSuchExec(id.to_string()))
    }

    /// The IDs of a container's exec instances.
    pub fn exec_ids(&self, container: &str) -> Vec<String> {
        self.execs
            .lock()
            .map(|m| {
                m.values()
                    .filter(|e| e.container == container)
                    .map(|e| e.id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(super) fn forget_execs(&self, container: &str) {
        if let Ok(mut m) = self.execs.lock() {
            m.retain(|_, e| e.container != container);
        }
    }

    /// Starts an exec instance's process; `tty` overrides its config's.
    pub async fn exec_start(
        &self,
        e: &Arc<ExecInstance>,
        tty: Option<bool>,
    ) -> Result<ExecProcess> {
        {
            let mut s = e.state.lock().map_err(|_| ContainerError::Exec {
                id: e.id.clone(),
                why: "is unusable".to_string(),
            })?;
            if s.started {
                return Err(ContainerError::Exec {
                    id: e.id.clone(),
                    why: "has already been started".to_string(),
                }
                .into());
            }
            s.started = true;
        }
        let c = self.get(&e.container)?;
        let mut config = e.config.clone();
        if let Some(t) = tty {
            config.tty = Some(t);
        }
        let process = self.run_in(&c, &config, &e.id).await;
        let process = match process {
            Ok(p) => p,
            Err(err) => {
                e.exited(command_exit_code(&err));
                return Err(err);
            }
        };
        if let Ok(mut s) = e.state.lock() {
            s.running = true;
            s.pid = process.pid().map(i64::from);
        }
        if let Ok(mut r) = e.resizer.lock() {
            *r = process.resizer();
        }
        let mut attrs = c.attributes();
        attrs.insert("execID".to_string(), e.id.clone());
        self.events.container("exec_start", c.id(), attrs);
        Ok(process)
    }

    /// Runs `config` in the running container `c` (exec and health checks).
    pub async fn run_in(
        &self,
        c: &Arc<Container>,
        config: &ExecConfig,
        tag: &str,
    ) -> Result<ExecProcess> {
        if c.state().status != Status::Running {
            return Err(Error::from(ContainerError::NotRunning(format!(
                "container {} is not running",
                c.id()
            ))));
        }
        if c.state().paused {
            return Err(Error::from(ContainerError::Paused(format!(
                "container {} is paused, unpause the container before exec",
                c.id()
            ))));
        }
        let runtime = self.runtime()?;
        let etc = crate::runtime::etc::EtcFiles {
            hosts: c.paths.hosts(),
            hostname: c.paths.hostname(),
            resolv_conf: c.paths.resolv_conf(),
        };
        let no_volumes = |name: &str| -> Result<std::path::PathBuf> {
            Err(Error::from(ContainerError::InvalidConfig(format!(
                "no such volume: {name}"
            ))))
        };
        let rootfs = c.paths.rootfs();
        let host = HostFacts::read(self.host_nofile, false);
        let process = {
            let input = spec::SpecInput {
                id: c.id(),
                name: &c.name(),
                config: &c.record.body,
                image: c.record.image_config.as_ref(),
                rootfs: &rootfs,
                etc: &etc,
                init: None,
                netns: None,
                volume_path: &no_volumes,
                anonymous_volumes: &[],
                host: &host,
                links_env: &super::links::saved_env(&c.paths.dir),
            };
            spec::exec_process(&input, config)?
        };
        // Docker's check before an exec: a command the container lacks is
        // a clear error (and exit code 127 or 126), not runc's 255.
        if let Some(argv0) = process.args().as_ref().and_then(|a| a.first()) {
            let env = process.env().clone().unwrap_or_default();
            let root = rootfs.clone();
            let argv0 = argv0.clone();
            tokio::task::spawn_blocking(move || {
                crate::runtime::rootfs::lookup_command(&root, &argv0, &env)
            })
            .await
            .map_err(|e| Error::Runtime {
                context: format!("container {}: exec", c.name()),
                message: e.to_string(),
            })??;
        }
        let dir = c.paths.execs();
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let file = format!("{tag}.json");
        crate::state::write_json_atomic(&dir, &file, &process)?;
        let req = ExecRequest {
            runtime: runtime.binary.clone(),
            runtime_root: runtime.root.clone(),
            id: c.id().to_string(),
            process_json: dir.join(&file),
            tty: config.tty.unwrap_or(false),
            stdin: config.attach_stdin.unwrap_or(false),
        };
        crate::monitor::exec::exec(&req).await
    }
}

/// The exit code of an exec whose process could not start, as Docker
/// gives it: 127 for a command that is not there, 126 for one that cannot
/// be run (a folder, no execute permission) or any other failure.
pub fn command_exit_code(e: &Error) -> i64 {
    match e {
        Error::CommandNotFound(m)
            if m.contains("not found") || m.contains("no such file or directory") =>
        {
            127
        }
        _ => 126,
    }
}
