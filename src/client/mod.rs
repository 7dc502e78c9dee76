//! The engine client: finds the engine's socket, starts a native engine when
//! none answers, and speaks the Docker Engine API to it over HTTP/1.1 on a
//! unix socket.
//!
//! - [`address`]: where the engine listens (`SERVIN_HOST`, else the default).
//! - [`start`]: starting a native engine on demand.
//! - [`auth`]: registry credentials (`~/.servin/auth.json`, `~/.docker/config.json`).
//! - [`images`]: the image operations.
//! - [`containers`]: the container operations and attached streams.
//! - [`commit`]: commit, diff and export of containers, and imports of
//!   root filesystem tars.
//! - [`copy`]: `servin cp`'s rules and its host side.
//! - [`volumes`]: the volume operations.
//! - [`networks`]: the network operations.
//! - [`workspaces`]: workspace sync batches and manifests.
//! - [`projects`]: planning a project.
//! - [`reset`]: removing everything the engine made, the engine's state
//!   root and its socket (`servin system reset`).
//! - [`stats`]: stats, top, pause, update, rename and disk usage, and the
//!   figures `docker stats` shows.

pub mod address;
pub mod auth;
pub mod build;
pub mod commit;
pub mod containers;
pub mod copy;
pub mod images;
pub mod networks;
pub mod projects;
pub mod reset;
pub mod start;
pub mod stats;
pub mod volumes;
pub mod workspaces;

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

pub use self::address::Address;

/// What went wrong talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach the engine at {addr}: {source}")]
    Unreachable {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("{step} at {addr} failed")]
    Http {
        addr: String,
        step: String,
        #[source]
        source: hyper::Error,
    },
    /// The engine refused or failed a request; its message often names the
    /// step itself, which is then not repeated.
    #[error("{}", step_and(.step, .message))]
    Engine {
        step: String,
        status: u16,
        message: String,
    },
    #[error("{step}: the engine's answer is not valid JSON")]
    Decode {
        step: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "no engine binary found: set SERVIN_ENGINE, or put servin-guest next to servin or on PATH"
    )]
    NoEngineBinary,
    #[error("cannot start the engine {binary}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the engine exited ({status}) before answering at {addr}; its log:\n{log}")]
    EngineExited {
        addr: String,
        status: String,
        log: String,
    },
    #[error("engine did not start within {secs}s at {addr}; its log:\n{log}")]
    StartTimeout {
        addr: String,
        secs: u64,
        log: String,
    },
    #[error(
        "the reset left objects behind; the state root {} is kept so that `servin system reset` can finish:\n{errors}",
        .root.display()
    )]
    ResetIncomplete { root: PathBuf, errors: String },
    #[error("the engine (pid {pid}) did not stop within {secs}s of its reset")]
    EngineStillRunning { pid: u32, secs: u64 },
    #[error(
        "not removing {}: these are still mounted below it:\n{mounts}",
        .root.display()
    )]
    StillMounted { root: PathBuf, mounts: String },
    #[error("{path}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the native engine needs root ({what})\nhelp: run servin with sudo; or, while a root engine runs, join the group that owns {}; or use VM mode, which needs no root: SERVIN_MODE=vm, or mode = \"vm\" in ~/.config/servin/config.toml",
        .socket.display()
    )]
    NativeNeedsRoot { what: String, socket: PathBuf },
    #[error(transparent)]
    Vm(Box<crate::vm::MachineError>),
    #[error(transparent)]
    Settings(#[from] crate::vm::SettingsError),
}

/// `step: message`, or the message alone when it starts with the step.
fn step_and(step: &str, message: &str) -> String {
    match message.strip_prefix(step) {
        Some(rest) if rest.starts_with(':') => message.to_string(),
        _ => format!("{step}: {message}"),
    }
}

/// A connection to a running engine.
pub struct Engine {
    addr: Address,
    rt: tokio::runtime::Runtime,
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

impl Engine {
    /// The engine at the configured address, started natively when none
    /// answers.
    pub fn connect() -> Result<Self, Error> {
        let (mode, addr) = address::resolve()?;
        let engine = Self {
            addr,
            rt: runtime()?,
        };
        // A socket that accepts a connection has an engine behind it (it
        // binds the socket only to serve it): cheaper than a `/_ping`
        // round trip on every command.
        match std::os::unix::net::UnixStream::connect(&engine.addr.socket) {
            Ok(_) => return Ok(engine),
            Err(e)
                if mode == crate::vm::Mode::Native
                    && e.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                return Err(Error::NativeNeedsRoot {
                    what: format!("{} is not open to this user", engine.addr.socket.display()),
                    socket: engine.addr.socket.clone(),
                });
            }
            Err(_) => {}
        }
        match mode {
            crate::vm::Mode::Native => start::start(&engine)?,
            crate::vm::Mode::Vm => {
                use crate::vm::Machine;
                let machine = crate::vm::machine().map_err(|e| Error::Vm(Box::new(e)))?;
                machine
                    .start(&mut |line| crate::vm::progress(line))
                    .map_err(|e| Error::Vm(Box::new(e)))?;
            }
        }
        Ok(engine)
    }

