//! The real Docker clients building against the engine's classic
//! `POST /build`: Debian's `docker` CLI with `DOCKER_BUILDKIT=0`, docker-py
//! 6.1.3 (`images.build`, `api.build`) and docker-compose 1.29.2 (`build`,
//! then `up`). Every test has its own engine, and builds `FROM` the busybox
//! image it loads (never from the internet).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::{EngineGuard, IMAGE};
use tempfile::TempDir;

/// Where `.ci/install-packages` puts the Python clients.
const VENV: &str = "/opt/servin-test-venv";

fn venv_bin(name: &str) -> PathBuf {
    let p = Path::new(VENV).join("bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `bash .ci/install-packages` (as root) to make the Python clients' \
         virtualenv at {VENV}",
        p.display()
    );
    p
}

fn text(out: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A build context in a temporary folder: `files` as (relative path, text).
fn context(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("servin-buildctx-")
        .tempdir()
        .unwrap();
    for (path, body) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    dir
}

/// `docker build ARGS` in `dir` with the classic builder.
fn docker_build_cmd(e: &EngineGuard, dir: &Path, args: &[&str]) -> Command {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let mut c = e.docker_cmd(&all);
    c.current_dir(dir).env("DOCKER_BUILDKIT", "0");
    c
}

/// `docker build ARGS` in `dir`; fails the test unless it succeeds;
/// returns stdout.
fn docker_build(e: &EngineGuard, dir: &Path, args: &[&str]) -> String {
    let out = docker_build_cmd(e, dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "docker build {args:?} failed\n{}\nengine log:\n{}",
        text(&out),
        e.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The image ID a build's `Successfully built` line names (short).
fn built_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no `Successfully built` in:\n{out}"))
        .trim()
        .to_string()
}

fn image_id(e: &EngineGuard, name: &str) -> String {
    e.docker_ok(&["image", "inspect", "-f", "{{.Id}}", name])
        .trim()
        .to_string()
}

/// Removes every container of the engine on drop.
struct RemoveContainers<'a>(&'a EngineGuard);

impl Drop for RemoveContainers<'_> {
    fn drop(&mut self) {
        let ids = self.0.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.0.docker(&["rm", "-f", id]);
        }
    }
}

const APP_DOCKERFILE: &str = r#"FROM test/box:1 AS base
ARG GREETING=hi
RUN echo "$GREETING" > /greeting

FROM base AS final
ENV MODE=prod
WORKDIR /app
COPY app.txt ./
RUN chown -R 1000:1000 /app
USER 1000
EXPOSE 8080/tcp
LABEL stage=final
CMD ["sh", "-c", "echo $(cat /greeting) $MODE $(pwd) $(id -u) $(cat app.txt)"]

FROM final AS broken
RUN exit 9
"#;

