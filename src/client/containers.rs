//! The container operations, and the hijacked streams of `attach` and
//! `exec start`.

use bollard_stubs::models::{
    ContainerCreateBody, ContainerCreateResponse, ContainerInspectResponse, ContainerSummary,
    ContainerWaitResponse, ExecConfig, ExecInspectResponse,
};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;

use super::{Engine, Error, encode, engine_error};

/// The connection after `101 UPGRADED`.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

/// What `logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep streaming new lines until the container stops.
    pub follow: bool,
    /// Only the last N lines.
    pub tail: Option<String>,
    /// Only lines at or after this time (unix seconds, with a fraction).
    pub since: Option<String>,
    /// Only lines before this time (unix seconds, with a fraction).
    pub until: Option<String>,
    /// Prefix each line with its time.
    pub timestamps: bool,
}

/// Splits Docker's multiplexed stream (the framing the engine writes with).
pub use servin_values::stream::Demux;

impl Engine {
    /// Runs a future on the client's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn empty_ok(&self, method: Method, path: &str, step: &str) -> Result<StatusCode, Error> {
        let resp = self.send(method, path, &[], Bytes::new(), step)?;
        let resp = self.check(resp, step)?;
        let status = resp.status();
        self.body(resp, step)?;
        Ok(status)
    }

    /// Posts `body` as JSON and reads the JSON answer.
    pub(super) fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        step: &str,
    ) -> Result<T, Error> {
        let body = serde_json::to_vec(body).map_err(|source| Error::Decode {
            step: step.to_string(),
            source,
        })?;
        let resp = self.send(
            Method::POST,
            path,
            &[("Content-Type", "application/json".to_string())],
            Bytes::from(body),
            step,
        )?;
        let resp = self.check(resp, step)?;
        let bytes = self.body(resp, step)?;
        serde_json::from_slice(&bytes).map_err(|source| Error::Decode {
            step: step.to_string(),
            source,
        })
    }

    /// `POST /containers/create`.
    pub fn create_container(
        &self,
        name: Option<&str>,
        body: &ContainerCreateBody,
    ) -> Result<ContainerCreateResponse, Error> {
        let path = match name {
            Some(n) => format!("/containers/create?name={}", encode(n)),
            None => "/containers/create".to_string(),
        };
        self.post_json(&path, body, "create the container")
    }

    /// `POST /containers/{id}/start`; false when it already ran.
    pub fn start_container(&self, id: &str) -> Result<bool, Error> {
        let step = format!("start {id}");
        let s = self.empty_ok(
            Method::POST,
            &format!("/containers/{}/start", encode(id)),
            &step,
        )?;
        Ok(s != StatusCode::NOT_MODIFIED)
    }

    /// `POST /containers/{id}/stop`; false when it was not running.
    pub fn stop_container(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool, Error> {
        let mut q = Vec::new();
        if let Some(t) = timeout {
            q.push(format!("t={t}"));
        }
        if let Some(s) = signal {
            q.push(format!("signal={}", encode(s)));
        }
        let path = format!("/containers/{}/stop?{}", encode(id), q.join("&"));
        let s = self.empty_ok(Method::POST, &path, &format!("stop {id}"))?;
        Ok(s != StatusCode::NOT_MODIFIED)
    }

    /// `POST /containers/{id}/restart`.
    pub fn restart_container(&self, id: &str, timeout: Option<i64>) -> Result<(), Error> {
        let q = timeout.map(|t| format!("?t={t}")).unwrap_or_default();
        let path = format!("/containers/{}/restart{q}", encode(id));
        self.empty_ok(Method::POST, &path, &format!("restart {id}"))
            .map(|_| ())
    }

    /// `POST /containers/{id}/kill`.
    pub fn kill_container(&self, id: &str, signal: &str) -> Result<(), Error> {
        let path = format!("/containers/{}/kill?signal={}", encode(id), encode(signal));
        self.empty_ok(Method::POST, &path, &format!("kill {id}"))
            .map(|_| ())
    }

    /// `DELETE /containers/{id}`; `volumes` asks for its anonymous volumes
    /// to go too (`v`).
    pub fn remove_container(&self, id: &str, force: bool, volumes: bool) -> Result<(), Error> {
        let path = format!("/containers/{}?force={force}&v={volumes}", encode(id));
        self.empty_ok(Method::DELETE, &path, &format!("remove {id}"))
            .map(|_| ())
    }

    /// `GET /containers/json`.
    pub fn containers(&self, all: bool) -> Result<Vec<ContainerSummary>, Error> {
        self.json(
            Method::GET,
            &format!("/containers/json?all={all}"),
            "list containers",
        )
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect_container(&self, id: &str) -> Result<ContainerInspectResponse, Error> {
        self.json(
            Method::GET,
            &format!("/containers/{}/json", encode(id)),
            &format!("inspect {id}"),
        )
    }

    /// `POST /containers/{id}/wait`; the exit code.
    pub fn wait_container(&self, id: &str, condition: &str) -> Result<i64, Error> {
        let path = format!("/containers/{}/wait?condition={condition}", encode(id));
        let r: ContainerWaitResponse = self.json(Method::POST, &path, &format!("wait for {id}"))?;
        Ok(r.status_code)
    }

    /// `POST /containers/{id}/resize`.
    pub fn resize_container(&self, id: &str, rows: u16, cols: u16) -> Result<(), Error> {
        let path = format!("/containers/{}/resize?h={rows}&w={cols}", encode(id));
        self.empty_ok(Method::POST, &path, "resize").map(|_| ())
    }

    /// `GET /containers/{id}/logs`, calling `each` with every chunk.
    pub fn logs(
        &self,
        id: &str,
        opts: &LogOptions,
        each: impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut q = vec![
            "stdout=1".to_string(),
            "stderr=1".to_string(),
            format!("follow={}", opts.follow),
            format!("timestamps={}", opts.timestamps),
        ];
        if let Some(t) = &opts.tail {
            q.push(format!("tail={}", encode(t)));
        }
        if let Some(s) = &opts.since {
            q.push(format!("since={}", encode(s)));
        }
        if let Some(u) = &opts.until {
            q.push(format!("until={}", encode(u)));
        }
        let step = format!("logs of {id}");
        let path = format!("/containers/{}/logs?{}", encode(id), q.join("&"));
        let resp = self.send(Method::GET, &path, &[], Bytes::new(), &step)?;
        let resp = self.check(resp, &step)?;
        self.stream(resp, &step, each)
    }

    /// `POST /containers/{id}/exec`; the exec's ID.
    pub fn exec_create(&self, id: &str, config: &ExecConfig) -> Result<String, Error> {
        let v: serde_json::Value = self.post_json(
            &format!("/containers/{}/exec", encode(id)),
            config,
            &format!("exec in {id}"),
        )?;
        v.get("Id")
            .and_then(|i| i.as_str())
            .map(String::from)
            .ok_or_else(|| Error::Invalid(format!("exec in {id}: the engine gave no exec ID")))
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> Result<ExecInspectResponse, Error> {
        self.json(
            Method::GET,
            &format!("/exec/{}/json", encode(id)),
            "inspect the exec",
        )
    }

    /// `POST /exec/{id}/resize`.
    pub fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<(), Error> {
        let path = format!("/exec/{}/resize?h={rows}&w={cols}", encode(id));
        self.empty_ok(Method::POST, &path, "resize").map(|_| ())
    }

    /// Sends a request that takes over the connection (`Upgrade: tcp`) and
    /// returns the raw connection.
    pub async fn hijack(&self, path: &str, body: Bytes, step: &str) -> Result<Hijacked, Error> {
        let headers = [
            ("Connection", "Upgrade".to_string()),
            ("Upgrade", "tcp".to_string()),
            ("Content-Type", "application/json".to_string()),
        ];
        let resp = self
            .send_async(Method::POST, path, &headers, body, step)
            .await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(error_of(resp, step).await);
        }
        let upgraded = hyper::upgrade::on(resp)
            .await
            .map_err(|source| Error::Http {
                addr: self.addr.to_string(),
                step: step.to_string(),
                source,
            })?;
        Ok(TokioIo::new(upgraded))
    }

    /// Sends a request whose answer may take long (wait), returning the
    /// response once its headers arrive; the body follows later. `304 Not
    /// Modified` (a start of a running container) counts as success.
    pub async fn post_later(
        &self,
        path: &str,
        step: &str,
    ) -> Result<hyper::Response<hyper::body::Incoming>, Error> {
        let resp = self
            .send_async(Method::POST, path, &[], Bytes::new(), step)
            .await?;
        if !resp.status().is_success() && resp.status() != StatusCode::NOT_MODIFIED {
            return Err(error_of(resp, step).await);
        }
        Ok(resp)
    }

    /// `POST /containers/{id}/start`, from async code.
    pub async fn start_async(&self, id: &str) -> Result<(), Error> {
        let step = format!("start {id}");
        let resp = self
            .post_later(&format!("/containers/{}/start", encode(id)), &step)
            .await?;
        let _ = resp.into_body().collect().await;
        Ok(())
    }
}

/// The engine's error in a failed response.
async fn error_of(resp: hyper::Response<hyper::body::Incoming>, step: &str) -> Error {
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    engine_error(step, status, &body)
}

/// Reads the wait answer's exit code.
pub async fn wait_code(
    resp: hyper::Response<hyper::body::Incoming>,
    step: &str,
) -> Result<i64, Error> {
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|source| Error::Invalid(format!("{step}: {source}")))?
        .to_bytes();
    let r: ContainerWaitResponse =
        serde_json::from_slice(&body).map_err(|source| Error::Decode {
            step: step.to_string(),
            source,
        })?;
    Ok(r.status_code)
}

