//! Answers that clients depend on, compared with what Docker answers: the
//! inspect of a container created with a bare body (as docker-py sends
//! it), log drivers and runtimes refused at create, a SIGKILL that returns
//! once the container is down, `wait` on a container that its restart
//! policy starts again, and removing a restarting container.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "a test is a synchronous program of its own: it may sleep on its thread"
)]

mod support;

use std::time::{Duration, Instant};

use support::{EngineGuard, IMAGE};

fn create(e: &EngineGuard, name: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let r = e.api(
        "POST",
        &format!("/v1.47/containers/create?name={name}"),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, v)
}

fn inspect(e: &EngineGuard, name: &str) -> serde_json::Value {
    let r = e.api("GET", &format!("/v1.47/containers/{name}/json"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn a_bare_create_is_inspected_with_dockers_defaults() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    // docker-py's containers.create(image, command) body.
    let (status, v) = create(
        &e,
        "bare",
        serde_json::json!({"Image": IMAGE, "Cmd": ["true"], "HostConfig": {"NetworkMode": "default"}}),
    );
    assert_eq!(status, 201, "{v}");
    let v = inspect(&e, "bare");
    let hc = &v["HostConfig"];
    assert_eq!(hc["LogConfig"]["Type"], "json-file", "{hc}");
    assert_eq!(hc["LogConfig"]["Config"], serde_json::json!({}));
    assert_eq!(hc["RestartPolicy"]["Name"], "no");
    assert_eq!(hc["RestartPolicy"]["MaximumRetryCount"], 0);
    assert_eq!(hc["NetworkMode"], "default");
    assert_eq!(hc["Runtime"], "runc");
    assert_eq!(hc["ShmSize"], 64 * 1024 * 1024);
    assert_eq!(hc["Privileged"], false);
    assert!(hc.as_object().unwrap().contains_key("Binds"));
    let config = v["Config"].as_object().unwrap();
    for key in [
        "Tty",
        "OpenStdin",
        "AttachStdin",
        "Entrypoint",
        "Cmd",
        "Labels",
        "Env",
    ] {
        assert!(
            config.contains_key(key),
            "Config.{key} is missing: {config:?}"
        );
    }
    assert_eq!(config["Tty"], false);
    assert_eq!(config["Entrypoint"], serde_json::Value::Null);
    assert_eq!(v["Mounts"], serde_json::json!([]));
    // The docker CLI reads the same.
    let out = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.LogConfig.Type}} {{.HostConfig.RestartPolicy.Name}}",
        "bare",
    ]);
    assert_eq!(out.trim(), "json-file no");
    e.docker_ok(&["rm", "bare"]);
}