/// `-t` twice, `-f` in a subfolder, `--build-arg`, `--target` (the stage
/// after it is not built), `--label`; the image's config, its history and
/// a container of it.
#[test]
fn docker_build_tags_file_args_target_labels() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let _clean = RemoveContainers(&e);
    let ctx = context(&[
        ("docker/app.Dockerfile", APP_DOCKERFILE),
        ("app.txt", "the-app"),
    ]);
    let out = docker_build(
        &e,
        ctx.path(),
        &[
            "-t",
            "app:1",
            "-t",
            "registry.test/team/app:latest",
            "-f",
            "docker/app.Dockerfile",
            "--build-arg",
            "GREETING=hello",
            "--target",
            "final",
            "--label",
            "team=core",
            ".",
        ],
    );
    assert!(out.contains("Step 1/"), "{out}");
    assert!(
        !out.contains("exit 9"),
        "the stage after the target ran:\n{out}"
    );
    assert!(out.contains("Successfully tagged app:1\n"), "{out}");
    assert!(
        out.contains("Successfully tagged registry.test/team/app:latest\n"),
        "{out}"
    );
    let id = image_id(&e, "app:1");
    assert_eq!(id, image_id(&e, "registry.test/team/app:latest"));
    assert!(
        id.starts_with(&format!("sha256:{}", built_id(&out))),
        "{id}"
    );

    let v: serde_json::Value =
        serde_json::from_str(&e.docker_ok(&["image", "inspect", "app:1"])).unwrap();
    let cfg = &v[0]["Config"];
    assert_eq!(
        cfg["Cmd"],
        serde_json::json!([
            "sh",
            "-c",
            "echo $(cat /greeting) $MODE $(pwd) $(id -u) $(cat app.txt)"
        ]),
        "{cfg}"
    );
    let env: Vec<&str> = cfg["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"MODE=prod"), "{env:?}");
    assert!(!env.iter().any(|e| e.starts_with("GREETING")), "{env:?}");
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["User"], "1000");
    assert_eq!(cfg["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(cfg["Labels"]["stage"], "final", "{cfg}");
    assert_eq!(cfg["Labels"]["team"], "core", "{cfg}");
    assert_eq!(
        v[0]["RepoTags"],
        serde_json::json!(["app:1", "registry.test/team/app:latest"])
    );

    // History: newest first; metadata steps have no layer (size 0 and,
    // in the image's config, empty_layer).
    let hist = e.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Size}}",
        "app:1",
    ]);
    let rows: Vec<&str> = hist.lines().collect();
    // `--label` is a last LABEL step, as Docker's classic builder makes it.
    assert!(rows[0].contains("LABEL team=core"), "{hist}");
    for meta in [
        "LABEL team=core",
        "CMD [",
        "EXPOSE 8080/tcp",
        "USER 1000",
        "ENV MODE=prod",
    ] {
        assert!(
            rows.iter().any(|r| r.contains(meta) && r.ends_with("|0B")),
            "{meta} in {hist}"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r.contains("echo \"$GREETING\" > /greeting") && !r.ends_with("|0B")),
        "{hist}"
    );
    let r = e.api("GET", "/v1.47/images/app:1/history", &[], b"");
    let h: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let expose = h
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["CreatedBy"].as_str().unwrap().contains("EXPOSE"))
        .unwrap();
    assert_eq!(expose["Size"], 0, "{h}");
    assert_eq!(expose["Id"], "<missing>", "{h}");
    let saved = e.dir.path().join("app.tar");
    e.docker_ok(&["save", "-o", saved.to_str().unwrap(), "app:1"]);
    let config = saved_config(&saved);
    let history = config["history"].as_array().unwrap();
    let meta: Vec<bool> = history
        .iter()
        .filter(|x| {
            let by = x["created_by"].as_str().unwrap_or("");
            by.contains("EXPOSE") || by.contains("LABEL") || by.contains("ENV MODE")
        })
        .map(|x| x["empty_layer"] == true)
        .collect();
    assert_eq!(meta, vec![true; 4], "{config}");
    // The build's own layers: its RUN and COPY steps, one each (the base
    // image's history has its own entries, without a command).
    let layers: Vec<&str> = history
        .iter()
        .filter(|x| x["empty_layer"] != true && x["created_by"] != "")
        .map(|x| x["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(layers.len(), 3, "{config}");
    assert!(layers[0].contains("/greeting"), "{layers:?}");
    assert!(layers[1].contains("COPY app.txt"), "{layers:?}");
    assert!(layers[2].contains("chown"), "{layers:?}");
    let base = e.docker_ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", IMAGE]);
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        base.trim().parse::<usize>().unwrap() + 3,
        "{config}"
    );

    // A container of it sees the arg, ENV, WORKDIR, USER and the copy.
    let run = e.docker_ok(&["run", "--rm", "app:1"]);
    assert_eq!(run, "hello prod /app 1000 the-app\n");
}

/// The config of the one image in a `docker save` tar.
fn saved_config(tar: &Path) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let config = manifest[0]["Config"].as_str().unwrap();
    serde_json::from_slice(&std::fs::read(dir.path().join(config)).unwrap()).unwrap()
}

