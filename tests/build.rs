//! `servin build` against a real engine: every `RUN` in a real container,
//! layers from overlay upper folders, the step cache, the context sent
//! incrementally.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;

use support::sandbox::Env;

const BASE: &str = "localhost/buildbase:1";

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// `servin run --rm IMAGE sh -c SCRIPT`'s output.
fn run_in(env: &Env, image: &str, script: &str) -> String {
    env.ok(&["run", "--rm", image, "sh", "-c", script])
}

#[test]
fn multi_stage_build_with_args_user_workdir_and_copy_from() {
    let env = Env::with_image(BASE);
    let ctx = env.dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                &format!(
                    "ARG BASE={BASE}\n\
                     FROM $BASE AS builder\n\
                     ARG GREETING=hello\n\
                     ENV WHO=world\n\
                     WORKDIR /work\n\
                     COPY src/ ./src/\n\
                     RUN echo \"$GREETING $WHO\" > out.txt && cat src/a.txt >> out.txt\n\
                     RUN rm src/a.txt\n\
                     \n\
                     FROM $BASE\n\
                     COPY --from=builder /work/out.txt /srv/result.txt\n\
                     COPY --from=builder /work/src /srv/src\n\
                     USER 1000:1000\n\
                     WORKDIR /srv\n\
                     CMD [\"cat\", \"result.txt\"]\n"
                ),
            ),
            ("src/a.txt", "from a\n"),
            ("src/b.txt", "from b\n"),
        ],
    );
    let out = env.run(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "localhost/multi:1",
        "--build-arg",
        "GREETING=hi",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let said = env.ok(&["run", "--rm", "localhost/multi:1"]);
    assert_eq!(said, "hi world\nfrom a\n");
    let seen = run_in(&env, "localhost/multi:1", "id -u; pwd; ls /srv/src");
    assert_eq!(seen, "1000\n/srv\nb.txt\n");
}

/// `servin build --progress plain -t TAG CTX` in `env`; its run.
fn build(env: &Env, ctx: &Path, tag: &str, extra: &[&str]) -> support::Run {
    let mut args = vec!["build", "--progress", "plain", "-t", tag];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    env.run(&args)
}

/// The step lines that say `CACHED`, and those that say why they run.
fn cached_and_reasons(stderr: &str) -> (usize, Vec<String>) {
    let cached = stderr.lines().filter(|l| l.ends_with(" CACHED")).count();
    let reasons = stderr
        .lines()
        .filter_map(|l| l.split_once(" runs: ").map(|(_, r)| r.to_string()))
        .collect();
    (cached, reasons)
}

#[test]
fn the_cache_follows_content_not_times() {
    let env = Env::with_image(BASE);
    let ctx = env.dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {BASE}\n\
                     RUN echo base > /base.txt\n\
                     COPY src/ /app/\n\
                     RUN cat /app/a.txt /app/b.txt > /app/all.txt\n\
                     ARG V=1\n\
                     RUN echo $V > /v.txt\n"
                ),
            ),
            ("src/a.txt", "a1\n"),
            ("src/b.txt", "b1\n"),
        ],
    );
    let first = build(&env, &ctx, "localhost/cache:1", &[]);
    assert_eq!(first.code, 0, "{}", first.transcript());
    let id_of = |name: &str| -> String {
        let v: serde_json::Value =
            serde_json::from_str(&env.ok(&["image", "inspect", name])).unwrap();
        v[0]["Id"].as_str().unwrap().to_string()
    };
    let id1 = id_of("localhost/cache:1");

    // Nothing changed: every step but FROM comes from the cache.
    let again = build(&env, &ctx, "localhost/cache:1", &[]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    let (cached, reasons) = cached_and_reasons(&again.stderr);
    assert_eq!((cached, reasons.len()), (5, 0), "{}", again.stderr);
    again.assert_stderr_has("sent 0 files (0 bytes)");

    // Touching every file changes nothing either.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    for f in ["src/a.txt", "src/b.txt", "Dockerfile"] {
        let file = std::fs::File::options()
            .write(true)
            .open(ctx.join(f))
            .unwrap();
        file.set_modified(later).unwrap();
    }
    let touched = build(&env, &ctx, "localhost/cache:1", &[]);
    let (cached, reasons) = cached_and_reasons(&touched.stderr);
    assert_eq!((cached, reasons.len()), (5, 0), "{}", touched.stderr);
    let id2 = id_of("localhost/cache:1");
    assert_eq!(id1, id2);

    // One file changed: the steps before its COPY are cached, the COPY
    // says which file, the steps after it run because the step before did.
    std::fs::write(ctx.join("src/b.txt"), "b2\n").unwrap();
    let edited = build(&env, &ctx, "localhost/cache:1", &[]);
    assert_eq!(edited.code, 0, "{}", edited.transcript());
    // Only that file's content travels.
    edited.assert_stderr_has("sent 1 file (3 bytes)");
    let (cached, reasons) = cached_and_reasons(&edited.stderr);
    assert_eq!(cached, 1, "{}", edited.stderr);
    assert_eq!(reasons[0], "src/b.txt changed", "{}", edited.stderr);
    assert!(
        reasons[1..]
            .iter()
            .all(|r| r == "the step before it changed"),
        "{reasons:?}"
    );
    assert_eq!(
        run_in(&env, "localhost/cache:1", "cat /app/all.txt /v.txt"),
        "a1\nb2\n1\n"
    );

    // A build arg: only the steps that see it run again, and say so.
    let arg = build(&env, &ctx, "localhost/cache:1", &["--build-arg", "V=2"]);
    let (cached, reasons) = cached_and_reasons(&arg.stderr);
    assert_eq!(cached, 4, "{}", arg.stderr);
    assert_eq!(
        reasons,
        vec!["build arg V changed".to_string()],
        "{}",
        arg.stderr
    );
    assert_eq!(run_in(&env, "localhost/cache:1", "cat /v.txt"), "2\n");
}