/// How an upload into a container is extracted.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutArchiveOptions {
    /// Own what is written by the container's user (`docker cp -a`).
    pub copy_uid_gid: bool,
}

/// The body of a `GET /containers/{id}/archive`, read as it arrives.
pub struct ArchiveReader<'a> {
    engine: &'a Engine,
    body: hyper::body::Incoming,
    piece: Bytes,
    step: String,
}

impl std::io::Read for ArchiveReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.piece.is_empty() {
            let frame = self.engine.rt.block_on(self.body.frame());
            match frame {
                None => return Ok(0),
                Some(Err(e)) => {
                    return Err(std::io::Error::other(format!("{}: {e}", self.step)));
                }
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.piece = d;
                    }
                }
            }
        }
        let n = buf.len().min(self.piece.len());
        buf[..n].copy_from_slice(&self.piece[..n]);
        let _ = self.piece.split_to(n);
        Ok(n)
    }
}

fn archive_path(id: &str, path: &str) -> String {
    format!("/containers/{}/archive?path={}", encode(id), encode(path))
}

fn path_stat(
    resp: &hyper::Response<hyper::body::Incoming>,
    step: &str,
) -> Result<super::copy::PathStat, Error> {
    use base64::Engine as _;
    let invalid = || Error::Invalid(format!("{step}: the engine sent no valid path stat"));
    let raw = resp
        .headers()
        .get("X-Docker-Container-Path-Stat")
        .ok_or_else(invalid)?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .map_err(|_| invalid())?;
    serde_json::from_slice(&json).map_err(|source| Error::Decode {
        step: step.to_string(),
        source,
    })
}

