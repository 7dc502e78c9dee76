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
    ("POST", "/v1.47/build"),
    ("POST", "/v1.47/commit?container=x"),
    ("POST", "/v1.47/images/create?fromSrc=-"),
    ("POST", "/v1.47/plugins/pull"),
    ("POST", "/v1.47/session"),
    ("GET", "/v1.47/containers/x/changes"),
    ("POST", "/v1.47/networks/n/frobnicate"),
    ("PUT", "/v1.47/volumes/v"),
    ("POST", "/v1.47/exec/x/frobnicate"),
    ("POST", "/v1.47/distribution/busybox/json"),
];

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