#[test]
fn dockerignore_exceptions_deletions_and_heredocs() {
    let env = Env::with_image(BASE);
    let ctx = env.dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {BASE}\n\
                     COPY . /ctx/\n\
                     RUN rm /ctx/gone.txt\n\
                     COPY <<EOF /etc/motd\n\
                     hello from a heredoc\n\
                     EOF\n\
                     RUN <<EOF\n\
                     set -e\n\
                     echo one > /h1\n\
                     echo two >> /h1\n\
                     EOF\n"
                ),
            ),
            (".dockerignore", "logs\n*.tmp\n!keep.tmp\n"),
            ("gone.txt", "x\n"),
            ("keep.tmp", "kept\n"),
            ("drop.tmp", "dropped\n"),
            ("logs/today.log", "log\n"),
        ],
    );
    let out = build(&env, &ctx, "localhost/ignore:1", &[]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let seen = run_in(
        &env,
        "localhost/ignore:1",
        "ls -a /ctx; cat /etc/motd /h1; test -e /ctx/gone.txt && echo still-there; true",
    );
    assert_eq!(
        seen,
        ".\n..\n.dockerignore\nDockerfile\nkeep.tmp\nhello from a heredoc\none\ntwo\n"
    );
}

#[test]
fn secrets_are_seen_by_run_and_kept_out_of_every_layer() {
    let env = Env::with_image(BASE);
    let ctx = env.dir.path().join("ctx");
    let secret = env.dir.path().join("token");
    std::fs::write(&secret, "s3cr3t-v4lue").unwrap();
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM {BASE}\n\
                 RUN --mount=type=secret,id=token,required=true wc -c < /run/secrets/token > /len\n\
                 RUN --mount=type=cache,target=/cache echo cached >> /cache/seen && cat /cache/seen > /seen\n"
            ),
        )],
    );
    let src = format!("id=token,src={}", secret.display());
    let out = build(&env, &ctx, "localhost/secret:1", &["--secret", &src]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(run_in(&env, "localhost/secret:1", "cat /len"), "12\n");
    // No layer, no history entry holds it.
    let tar = env.dir.path().join("image.tar");
    env.ok(&[
        "image",
        "export",
        "localhost/secret:1",
        "-o",
        tar.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&tar).unwrap();
    let needle = b"s3cr3t-v4lue";
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle),
        "the secret is in the image"
    );
    let hist = env.ok(&["image", "inspect", "localhost/secret:1"]);
    assert!(!hist.contains("s3cr3t"), "{hist}");
    // The cache mount keeps its content for the next build.
    let again = build(
        &env,
        &ctx,
        "localhost/secret:2",
        &["--secret", &src, "--no-cache"],
    );
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(
        run_in(&env, "localhost/secret:2", "cat /seen"),
        "cached\ncached\n"
    );
    // A required secret that is missing fails the build.
    let missing = build(&env, &ctx, "localhost/secret:3", &["--no-cache"]);
    assert_ne!(missing.code, 0);
    missing.assert_stderr_has("secret token is required");
}

