//! What a container wrote, taken out of it: `docker commit` (a new image
//! of its image plus its upper folder), `docker diff` (the change list)
//! and `docker export` (a tar of its whole root). All three read the
//! overlay through [`crate::image::layer`], leaving out the mount points
//! the engine made (Docker keeps those in its init layer).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::archive_tar::ChunkWriter;
use super::record::Status;
use super::{Container, Containers};
use crate::error::{ContainerError, Error, Result};
use crate::image::changes;
use crate::image::commit::{self as image_commit, History};
use crate::image::layer::{self, Change, Exclusions, Take};
use crate::image::reference::familiar;
use crate::image::store::ImageRecord;
use crate::runtime::rootfs;

/// What `docker commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// The full tagged name to give the image (`None`: untagged).
    pub tag: Option<String>,
    /// The commit message.
    pub comment: Option<String>,
    /// The author.
    pub author: Option<String>,
    /// Freeze the container while its files are read (Docker's default).
    pub pause: bool,
    /// `--change` instructions, applied last.
    pub changes: Vec<String>,
    /// A container config from the request body: its fields replace the
    /// container's.
    pub config: Option<Value>,
}

async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Runtime {
            context: what.to_string(),
            message: e.to_string(),
        })
}

/// The container's configuration as a commit keeps it: the image's
/// config with what the container was created with laid over it.
fn container_config(c: &Container, image_config: Option<&Value>) -> Value {
    let mut out: Map<String, Value> = image_config
        .and_then(|i| i.get("config"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let body = &c.record.body;
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v.filter(|v| !v.is_null()) {
            out.insert(k.to_string(), v);
        }
    };
    set("Hostname", body.hostname.clone().map(Value::from));
    set("Domainname", body.domainname.clone().map(Value::from));
    set("User", body.user.clone().map(Value::from));
    set("WorkingDir", body.working_dir.clone().map(Value::from));
    set("StopSignal", body.stop_signal.clone().map(Value::from));
    set("Tty", body.tty.map(Value::from));
    set("OpenStdin", body.open_stdin.map(Value::from));
    set(
        "Healthcheck",
        body.healthcheck
            .as_ref()
            .and_then(|h| serde_json::to_value(h).ok()),
    );
    set(
        "Shell",
        body.shell
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| json!(s)),
    );
    if let Some(ep) = &body.entrypoint {
        out.insert("Entrypoint".into(), json!(ep));
        // Docker: an entrypoint given at create drops the image's command.
        if body.cmd.is_none() {
            out.insert("Cmd".into(), Value::Null);
        }
    }
    if let Some(cmd) = &body.cmd {
        out.insert("Cmd".into(), json!(cmd));
    }
    let mut env: Vec<String> = out
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    for e in body.env.iter().flatten() {
        let key = e.split('=').next().unwrap_or_default();
        match env.iter_mut().find(|x| x.split('=').next() == Some(key)) {
            Some(x) => *x = e.clone(),
            None => env.push(e.clone()),
        }
    }
    if !env.is_empty() {
        out.insert("Env".into(), json!(env));
    }
    let mut merge_set = |k: &str, keys: Vec<String>| {
        if keys.is_empty() {
            return;
        }
        let mut m = match out.remove(k) {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for key in keys {
            m.insert(key, json!({}));
        }
        out.insert(k.to_string(), Value::Object(m));
    };
    merge_set(
        "ExposedPorts",
        body.exposed_ports.iter().flatten().cloned().collect(),
    );
    merge_set("Volumes", body.volumes.iter().flatten().cloned().collect());
    let labels = c.record.labels();
    if !labels.is_empty() {
        let mut m = match out.remove("Labels") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for (k, v) in labels {
            m.insert(k, json!(v));
        }
        out.insert("Labels".into(), Value::Object(m));
    }
    Value::Object(out)
}

/// The command a commit's history names: the container's command line.
fn command_line(config: &Value) -> String {
    let words = |k: &str| -> Vec<String> {
        config
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut argv = words("Entrypoint");
    argv.extend(words("Cmd"));
    argv.join(" ")
}

impl Containers {
    /// The overlay's lower folders of `c`, top first, and its top chain ID.
    fn lower_of(&self, c: &Container) -> Result<(Vec<PathBuf>, Option<String>)> {
        let lower = c
            .record
            .layers
            .iter()
            .rev()
            .map(|chain| self.store.snapshot_path(chain))
            .collect::<Result<Vec<_>>>()?;
        Ok((lower, c.record.layers.last().cloned()))
    }

    fn refuse_removing(c: &Container, what: &str) -> Result<()> {
        if c.state().status == Status::Removing {
            return Err(ContainerError::WrongState(format!(
                "container {}: {what}: it is being removed",
                c.name()
            ))
            .into());
        }
        Ok(())
    }

    /// `GET /containers/{id}/changes`: what the container changed, as
    /// `docker diff` lists it.
    pub async fn changes(&self, c: &Arc<Container>) -> Result<Vec<Change>> {
        let _op = c.op.lock().await;
        Self::refuse_removing(c, "diff")?;
        let (lower, _) = self.lower_of(c)?;
        let upper = c.paths.upper();
        let exclude = Exclusions::for_container(&c.record);
        if !upper.is_dir() {
            return Ok(Vec::new());
        }
        blocking("diff", move || layer::changes(&upper, &lower, &exclude)).await?
    }

    /// `POST /commit`: a new image of the container's image and what the
    /// container wrote, with its configuration (and `opts`' changes); the
    /// container goes on (running, paused or stopped, as it was).
    pub async fn commit(&self, c: &Arc<Container>, opts: CommitOptions) -> Result<ImageRecord> {
        let s = c.state();
        let freeze = opts.pause && s.status == Status::Running && !s.paused;
        if freeze {
            self.pause(c).await?;
        }
        let made = self.commit_frozen(c, &opts).await;
        if freeze && let Err(e) = self.unpause(c).await {
            tracing::warn!(
                "container {}: unpause after commit: {}",
                c.name(),
                e.full_message()
            );
        }
        let image = made?;
        let mut attributes = c.attributes();
        attributes.insert(
            "comment".to_string(),
            opts.comment.clone().unwrap_or_default(),
        );
        attributes.insert("imageID".to_string(), image.id.clone());
        attributes.insert(
            "imageRef".to_string(),
            opts.tag
                .as_deref()
                .map(familiar)
                .unwrap_or_else(|| image.id.clone()),
        );
        self.events.container("commit", c.id(), attributes);
        Ok(image)
    }

    async fn commit_frozen(&self, c: &Arc<Container>, opts: &CommitOptions) -> Result<ImageRecord> {
        let op = c.op.lock().await;
        Self::refuse_removing(c, "commit")?;
        let parent = self
            .store
            .image(&c.record.image_id)
            .ok_or_else(|| Error::Content {
                subject: format!("container {}", c.name()),
                message: format!(
                    "its image {} is no longer in the store, so there is nothing to commit onto",
                    c.record.image_id
                ),
            })?;
        let parent_config = image_commit::image_config(&self.store, &parent)?;
        let mut config = container_config(c, Some(&parent_config));
        if let (Some(Value::Object(over)), Some(obj)) =
            (opts.config.as_ref(), config.as_object_mut())
        {
            for (k, v) in over {
                if !v.is_null() {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
        changes::apply(&mut config, &opts.changes)?;
        let history = History {
            created_by: command_line(&container_config(c, Some(&parent_config))),
            comment: opts.comment.clone(),
            author: opts.author.clone(),
            empty_layer: false,
        };
        let (lower, parent_chain) = self.lower_of(c)?;
        let upper = c.paths.upper();
        let exclude = Exclusions::for_container(&c.record);
        let store = Arc::clone(&self.store);
        let image = blocking("commit", move || {
            // A blocking thread of its own: the read guard keeps garbage
            // collection from the new layer until the image records it.
            let gc = store.gc_lock.blocking_read();
            let layer = if upper.is_dir() {
                layer::commit_upper(
                    &store,
                    &upper,
                    &lower,
                    parent_chain.as_deref(),
                    &exclude,
                    Take::Copy,
                    &gc,
                )?
            } else {
                None
            };
            image_commit::new_image(&store, Some(&parent), layer, config, history, &gc)
        })
        .await??;
        drop(op);
        if let Some(t) = &opts.tag {
            self.store.tag(&image.id, t)?;
        }
        Ok(self.store.image(&image.id).unwrap_or(image))
    }

    /// `GET /containers/{id}/export`: a tar of the container's whole root
    /// as its overlay shows it (mounted for the export when it is not),
    /// made as it is read; no volume or `/proc` content is in it.
    pub async fn export(
        self: &Arc<Self>,
        c: Arc<Container>,
    ) -> Result<mpsc::Receiver<io::Result<Bytes>>> {
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(8);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<()>>();
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let op = c.op.lock().await;
            if let Err(e) = Self::refuse_removing(&c, "export") {
                let _ = ready_tx.send(Err(e));
                return;
            }
            let root = c.paths.rootfs();
            let was_mounted = rootfs::is_mounted(&root);
            if !was_mounted && let Err(e) = this.mount_root(&c) {
                let _ = ready_tx.send(Err(e));
                return;
            }
            let _ = ready_tx.send(Ok(()));
            let (root2, name) = (root.clone(), c.name());
            let streamed = blocking("export", move || {
                let mut out = ChunkWriter::new(256 * 1024, |piece| {
                    tx.blocking_send(Ok(Bytes::from(piece)))
                        .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
                });
                match layer::write_tree_tar(&root2, &mut out) {
                    Ok(_) => {
                        use std::io::Write as _;
                        let _ = out.flush();
                    }
                    Err(e) => {
                        tracing::debug!("export {name}: {}", e.full_message());
                        let _ = tx.blocking_send(Err(io::Error::other(e.full_message())));
                    }
                }
            })
            .await;
            if !was_mounted {
                let r = blocking("export", move || rootfs::unmount(&root)).await;
                if let Ok(Err(e)) | Err(e) = r {
                    tracing::warn!(
                        "container {}: unmount after export: {}",
                        c.name(),
                        e.full_message()
                    );
                }
            }
            drop(op);
            if let Err(e) = streamed {
                tracing::warn!("export {}: {}", c.name(), e.full_message());
            }
            this.events.container("export", c.id(), c.attributes());
        });
        ready_rx.await.map_err(|_| Error::Runtime {
            context: "export".to_string(),
            message: "the export ended before it started".to_string(),
        })??;
        Ok(rx)
    }
}
