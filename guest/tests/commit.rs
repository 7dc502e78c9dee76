//! The real `docker` CLI against the engine for the calls that take a
//! container's files out (`docker commit`, `diff`, `export`) and bring a
//! tar in (`docker import`): real runc containers on real overlayfs.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{Read, Write};
use std::process::Stdio;

use servin_testkit::wait::eventually;
use support::{EngineGuard, IMAGE};

fn wait_ready(e: &EngineGuard, name: &str) {
    eventually(&format!("{name} ready"), || {
        e.docker(&["exec", name, "test", "-f", "/ready"])
            .status
            .success()
    });
}

fn run_out(e: &EngineGuard, image: &str, script: &str) -> String {
    e.docker_ok(&["run", "--rm", image, "sh", "-c", script])
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

#[test]
fn commit_diff_and_history_of_running_paused_and_stopped_containers() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let since = now_secs();
    // A stopped container committed: the base of the rest.
    e.docker_ok(&[
        "run",
        "--name",
        "prep",
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /srv/d && echo a > /srv/d/a && echo b > /srv/d/b && echo gone > /tmp/gone",
    ]);
    let base = e.docker_ok(&["commit", "prep", "test/base:1"]);
    assert!(base.trim().starts_with("sha256:"), "{base}");

    e.docker_ok(&[
        "run",
        "-d",
        "--name",
        "work",
        "test/base:1",
        "sh",
        "-c",
        "echo new > /new && echo x >> /etc/passwd && rm /tmp/gone && rm -rf /srv/d && mkdir /srv/d && echo c > /srv/d/c && touch /ready && exec sleep 300",
    ]);
    wait_ready(&e, "work");

    let diff = e.docker_ok(&["diff", "work"]);
    assert_eq!(
        diff,
        "C /etc\nC /etc/passwd\nA /new\nA /ready\nC /srv\nC /srv/d\nA /srv/d/c\nC /tmp\nD /tmp/gone\n"
    );

    let id = e.docker_ok(&[
        "commit",
        "-m",
        "a message",
        "-a",
        "someone",
        "-c",
        r#"CMD ["cat", "/new"]"#,
        "-c",
        "ENV COMMITTED=yes",
        "work",
        "test/committed:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    // The commit paused and thawed it: it still runs, not paused.
    let state = e.docker_ok(&[
        "inspect",
        "-f",
        "{{.State.Running}} {{.State.Paused}}",
        "work",
    ]);
    assert_eq!(state.trim(), "true false");

    assert_eq!(e.docker_ok(&["run", "--rm", "test/committed:1"]), "new\n");
    let seen = run_out(
        &e,
        "test/committed:1",
        "tail -n 1 /etc/passwd; test -e /tmp/gone && echo present || echo absent; ls /srv/d; echo $COMMITTED; test -e /etc/hosts && echo hosts",
    );
    assert_eq!(seen, "x\nabsent\nc\nyes\nhosts\n");

    let inspect = e.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Comment}}|{{.Author}}|{{json .Config.Cmd}}|{{len .RootFS.Layers}}",
        "test/committed:1",
    ]);
    assert_eq!(inspect.trim(), r#"a message|someone|["cat","/new"]|3"#);
    let history = e.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "test/committed:1",
    ]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3, "{history}");
    assert!(lines[0].starts_with("sh -c echo new > /new"), "{history}");
    assert!(lines[0].ends_with("|a message"), "{history}");

    // A bad change is refused, naming the instruction, and makes nothing.
    let images = e.image_count();
    let err = e.docker_err(&["commit", "-c", "RUN echo hi", "work", "test/bad:1"]);
    assert!(err.contains("run is not a valid change command"), "{err}");
    let r = e.api(
        "POST",
        "/v1.47/commit?container=work&changes=COPY+a+b",
        &[],
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("copy is not a valid change command"));
    assert_eq!(e.image_count(), images);

    // A paused container: committed, and still paused afterwards.
    e.docker_ok(&["pause", "work"]);
    e.docker_ok(&["commit", "work", "test/paused:1"]);
    let state = e.docker_ok(&["inspect", "-f", "{{.State.Paused}}", "work"]);
    assert_eq!(state.trim(), "true");
    e.docker_ok(&["unpause", "work"]);
    assert_eq!(run_out(&e, "test/paused:1", "cat /srv/d/c"), "c\n");

    // Stopped, with --pause=false too.
    e.docker_ok(&["stop", "-t", "0", "work"]);
    e.docker_ok(&["commit", "--pause=false", "work", "test/stopped:1"]);
    assert_eq!(run_out(&e, "test/stopped:1", "cat /new"), "new\n");
    // No half-written blob or snapshot is left behind.
    assert_eq!(e.tmp_entries(), 0);
    // Each commit was a container event naming the image.
    let until = now_secs() + 1;
    let events = e.docker_ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "event=commit",
        "--format",
        "{{.Type}} {{.Actor.Attributes.imageRef}}",
    ]);
    assert_eq!(
        events,
        "container test/base:1\ncontainer test/committed:1\ncontainer test/paused:1\ncontainer test/stopped:1\n"
    );
    // A container whose upper folder a build step's commit took away
    // (Take::Move) is removed all the same.
    let upper = e.inspect_container("prep")["GraphDriver"]["Data"]["UpperDir"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::rename(&upper, e.root().join("taken-upper")).unwrap();
    e.docker_ok(&["rm", "prep"]);
    e.docker_ok(&["rm", "-f", "work"]);
}