#[test]
fn a_failing_run_says_why_tags_nothing_and_leaves_nothing() {
    let env = Env::with_image(BASE);
    let ctx = env.dir.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM {BASE}\n\
                 RUN echo first line; echo 'it broke' >&2; exit 3\n"
            ),
        )],
    );
    let out = env.run(&["build", "-t", "localhost/fail:1", ctx.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    out.assert_stderr_has("exited with code 3");
    out.assert_stderr_has("it broke");
    let images = env.ok(&["images"]);
    assert!(!images.contains("localhost/fail"), "{images}");
    // No build container is left, running or not.
    let mut left = String::new();
    for _ in 0..50 {
        left = env.ok(&["ps", "-a", "-q"]);
        if left.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(left.trim(), "", "containers left behind");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = env.root().join("build").display().to_string();
    assert!(!mounts.contains(&root), "mounts left under {root}");
}

#[test]
fn a_bad_dockerfile_is_a_diagnostic_at_its_place_and_builds_nothing() {
    let env = Env::with_image(BASE);
    let ctx = env.dir.path().join("ctx");
    for (text, wants) in [
        (
            format!("FROM {BASE}\nCOPPY a /a\n"),
            vec!["unknown instruction", "COPPY", "2:1", "COPY"],
        ),
        ("RUN true\n".to_string(), vec!["FROM", "1:1"]),
        (
            format!("FROM {BASE}\nCOPY missing.txt /m\n"),
            vec!["missing.txt", "2:"],
        ),
        (
            format!("FROM {BASE}\nRUN <<EOF\necho never closed\n"),
            vec!["EOF", "2:"],
        ),
        (
            format!("FROM --platform=linux/arm64 {BASE}\nRUN true\n"),
            vec!["linux/arm64", "cannot be built", "1:1"],
        ),
    ] {
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("Dockerfile"), &text).unwrap();
        let out = env.run(&["build", "-t", "localhost/bad:1", ctx.to_str().unwrap()]);
        assert_eq!(out.code, 1, "{text}\n{}", out.transcript());
        for w in wants {
            out.assert_stderr_has(w);
        }
    }
    assert!(!env.ok(&["images"]).contains("localhost/bad"));
    assert_eq!(env.ok(&["ps", "-a", "-q"]).trim(), "");
}

#[test]
fn up_builds_and_recreates_only_after_a_source_change() {
    let env = Env::with_image(BASE);
    let file = env.write_project(
        "proj",
        "[project]\nname = \"bu\"\n\n[images.app]\nbuild = \"./app\"\n\n\
         [containers.app]\nimage = \"app\"\ncommand = [\"sh\", \"-c\", \"cat /msg; sleep 300\"]\n",
    );
    let dir = file.parent().unwrap().to_path_buf();
    write(
        &dir.join("app"),
        &[
            ("Dockerfile", &format!("FROM {BASE}\nCOPY msg.txt /msg\n")),
            ("msg.txt", "v1\n"),
        ],
    );
    env.ok_in(&dir, &["up", "-d"]);
    let first = env.inspect("bu-app-1");
    assert_eq!(run_exec(&env, "bu-app-1", "cat /msg"), "v1\n");

    // Nothing changed: the build is all cached, the container kept.
    let again = env.run_in(&dir, &["up", "-d"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(env.inspect("bu-app-1")["Id"], first["Id"]);

    // Build plan: `servin build` in the project builds the same image.
    env.ok_in(&dir, &["build"]);
    assert_eq!(env.inspect("bu-app-1")["Id"], first["Id"]);

    let plan = env.ok_in(&dir, &["plan"]);
    assert!(plan.contains("keep") && !plan.contains("build"), "{plan}");

    // A source change: the plan says what would be built and why...
    std::fs::write(dir.join("app/msg.txt"), "v2\n").unwrap();
    let plan = env.ok_in(&dir, &["plan"]);
    assert!(
        plan.contains("recreate") && plan.contains("its image bu-app is rebuilt"),
        "{plan}"
    );
    let build_row = plan
        .lines()
        .find(|l| l.starts_with("build"))
        .unwrap_or_default();
    assert!(
        build_row.contains("bu-app") && build_row.contains("msg.txt changed"),
        "{plan}"
    );
    // ... and `up` rebuilds, recreates, and the new content runs.
    let changed = env.run_in(&dir, &["up", "-d"]);
    assert_eq!(changed.code, 0, "{}", changed.transcript());
    changed.assert_stderr_has("msg.txt changed");
    assert_ne!(env.inspect("bu-app-1")["Id"], first["Id"]);
    assert_eq!(run_exec(&env, "bu-app-1", "cat /msg"), "v2\n");
    env.ok_in(&dir, &["down"]);
}

fn run_exec(env: &Env, container: &str, script: &str) -> String {
    env.ok(&["exec", container, "sh", "-c", script])
}

#[test]
fn two_concurrent_builds_of_one_dockerfile_both_succeed() {
    let env = Env::with_image(BASE);
    let ctx = env.dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {BASE}\nCOPY f.txt /f.txt\n\
                     RUN --mount=type=cache,target=/c,sharing=locked cat /f.txt > /out; echo ran >> /c/log\n"
                ),
            ),
            ("f.txt", "same\n"),
        ],
    );
    let spawn = |tag: &str| {
        env.command(&[
            "build",
            "--progress",
            "plain",
            "-t",
            tag,
            ctx.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
    };
    // The engine first, so both builds talk to one.
    env.ok(&["images"]);
    let a = spawn("localhost/conc:a");
    let b = spawn("localhost/conc:b");
    for child in [a, b] {
        let out = support::Run::of(child.wait_with_output().unwrap());
        assert_eq!(out.code, 0, "{}", out.transcript());
    }
    for tag in ["localhost/conc:a", "localhost/conc:b"] {
        assert_eq!(run_in(&env, tag, "cat /out"), "same\n");
    }
}

#[test]
fn an_engine_killed_mid_build_leaves_nothing_and_the_rebuild_succeeds() {
    let env = Env::with_image(BASE);
    let ctx = env.dir.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM {BASE}\nARG T=60\nRUN echo started; sleep $T; echo done > /done\n"),
        )],
    );
    env.ok(&["images"]);
    let info: serde_json::Value =
        serde_json::from_str(&env.ok(&["info", "--format", "json"])).unwrap();
    let pid = info["servin"]["pid"].as_i64().unwrap() as i32;
    let child = env
        .command(&[
            "build",
            "--progress",
            "plain",
            "-t",
            "localhost/killed:1",
            ctx.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the RUN container, then kill the engine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while env.ok(&["ps", "-q"]).trim().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    let out = support::Run::of(child.wait_with_output().unwrap());
    assert_ne!(out.code, 0, "{}", out.transcript());
    // The next command starts a new engine, which removes the build's
    // container; the rebuild succeeds.
    let again = env.run(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "localhost/killed:1",
        "--build-arg",
        "T=0",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(run_in(&env, "localhost/killed:1", "cat /done"), "done\n");
    let mut left = String::new();
    for _ in 0..100 {
        left = env.ok(&["ps", "-a", "-q"]);
        if left.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(left.trim(), "", "build containers left behind");
    let scratch = env.root().join("build/tmp");
    let leftovers: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "{leftovers:?} left in {}",
        scratch.display()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&env.root().join("build").display().to_string()));
}

/// Kills the running engine with SIGKILL and waits until it is gone.
fn kill_engine(env: &Env) {
    let info: serde_json::Value =
        serde_json::from_str(&env.ok(&["info", "--format", "json"])).unwrap();
    let pid = info["servin"]["pid"].as_i64().unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    let proc_dir = format!("/proc/{pid}");
    for _ in 0..100 {
        if !Path::new(&proc_dir).exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the engine {pid} outlived SIGKILL");
}

#[test]
fn build_cache_is_saved_when_the_build_ends_and_a_kill_mid_build_costs_only_reruns() {
    let env = Env::with_image(BASE);
    let ctx = env.dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {BASE}\nENV A=1\nWORKDIR /app\nCOPY src/ ./src/\nLABEL one=1\n\
                     ARG T=0\nRUN sleep $T; echo ran > /ran\nENV B=2\nEXPOSE 80\n\
                     CMD [\"cat\", \"/ran\"]\n"
                ),
            ),
            ("src/a.txt", "a\n"),
        ],
    );
    // Every instruction but FROM is a step.
    let steps = 9;
    let first = build(&env, &ctx, "localhost/saved:1", &[]);
    assert_eq!(first.code, 0, "{}", first.transcript());
    // The steps' images were saved once when the build ended: an engine
    // killed right after has them all.
    kill_engine(&env);
    let cached = build(&env, &ctx, "localhost/saved:1", &[]);
    assert_eq!(cached.code, 0, "{}", cached.transcript());
    assert_eq!(
        cached_and_reasons(&cached.stderr),
        (steps, vec![]),
        "{}",
        cached.transcript()
    );
    // An engine killed in the middle of a build whose first steps are new
    // (they are in memory only): the next engine loads the store, and the
    // rebuild reruns what was lost and succeeds.
    write(&ctx, &[("src/a.txt", "b\n")]);
    let child = env
        .command(&[
            "build",
            "--progress",
            "plain",
            "-t",
            "localhost/saved:1",
            "--build-arg",
            "T=60",
            ctx.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while env.ok(&["ps", "-q"]).trim().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    kill_engine(&env);
    let out = support::Run::of(child.wait_with_output().unwrap());
    assert_ne!(out.code, 0, "{}", out.transcript());
    let images = env.run(&["images"]);
    assert_eq!(images.code, 0, "{}", images.transcript());
    let again = build(&env, &ctx, "localhost/saved:1", &[]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    let (hits, reasons) = cached_and_reasons(&again.stderr);
    // ENV and WORKDIR are kept; the COPY and what follows rerun.
    assert_eq!(hits, 2, "{}", again.transcript());
    assert_eq!(reasons.len(), steps - 2, "{}", again.transcript());
    assert_eq!(
        run_in(&env, "localhost/saved:1", "cat /app/src/a.txt /ran"),
        "b\nran\n"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "localhost/saved:1"])).unwrap();
    let labels = inspect[0]["Config"]["Labels"].to_string();
    assert!(labels.contains("\"one\":\"1\""), "{labels}");
}