#[test]
fn unknown_log_drivers_options_and_runtimes_are_refused() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let (status, v) = create(
        &e,
        "syslog",
        serde_json::json!({"Image": IMAGE, "HostConfig": {"LogConfig": {"Type": "syslog"}}}),
    );
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("\"syslog\""), "{v}");
    let (status, v) = create(
        &e,
        "compress",
        serde_json::json!({"Image": IMAGE, "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"compress": "true"}}}}),
    );
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("compress"), "{v}");
    let (status, v) = create(
        &e,
        "kata",
        serde_json::json!({"Image": IMAGE, "HostConfig": {"Runtime": "kata"}}),
    );
    assert_eq!(status, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("kata"), "{v}");
    let err = e.docker_err(&["run", "--log-driver", "gelf", IMAGE, "true"]);
    assert!(err.contains("gelf"), "{err}");
    // The engine's own runtime and json-file with its options are fine.
    let (status, v) = create(
        &e,
        "fine",
        serde_json::json!({"Image": IMAGE, "HostConfig": {"Runtime": "runc", "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}}}),
    );
    assert_eq!(status, 201, "{v}");
    let out = e.docker_ok(&["ps", "-aq"]);
    assert_eq!(out.lines().count(), 1, "nothing else was made: {out}");
    e.docker_ok(&["rm", "fine"]);
}

#[test]
fn kill_returns_once_the_container_is_down() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.run_detached("killed", &[], &["sleep", "3600"]);
    let r = e.api("POST", "/v1.47/containers/killed/kill", &[], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    // No wait: the very next inspect sees it stopped.
    let v = inspect(&e, "killed");
    assert_eq!(v["State"]["Running"], false, "{}", v["State"]);
    assert_eq!(v["State"]["ExitCode"], 137);
    e.docker_ok(&["rm", "killed"]);
}

#[test]
fn wait_returns_at_the_next_exit_of_a_restarting_container_which_rm_needs_force_for() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.run_detached(
        "again",
        &["--restart", "always"],
        &["sh", "-c", "sleep 1; exit 3"],
    );
    let start = Instant::now();
    let out = e.docker_ok(&["wait", "again"]);
    assert_eq!(out.trim(), "3");
    assert!(start.elapsed() < Duration::from_secs(30));
    // Between two runs the container is restarting; removing it then needs
    // force, as with Docker.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = e.docker_ok(&["inspect", "-f", "{{.State.Status}}", "again"]);
        if status.trim() == "restarting" {
            let r = e.api("DELETE", "/v1.47/containers/again", &[], b"");
            assert_ne!(r.status, 204, "removed without force");
            if r.status == 409 && r.text().contains("container is restarting") {
                break;
            }
        }
        assert!(Instant::now() < deadline, "never caught it restarting");
        std::thread::sleep(Duration::from_millis(20));
    }
    e.docker_ok(&["rm", "-f", "again"]);
    assert!(e.docker_ok(&["ps", "-aq"]).trim().is_empty());
}

#[test]
fn attach_with_logs_to_an_exited_container_replays_and_ends() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.run_detached(
        "done",
        &[],
        &["sh", "-c", "echo out-line; echo err-line >&2"],
    );
    assert_eq!(e.docker_ok(&["wait", "done"]).trim(), "0");
    let r = e.api(
        "POST",
        "/v1.47/containers/done/attach?logs=1&stdout=1&stderr=1",
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Multiplexed frames: stdout (1) then stderr (2), each with its line.
    let mut frames = Vec::new();
    let mut rest = r.body.as_slice();
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        frames.push((
            rest[0],
            String::from_utf8_lossy(&rest[8..8 + len]).into_owned(),
        ));
        rest = &rest[8 + len..];
    }
    assert_eq!(
        frames,
        [(1, "out-line\n".to_string()), (2, "err-line\n".to_string())]
    );
    // stdout only.
    let r = e.api(
        "POST",
        "/v1.47/containers/done/attach?logs=1&stdout=1",
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert!(r.text().contains("out-line") && !r.text().contains("err-line"));
    e.docker_ok(&["rm", "done"]);
}

#[test]
fn exec_of_a_missing_or_unrunnable_command_exits_127_or_126() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.run_detached("execs", &[], &["sleep", "3600"]);
    let out = e.docker(&["exec", "execs", "no-such-tool"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("executable file not found"), "{text}");
    let out = e.docker(&["exec", "execs", "/etc"]);
    assert_eq!(out.status.code(), Some(126), "{out:?}");
    let out = e.docker(&["exec", "-t", "execs", "/no/such/file"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    // A command that runs keeps its own code.
    let out = e.docker(&["exec", "execs", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    e.docker_ok(&["rm", "-f", "execs"]);
}

#[test]
fn container_prune_counts_what_the_containers_wrote() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.docker_ok(&[
        "run",
        "--name",
        "writer",
        IMAGE,
        "dd",
        "if=/dev/zero",
        "of=/big",
        "bs=1024",
        "count=2048",
    ]);
    let r = e.api("POST", "/v1.47/containers/prune", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["ContainersDeleted"].as_array().unwrap().len(), 1, "{v}");
    let reclaimed = v["SpaceReclaimed"].as_i64().unwrap();
    assert!(reclaimed >= 2 * 1024 * 1024, "{v}");
}

/// Opens a hijacked (upgraded) API connection: sends the request, reads the
/// answer's head, returns the stream for both ways.
fn hijack(e: &EngineGuard, method: &str, path: &str, body: &str) -> std::os::unix::net::UnixStream {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(e.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: engine\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "{}",
            String::from_utf8_lossy(&got)
        );
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// Reads until the engine closes the stream (or 30 s pass: a failure).
fn read_to_close(s: &mut std::os::unix::net::UnixStream) -> String {
    use std::io::Read;
    let mut out = Vec::new();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!(
                "no close after {:?}: {e}: {}",
                start.elapsed(),
                String::from_utf8_lossy(&out)
            ),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn detach_keys_end_attach_and_exec_sessions_and_leave_the_process_running() {
    use std::io::Write;
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.run_detached("shell", &["-it"], &["sh"]);
    // Attach with Docker's default keys, ctrl-p ctrl-q.
    let mut s = hijack(
        &e,
        "POST",
        "/v1.47/containers/shell/attach?stream=1&stdin=1&stdout=1&stderr=1",
        "",
    );
    s.write_all(b"echo mark$((40+2))\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&[0x10, 0x11]).unwrap();
    let out = read_to_close(&mut s);
    assert!(out.contains("mark42"), "{out:?}");
    let running = e.docker_ok(&["inspect", "-f", "{{.State.Running}}", "shell"]);
    assert_eq!(
        running.trim(),
        "true",
        "the container runs on after a detach"
    );
    // Bad keys are the client's error.
    let r = e.api(
        "POST",
        "/v1.47/containers/shell/attach?stream=1&stdin=1&detachKeys=ctrl-pp",
        &[],
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Invalid detach keys"), "{}", r.text());

    // An exec on a terminal with its own keys.
    let r = e.api(
        "POST",
        "/v1.47/containers/shell/exec",
        &[("Content-Type", "application/json")],
        br#"{"Cmd":["sh"],"Tty":true,"AttachStdin":true,"AttachStdout":true,"DetachKeys":"ctrl-x,x"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let id = v["Id"].as_str().unwrap().to_string();
    let mut s = hijack(
        &e,
        "POST",
        &format!("/v1.47/exec/{id}/start"),
        r#"{"Tty":true}"#,
    );
    s.write_all(b"echo exec$((40+1))\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(&[0x18, b'x']).unwrap();
    let out = read_to_close(&mut s);
    assert!(out.contains("exec41"), "{out:?}");
    let r = e.api("GET", &format!("/v1.47/exec/{id}/json"), &[], b"");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["Running"], true, "the exec runs on after a detach: {v}");
    e.docker_ok(&["rm", "-f", "shell"]);
}

#[test]
fn short_binds_make_their_folder_and_dockers_socket_is_the_engines() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let made = e.root().join("host/made/here");
    let spec = format!("{}:/data", made.display());
    e.docker_ok(&["run", "--rm", "-v", &spec, IMAGE, "touch", "/data/f"]);
    assert!(made.join("f").is_file(), "{}", made.display());
    let err = e.docker_err(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/no/such/place,target=/x",
        IMAGE,
        "true",
    ]);
    assert!(err.contains("bind source path does not exist"), "{err}");
    // Docker's socket, bound in, is this engine's.
    let out = e.docker_ok(&[
        "run",
        "--name",
        "sock",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        IMAGE,
        "sh",
        "-c",
        "test -S /var/run/docker.sock && echo socket",
    ]);
    assert_eq!(out.trim(), "socket");
    let binds = e.docker_ok(&["inspect", "-f", "{{json .HostConfig.Binds}}", "sock"]);
    assert!(binds.contains(&e.socket().display().to_string()), "{binds}");
    e.docker_ok(&["rm", "sock"]);
}

#[test]
fn volume_subpaths_mount_part_of_a_volume_and_propagation_is_reported() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.docker_ok(&["volume", "create", "shared-data"]);
    e.docker_ok(&[
        "run",
        "--rm",
        "-v",
        "shared-data:/v",
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /v/sub && echo inside > /v/sub/f",
    ]);
    let run_with = |name: &str, subpath: &str| {
        create(
            &e,
            name,
            serde_json::json!({
                "Image": IMAGE,
                "Cmd": ["cat", "/x/f"],
                "HostConfig": {"Mounts": [{
                    "Type": "volume", "Source": "shared-data", "Target": "/x",
                    "VolumeOptions": {"Subpath": subpath}
                }]}
            }),
        )
    };
    let (status, v) = run_with("subpath", "sub");
    assert_eq!(status, 201, "{v}");
    let out = e.docker_ok(&["start", "-a", "subpath"]);
    assert_eq!(out.trim(), "inside");
    for (name, bad) in [("up", "../x"), ("missing", "nope")] {
        let (status, v) = run_with(name, bad);
        if status == 201 {
            let err = e.docker_err(&["start", name]);
            assert!(err.contains(bad), "{name}: {err}");
            e.docker_ok(&["rm", name]);
        } else {
            assert_eq!(status, 400, "{name}: {v}");
        }
    }
    e.docker_ok(&["rm", "subpath"]);
    // The propagation a bind asks for is the one inspect reports.
    e.docker_ok(&[
        "create",
        "--name",
        "prop",
        "-v",
        "/tmp:/h:rslave",
        IMAGE,
        "true",
    ]);
    let mounts = e.docker_ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Propagation}}{{end}}",
        "prop",
    ]);
    assert_eq!(mounts.trim(), "rslave");
    e.docker_ok(&["rm", "prop"]);
    e.docker_ok(&["volume", "rm", "shared-data"]);
}

#[test]
fn a_mac_address_asked_for_is_the_interfaces() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.docker_ok(&["network", "create", "macnet"]);
    let out = e.docker_ok(&[
        "run",
        "--name",
        "withmac",
        "--network",
        "macnet",
        "--mac-address",
        "02:42:ac:11:00:99",
        IMAGE,
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_eq!(out.trim(), "02:42:ac:11:00:99");
    let err = e.docker_err(&[
        "create",
        "--network",
        "macnet",
        "--mac-address",
        "01:00:5e:00:00:01",
        IMAGE,
        "true",
    ]);
    assert!(err.contains("invalid MAC address"), "{err}");
    e.docker_ok(&["rm", "withmac"]);
    e.docker_ok(&["network", "rm", "macnet"]);
}

/// Docker's legacy links: on the default network the child's address in
/// `/etc/hosts` under the alias and its name, and its variables; inspect
/// shows `/CHILD:/PARENT/ALIAS`; a missing child is refused at create and
/// a stopped one at start; on a user-defined network a link is a name only.
#[test]
fn legacy_links_give_hosts_entries_and_variables_as_docker_does() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.run_detached(
        "lk-db",
        &[
            "-e",
            "SECRET=s3",
            "--expose",
            "5432",
            "--expose",
            "9000/udp",
        ],
        &["sleep", "300"],
    );
    let ip = e.ip_on("lk-db", "bridge");
    e.docker_ok(&[
        "create",
        "--name",
        "lk-web",
        "--link",
        "lk-db:data",
        IMAGE,
        "sh",
        "-c",
        "env; cat /etc/hosts; sleep 300",
    ]);
    let v = e.inspect_container("lk-web");
    assert_eq!(
        v["HostConfig"]["Links"],
        serde_json::json!(["/lk-db:/lk-web/data"])
    );
    e.docker_ok(&["start", "lk-web"]);
    let mut out = String::new();
    for _ in 0..100 {
        out = e.docker_ok(&["logs", "lk-web"]);
        if out.contains("localhost") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for want in [
        format!("DATA_PORT=tcp://{ip}:5432"),
        format!("DATA_PORT_5432_TCP=tcp://{ip}:5432"),
        format!("DATA_PORT_5432_TCP_ADDR={ip}"),
        "DATA_PORT_5432_TCP_PORT=5432".to_string(),
        "DATA_PORT_5432_TCP_PROTO=tcp".to_string(),
        format!("DATA_PORT_9000_UDP=udp://{ip}:9000"),
        "DATA_NAME=/lk-web/data".to_string(),
        "DATA_ENV_SECRET=s3".to_string(),
        format!("{ip}\tdata lk-db"),
    ] {
        assert!(out.lines().any(|l| l == want), "{want:?} missing:\n{out}");
    }
    assert!(!out.contains("DATA_ENV_PATH"), "{out}");
    // An exec sees the same variables, as in Docker.
    let env = e.docker_ok(&["exec", "lk-web", "env"]);
    assert!(env.contains("DATA_ENV_SECRET=s3"), "{env}");

    // A stopped child: the start fails and says why.
    e.docker_ok(&["stop", "-t", "0", "lk-web"]);
    e.docker_ok(&["stop", "-t", "0", "lk-db"]);
    let err = e.docker_err(&["start", "lk-web"]);
    assert!(
        err.contains("cannot link to a non running container: /lk-db AS /lk-web/data"),
        "{err}"
    );
    // A missing child: refused at create, with nothing made.
    let err = e.docker_err(&["create", "--name", "lk-bad", "--link", "nope:x", IMAGE]);
    assert!(err.contains("could not get container for nope"), "{err}");
    assert!(!e.docker_ok(&["ps", "-a"]).contains("lk-bad"));
    let err = e.docker_err(&[
        "create",
        "--network",
        "host",
        "--link",
        "lk-db",
        IMAGE,
        "true",
    ]);
    assert!(err.contains("links"), "{err}");

    // A user-defined network: the alias resolves, no variables.
    e.docker_ok(&["network", "create", "lk-net"]);
    e.run_detached(
        "lk-svc",
        &["--network", "lk-net", "-e", "SECRET=s3"],
        &["sleep", "300"],
    );
    let svc_ip = e.ip_on("lk-svc", "lk-net");
    let out = e.docker_ok(&[
        "run",
        "--rm",
        "--network",
        "lk-net",
        "--link",
        "lk-svc:other",
        IMAGE,
        "sh",
        "-c",
        "env; cat /etc/hosts",
    ]);
    assert!(
        out.lines().any(|l| l == format!("{svc_ip}\tother lk-svc")),
        "{out}"
    );
    assert!(!out.contains("OTHER_"), "{out}");
    for c in ["lk-web", "lk-db", "lk-svc"] {
        e.docker_ok(&["rm", "-f", c]);
    }
    e.docker_ok(&["network", "rm", "lk-net"]);
}

/// A container-wide `MacAddress` (clients of API 1.43 and older send it in
/// Config) is the first network's MAC address; those clients read it back
/// in `Config.MacAddress`, newer ones get Docker's deprecation warning.
#[test]
fn a_container_wide_mac_address_from_an_old_client_is_the_first_networks() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let body = serde_json::json!({
        "Image": IMAGE,
        "Cmd": ["sleep", "300"],
        "MacAddress": "02:42:ac:11:00:99",
    });
    let r = e.api(
        "POST",
        "/v1.43/containers/create?name=mac-old",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["Warnings"], serde_json::json!([]), "{v}");
    let r = e.api("POST", "/v1.43/containers/mac-old/start", &[], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let r = e.api("GET", "/v1.43/containers/mac-old/json", &[], b"");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["Config"]["MacAddress"], "02:42:ac:11:00:99", "{v}");
    assert_eq!(
        v["NetworkSettings"]["Networks"]["bridge"]["MacAddress"],
        "02:42:ac:11:00:99"
    );
    let seen = e.docker_ok(&["exec", "mac-old", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(seen.trim(), "02:42:ac:11:00:99");
    // The current API has no container-wide field in inspect.
    let v = inspect(&e, "mac-old");
    assert!(v["Config"].get("MacAddress").is_none(), "{}", v["Config"]);

    let (status, v) = create(
        &e,
        "mac-new",
        serde_json::json!({"Image": IMAGE, "Cmd": ["true"], "MacAddress": "02:42:ac:11:00:98"}),
    );
    assert_eq!(status, 201, "{v}");
    assert!(
        v["Warnings"][0]
            .as_str()
            .unwrap()
            .contains("container-wide MacAddress field is now deprecated"),
        "{v}"
    );
    e.docker_ok(&["rm", "-f", "mac-old", "mac-new"]);
}

/// An exec with a terminal writes through a pty as Docker's does: each
/// `\n` the program prints arrives as `\r\n`, once, every time.
#[test]
fn exec_with_a_tty_translates_newlines_once() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.run_detached("tty-box", &[], &["sleep", "300"]);
    for _ in 0..10 {
        let out = e.docker(&["exec", "-t", "tty-box", "sh", "-c", "echo a; echo b"]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            out.stdout,
            b"a\r\nb\r\n",
            "{:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Without a terminal, bytes pass unchanged.
    let out = e.docker(&["exec", "tty-box", "sh", "-c", "echo a; echo b"]);
    assert_eq!(out.stdout, b"a\nb\n");
    e.docker_ok(&["rm", "-f", "tty-box"]);
}
