//! Request dispatch, query parsing and response helpers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc::{Receiver, UnboundedReceiver};

use super::{
    archive, auth, build, commit, container_ops, containers, image_history, images, networks,
    projects, system, system_df, system_reset, volumes, workspaces,
};
use crate::engine::Engine;
use crate::error::{Error, RequestError};

/// The body of every response.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A parsed query string; keys may repeat.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, Vec<String>>);

impl Query {
    /// Parses `a=b&c=d` as a form (`application/x-www-form-urlencoded`, as
    /// Go's `url.ParseQuery` does for Docker): `%XX` escapes and `+` for a
    /// space, on both sides.
    pub fn parse(q: Option<&str>) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(q.unwrap_or_default().as_bytes()) {
            map.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Self(map)
    }

    /// The first value of `key`, if non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0.get(key).cloned().unwrap_or_default()
    }

    /// Whether `key` is `1` or `true`.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "True"))
    }
}

/// Decodes a request path: `%XX` escapes only. A `+` in a path is a
/// plus (only a query string spells a space that way).
fn decode_path(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// A JSON response.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_type(status, "application/json", Bytes::from(bytes)),
        Err(e) => error_response(&Error::json("response")(e)),
    }
}

/// A response with a fixed body.
pub fn with_type(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// An empty response.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r
}

/// Docker's error shape: `{"message": "..."}`.
pub fn error_response(e: &Error) -> Response<Body> {
    let status = super::status::status_of(e);
    let message = e.full_message();
    if status.is_server_error() {
        tracing::warn!(%status, "{message}");
    }
    let body = serde_json::json!({ "message": message });
    with_type(
        status,
        "application/json",
        Bytes::from(body.to_string().into_bytes()),
    )
}

/// A streamed response fed by `rx` (closed when the sender goes).
pub fn streaming(content_type: &'static str, rx: UnboundedReceiver<Bytes>) -> Response<Body> {
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    streaming_from(content_type, stream)
}

/// A streamed response fed by the bounded `rx`: hyper takes a piece only
/// once the previous one is written to the socket, so while the client
/// reads slowly the sender waits and the engine holds at most the
/// channel's capacity (for `logs -f` and `/events`).
pub fn streaming_bounded(content_type: &'static str, rx: Receiver<Bytes>) -> Response<Body> {
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    streaming_from(content_type, stream)
}