#[test]
fn ctrl_c_cancels_the_build_and_leaves_nothing() {
    let env = Env::with_image(BASE);
    let ctx = env.dir.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM {BASE}\nRUN echo started; sleep 60\n"),
        )],
    );
    env.ok(&["images"]);
    let child = env
        .command(&[
            "build",
            "--progress",
            "plain",
            "-t",
            "localhost/cancel:1",
            ctx.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while env.ok(&["ps", "-q"]).trim().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = support::Run::of(child.wait_with_output().unwrap());
    assert_ne!(out.code, 0, "{}", out.transcript());
    // The engine sees the client go, stops the step and removes its
    // container; nothing is tagged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !env.ok(&["ps", "-a", "-q"]).trim().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the RUN container was left"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!env.ok(&["images"]).contains("localhost/cancel"));
    let scratch = env.root().join("build/tmp");
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
}

/// What a tree holds, as `stat` sees it: name, size, mode, owner and
/// time of every entry below `dir`, and every file's content.
fn tree_of(env: &Env, image: &str, dir: &str) -> String {
    run_in(
        env,
        image,
        &format!(
            "cd {dir} && find . -mindepth 1 | sort | while read p; do \
             stat -c '%n %s %a %u:%g %Y' \"$p\"; \
             if [ -f \"$p\" ]; then cat \"$p\"; fi; done"
        ),
    )
}

#[test]
fn a_copy_whose_sources_changed_writes_only_the_changes_onto_its_last_result() {
    let env = Env::with_image(BASE);
    let ctx = env.dir.path().join("ctx");
    let mut files: Vec<(String, String)> = (0..8)
        .map(|i| (format!("src/f{i}.txt"), format!("file {i}\n")))
        .collect();
    files.push(("src/sub/c.txt".into(), "c1\n".into()));
    files.push(("src/sub/d.txt".into(), "d1\n".into()));
    files.push(("src/shadow.txt".into(), "from the context\n".into()));
    let dockerfile = format!(
        "FROM {BASE}\n\
         RUN mkdir /app && echo from the parent > /app/shadow.txt\n\
         COPY src/ /app/\n\
         RUN ls /app > /listing\n"
    );
    files.push(("Dockerfile".into(), dockerfile));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    write(&ctx, &refs);
    let first = build(&env, &ctx, "localhost/delta:1", &[]);
    assert_eq!(first.code, 0, "{}", first.transcript());

    // One file changed, one deleted, one added: only those are written,
    // on top of the previous copy; the result is what a full copy gives.
    std::fs::write(ctx.join("src/f3.txt"), "file 3, edited\n").unwrap();
    std::fs::remove_file(ctx.join("src/sub/c.txt")).unwrap();
    std::fs::write(ctx.join("src/e.txt"), "new\n").unwrap();
    let edited = build(&env, &ctx, "localhost/delta:1", &[]);
    assert_eq!(edited.code, 0, "{}", edited.transcript());
    // f3.txt, e.txt and the folder sub (whose c.txt went).
    edited.assert_stderr_has(
        "wrote 3 changed entries, deleted 1 entry, onto this step's previous result",
    );
    let full = build(&env, &ctx, "localhost/delta-full:1", &["--no-cache"]);
    assert_eq!(full.code, 0, "{}", full.transcript());
    assert!(!full.stderr.contains("previous result"), "{}", full.stderr);
    let delta_tree = tree_of(&env, "localhost/delta:1", "/app");
    assert_eq!(delta_tree, tree_of(&env, "localhost/delta-full:1", "/app"));
    assert!(delta_tree.contains("file 3, edited\n"), "{delta_tree}");
    assert!(!delta_tree.contains("c.txt"), "{delta_tree}");
    assert_eq!(
        run_in(&env, "localhost/delta:1", "cat /listing"),
        run_in(&env, "localhost/delta-full:1", "cat /listing"),
    );
    // The history says which layer holds only the changes.
    let sock = env.dir.path().join("engine.sock");
    let history = std::process::Command::new("curl")
        .args(["-sf", "--unix-socket"])
        .arg(&sock)
        .arg("http://localhost/images/localhost/delta:1/history")
        .output()
        .unwrap();
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    assert!(
        history.contains("changes since this step's previous run"),
        "{history}"
    );

    // Deleting a source that hid a file of the parent brings the parent's
    // file back: a deletion on the previous copy cannot, so this copy is
    // made in full.
    std::fs::remove_file(ctx.join("src/shadow.txt")).unwrap();
    let unshadowed = build(&env, &ctx, "localhost/delta:1", &[]);
    assert_eq!(unshadowed.code, 0, "{}", unshadowed.transcript());
    assert!(
        !unshadowed.stderr.contains("previous result"),
        "{}",
        unshadowed.stderr
    );
    assert_eq!(
        run_in(&env, "localhost/delta:1", "cat /app/shadow.txt"),
        "from the parent\n"
    );
    // (--no-cache runs the parent's RUN again: its file's time differs.)
    let full = build(&env, &ctx, "localhost/delta-full:1", &["--no-cache"]);
    assert_eq!(full.code, 0, "{}", full.transcript());
    let without_shadow = |t: String| -> String {
        t.lines()
            .filter(|l| !l.starts_with("./shadow.txt"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        without_shadow(tree_of(&env, "localhost/delta:1", "/app")),
        without_shadow(tree_of(&env, "localhost/delta-full:1", "/app"))
    );
}

/// A tiny HTTP server on a loopback port for `ADD <url>`: serves the
/// files in its map (path → body) with a fixed `Last-Modified`, and counts
/// the requests of each path.
struct Files {
    addr: String,
    files: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    hits: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
const LAST_MODIFIED_SECS: u64 = 1_445_412_480;

impl Files {
    fn start() -> Self {
        use std::io::{BufRead, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let files = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
            String,
            Vec<u8>,
        >::new()));
        let hits = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let (f, h) = (files.clone(), hits.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                *h.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
                let body = f.lock().unwrap().get(&path).cloned();
                let _ = match body {
                    Some(b) => conn
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: {LAST_MODIFIED}\r\nConnection: close\r\n\r\n",
                                b.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| conn.write_all(&b)),
                    None => conn.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            }
        });
        Self { addr, files, hits }
    }

    fn put(&self, path: &str, body: &[u8]) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_string(), body.to_vec());
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn sha256_of(data: &[u8]) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(data);
    format!(
        "sha256:{}",
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

#[test]
fn add_of_a_url_is_downloaded_verified_and_cached_by_its_checksum() {
    let env = Env::with_image(BASE);
    let server = Files::start();
    server.put("/dl/tool.txt", b"tool v1\n");
    server.put("/dl/data.bin", b"data v1\n");
    let ctx = env.dir.path().join("ctx");
    let good = sha256_of(b"tool v1\n");
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM {BASE}\n\
                 ADD --checksum={good} {} /opt/\n\
                 ADD {} /data/renamed.bin\n",
                server.url("/dl/tool.txt"),
                server.url("/dl/data.bin"),
            ),
        )],
    );
    let first = build(&env, &ctx, "localhost/url:1", &[]);
    assert_eq!(first.code, 0, "{}", first.transcript());
    // Docker's placement, mode 0600 and the server's time.
    assert_eq!(
        run_in(
            &env,
            "localhost/url:1",
            "cat /opt/tool.txt /data/renamed.bin; stat -c '%a %Y' /opt/tool.txt /data/renamed.bin"
        ),
        format!("tool v1\ndata v1\n600 {LAST_MODIFIED_SECS}\n600 {LAST_MODIFIED_SECS}\n")
    );
    assert_eq!(server.hits("/dl/tool.txt"), 1);

    // Again: both cached; the checksummed URL is not downloaded at all,
    // the other one is (its content is its key).
    let again = build(&env, &ctx, "localhost/url:1", &[]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    let (cached, reasons) = cached_and_reasons(&again.stderr);
    assert_eq!((cached, reasons.len()), (2, 0), "{}", again.stderr);
    assert_eq!(server.hits("/dl/tool.txt"), 1);
    assert_eq!(server.hits("/dl/data.bin"), 2);

    // The unchecked URL's content changed: its step runs and says why.
    server.put("/dl/data.bin", b"data v2\n");
    let changed = build(&env, &ctx, "localhost/url:1", &[]);
    assert_eq!(changed.code, 0, "{}", changed.transcript());
    let (cached, reasons) = cached_and_reasons(&changed.stderr);
    assert_eq!(cached, 1, "{}", changed.stderr);
    assert_eq!(
        reasons,
        vec![format!("url {} changed", server.url("/dl/data.bin"))]
    );
    assert_eq!(
        run_in(&env, "localhost/url:1", "cat /data/renamed.bin"),
        "data v2\n"
    );

    // The server now sends other bytes for the checksummed URL: the build
    // fails naming the URL and both digests, and tags nothing.
    server.put("/dl/tool.txt", b"tool v1, tampered\n");
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM {BASE}\n\
                 ADD --checksum={good} {} /opt/tool\n",
                server.url("/dl/tool.txt"),
            ),
        )],
    );
    let bad = build(&env, &ctx, "localhost/url-bad:1", &[]);
    assert_ne!(bad.code, 0, "{}", bad.transcript());
    bad.assert_stderr_has(&format!(
        "checksum mismatch for {}: expected {good}, got {}",
        server.url("/dl/tool.txt"),
        sha256_of(b"tool v1, tampered\n")
    ));
    assert_ne!(
        env.run(&["image", "inspect", "localhost/url-bad:1"]).code,
        0
    );

    // --checksum is for one URL source, and must be a digest.
    write(&ctx, &[("local.txt", "x\n")]);
    for (add, says) in [
        (
            format!("ADD --checksum={good} local.txt /x"),
            "`--checksum` applies only to URL sources",
        ),
        (
            format!(
                "ADD --checksum=sha256:123 {} /x",
                server.url("/dl/tool.txt")
            ),
            "`--checksum=sha256:123` is not a digest",
        ),
    ] {
        write(&ctx, &[("Dockerfile", &format!("FROM {BASE}\n{add}\n"))]);
        let refused = build(&env, &ctx, "localhost/url-bad:1", &[]);
        assert_ne!(refused.code, 0, "{}", refused.transcript());
        refused.assert_stderr_has(says);
    }
}

