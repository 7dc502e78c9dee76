//! Docker's filter semantics on every list, prune and `/events`, through
//! the real `docker` CLI and the API as clients send them: keys ANDed,
//! values of one key ORed, `label` values ANDed, unknown keys refused.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "a test is a synchronous program of its own: it may sleep on its thread"
)]

mod support;

use support::EngineGuard;

use support::IMAGE;

fn lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort();
    v
}

fn names(e: &EngineGuard, args: &[&str]) -> Vec<String> {
    let mut all = vec!["ps", "-a", "--format", "{{.Names}}"];
    all.extend_from_slice(args);
    lines(&e.docker_ok(&all))
}

/// The query value of `filters` for `json`.
fn query(json: &str) -> String {
    form_urlencoded::byte_serialize(json.as_bytes()).collect()
}

#[test]
fn container_filters_and_labels_and_or_values() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    for (name, project, service) in [("web", "p", "s"), ("api", "p", "t"), ("other", "q", "s")] {
        e.docker_ok(&[
            "create",
            "--name",
            name,
            "--label",
            &format!("com.docker.compose.project={project}"),
            "--label",
            &format!("com.docker.compose.service={service}"),
            IMAGE,
            "true",
        ]);
    }
    // Compose v1's query: both labels must hold.
    assert_eq!(
        names(
            &e,
            &[
                "--filter",
                "label=com.docker.compose.project=p",
                "--filter",
                "label=com.docker.compose.service=s"
            ]
        ),
        ["web"]
    );
    assert_eq!(
        names(&e, &["--filter", "label=com.docker.compose.project=p"]),
        ["api", "web"]
    );
    // Values of one other key are ORed; keys are ANDed.
    assert_eq!(
        names(&e, &["--filter", "name=web", "--filter", "name=api"]),
        ["api", "web"]
    );
    assert_eq!(
        names(
            &e,
            &[
                "--filter",
                "name=web",
                "--filter",
                "label=com.docker.compose.project=q"
            ]
        ),
        Vec::<String>::new()
    );
    // Names are regular expressions, as Docker's.
    assert_eq!(names(&e, &["--filter", "name=^/?a"]), ["api"]);

    // A status filter lists stopped containers without -a, and status values
    // are ORed.
    e.docker_ok(&["start", "-a", "web"]);
    let out = e.docker_ok(&[
        "ps",
        "--format",
        "{{.Names}}",
        "--filter",
        "status=exited",
        "--filter",
        "status=created",
    ]);
    assert_eq!(lines(&out), ["api", "other", "web"]);
    assert_eq!(names(&e, &["--filter", "status=exited"]), ["web"]);
    assert_eq!(names(&e, &["--filter", "exited=0"]), ["web"]);
    assert_eq!(names(&e, &["--filter", "exited=1"]), Vec::<String>::new());
    assert_eq!(names(&e, &["--filter", "ancestor=test/box:1"]).len(), 3);
    assert_eq!(names(&e, &["--filter", "since=api"]), ["other"]);
    assert_eq!(names(&e, &["--filter", "before=api"]), ["web"]);
    assert_eq!(names(&e, &["--filter", "health=none"]).len(), 3);

    // An unknown key or status is the client's error, named.
    let r = e.api(
        "GET",
        &format!(
            "/v1.47/containers/json?filters={}",
            query(r#"{"colour":["red"]}"#)
        ),
        &[],
        b"",
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("invalid filter 'colour'"), "{}", r.text());
    let err = e.docker_err(&["ps", "--filter", "status=sleeping"]);
    assert!(err.contains("status=sleeping"), "{err}");

    // Prune takes label filters with the same rules.
    let r = e.api(
        "POST",
        &format!(
            "/v1.47/containers/prune?filters={}",
            query(r#"{"label":["com.docker.compose.project=p","com.docker.compose.service=s"]}"#)
        ),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["ContainersDeleted"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(names(&e, &[]), ["api", "other"]);
    e.docker_ok(&["rm", "api", "other"]);
}

#[test]
fn image_network_and_volume_filters() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.docker_ok(&["tag", IMAGE, "localhost:5000/team/box:2"]);
    let refs = |filter: &str| {
        lines(&e.docker_ok(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            &format!("reference={filter}"),
        ]))
    };
    assert_eq!(refs("test/box"), ["test/box:1"]);
    assert_eq!(refs("*/box:*"), ["test/box:1"]);
    assert_eq!(refs("localhost:5000/*/*"), ["localhost:5000/team/box:2"]);
    assert_eq!(refs("nothing*"), Vec::<String>::new());
    let err = e.docker_err(&["images", "--filter", "colour=red"]);
    assert!(err.contains("invalid filter 'colour'"), "{err}");

    // Networks: labels ANDed, dangling, type.
    e.docker_ok(&[
        "network", "create", "--label", "a=1", "--label", "b=2", "n1",
    ]);
    e.docker_ok(&["network", "create", "--label", "a=1", "n2"]);
    let nets = |args: &[&str]| {
        let mut all = vec!["network", "ls", "--format", "{{.Name}}"];
        all.extend_from_slice(args);
        lines(&e.docker_ok(&all))
    };
    assert_eq!(
        nets(&["--filter", "label=a=1", "--filter", "label=b=2"]),
        ["n1"]
    );
    assert_eq!(nets(&["--filter", "label=a"]), ["n1", "n2"]);
    assert_eq!(nets(&["--filter", "type=custom"]), ["n1", "n2"]);
    assert_eq!(nets(&["--filter", "dangling=true"]), ["n1", "n2"]);
    e.docker_ok(&["network", "rm", "n1", "n2"]);

    // Volumes: an unnamed volume is anonymous, so a plain prune takes it and
    // leaves the named one.
    e.docker_ok(&["volume", "create", "--label", "keep=yes", "named"]);
    let anon = e.docker_ok(&["volume", "create"]).trim().to_string();
    let v = e.docker_ok(&["volume", "inspect", "-f", "{{json .Labels}}", &anon]);
    assert!(v.contains("com.docker.volume.anonymous"), "{v}");
    let vols = |args: &[&str]| {
        let mut all = vec!["volume", "ls", "-q"];
        all.extend_from_slice(args);
        lines(&e.docker_ok(&all))
    };
    assert_eq!(vols(&["--filter", "label=keep=yes"]), ["named"]);
    assert_eq!(
        vols(&["--filter", "label=keep", "--filter", "label=other"]),
        Vec::<String>::new()
    );
    let out = e.docker_ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&anon), "{out}");
    assert_eq!(vols(&[]), ["named"]);
    e.docker_ok(&["volume", "rm", "named"]);
}