impl Engine {
    /// `HEAD /containers/{id}/archive`: what `path` is in the container,
    /// `None` when it is not there (the container is).
    pub fn stat_path(&self, id: &str, path: &str) -> Result<Option<super::copy::PathStat>, Error> {
        let step = format!("stat {id}:{path}");
        let resp = self.send(
            Method::HEAD,
            &archive_path(id, path),
            &[],
            Bytes::new(),
            &step,
        )?;
        if resp.status() == StatusCode::NOT_FOUND {
            // Both a missing container and a missing path are a 404: ask
            // which (HEAD has no body to say it).
            self.inspect_container(id)?;
            return Ok(None);
        }
        let resp = self.check(resp, &step)?;
        path_stat(&resp, &step).map(Some)
    }

    /// `GET /containers/{id}/archive`: the stat of `path` and its tar,
    /// read as it arrives.
    pub fn get_archive(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(super::copy::PathStat, ArchiveReader<'_>), Error> {
        let step = format!("copy from {id}:{path}");
        let resp = self.send(
            Method::GET,
            &archive_path(id, path),
            &[],
            Bytes::new(),
            &step,
        )?;
        let resp = self.check(resp, &step)?;
        let stat = path_stat(&resp, &step)?;
        Ok((
            stat,
            ArchiveReader {
                engine: self,
                body: resp.into_body(),
                piece: Bytes::new(),
                step,
            },
        ))
    }

    /// `PUT /containers/{id}/archive`: extracts the tar `produce` writes
    /// into the folder `dir` of the container. `produce` runs on a thread
    /// of its own while the request streams what it writes; its result is
    /// returned once the engine has answered.
    pub fn put_archive<T: Send + 'static>(
        &self,
        id: &str,
        dir: &str,
        opts: PutArchiveOptions,
        produce: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        let step = format!("copy to {id}:{dir}");
        let mut path = format!("{}&noOverwriteDirNonDir=true", archive_path(id, dir));
        if opts.copy_uid_gid {
            path.push_str("&copyUIDGID=true");
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
        let producer = std::thread::spawn(move || {
            let mut out = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let r = produce(&mut out).and_then(|v| {
                std::io::Write::flush(&mut out)?;
                Ok(v)
            });
            if let Err(e) = &r {
                let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
            }
            r
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|piece| (piece.map(hyper::body::Frame::data), rx))
        });
        let body = http_body_util::StreamBody::new(stream);
        let sent = self.rt.block_on(async {
            let req = hyper::Request::builder()
                .method(Method::PUT)
                .uri(&path)
                .header("Host", "servin")
                .header("Content-Type", "application/x-tar")
                .body(body)
                .map_err(|e| Error::Invalid(format!("{step}: {e}")))?;
            self.request_async(req, &step).await
        });
        let produced = producer
            .join()
            .map_err(|_| Error::Invalid(format!("{step}: the tar writer failed")))?;
        let resp = sent?;
        let resp = self.check(resp, &step)?;
        self.body(resp, &step)?;
        produced.map_err(|e| Error::Invalid(format!("{step}: {e}")))
    }
}

const CHUNK: usize = 256 * 1024;

/// Hands what is written to a request body, in pieces.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(piece)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}