#[test]
fn up_builds_its_images_together_while_it_pulls_the_others() {
    use servin_testkit::registry::RegistryGuard;
    let env = Env::with_image(BASE);
    let reg = RegistryGuard::start();
    // An image only the registry has: `up` pulls it while it builds.
    let pulled = format!("{}/team/side:v1", reg.addr());
    let seed_dir = env.dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let tar = servin_testkit::image::seed_image_marked(&seed_dir, &pulled, Some("side"));
    env.ok(&["image", "import", tar.to_str().unwrap()]);
    let push = env.run(&["push", &pulled]);
    assert_eq!(push.code, 0, "{}", push.stderr);
    env.ok(&["rmi", &pulled]);

    let file = env.write_project(
        "proj",
        &format!(
            "[project]\nname = \"par\"\n\n\
             [images.web]\nbuild = \"./web\"\n\n[images.api]\nbuild = \"./api\"\n\n\
             [containers.web]\nimage = \"web\"\ncommand = [\"sleep\", \"300\"]\nstop_timeout = \"1s\"\n\n\
             [containers.api]\nimage = \"api\"\ncommand = [\"sleep\", \"300\"]\nstop_timeout = \"1s\"\n\n\
             [containers.side]\nimage = \"{pulled}\"\ncommand = [\"sleep\", \"300\"]\nstop_timeout = \"1s\"\n"
        ),
    );
    let dir = file.parent().unwrap().to_path_buf();
    for name in ["web", "api"] {
        write(
            &dir.join(name),
            &[
                (
                    "Dockerfile",
                    &format!("FROM {BASE}\nCOPY msg.txt /msg\nRUN cat /msg > /copy\n"),
                ),
                ("msg.txt", &format!("{name}\n")),
            ],
        );
    }
    let up = env.run_in(&dir, &["up", "-d"]);
    assert_eq!(up.code, 0, "{}", up.transcript());
    // Each build's lines carry its image's name; both ran every step.
    for name in ["web", "api"] {
        let done = up
            .stderr
            .lines()
            .filter(|l| l.starts_with(&format!("{name}: [stage-0 ")) && l.contains(" DONE "))
            .count();
        assert_eq!(done, 3, "{}", up.stderr);
        assert_eq!(
            run_exec(&env, &format!("par-{name}-1"), "cat /copy"),
            format!("{name}\n")
        );
    }
    assert_eq!(run_exec(&env, "par-side-1", "echo $SEED"), "side\n");

    // A machine with the lock file but not the image: it is pulled (by its
    // locked digest) while the builds run.
    env.ok_in(&dir, &["down"]);
    env.ok(&["rmi", "-f", &pulled]);
    std::fs::write(dir.join("web/msg.txt"), "web 2\n").unwrap();
    let up = env.run_in(&dir, &["up", "-d"]);
    assert_eq!(up.code, 0, "{}", up.transcript());
    let pulled_line = format!("image {}/team/side@sha256:", reg.addr());
    assert!(
        up.stderr
            .lines()
            .any(|l| l.contains(&pulled_line) && l.ends_with(": pulled")),
        "{}",
        up.transcript()
    );
    up.assert_stderr_has("web: [stage-0 2/3] runs: msg.txt changed");
    assert_eq!(run_exec(&env, "par-side-1", "echo $SEED"), "side\n");
    assert_eq!(run_exec(&env, "par-web-1", "cat /copy"), "web 2\n");

    // A failing build fails `up`, names its image, and starts nothing new.
    std::fs::write(
        dir.join("api/Dockerfile"),
        format!("FROM {BASE}\nRUN exit 3\n"),
    )
    .unwrap();
    let failed = env.run_in(&dir, &["up", "-d"]);
    assert_ne!(failed.code, 0, "{}", failed.transcript());
    failed.assert_stderr_has("api: ");
    // The summary names the failed build and the container it failed.
    failed.assert_stderr_has("image par-api: build: ");
    failed
        .assert_stderr_has("container par-api-1: not started: image par-api could not be built: ");
    env.ok_in(&dir, &["down"]);
}