const CACHED_DOCKERFILE: &str = "FROM test/box:1
RUN echo one > /one
COPY a.txt /a.txt
RUN cat /a.txt /one > /both
ENV K=v
CMD [\"cat\", \"/both\"]
";

/// Steps a classic build's output ran (`Running in`) and reused.
fn counts(out: &str) -> (usize, usize) {
    (
        out.matches(" ---> Running in ").count(),
        out.matches(" ---> Using cache").count(),
    )
}

/// A second identical build is all cache and gives the same image; `-q`
/// prints only the ID; `--no-cache` runs everything; after `docker
/// builder prune -f` the next build runs every step again.
#[test]
fn docker_build_cache_quiet_no_cache_and_prune() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let _clean = RemoveContainers(&e);
    let ctx = context(&[("Dockerfile", CACHED_DOCKERFILE), ("a.txt", "A")]);
    let first = docker_build(&e, ctx.path(), &["-t", "c:1", "."]);
    assert_eq!(counts(&first), (2, 0), "{first}");
    assert_eq!(
        first.matches("Removing intermediate container ").count(),
        2,
        "{first}"
    );
    let second = docker_build(&e, ctx.path(), &["-t", "c:2", "."]);
    // Every step after FROM reports the cache.
    assert_eq!(counts(&second), (0, 5), "{second}");
    assert_eq!(built_id(&first), built_id(&second));
    assert_eq!(image_id(&e, "c:1"), image_id(&e, "c:2"));
    assert!(second.contains("Successfully tagged c:2"), "{second}");

    let iid = e.dir.path().join("iid");
    let quiet = docker_build(
        &e,
        ctx.path(),
        &["-q", "--iidfile", iid.to_str().unwrap(), "-t", "c:3", "."],
    );
    assert_eq!(quiet, format!("{}\n", image_id(&e, "c:1")), "{quiet}");
    // With -q the classic CLI writes what it printed (against Docker too).
    assert_eq!(
        std::fs::read_to_string(&iid).unwrap().trim_end(),
        image_id(&e, "c:1")
    );

    let fresh = docker_build(&e, ctx.path(), &["--no-cache", "-t", "c:4", "."]);
    assert_eq!(counts(&fresh), (2, 0), "{fresh}");
    assert_eq!(
        e.docker_ok(&["run", "--rm", "c:4"]),
        "Aone\n",
        "the image built without cache"
    );

    // No intermediate container is left (Docker's default --rm).
    assert_eq!(e.docker_ok(&["ps", "-aq"]).trim(), "");

    // What the prune would not honour is refused, and nothing is removed.
    let err = e.docker_err(&["builder", "prune", "-f", "--filter", "until=1h"]);
    assert!(
        err.contains("filters") && err.contains("not supported"),
        "{err}"
    );
    let err = e.docker_err(&["builder", "prune", "-f", "--keep-storage", "1mb"]);
    assert!(
        err.contains("keep-storage") && err.contains("not supported"),
        "{err}"
    );
    let again = docker_build(&e, ctx.path(), &["-t", "c:2", "."]);
    assert_eq!(counts(&again), (0, 5), "{again}");

    let pruned = e.docker_ok(&["builder", "prune", "-f"]);
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    e.docker_ok(&["rmi", "c:1", "c:2", "c:3", "c:4"]);
    let after = docker_build(&e, ctx.path(), &["-t", "c:5", "."]);
    assert_eq!(counts(&after), (2, 0), "{after}");
}

/// `.dockerignore` (with a `!` re-include) leaves files out of the
/// context; a failing `RUN` fails `docker build` naming the step and the
/// exit code, and tags nothing.
#[test]
fn docker_build_dockerignore_and_a_failing_run() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let _clean = RemoveContainers(&e);
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM test/box:1\nCOPY . /ctx\nRUN cd /ctx && find . -type f | sort > /list\nCMD [\"cat\", \"/list\"]\n",
        ),
        (".dockerignore", "*.log\n!keep.log\nsecret/\n"),
        ("main.txt", "m"),
        ("debug.log", "d"),
        ("keep.log", "k"),
        ("secret/key", "s"),
    ]);
    docker_build(&e, ctx.path(), &["-t", "ign:1", "."]);
    let list = e.docker_ok(&["run", "--rm", "ign:1"]);
    assert_eq!(
        list, "./.dockerignore\n./Dockerfile\n./keep.log\n./main.txt\n",
        "the context as the build saw it"
    );

    let bad = context(&[(
        "Dockerfile",
        "FROM test/box:1\nRUN echo before\nRUN echo failing-now; exit 3\nRUN echo never\n",
    )]);
    let out = docker_build_cmd(&e, bad.path(), &["-t", "bad:1", "."])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("failing-now"), "{}", text(&out));
    assert!(!stdout.contains("never\n"), "{}", text(&out));
    assert!(
        stderr.contains("3/4") && stderr.contains("exit 3") && stderr.contains("code 3"),
        "the error names the step and the exit code:\n{}",
        text(&out)
    );
    assert!(e.docker(&["image", "inspect", "bad:1"]).status.code() == Some(1));
    // As Docker's classic builder, the failed step's container is kept for
    // inspection (the others are removed), unless --force-rm.
    let left = e.docker_ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(
        left.lines().count() == 1 && left.starts_with("Exited (3)"),
        "{left}"
    );
    e.docker_ok(&["container", "prune", "-f"]);
    let out = docker_build_cmd(&e, bad.path(), &["--force-rm", "-t", "bad:1", "."])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(
        e.docker_ok(&["ps", "-aq"]).trim(),
        "",
        "--force-rm left one"
    );
}

