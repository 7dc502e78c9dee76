//! Calls the engine does not serve: each reads the whole request body
//! before it answers, so a client that is still uploading gets the answer
//! (501 naming the call) and not a broken pipe; Swarm calls answer as a
//! Docker in no swarm does (503).
#![allow(clippy::unwrap_used)]

mod support;

use support::EngineGuard;

/// Calls Docker has and this engine does not serve, with bodies as large
/// as their clients send (a build context, an import, an archive).
const UNSERVED: &[(&str, &str)] = &[
    ("POST", "/v1.47/build/cancel?id=x"),
    ("POST", "/v1.47/plugins/pull"),
    ("POST", "/v1.47/session"),
    ("POST", "/v1.47/networks/n/frobnicate"),
    ("PUT", "/v1.47/volumes/v"),
    ("POST", "/v1.47/exec/x/frobnicate"),
    ("POST", "/v1.47/distribution/busybox/json"),
];

/// How the engine answers one call of Docker's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Served: whatever it answers (here mostly 404 for a missing
    /// object, or 400), it is not 501.
    Served,
    /// Not served: 501 naming the call, after reading the body.
    NotServed,
    /// Swarm: 503, as a Docker in no swarm.
    NoSwarm,
}

use Answer::{NoSwarm, NotServed, Served};

/// Every call of the Docker Engine API (version 1.47, the one the engine
/// announces), with how the engine answers it. Paths name objects that do
/// not exist, so that served calls change nothing.
const DOCKER_API: &[(&str, &str, Answer)] = &[
    // Containers.
    ("GET", "/containers/json", Served),
    ("POST", "/containers/create", Served),
    ("GET", "/containers/nosuch/json", Served),
    ("GET", "/containers/nosuch/top", Served),
    ("GET", "/containers/nosuch/logs", Served),
    ("GET", "/containers/nosuch/changes", Served),
    ("GET", "/containers/nosuch/export", Served),
    ("GET", "/containers/nosuch/stats?stream=false", Served),
    ("POST", "/containers/nosuch/resize?h=1&w=1", Served),
    ("POST", "/containers/nosuch/start", Served),
    ("POST", "/containers/nosuch/stop", Served),
    ("POST", "/containers/nosuch/restart", Served),
    ("POST", "/containers/nosuch/kill", Served),
    ("POST", "/containers/nosuch/update", Served),
    ("POST", "/containers/nosuch/rename?name=x", Served),
    ("POST", "/containers/nosuch/pause", Served),
    ("POST", "/containers/nosuch/unpause", Served),
    ("POST", "/containers/nosuch/attach", Served),
    ("GET", "/containers/nosuch/attach/ws", NotServed),
    ("POST", "/containers/nosuch/wait", Served),
    ("DELETE", "/containers/nosuch", Served),
    ("HEAD", "/containers/nosuch/archive?path=/", Served),
    ("GET", "/containers/nosuch/archive?path=/", Served),
    ("PUT", "/containers/nosuch/archive?path=/", Served),
    ("POST", "/containers/prune", Served),
    ("POST", "/containers/nosuch/exec", Served),
    // Images.
    ("GET", "/images/json", Served),
    ("POST", "/build", Served),
    ("POST", "/build/prune", Served),
    ("POST", "/build/cancel", NotServed),
    (
        "POST",
        "/images/create?fromImage=127.0.0.1:1/nosuch&tag=x",
        Served,
    ),
    ("POST", "/images/create?fromSrc=-", Served),
    ("GET", "/images/nosuch/json", Served),
    ("GET", "/images/nosuch/history", Served),
    ("POST", "/images/nosuch/push", Served),
    ("POST", "/images/nosuch/tag?repo=x", Served),
    ("DELETE", "/images/nosuch", Served),
    ("GET", "/images/search?term=x", NotServed),
    ("POST", "/images/prune", Served),
    ("POST", "/commit?container=nosuch", Served),
    ("GET", "/images/nosuch/get", Served),
    ("GET", "/images/get?names=nosuch", Served),
    ("POST", "/images/load", Served),
    // Networks.
    ("GET", "/networks?filters={\"label\":[\"x\"]}", Served),
    ("GET", "/networks/nosuch", Served),
    ("DELETE", "/networks/nosuch", Served),
    ("POST", "/networks/create", Served),
    ("POST", "/networks/nosuch/connect", Served),
    ("POST", "/networks/nosuch/disconnect", Served),
    ("POST", "/networks/prune", Served),
    // Volumes.
    ("GET", "/volumes", Served),
    ("POST", "/volumes/create", Served),
    ("GET", "/volumes/nosuch", Served),
    ("PUT", "/volumes/nosuch", NotServed),
    ("DELETE", "/volumes/nosuch", Served),
    ("POST", "/volumes/prune", Served),
    // Exec.
    ("POST", "/exec/nosuch/start", Served),
    ("POST", "/exec/nosuch/resize?h=1&w=1", Served),
    ("GET", "/exec/nosuch/json", Served),
    // Swarm.
    ("GET", "/swarm", NoSwarm),
    ("POST", "/swarm/init", NotServed),
    ("POST", "/swarm/join", NotServed),
    ("POST", "/swarm/leave", NoSwarm),
    ("POST", "/swarm/update", NoSwarm),
    ("GET", "/swarm/unlockkey", NoSwarm),
    ("POST", "/swarm/unlock", NoSwarm),
    ("GET", "/nodes", NoSwarm),
    ("GET", "/nodes/nosuch", NoSwarm),
    ("DELETE", "/nodes/nosuch", NoSwarm),
    ("POST", "/nodes/nosuch/update", NoSwarm),
    ("GET", "/services", NoSwarm),
    ("POST", "/services/create", NoSwarm),
    ("GET", "/services/nosuch", NoSwarm),
    ("DELETE", "/services/nosuch", NoSwarm),
    ("POST", "/services/nosuch/update", NoSwarm),
    ("GET", "/services/nosuch/logs", NoSwarm),
    ("GET", "/tasks", NoSwarm),
    ("GET", "/tasks/nosuch", NoSwarm),
    ("GET", "/tasks/nosuch/logs", NoSwarm),
    ("GET", "/secrets", NoSwarm),
    ("POST", "/secrets/create", NoSwarm),
    ("GET", "/secrets/nosuch", NoSwarm),
    ("DELETE", "/secrets/nosuch", NoSwarm),
    ("POST", "/secrets/nosuch/update", NoSwarm),
    ("GET", "/configs", NoSwarm),
    ("POST", "/configs/create", NoSwarm),
    ("GET", "/configs/nosuch", NoSwarm),
    ("DELETE", "/configs/nosuch", NoSwarm),
    ("POST", "/configs/nosuch/update", NoSwarm),
    // Plugins.
    ("GET", "/plugins", NotServed),
    ("GET", "/plugins/privileges?remote=x", NotServed),
    ("POST", "/plugins/pull?remote=x", NotServed),
    ("GET", "/plugins/nosuch/json", NotServed),
    ("DELETE", "/plugins/nosuch", NotServed),
    ("POST", "/plugins/nosuch/enable", NotServed),
    ("POST", "/plugins/nosuch/disable", NotServed),
    ("POST", "/plugins/nosuch/upgrade?remote=x", NotServed),
    ("POST", "/plugins/create?name=x", NotServed),
    ("POST", "/plugins/nosuch/push", NotServed),
    ("POST", "/plugins/nosuch/set", NotServed),
    // System.
    ("POST", "/auth", Served),
    ("GET", "/info", Served),
    ("GET", "/version", Served),
    ("GET", "/_ping", Served),
    ("HEAD", "/_ping", Served),
    ("GET", "/events?since=0&until=1", Served),
    ("GET", "/system/df", Served),
    ("GET", "/distribution/nosuch/json", NotServed),
    ("POST", "/session", NotServed),
];