#[test]
fn event_filters_and_labels() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.docker_ok(&[
        "create", "--name", "one", "--label", "x=1", "--label", "y=2", IMAGE, "true",
    ]);
    e.docker_ok(&["create", "--name", "two", "--label", "x=1", IMAGE, "true"]);
    // Past events only: until a second from now.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let until = until.to_string();
    let events = |filters: &[&str]| {
        let mut all = vec![
            "events",
            "--since",
            "1",
            "--until",
            &until,
            "--format",
            "{{.Actor.Attributes.name}} {{.Action}}",
        ];
        for f in filters {
            all.push("--filter");
            all.push(f);
        }
        lines(&e.docker_ok(&all))
    };
    assert_eq!(
        events(&["label=x=1", "label=y=2", "event=create"]),
        ["one create"]
    );
    assert_eq!(
        events(&["label=x=1", "event=create"]),
        ["one create", "two create"]
    );
    assert_eq!(
        events(&["container=two", "event=create", "event=start"]),
        ["two create"]
    );
    let r = e.api(
        "GET",
        &format!(
            "/v1.47/events?until=1&filters={}",
            query(r#"{"colour":["red"]}"#)
        ),
        &[],
        b"",
    );
    assert_eq!(r.status, 400);
    e.docker_ok(&["rm", "one", "two"]);
}