fn streaming_from(
    content_type: &'static str,
    stream: impl futures_util::Stream<Item = Bytes> + Send + 'static,
) -> Response<Body> {
    use futures_util::StreamExt as _;
    let frames = stream.map(|b| Ok::<_, std::io::Error>(Frame::data(b)));
    let mut r = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A streamed response reading `file` to its end.
pub fn streaming_file(content_type: &'static str, file: tokio::fs::File) -> Response<Body> {
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        use tokio::io::AsyncReadExt;
        let mut file = file?;
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Frame::data(Bytes::from(buf))), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut r = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Strips a `/v1.NN` prefix.
fn strip_version(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v")
        && let Some(i) = rest.find('/')
        && rest[..i].bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && i > 0
    {
        return &rest[i..];
    }
    path
}

/// The API version a request names in its `/v1.NN` prefix, as (major,
/// minor); `None` without a prefix (the engine's own version).
pub fn api_version(path: &str) -> Option<(u32, u32)> {
    let rest = path.strip_prefix("/v")?;
    let (version, _) = rest.split_once('/')?;
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Serves one request.
pub async fn route(
    engine: Arc<Engine>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let raw_path = decode_path(req.uri().path());
    let path = strip_version(&raw_path).to_string();
    let version = api_version(&raw_path);
    tracing::debug!(%method, %path, "request");
    let result = dispatch(&engine, &method, &path, version, req).await;
    Ok(result.unwrap_or_else(|e| error_response(&e)))
}

async fn dispatch(
    engine: &Arc<Engine>,
    method: &Method,
    path: &str,
    version: Option<(u32, u32)>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    let query = Query::parse(req.uri().query());
    match (method, path) {
        (&Method::GET | &Method::HEAD, "/_ping") => return Ok(system::ping(method)),
        (&Method::GET, "/version") => return Ok(system::version()),
        (&Method::GET, "/info") => return Ok(system::info(engine)),
        (&Method::GET, "/system/df") => return system_df::df(engine, &query).await,
        (&Method::GET, "/servin/v1/info") => return Ok(system::servin_info(engine)),
        (&Method::POST, servin_proto::reset::RESET_PATH) => {
            return Ok(system_reset::reset(engine).await);
        }
        (&Method::GET, "/images/json") => return images::list(engine, &query),
        (&Method::POST, "/images/create") if query.get("fromSrc").is_some() => {
            return commit::import(engine, &query, req).await;
        }
        (&Method::POST, "/commit") => return commit::commit(engine, &query, req).await,
        (&Method::POST, "/images/create") => return images::create(engine, &query, &req).await,
        (&Method::GET, "/images/get") => return images::save(engine, &query.all("names")).await,
        (&Method::POST, "/images/load") => return images::load(engine, req).await,
        (&Method::POST, "/images/prune") => return images::prune(engine, &query).await,
        (&Method::POST, "/containers/create") => {
            return containers::create(engine, &query, version, req).await;
        }
        (&Method::GET, "/containers/json") => return containers::list(engine, &query),
        (&Method::POST, "/containers/prune") => return containers::prune(engine, &query).await,
        (&Method::GET, "/events") => return containers::events(engine, &query),
        (&Method::POST, "/auth") => return auth::auth(engine, req).await,
        (&Method::GET, "/networks") => return networks::list(engine, &query).await,
        (&Method::POST, "/networks/create") => return networks::create(engine, req).await,
        (&Method::POST, "/networks/prune") => return networks::prune(engine, &query).await,
        (&Method::GET, "/volumes") => return volumes::list(engine, &query),
        (&Method::POST, "/volumes/create") => return volumes::create(engine, req).await,
        (&Method::POST, "/build") => return build::classic(engine, &query, req).await,
        (&Method::POST, "/build/prune") => return build::prune(engine, &query).await,
        (&Method::POST, servin_proto::build::BUILD_PATH) => return build::build(engine, req).await,
        (&Method::POST, servin_proto::build::BLOBS_PATH) => {
            return build::put_blobs(engine, req).await;
        }
        (&Method::POST, "/volumes/prune") => {
            return volumes::prune(engine, &query, req.uri().path()).await;
        }
        _ => {}
    }
    if let Some(call) = swarm_call(path) {
        discard_body(req).await;
        return Err(if call == SwarmCall::Join {
            RequestError::NotServed(format!("{method} {path} (servin does not run Swarm)")).into()
        } else {
            RequestError::NoSwarm.into()
        });
    }
    if let Some(rest) = path.strip_prefix("/containers/") {
        let (key, action) = rest.split_once('/').unwrap_or((rest, ""));
        return match (method, action) {
            (&Method::GET, "json") => containers::inspect(engine, key, version),
            (&Method::POST, "start") => containers::start(engine, key).await,
            (&Method::POST, "stop") => containers::stop(engine, key, &query).await,
            (&Method::POST, "restart") => containers::restart(engine, key, &query).await,
            (&Method::POST, "kill") => containers::kill(engine, key, &query).await,
            (&Method::POST, "rename") => containers::rename(engine, key, &query).await,
            (&Method::POST, "wait") => containers::wait(engine, key, &query),
            (&Method::DELETE, "") => containers::remove(engine, key, &query).await,
            (&Method::GET, "logs") => containers::logs(engine, key, &query),
            (&Method::POST, "attach") => containers::attach(engine, key, &query, req),
            (&Method::POST, "resize") => containers::resize(engine, key, &query).await,
            (&Method::POST, "exec") => containers::exec_create(engine, key, req).await,
            (&Method::GET, "archive") => archive::get(engine, key, &query).await,
            (&Method::HEAD, "archive") => archive::head(engine, key, &query).await,
            (&Method::PUT, "archive") => archive::put(engine, key, &query, req).await,
            (&Method::GET, "stats") => container_ops::stats(engine, key, &query).await,
            (&Method::GET, "top") => container_ops::top(engine, key, &query).await,
            (&Method::GET, "changes") => commit::changes(engine, key).await,
            (&Method::GET, "export") => commit::export(engine, key).await,
            (&Method::POST, "pause") => container_ops::pause(engine, key).await,
            (&Method::POST, "unpause") => container_ops::unpause(engine, key).await,
            (&Method::POST, "update") => container_ops::update(engine, key, req).await,
            _ => not_served(method, path, req).await,
        };
    }
    if let Some(rest) = path.strip_prefix("/servin/v1/workspaces/") {
        let (volume, action) = rest.split_once('/').unwrap_or((rest, ""));
        return match (method, action) {
            (&Method::GET, "") => workspaces::inspect(engine, volume),
            (&Method::GET, "manifest") => workspaces::manifest(engine, volume).await,
            (&Method::POST, "batch") => workspaces::batch(engine, volume, req).await,
            _ => not_served(method, path, req).await,
        };
    }
    if let Some(rest) = path.strip_prefix("/servin/v1/build/contexts/") {
        return match (method, rest.strip_suffix("/missing")) {
            (&Method::GET, Some(digest)) => build::missing(engine, digest),
            (&Method::PUT, None) => build::put_context(engine, rest, &query, req).await,
            _ => not_served(method, path, req).await,
        };
    }
    if let Some(rest) = path.strip_prefix("/networks/") {
        let (key, action) = rest.split_once('/').unwrap_or((rest, ""));
        return match (method, action) {
            (&Method::GET, "") => networks::inspect(engine, key).await,
            (&Method::DELETE, "") => networks::remove(engine, key).await,
            (&Method::POST, "connect") => networks::connect(engine, key, req).await,
            (&Method::POST, "disconnect") => networks::disconnect(engine, key, req).await,
            _ => not_served(method, path, req).await,
        };
    }
    if let Some(name) = path.strip_prefix("/volumes/") {
        return match *method {
            Method::GET => volumes::inspect(engine, name),
            Method::DELETE => volumes::remove(engine, name, &query).await,
            _ => not_served(method, path, req).await,
        };
    }
    if let Some(rest) = path.strip_prefix("/servin/v1/projects/")
        && let Some((name, action)) = rest.split_once('/')
        && method == Method::POST
    {
        return match action {
            "plan" => projects::plan(engine, name, &query, req).await,
            "apply" => projects::apply(engine, name, &query, req).await,
            "down" => projects::down(engine, name, &query),
            _ => match action
                .strip_prefix("applies/")
                .and_then(|a| a.strip_suffix("/images"))
            {
                Some(apply) => projects::built_image(engine, name, apply, req).await,
                None => not_served(method, path, req).await,
            },
        };
    }
    if let Some(rest) = path.strip_prefix("/exec/") {
        let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
        return match (method, action) {
            (&Method::POST, "start") => containers::exec_start(engine, id, req).await,
            (&Method::POST, "resize") => containers::exec_resize(engine, id, &query),
            (&Method::GET, "json") => containers::exec_inspect(engine, id),
            _ => not_served(method, path, req).await,
        };
    }
    if let Some(rest) = path.strip_prefix("/images/") {
        if let Some(name) = rest.strip_suffix("/json").filter(|_| method == Method::GET) {
            return images::inspect(engine, name, version);
        }
        if let Some(name) = rest
            .strip_suffix("/history")
            .filter(|_| method == Method::GET)
        {
            return image_history::history(engine, name).await;
        }
        if let Some(name) = rest.strip_suffix("/tag").filter(|_| method == Method::POST) {
            return images::tag(engine, name, &query);
        }
        if let Some(name) = rest
            .strip_suffix("/push")
            .filter(|_| method == Method::POST)
        {
            return images::push(engine, name, &query, &req).await;
        }
        if let Some(name) = rest.strip_suffix("/get").filter(|_| method == Method::GET) {
            return images::save(engine, &[name.to_string()]).await;
        }
        if method == Method::DELETE && !rest.is_empty() {
            return images::remove(engine, rest, &query).await;
        }
    }
    not_served(method, path, req).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strips_api_versions_only() {
        assert_eq!(strip_version("/v1.47/images/json"), "/images/json");
        assert_eq!(strip_version("/version"), "/version");
        assert_eq!(strip_version("/volumes"), "/volumes");
    }

    #[test]
    fn reads_the_api_version_a_request_names() {
        assert_eq!(api_version("/v1.38/images/box/json"), Some((1, 38)));
        assert_eq!(api_version("/v1.47/_ping"), Some((1, 47)));
        assert_eq!(api_version("/images/box/json"), None);
        assert_eq!(api_version("/v1/images/json"), None);
        assert_eq!(api_version("/vx.y/images/json"), None);
    }

    #[test]
    fn decodes_queries() {
        let q = Query::parse(Some(
            "fromImage=127.0.0.1%3A5000%2Fa&tag=v1&names=a&names=b&x=%zz",
        ));
        assert_eq!(q.get("fromImage"), Some("127.0.0.1:5000/a"));
        assert_eq!(q.all("names"), vec!["a", "b"]);
        assert_eq!(q.get("x"), Some("%zz"));
        let q = Query::parse(Some("filters=%7B%22name%22%3A%5B%22a+b%22%5D%7D&t=a%2Bb"));
        assert_eq!(q.get("filters"), Some(r#"{"name":["a b"]}"#));
        assert_eq!(q.get("t"), Some("a+b"));
    }

    #[test]
    fn decodes_paths_without_the_form_plus() {
        let path = decode_path("/v1.47/images/my+app%2Fweb%20x/json");
        assert_eq!(strip_version(&path), "/images/my+app/web x/json");
        assert_eq!(decode_path("/volumes/a%2Bb"), "/volumes/a+b");
        assert_eq!(decode_path("/volumes/100%"), "/volumes/100%");
    }
}

/// Swarm's calls: joining one is not served; every other call answers as
/// a Docker that is in no swarm does (503), which SDK fixtures and
/// teardown code expect and ignore.
#[derive(Debug, PartialEq, Eq)]
enum SwarmCall {
    Join,
    Other,
}

fn swarm_call(path: &str) -> Option<SwarmCall> {
    if matches!(path, "/swarm/init" | "/swarm/join") {
        return Some(SwarmCall::Join);
    }
    let first = path.trim_start_matches('/').split('/').next()?;
    matches!(
        first,
        "swarm" | "nodes" | "services" | "tasks" | "secrets" | "configs"
    )
    .then_some(SwarmCall::Other)
}

/// Reads and drops a request's body, so that a client still sending one
/// gets the answer (an error) instead of a broken pipe.
pub async fn discard(req: Request<Incoming>) {
    discard_body(req).await;
}

/// Reads and drops a request's body, so that a client still sending one
/// (an upload of a call the engine does not serve) gets the answer instead
/// of a broken pipe.
pub async fn discard_body(req: Request<Incoming>) {
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
}

/// A call the engine does not serve: its body is read, then 501 names it.
async fn not_served(
    method: &Method,
    path: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    discard_body(req).await;
    Err(RequestError::NotServed(format!("{method} {path}")).into())
}