/// Every call of Docker's API answers as the table says: a served call is
/// not a 501, an unserved one reads a large body and answers 501 naming
/// itself, a Swarm one answers 503.
#[test]
fn every_docker_api_call_is_served_or_answered_501_naming_it() {
    let e = EngineGuard::start();
    let body = vec![b'x'; 4 * 1024 * 1024];
    for (method, path, answer) in DOCKER_API {
        let full = format!("/v1.47{path}");
        let sent: &[u8] = if *answer == NotServed { &body } else { b"" };
        let r = e.api(method, &full, &[("Content-Type", "application/json")], sent);
        let call = path.split('?').next().unwrap();
        match answer {
            Served => assert_ne!(r.status, 501, "{method} {path}: {}", r.text()),
            NoSwarm => {
                assert_eq!(r.status, 503, "{method} {path}: {}", r.text());
                assert!(r.text().contains("not part of a swarm"), "{}", r.text());
            }
            NotServed => {
                assert_eq!(r.status, 501, "{method} {path}: {}", r.text());
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
                let message = v["message"].as_str().unwrap();
                assert!(
                    message.contains(&format!("{method} {call}")),
                    "{method} {path}: {message}"
                );
            }
        }
    }
}

#[test]
fn unserved_calls_read_a_large_body_then_answer_501_naming_the_call() {
    let e = EngineGuard::start();
    let body = vec![b'x'; 8 * 1024 * 1024];
    for (method, path) in UNSERVED {
        let r = e.api(
            method,
            path,
            &[("Content-Type", "application/x-tar")],
            &body,
        );
        assert_eq!(r.status, 501, "{method} {path}: {}", r.text());
        let call = path.trim_start_matches("/v1.47");
        let call = call.split('?').next().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let message = v["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{method} {call}")) && message.contains("not served"),
            "{method} {path}: {message}"
        );
    }
}

#[test]
fn swarm_calls_answer_as_a_docker_in_no_swarm() {
    let e = EngineGuard::start();
    for (method, path) in [
        ("GET", "/v1.47/swarm"),
        ("POST", "/v1.47/swarm/leave?force=1"),
        ("GET", "/v1.47/nodes"),
        ("GET", "/v1.47/services"),
        ("GET", "/v1.47/tasks"),
        ("GET", "/v1.47/secrets"),
        ("GET", "/v1.47/configs"),
    ] {
        let r = e.api(method, path, &[], b"");
        assert_eq!(r.status, 503, "{method} {path}: {}", r.text());
        assert!(r.text().contains("not part of a swarm"), "{}", r.text());
    }
    let r = e.api("POST", "/v1.47/swarm/init", &[], b"{}");
    assert_eq!(r.status, 501, "{}", r.text());
    assert!(r.text().contains("POST /swarm/init"), "{}", r.text());
    // The docker CLI shows Docker's message.
    let err = e.docker_err(&["swarm", "leave"]);
    assert!(err.contains("not part of a swarm"), "{err}");
}