#[test]
fn up_starts_each_container_as_soon_as_its_own_image_is_ready() {
    let env = Env::with_image(BASE);
    let file = env.write_project(
        "proj",
        &format!(
            "[project]\nname = \"ord\"\n\n\
             [images.slow]\nbuild = \"./slow\"\n\n\
             [containers.slow]\nimage = \"slow\"\ncommand = [\"sleep\", \"300\"]\nstop_timeout = \"1s\"\n\n\
             [containers.after]\nimage = \"{BASE}\"\ncommand = [\"sleep\", \"300\"]\nstop_timeout = \"1s\"\ndepends_on = [\"slow\"]\n\n\
             [containers.fast]\nimage = \"{BASE}\"\ncommand = [\"sleep\", \"300\"]\nstop_timeout = \"1s\"\n"
        ),
    );
    let dir = file.parent().unwrap().to_path_buf();
    write(
        &dir.join("slow"),
        &[("Dockerfile", &format!("FROM {BASE}\nRUN sleep 3\n"))],
    );
    let up = env.run_in(&dir, &["up", "-d"]);
    assert_eq!(up.code, 0, "{}", up.transcript());
    // The container whose image is here started while the build ran; the
    // one depending on the built one waited for it.
    let at = |text: &str| {
        up.stderr
            .find(text)
            .unwrap_or_else(|| panic!("no {text:?} in {}", up.transcript()))
    };
    let built = at("✔ image ord-slow: built ");
    assert!(at("✔ container ord-fast-1: created and started") < built);
    assert!(at("✔ container ord-slow-1: created and started") > built);
    assert!(at("✔ container ord-after-1: created and started") > built);
    let started = |name: &str| {
        let v = env.inspect(name);
        chrono::DateTime::parse_from_rfc3339(v["State"]["StartedAt"].as_str().unwrap()).unwrap()
    };
    assert!(started("ord-fast-1") < started("ord-slow-1"));
    assert!(started("ord-slow-1") <= started("ord-after-1"));
    // The slow one runs the image just built, by its ID.
    let image: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "ord-slow"])).unwrap();
    let image = image.as_array().map_or(image.clone(), |a| a[0].clone());
    assert_eq!(env.inspect("ord-slow-1")["Image"], image["Id"]);

    // Nothing changed: the build is a cache hit and every container kept.
    let again = env.run_in(&dir, &["up", "-d"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    again.assert_stderr_has("3 unchanged");

    // A failing build fails only its container and what depends on it.
    env.ok_in(&dir, &["down"]);
    write(
        &dir.join("slow"),
        &[("Dockerfile", &format!("FROM {BASE}\nRUN exit 3\n"))],
    );
    let failed = env.run_in(&dir, &["up", "-d"]);
    assert_ne!(failed.code, 0, "{}", failed.transcript());
    failed.assert_stderr_has("image ord-slow: build: ");
    failed.assert_stderr_has(
        "container ord-after-1: not started: dependency chain after -> slow failed: image ord-slow could not be built: ",
    );
    assert_eq!(env.inspect("ord-fast-1")["State"]["Running"], true);
    for name in ["ord-slow-1", "ord-after-1"] {
        assert_ne!(env.run(&["inspect", name]).code, 0, "{name} exists");
    }
    env.ok_in(&dir, &["down"]);
}