#[test]
fn export_then_import_plain_and_gzip() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let since = now_secs();
    e.run_detached(
        "ex",
        &["-v", "vol1:/data"],
        &[
            "sh",
            "-c",
            "echo v > /data/inside && echo f > /file && touch /ready && exec sleep 300",
        ],
    );
    wait_ready(&e, "ex");
    let out = e.docker(&["export", "ex"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let running = out.stdout;
    let names = tar_names(&running);
    for want in ["bin/busybox", "file", "etc/passwd", "proc/", "data/"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.starts_with("proc/") && n != "proc/"),
        "no /proc content: {names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("data/") && n != "data/"));

    // Stopped: its root is mounted for the export and unmounted after.
    e.docker_ok(&["stop", "-t", "0", "ex"]);
    let file = e.root().join("ex.tar");
    e.docker_ok(&["export", "-o", file.to_str().unwrap(), "ex"]);
    let stopped = std::fs::read(&file).unwrap();
    assert!(tar_names(&stopped).iter().any(|n| n == "file"));
    let rootfs = e.inspect_container("ex")["GraphDriver"]["Data"]["MergedDir"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !servin_guest::runtime::rootfs::is_mounted(std::path::Path::new(&rootfs)),
        "the export's mount is gone"
    );

    // `docker export | docker import -`.
    let mut import = e
        .docker_cmd(&["import", "-", "test/imported:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    import.stdin.take().unwrap().write_all(&running).unwrap();
    let out = import.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("sha256:"));
    assert_eq!(run_out(&e, "test/imported:1", "cat /file"), "f\n");
    let comment = e.docker_ok(&["image", "inspect", "-f", "{{.Comment}}", "test/imported:1"]);
    assert_eq!(comment.trim(), "Imported from -");
    let history = e.docker_ok(&[
        "history",
        "--format",
        "{{.CreatedBy}}|{{.Comment}}",
        "test/imported:1",
    ]);
    assert_eq!(history.trim(), "|Imported from -");
    let until = now_secs() + 1;
    let events = e.docker_ok(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "event=import",
        "--filter",
        "event=export",
        "--format",
        "{{.Type}} {{.Action}}",
    ]);
    assert_eq!(events, "container export\ncontainer export\nimage import\n");

    // A gzip tar from a file, with a change and a message.
    let gz = e.root().join("ex.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&stopped).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    e.docker_ok(&[
        "import",
        "-m",
        "from gzip",
        "-c",
        r#"CMD ["cat", "/file"]"#,
        gz.to_str().unwrap(),
        "test/imported:2",
    ]);
    assert_eq!(e.docker_ok(&["run", "--rm", "test/imported:2"]), "f\n");
    let comment = e.docker_ok(&["image", "inspect", "-f", "{{.Comment}}", "test/imported:2"]);
    assert_eq!(comment.trim(), "from gzip");

    // Not a tar: the stream ends with an error and no image is made.
    let images = e.image_count();
    let r = e.api(
        "POST",
        "/v1.47/images/create?fromSrc=-",
        &[("Content-Type", "application/x-tar")],
        &[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2],
    );
    assert!(r.text().contains("xz-compressed"), "{}", r.text());
    assert_eq!(e.image_count(), images);
    e.docker_ok(&["rm", "-f", "ex"]);
    e.docker_ok(&["volume", "rm", "vol1"]);
}

#[test]
fn import_from_a_url() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    e.docker_ok(&[
        "run",
        "--name",
        "src",
        IMAGE,
        "sh",
        "-c",
        "echo served > /served",
    ]);
    let out = e.docker(&["export", "src"]);
    assert!(out.status.success());
    let tar = out.stdout;
    // A one-shot local HTTP server giving the tar.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).unwrap();
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            tar.len()
        )
        .unwrap();
        s.write_all(&tar).unwrap();
    });
    let url = format!("http://{addr}/rootfs.tar");
    e.docker_ok(&["import", &url, "test/fromurl:1"]);
    server.join().unwrap();
    assert_eq!(run_out(&e, "test/fromurl:1", "cat /served"), "served\n");
    let comment = e.docker_ok(&["image", "inspect", "-f", "{{.Comment}}", "test/fromurl:1"]);
    assert_eq!(comment.trim(), format!("Imported from {url}"));
    e.docker_ok(&["rm", "-f", "src"]);
}