    /// The engine at this address; never starts one.
    pub fn at(addr: Address) -> Result<Self, Error> {
        Ok(Self {
            addr,
            rt: runtime()?,
        })
    }

    /// The engine at the configured address if one answers; never starts one.
    pub fn running() -> Option<Self> {
        let (_, addr) = address::resolve().ok()?;
        let engine = Self {
            addr,
            rt: runtime().ok()?,
        };
        engine.ping().ok().map(|()| engine)
    }

    /// Where the engine listens.
    pub fn address(&self) -> &Address {
        &self.addr
    }

    /// `GET /_ping`.
    pub fn ping(&self) -> Result<(), Error> {
        let resp = self.send(Method::GET, "/_ping", &[], Bytes::new(), "ping")?;
        self.check(resp, "ping").map(|_| ())
    }

    /// Sends one request and returns the response, whatever its status.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
        step: &str,
    ) -> Result<Response<Incoming>, Error> {
        self.rt
            .block_on(self.send_async(method, path, headers, body, step))
    }

    /// Sends one request on a connection of its own, from async code, and
    /// returns the response once its headers arrive (the body may follow
    /// later). The connection can be taken over (`Upgrade`) afterwards.
    pub async fn send_async(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Bytes,
        step: &str,
    ) -> Result<Response<Incoming>, Error> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "servin");
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Error::Invalid(format!("{step}: {e}")))?;
        self.request_async(req, step).await
    }

    /// Sends `req` (any body, a streamed one too) on a connection of its
    /// own and returns the response once its headers arrive; the
    /// connection can be taken over (`Upgrade`) afterwards.
    pub async fn request_async<B>(
        &self,
        req: Request<B>,
        step: &str,
    ) -> Result<Response<Incoming>, Error>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let addr = self.addr.to_string();
        let stream = tokio::net::UnixStream::connect(&self.addr.socket)
            .await
            .map_err(|source| Error::Unreachable {
                addr: addr.clone(),
                source,
            })?;
        let http = |source| Error::Http {
            addr: addr.clone(),
            step: step.to_string(),
            source,
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        sender.send_request(req).await.map_err(http)
    }

    /// Reads a whole response body.
    pub fn body(&self, resp: Response<Incoming>, step: &str) -> Result<Bytes, Error> {
        self.rt.block_on(async {
            resp.into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .map_err(|source| Error::Http {
                    addr: self.addr.to_string(),
                    step: step.to_string(),
                    source,
                })
        })
    }

    /// Turns an error status into [`Error::Engine`] with the engine's message.
    pub fn check(&self, resp: Response<Incoming>, step: &str) -> Result<Response<Incoming>, Error> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = self.body(resp, step)?;
        Err(engine_error(step, status, &body))
    }

    /// Sends a request and reads its JSON answer.
    pub fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        step: &str,
    ) -> Result<T, Error> {
        let resp = self.send(method, path, &[], Bytes::new(), step)?;
        let resp = self.check(resp, step)?;
        let body = self.body(resp, step)?;
        serde_json::from_slice(&body).map_err(|source| Error::Decode {
            step: step.to_string(),
            source,
        })
    }

    /// Calls `each` with every chunk of a streamed body as it arrives.
    pub fn stream(
        &self,
        resp: Response<Incoming>,
        step: &str,
        mut each: impl FnMut(&[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.rt.block_on(async {
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|source| Error::Http {
                    addr: self.addr.to_string(),
                    step: step.to_string(),
                    source,
                })?;
                if let Ok(data) = frame.into_data() {
                    each(&data)?;
                }
            }
            Ok(())
        })
    }

    /// Calls `each` with every JSON line of a streamed body.
    pub fn json_lines(
        &self,
        resp: Response<Incoming>,
        step: &str,
        mut each: impl FnMut(serde_json::Value) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut buf: Vec<u8> = Vec::new();
        self.stream(resp, step, |chunk| {
            buf.extend_from_slice(chunk);
            while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                let v = serde_json::from_slice(line).map_err(|source| Error::Decode {
                    step: step.to_string(),
                    source,
                })?;
                each(v)?;
            }
            Ok(())
        })?;
        let rest = buf.trim_ascii();
        if !rest.is_empty() {
            let v = serde_json::from_slice(rest).map_err(|source| Error::Decode {
                step: step.to_string(),
                source,
            })?;
            each(v)?;
        }
        Ok(())
    }
}

fn engine_error(step: &str, status: StatusCode, body: &[u8]) -> Error {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    Error::Engine {
        step: step.to_string(),
        status: status.as_u16(),
        message,
    }
}

/// Percent-encodes a query or path component.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_name_the_step_once() {
        let e = |step: &str, message: &str| {
            Error::Engine {
                step: step.to_string(),
                status: 500,
                message: message.to_string(),
            }
            .to_string()
        };
        assert_eq!(e("pull a:1", "pull a:1: denied"), "pull a:1: denied");
        assert_eq!(
            e("pull a", "pull docker.io/a: x"),
            "pull a: pull docker.io/a: x"
        );
        assert_eq!(e("pull a:1", "pull a:10: x"), "pull a:1: pull a:10: x");
    }
}