/// `docker build - < Dockerfile` (the CLI sends a tar holding the body as
/// `Dockerfile`) and `docker build - < context.tar`; a bare Dockerfile
/// body on the API answers as Docker does.
#[test]
fn docker_build_from_stdin() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let _clean = RemoveContainers(&e);
    let dir = context(&[
        (
            "Dockerfile",
            "FROM test/box:1\nRUN echo from-stdin > /said\nCMD [\"cat\", \"/said\"]\n",
        ),
        (
            "ctx/Dockerfile",
            "FROM test/box:1\nCOPY f.txt /f\nCMD [\"cat\", \"/f\"]\n",
        ),
        ("ctx/f.txt", "from-a-tar\n"),
    ]);
    let out = docker_build_cmd(&e, dir.path(), &["-t", "stdin:1", "-"])
        .stdin(std::fs::File::open(dir.path().join("Dockerfile")).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out), e.log());
    assert_eq!(e.docker_ok(&["run", "--rm", "stdin:1"]), "from-stdin\n");

    let tar = dir.path().join("ctx.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(dir.path().join("ctx"))
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let out = docker_build_cmd(&e, dir.path(), &["-t", "stdin:2", "-"])
        .stdin(std::fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out), e.log());
    assert_eq!(e.docker_ok(&["run", "--rm", "stdin:2"]), "from-a-tar\n");
}

/// Query parameters Docker has and servin's builder does not honour are
/// refused, naming them, before anything is built.
#[test]
fn docker_build_refuses_what_it_does_not_honour() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let ctx = context(&[("Dockerfile", "FROM test/box:1\nRUN true\n")]);
    for (args, names) in [
        (&["--memory", "64m"][..], "memory"),
        (&["--cgroup-parent", "x"][..], "cgroupparent"),
        (&["--cpuset-mems", "0"][..], "cpusetmems"),
        (&["--ulimit", "nofile=10:10"][..], "ulimits"),
        (&["--add-host", "a:1.2.3.4"][..], "extrahosts"),
        (&["--cache-from", "x:1"][..], "cachefrom"),
        (&["--shm-size", "1g"][..], "shmsize"),
    ] {
        let mut all = args.to_vec();
        all.extend(["-t", "refused:1", "."]);
        let out = docker_build_cmd(&e, ctx.path(), &all).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} was accepted\n{}",
            text(&out)
        );
        assert!(
            err.contains(names) && err.contains("not supported"),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert!(e.docker(&["image", "inspect", "refused:1"]).status.code() == Some(1));
}

/// Runs `tests/python/docker_py_build.py STEPS` against `e`.
fn python(e: &EngineGuard, steps: &[&str], ctx: &Path) {
    let out = Command::new(venv_bin("python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/docker_py_build.py"))
        .args(steps)
        .env("DOCKER_HOST", format!("unix://{}", e.socket().display()))
        .env("IMAGE", IMAGE)
        .env("CONTEXT", ctx)
        .env("HOME", e.home())
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && steps
                .iter()
                .all(|s| said.lines().any(|l| l == format!("ok {s}"))),
        "docker_py_build.py {steps:?} failed\n{}\nengine log:\n{}",
        text(&out),
        e.log()
    );
}

#[test]
fn docker_py_builds_images() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let _clean = RemoveContainers(&e);
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM test/box:1\nARG WHO=nobody\nCOPY hello.txt /hello.txt\nRUN echo \"$WHO\" >> /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n",
        ),
        ("hello.txt", "hello\n"),
    ]);
    python(
        &e,
        &["build_path", "build_fileobj", "build_stream", "build_keep"],
        ctx.path(),
    );
}

/// A docker-compose v1 project in its own folder; `down` on drop.
struct Compose<'a> {
    e: &'a EngineGuard,
    dir: TempDir,
    project: String,
}

