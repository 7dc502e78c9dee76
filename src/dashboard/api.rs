//! The calls the page may make, and the engine call each one becomes. The
//! engine API is never exposed as it is: only these calls pass, each with
//! its arguments checked and its engine query written here.

use hyper::{Method, StatusCode};

use super::project::Op;
use crate::client::encode;

/// What a page call becomes.
#[derive(Debug, PartialEq, Eq)]
pub enum Call {
    /// One engine request, its answer passed back as it comes (streams
    /// too: events, logs, stats).
    Engine { method: Method, path: String },
    /// An interactive shell in the container, over a websocket.
    Terminal { container: String },
    /// Plan, Up or Down of a whole project, from its recorded file.
    Project {
        name: String,
        op: super::project::Op,
    },
}

/// A refused call: status and reason.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused(pub StatusCode, pub String);

/// Maps `METHOD /api/...?query` to its engine call.
pub fn route(method: &Method, path: &str, query: &str) -> Result<Call, Refused> {
    let parts: Vec<&str> = path
        .strip_prefix("/api/")
        .unwrap_or("")
        .split('/')
        .collect();
    let engine = |method: Method, path: String| Ok(Call::Engine { method, path });
    let get = method == Method::GET;
    let post = method == Method::POST;
    let delete = method == Method::DELETE;
    match parts.as_slice() {
        ["containers"] if get => engine(Method::GET, "/containers/json?all=1".into()),
        ["events"] if get => engine(
            Method::GET,
            format!("/events?filters={}", encode(r#"{"type":["container"]}"#)),
        ),
        ["images"] if get => engine(Method::GET, "/images/json".into()),
        ["volumes"] if get => engine(Method::GET, "/volumes".into()),
        ["networks"] if get => engine(Method::GET, "/networks".into()),
        ["df"] if get => engine(Method::GET, "/system/df".into()),
        ["containers", id] if get => engine(Method::GET, format!("/containers/{}/json", name(id)?)),
        ["containers", id] if delete => {
            engine(Method::DELETE, format!("/containers/{}?force=1", name(id)?))
        }
        ["containers", id, action @ ("start" | "stop" | "restart")] if post => {
            engine(Method::POST, format!("/containers/{}/{action}", name(id)?))
        }
        ["containers", id, "logs"] if get => {
            let tail = match super::guard::query_value(query, "tail") {
                None => "all".to_string(),
                Some(t) if t == "all" || t.parse::<u32>().is_ok() => t.to_string(),
                Some(t) => {
                    return Err(Refused(
                        StatusCode::BAD_REQUEST,
                        format!("tail `{t}` is not a number of lines or `all`"),
                    ));
                }
            };
            engine(
                Method::GET,
                format!(
                    "/containers/{}/logs?stdout=1&stderr=1&follow=1&timestamps=1&tail={tail}",
                    name(id)?
                ),
            )
        }
        ["containers", id, "stats"] if get => engine(
            Method::GET,
            format!("/containers/{}/stats?stream=1", name(id)?),
        ),
        ["containers", id, "terminal"] if get => Ok(Call::Terminal {
            container: name(id)?.to_string(),
        }),
        ["projects", p, "plan"] if get => project(p, Op::Plan),
        ["projects", p, "up"] if post => project(p, Op::Up),
        ["projects", p, "down"] if post => project(p, Op::Down),
        ["images", id] if delete => engine(Method::DELETE, format!("/images/{}", image_id(id)?)),
        ["volumes", id] if delete => engine(Method::DELETE, format!("/volumes/{}", name(id)?)),
        ["networks", id] if delete => engine(Method::DELETE, format!("/networks/{}", name(id)?)),
        _ => Err(Refused(
            StatusCode::NOT_FOUND,
            format!("the dashboard has no call {method} {path}"),
        )),
    }
}

fn project(p: &str, op: Op) -> Result<Call, Refused> {
    if crate::project::values::is_dns_label(p) {
        Ok(Call::Project {
            name: p.to_string(),
            op,
        })
    } else {
        Err(Refused(
            StatusCode::BAD_REQUEST,
            format!("`{p}` is not a project name"),
        ))
    }
}

/// A container, volume or network name or ID: Docker's name characters,
/// the first one a letter or digit (so never `.` or `..`).
fn name(s: &str) -> Result<&str, Refused> {
    let ok = s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(s)
    } else {
        Err(Refused(
            StatusCode::BAD_REQUEST,
            format!("`{s}` is not a container, volume or network name or ID"),
        ))
    }
}

/// An image ID (`sha256:` and hex): the page removes images by ID only.
fn image_id(s: &str) -> Result<String, Refused> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(encode(s))
    } else {
        Err(Refused(
            StatusCode::BAD_REQUEST,
            format!("`{s}` is not an image ID"),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn engine_path(method: Method, path: &str, query: &str) -> String {
        match route(&method, path, query).unwrap() {
            Call::Engine { path, .. } => path,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn page_calls_become_checked_engine_calls() {
        assert_eq!(
            engine_path(Method::GET, "/api/containers", ""),
            "/containers/json?all=1"
        );
        assert_eq!(
            engine_path(Method::POST, "/api/containers/web-1/stop", ""),
            "/containers/web-1/stop"
        );
        assert_eq!(
            engine_path(Method::DELETE, "/api/containers/abc", ""),
            "/containers/abc?force=1"
        );
        assert_eq!(
            engine_path(Method::GET, "/api/containers/abc/logs", "tail=200"),
            "/containers/abc/logs?stdout=1&stderr=1&follow=1&timestamps=1&tail=200"
        );
        assert_eq!(
            engine_path(Method::DELETE, "/api/images/sha256:0a1b", ""),
            "/images/sha256%3A0a1b"
        );
        assert_eq!(
            route(&Method::POST, "/api/projects/shop/up", ""),
            Ok(Call::Project {
                name: "shop".into(),
                op: Op::Up
            })
        );
        assert_eq!(
            route(&Method::GET, "/api/containers/web/terminal", ""),
            Ok(Call::Terminal {
                container: "web".into()
            })
        );
    }

    #[test]
    fn anything_else_is_refused_naming_it() {
        let code = |m: Method, p: &str, q: &str| route(&m, p, q).unwrap_err().0.as_u16();
        // Not one of the page's calls: the raw engine API stays closed.
        assert_eq!(code(Method::POST, "/api/containers/create", ""), 404);
        assert_eq!(code(Method::POST, "/api/containers/x/exec", ""), 404);
        assert_eq!(code(Method::GET, "/api/containers/x/stop", ""), 404);
        assert_eq!(code(Method::DELETE, "/api/containers", ""), 404);
        // Arguments that could reach another engine path or query.
        assert_eq!(code(Method::GET, "/api/containers/..", ""), 400);
        assert_eq!(code(Method::DELETE, "/api/volumes/.x", ""), 400);
        assert_eq!(code(Method::GET, "/api/containers/a%2Fb", ""), 400);
        assert_eq!(code(Method::GET, "/api/containers/a?b", ""), 400);
        assert_eq!(
            code(Method::GET, "/api/containers/x/logs", "tail=1%26follow=0"),
            400
        );
        assert_eq!(code(Method::DELETE, "/api/images/busybox", ""), 400);
        // A project is named, never given as a path; plan only reads.
        assert_eq!(code(Method::GET, "/api/projects/..%2Fetc/plan", ""), 400);
        assert_eq!(code(Method::GET, "/api/projects/Shop_1/plan", ""), 400);
        assert_eq!(code(Method::POST, "/api/projects/shop/plan", ""), 404);
        assert_eq!(code(Method::GET, "/api/projects/shop/up", ""), 404);
        let why = route(&Method::PUT, "/api/volumes", "").unwrap_err().1;
        assert_eq!(why, "the dashboard has no call PUT /api/volumes");
    }
}
