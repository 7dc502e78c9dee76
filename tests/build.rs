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

    // Touching every file changes nothing either.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    for f in ["src/a.txt", "src/b.txt", "Dockerfile"] {
        let file = std::fs::File::options().write(true).open(ctx.join(f)).unwrap();
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
    let (cached, reasons) = cached_and_reasons(&edited.stderr);
    assert_eq!(cached, 1, "{}", edited.stderr);
    assert_eq!(reasons[0], "src/b.txt changed", "{}", edited.stderr);
    assert!(reasons[1..].iter().all(|r| r == "the step before it changed"), "{reasons:?}");
    assert_eq!(run_in(&env, "localhost/cache:1", "cat /app/all.txt /v.txt"), "a1\nb2\n1\n");

    // A build arg: only the steps that see it run again, and say so.
    let arg = build(&env, &ctx, "localhost/cache:1", &["--build-arg", "V=2"]);
    let (cached, reasons) = cached_and_reasons(&arg.stderr);
    assert_eq!(cached, 4, "{}", arg.stderr);
    assert_eq!(reasons, vec!["build arg V changed".to_string()], "{}", arg.stderr);
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
    env.ok(&["image", "export", "localhost/secret:1", "-o", tar.to_str().unwrap()]);
    let bytes = std::fs::read(&tar).unwrap();
    let needle = b"s3cr3t-v4lue";
    assert!(!bytes.windows(needle.len()).any(|w| w == needle), "the secret is in the image");
    let hist = env.ok(&["image", "inspect", "localhost/secret:1"]);
    assert!(!hist.contains("s3cr3t"), "{hist}");
    // The cache mount keeps its content for the next build.
    let again = build(&env, &ctx, "localhost/secret:2", &["--secret", &src, "--no-cache"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(run_in(&env, "localhost/secret:2", "cat /seen"), "cached\ncached\n");
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

    // A source change: rebuilt, recreated, the new content runs.
    std::fs::write(dir.join("app/msg.txt"), "v2\n").unwrap();
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