impl Compose<'_> {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(venv_bin("docker-compose"))
            .current_dir(self.dir.path())
            .arg("-p")
            .arg(&self.project)
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.e.socket().display()),
            )
            .env("HOME", self.e.home())
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
            // As in python_clients.rs: compose 1.29.2 reads the image's
            // ContainerConfig, which API 1.45 and later leave out.
            .env("COMPOSE_API_VERSION", "1.44")
            .env_remove("COMPOSE_DOCKER_CLI_BUILD")
            .env_remove("DOCKER_BUILDKIT")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed\n{}\nengine log:\n{}",
            text(&out),
            self.e.log()
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Compose<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["down", "-v", "--rmi", "local", "-t", "1"]);
    }
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "a test is a synchronous program of its own: it may sleep on its thread"
)]
fn docker_compose_v1_builds_then_runs_the_image() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let _clean = RemoveContainers(&e);
    let project = format!("cb{}", std::process::id());
    let dir = context(&[
        (
            "docker-compose.yml",
            r#"version: "2.4"
services:
  app:
    build:
      context: ./app
      args:
        FLAVOUR: mint
    command: ["sh", "-c", "cat /flavour; exec sleep 3600"]
    stop_grace_period: 1s
"#,
        ),
        (
            "app/Dockerfile",
            "FROM test/box:1\nARG FLAVOUR=plain\nCOPY note.txt /note.txt\nRUN echo \"$FLAVOUR\" > /flavour\n",
        ),
        ("app/note.txt", "n"),
    ]);
    let c = Compose {
        e: &e,
        dir,
        project: project.clone(),
    };
    let (out, err) = c.ok(&["build"]);
    let all = format!("{out}{err}");
    assert!(all.contains("Successfully built"), "{all}");
    let image = format!("{project}_app");
    let id = image_id(&e, &image);

    c.ok(&["up", "-d"]);
    let name = format!("{project}_app_1");
    let logs = (0..50)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            e.docker_ok(&["logs", &name])
        })
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    assert_eq!(logs, "mint\n");
    assert_eq!(
        e.docker_ok(&["inspect", "-f", "{{.Image}}", &name]).trim(),
        id
    );

    let (out, err) = c.ok(&["build"]);
    let again = format!("{out}{err}");
    assert_eq!(again.matches("Using cache").count(), 3, "{again}");
    assert_eq!(again.matches("Running in").count(), 0, "{again}");
    assert_eq!(image_id(&e, &image), id);
}

/// A tar of `files` (made by `tar`, as a client would send it).
fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
    let dir = context(files);
    let out = Command::new("tar")
        .arg("-cf")
        .arg("-")
        .arg("-C")
        .arg(dir.path())
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// What Docker's `POST /build` does with the context it is given: a
/// lower-case `dockerfile` is found when `Dockerfile` is not there, an
/// empty Dockerfile and a body that is not a tar are refused naming what
/// is wrong, and booleans are read as Docker reads them.
#[test]
fn classic_build_contexts_as_docker_reads_them() {
    let e = EngineGuard::with_image(IMAGE, &[]);
    let _clean = RemoveContainers(&e);
    let tar = tar_of(&[("dockerfile", "FROM test/box:1\nCMD [\"echo\", \"lower\"]\n")]);
    let r = e.api(
        "POST",
        "/v1.47/build?t=lower:1&rm=True&q=False",
        &[("Content-Type", "application/x-tar")],
        &tar,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("Successfully tagged lower:1"),
        "{}",
        r.text()
    );
    assert_eq!(e.docker_ok(&["run", "--rm", "lower:1"]), "lower\n");

    let tar = tar_of(&[("Dockerfile", "")]);
    let r = e.api("POST", "/v1.47/build?t=empty:1", &[], &tar);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("the Dockerfile (Dockerfile) cannot be empty"),
        "{}",
        r.text()
    );

    // Docker's CLI wraps a Dockerfile read from stdin in a tar; the API
    // itself takes only a tar, as Docker's does.
    let r = e.api(
        "POST",
        "/v1.47/build?t=bare:1",
        &[],
        b"FROM test/box:1\nRUN true\n",
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("the build context is not a tar archive"),
        "{}",
        r.text()
    );
    assert!(e.docker(&["image", "inspect", "bare:1"]).status.code() == Some(1));

    // `q=True` (docker-py's spelling) prints only the ID.
    let tar = tar_of(&[("Dockerfile", "FROM test/box:1\nENV Q=1\n")]);
    let r = e.api("POST", "/v1.47/build?q=True&nocache=True", &[], &tar);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains("Step 1/"), "{}", r.text());
    assert!(r.text().contains("{\"stream\":\"sha256:"), "{}", r.text());
}
