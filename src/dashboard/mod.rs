//! `servin dashboard`: a local web page over the engine's API.
//!
//! - [`guard`]: who may talk to it (Host, Origin, the per-start secret and
//!   its cookie); every request passes it first.
//! - [`api`]: the calls the page may make, each mapped to one checked
//!   engine call; the engine API itself is never exposed.
//! - [`project`]: Plan, Up and Down of a whole project, from the project
//!   file its containers record.
//! - [`terminal`]: a shell in a container (exec with a pty) over a
//!   websocket.
//! - [`assets`]: the page (`dashboard/`, built by `build.rs`), embedded.
//! - [`browser`]: opening the address in the user's browser.
//!
//! The server runs in the foreground on the engine client's runtime,
//! listening on 127.0.0.1 only, until Ctrl-C.

pub mod api;
pub mod assets;
pub mod browser;
pub mod guard;
pub mod project;
pub mod terminal;

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use self::guard::{Guard, Verdict};
use crate::client::Engine;

/// What went wrong starting or running the dashboard.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read a secret from /dev/urandom")]
    Secret(#[source] std::io::Error),
    #[error("the dashboard stopped accepting connections on {addr}")]
    Accept {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A response body: a whole one, or an engine stream passed through.
pub type Body = BoxBody<Bytes, hyper::Error>;

/// The dashboard's shared state, alive as long as the process.
struct State {
    engine: &'static Engine,
    guard: Guard,
}

/// A dashboard bound to its port, not serving yet.
pub struct Dashboard {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    guard: Guard,
}

impl Dashboard {
    /// Binds 127.0.0.1:`port` (0: a free port the system picks) and makes
    /// this start's secret.
    pub fn bind(port: u16) -> Result<Self, Error> {
        let want = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listen = |source| Error::Listen { addr: want, source };
        let listener = std::net::TcpListener::bind(want).map_err(listen)?;
        let addr = listener.local_addr().map_err(listen)?;
        listener.set_nonblocking(true).map_err(listen)?;
        let guard = Guard::new(addr.port(), guard::new_secret().map_err(Error::Secret)?);
        Ok(Self {
            listener,
            addr,
            guard,
        })
    }

    /// The address that logs in (it carries the secret).
    pub fn login_url(&self) -> String {
        self.guard.login_url()
    }

    /// Serves until Ctrl-C (or SIGTERM). The engine lives as long as the
    /// process: every connection's task borrows it.
    pub fn serve(self, engine: Engine) -> Result<(), Error> {
        let engine: &'static Engine = Box::leak(Box::new(engine));
        let state: &'static State = Box::leak(Box::new(State {
            engine,
            guard: self.guard,
        }));
        let addr = self.addr;
        engine.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(self.listener)
                .map_err(|source| Error::Listen { addr, source })?;
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|source| Error::Accept { addr, source })?;
            loop {
                let stream = tokio::select! {
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                    _ = term.recv() => return Ok(()),
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        // Out of descriptors and the like: go on serving
                        // the connections there are.
                        Err(e) if is_transient(&e) => continue,
                        Err(source) => return Err(Error::Accept { addr, source }),
                    },
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state, req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        })
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::Interrupted
    ) || e.raw_os_error().is_some_and(|c| c == 24 || c == 23)
}

async fn handle(
    state: &'static State,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let resp = match state.guard.check(req.uri(), req.headers()) {
        Verdict::Refuse(status, why) => text(status, &why),
        Verdict::Login => {
            let mut r = text(StatusCode::SEE_OTHER, "logged in; go to /");
            let h = r.headers_mut();
            h.insert(LOCATION, hyper::header::HeaderValue::from_static("/"));
            if let Ok(v) = state.guard.set_cookie().parse() {
                h.insert(SET_COOKIE, v);
            }
            r
        }
        Verdict::Allow if req.uri().path().starts_with("/api/") => call(state, req).await,
        Verdict::Allow => match assets::find(req.uri().path()) {
            Some((mime, bytes)) if req.method() == hyper::Method::GET => {
                let mut r = Response::new(full(Bytes::from_static(bytes)));
                if let Ok(v) = mime.parse() {
                    r.headers_mut().insert(CONTENT_TYPE, v);
                }
                r
            }
            Some(_) => text(
                StatusCode::METHOD_NOT_ALLOWED,
                "the page's files are read with GET",
            ),
            None => text(
                StatusCode::NOT_FOUND,
                &format!("the dashboard has no page {}", req.uri().path()),
            ),
        },
    };
    Ok(secure(resp))
}

/// A page call: refused, a terminal, or one engine call passed through.
async fn call(state: &'static State, req: Request<Incoming>) -> Response<Body> {
    let route = api::route(
        req.method(),
        req.uri().path(),
        req.uri().query().unwrap_or(""),
    );
    match route {
        Err(api::Refused(status, why)) => json_error(status, &why),
        Ok(api::Call::Terminal { container }) => {
            terminal::open(state.engine, &container, req).await
        }
        Ok(api::Call::Project { name, op }) => match project::run(state.engine, &name, op).await {
            Ok(answer) => {
                let mut r = Response::new(full(answer.to_string()));
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("application/json"),
                );
                r
            }
            Err(project::Failure(status, why)) => json_error(status, &why),
        },
        Ok(api::Call::Engine { method, path }) => {
            let step = format!("{method} {path}");
            match state
                .engine
                .send_async(method, &path, &[], Bytes::new(), &step)
                .await
            {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let mut r = Response::new(body.boxed());
                    *r.status_mut() = parts.status;
                    if let Some(ct) = parts.headers.get(CONTENT_TYPE) {
                        r.headers_mut().insert(CONTENT_TYPE, ct.clone());
                    }
                    r
                }
                Err(e) => json_error(StatusCode::BAD_GATEWAY, &e.to_string()),
            }
        }
    }
}

/// The headers every answer carries: nothing cached (the first address
/// holds the secret), no framing by other pages, no referrer, scripts and
/// connections from the dashboard itself only.
fn secure(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    for (k, v) in [
        (CACHE_CONTROL.as_str(), "no-store"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    ] {
        h.insert(k, hyper::header::HeaderValue::from_static(v));
    }
    r
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

pub(crate) fn text(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(full(format!("{msg}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// An error as the engine writes them: `{"message": ...}`.
pub(crate) fn json_error(status: StatusCode, msg: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": msg }).to_string();
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
