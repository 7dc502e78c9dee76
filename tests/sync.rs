//! Workspace sync against a real engine: `servin up` copies a `mode =
//! "sync"` workspace into the container's workspace volume before the
//! container starts, and `servin watch` keeps it in sync and runs the
//! follow-ups.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::sandbox::{Env, Sandbox};

const IMAGE: &str = "test/sync:1";
const VOLUME: &str = "demo_web-workspace";

fn project(extra: &str, command: &str) -> String {
    format!(
        r#"[project]
name = "demo"

[containers.web]
image = "{IMAGE}"
command = ["sh", "-c", "{command}"]
stop_timeout = "1s"
user = "1000"
workspace = {{ source = "./src", target = "/app", mode = "sync", ignore = ["*.log", "cache/"]{extra} }}
"#
    )
}

/// The project folder, with `src` holding a few files.
fn setup(s: &Sandbox, extra: &str, command: &str) -> PathBuf {
    let file = s.write_project("demo", &project(extra, command));
    let dir = file.parent().unwrap().to_path_buf();
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("lib/deep")).unwrap();
    std::fs::create_dir_all(src.join("cache")).unwrap();
    std::fs::write(src.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(src.join("lib/deep/x.py"), "x = 1\n").unwrap();
    std::fs::write(src.join("run.sh"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(
        src.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(src.join("debug.log"), "noise\n").unwrap();
    std::fs::write(src.join("cache/blob"), "cached\n").unwrap();
    std::fs::write(src.join(".gitignore"), "secret.txt\n").unwrap();
    std::fs::write(src.join("secret.txt"), "s3cret\n").unwrap();
    std::fs::write(src.join(".main.rs.swp"), "swap\n").unwrap();
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();
    std::os::unix::fs::symlink("../../etc/passwd", src.join("escape")).unwrap();
    dir
}

/// The workspace volume's data folder on the host.
fn copy_of(s: &Sandbox) -> PathBuf {
    s.root().join("volumes").join(VOLUME).join("_data")
}

/// Path to (kind, content) of a tree, leaving out what `skip` says.
fn tree(root: &Path, skip: &dyn Fn(&str) -> bool) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            if skip(&rel) {
                continue;
            }
            // A file being written is renamed into place meanwhile.
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                out.insert(rel, "vanished".to_string());
                continue;
            };
            let v = if m.is_dir() {
                todo.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).unwrap().display())
            } else {
                format!(
                    "{:o} {}",
                    m.mode() & 0o777,
                    servin::sync::workspace::digest_of(&p).unwrap_or_default()
                )
            };
            out.insert(rel, v);
        }
    }
    out
}

fn synced_part(rel: &str) -> bool {
    rel.ends_with(".log")
        || rel == "cache"
        || rel.starts_with("cache/")
        || rel == "secret.txt"
        || rel.ends_with(".swp")
        || rel == "escape"
        || rel.ends_with('~')
        || rel.contains("___jb_")
}

fn eventually(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn up_copies_the_workspace_before_the_container_starts() {
    let s = Env::with_image(IMAGE);
    let dir = setup(&s, "", "cat /app/hello.txt; sleep 300");
    let first = s.run_in(&dir, &["up", "-d"]);
    assert!(first.code == 0, "{}", first.transcript());
    assert!(
        first.stderr.contains("workspace of web: 7 written"),
        "{}",
        first.transcript()
    );
    // The escaping link is refused by name; the rest goes on.
    assert!(
        first
            .stderr
            .contains("workspace of web: escape: the symbolic link points at ../../etc/passwd, outside the workspace source"),
        "{}",
        first.transcript()
    );
    // The copy is whole when the container starts: its first line is the
    // file's content.
    eventually("the container's output", 10, || {
        s.run_in(&dir, &["logs", "demo-web-1"]).stdout == "hello\n"
    });
    let src = dir.join("src");
    assert_eq!(tree(&copy_of(&s), &|_| false), tree(&src, &synced_part));
    // Owned by the container's user, executable bit kept, links as links.
    let stat = s.ok_in(
        &dir,
        &[
            "exec",
            "web",
            "busybox",
            "stat",
            "-c",
            "%u %g %a",
            "/app/run.sh",
            "/app/lib/deep",
            "/app",
        ],
    );
    assert_eq!(stat, "1000 1000 755\n1000 1000 755\n1000 1000 755\n");
    let out = s.ok_in(&dir, &["exec", "web", "cat", "/app/link"]);
    assert_eq!(out, "hello\n");
    // The container's non-root user can write its files.
    s.ok_in(
        &dir,
        &["exec", "web", "sh", "-c", "echo more >> /app/hello.txt"],
    );

    // Nothing changed: nothing is sent (a file rewritten with the same
    // content is compared by digest, and the copy follows the host only:
    // the edit made in the container stays until the host's file changes).
    std::fs::write(src.join("hello.txt"), "hello\n").unwrap();
    let started = Instant::now();
    let again = s.run_in(&dir, &["up", "-d"]);
    assert!(again.code == 0, "{}", again.transcript());
    assert!(
        again.stderr.contains("workspace of web: up to date"),
        "{}",
        again.transcript()
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(dir.join(".servin/sync/demo/web.json").is_file());
    std::fs::write(src.join("hello.txt"), "hello\n").unwrap();
    std::fs::write(src.join("hello.txt"), "hello again\n").unwrap();
    let again = s.run_in(&dir, &["up", "-d"]);
    assert!(
        again
            .stderr
            .contains("workspace of web: 1 written, 0 removed"),
        "{}",
        again.transcript()
    );

    // Changes while the container is stopped are applied on the next up,
    // deletions included.
    s.ok_in(&dir, &["stop", "demo-web-1"]);
    std::fs::remove_dir_all(src.join("lib")).unwrap();
    std::fs::write(src.join("new.txt"), "new\n").unwrap();
    let third = s.run_in(&dir, &["up", "-d"]);
    assert!(
        third
            .stderr
            .contains("workspace of web: 1 written, 1 removed"),
        "{}",
        third.transcript()
    );
    assert_eq!(tree(&copy_of(&s), &|_| false), tree(&src, &synced_part));

    // A lost index is rebuilt from the engine's manifest: nothing resent.
    std::fs::remove_dir_all(dir.join(".servin")).unwrap();
    let fourth = s.run_in(&dir, &["up", "-d"]);
    assert!(
        fourth.stderr.contains("workspace of web: up to date"),
        "{}",
        fourth.transcript()
    );

    // `down` keeps the copy, `down --volumes` removes it.
    s.ok_in(&dir, &["down"]);
    assert!(copy_of(&s).join("new.txt").is_file());
    s.ok_in(&dir, &["down", "--volumes"]);
    assert!(!copy_of(&s).exists());
}

/// `servin watch` running in `dir`, its stderr collected.
struct Watch {
    child: Child,
    err: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Watch {
    fn start(s: &Sandbox, dir: &Path) -> Self {
        let mut child = s
            .command(&["watch", "--no-logs"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let err = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let e2 = std::sync::Arc::clone(&err);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                e2.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let w = Self { child, err };
        eventually("the watcher to start", 30, || {
            w.text().contains("watching the workspaces")
        });
        w
    }

    fn text(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    fn count(&self, part: &str) -> usize {
        self.text().matches(part).count()
    }

    fn stop(mut self) -> String {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
        let status = self.child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let text = self.text();
        assert!(status.success(), "{text}");
        text
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_sends_each_change_and_atomic_saves_once() {
    let s = Env::with_image(IMAGE);
    // The container checks all the time that hello.txt is never missing.
    let dir = setup(
        &s,
        "",
        "while true; do test -e /app/hello.txt || echo MISSING; sleep 0.002; done",
    );
    s.ok_in(&dir, &["up", "-d"]);
    let src = dir.join("src");
    let copy = copy_of(&s);
    let w = Watch::start(&s, &dir);
    let same = || tree(&copy, &|_| false) == tree(&src, &synced_part);

    // Create, modify, delete, rename: files and folders.
    std::fs::write(src.join("a.txt"), "a\n").unwrap();
    std::fs::create_dir_all(src.join("pkg/sub")).unwrap();
    std::fs::write(src.join("pkg/sub/m.py"), "m\n").unwrap();
    eventually("new files", 10, same);
    std::fs::write(src.join("a.txt"), "a2\n").unwrap();
    eventually("a modified file", 10, same);
    std::fs::rename(src.join("pkg"), src.join("pkg2")).unwrap();
    eventually("a renamed folder", 10, || {
        same() && !copy.join("pkg").exists()
    });
    std::fs::rename(src.join("a.txt"), src.join("b.txt")).unwrap();
    std::fs::remove_file(src.join("run.sh")).unwrap();
    eventually("a renamed and a removed file", 10, same);
    // Ignored files are not sent by the watcher either.
    std::fs::write(src.join("more.log"), "x").unwrap();
    std::fs::create_dir_all(src.join("cache/deeper")).unwrap();
    std::fs::write(src.join("cache/deeper/x"), "x").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!copy.join("more.log").exists());
    assert!(!copy.join("cache").exists());

    // vim's save: a `4913` probe, the old file renamed to a backup, the
    // new one written, the backup removed.
    let before = w.count("written");
    std::fs::write(src.join("4913"), "").unwrap();
    std::fs::remove_file(src.join("4913")).unwrap();
    std::fs::rename(src.join("hello.txt"), src.join("hello.txt~")).unwrap();
    std::fs::write(src.join("hello.txt"), "hello vim\n").unwrap();
    std::fs::remove_file(src.join("hello.txt~")).unwrap();
    eventually("vim's save", 10, same);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count("written") - before, 1, "{}", w.text());
    assert!(w.text().contains("workspace of web: 1 written, 0 removed"));

    // JetBrains' save: a temporary file, the old renamed aside, the
    // temporary renamed into place, the old removed.
    let before = w.count("written");
    std::fs::write(src.join("hello.txt___jb_tmp___"), "hello idea\n").unwrap();
    std::fs::rename(src.join("hello.txt"), src.join("hello.txt___jb_old___")).unwrap();
    std::fs::rename(src.join("hello.txt___jb_tmp___"), src.join("hello.txt")).unwrap();
    std::fs::remove_file(src.join("hello.txt___jb_old___")).unwrap();
    eventually("JetBrains' save", 10, same);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.count("written") - before, 1, "{}", w.text());

    let text = w.stop();
    let logs = s.ok_in(&dir, &["logs", "demo-web-1"]);
    assert!(!logs.contains("MISSING"), "hello.txt was missing: {logs}");

    // A watcher started again sends nothing.
    let w = Watch::start(&s, &dir);
    let again = w.stop();
    assert!(again.contains("workspace of web: up to date"), "{again}");
    assert!(!again.contains("written"), "{again}\n---\n{text}");
    s.ok_in(&dir, &["down", "--volumes"]);
}

#[test]
fn a_thousand_file_checkout_is_one_batch_and_one_restart() {
    let s = Env::with_image(IMAGE);
    let dir = setup(&s, ", on_change = \"restart\"", "sleep 300");
    s.ok_in(&dir, &["up", "-d"]);
    let src = dir.join("src");
    let copy = copy_of(&s);
    let w = Watch::start(&s, &dir);
    let started = s.inspect("demo-web-1")["State"]["StartedAt"].clone();
    for i in 0..1000 {
        let d = src.join(format!("tree/d{}", i % 20));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}.txt")), format!("{i}\n")).unwrap();
    }
    let t = Instant::now();
    eventually("the checkout", 20, || {
        tree(&copy, &|_| false) == tree(&src, &synced_part)
    });
    let took = t.elapsed();
    eventually("the restart", 20, || {
        s.inspect("demo-web-1")["State"]["StartedAt"] != started
    });
    std::thread::sleep(Duration::from_millis(500));
    let text = w.stop();
    assert_eq!(text.matches("web: restarting").count(), 1, "{text}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    s.ok_in(&dir, &["down", "--volumes"]);
}

#[test]
fn exec_follow_up_runs_once_per_batch() {
    let s = Env::with_image(IMAGE);
    let dir = setup(
        &s,
        ", on_change = { exec = [\"sh\", \"-c\", \"echo ran >> /app/.ran\"] }",
        "sleep 300",
    );
    s.ok_in(&dir, &["up", "-d"]);
    let src = dir.join("src");
    let w = Watch::start(&s, &dir);
    for i in 0..20 {
        std::fs::write(src.join(format!("e{i}.txt")), "e").unwrap();
    }
    eventually("the exec", 10, || {
        let r = s.run_in(&dir, &["exec", "web", "cat", "/app/.ran"]);
        let text = w.text();
        let after = text.split("watching the workspaces").nth(1).unwrap_or("");
        assert!(!after.contains("warning"), "{text}");
        r.stdout == "ran\n"
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.ok_in(&dir, &["exec", "web", "cat", "/app/.ran"]), "ran\n");
    std::fs::write(src.join("e0.txt"), "again").unwrap();
    eventually("the second exec", 10, || {
        s.run_in(&dir, &["exec", "web", "cat", "/app/.ran"]).stdout == "ran\nran\n"
    });
    let text = w.stop();
    assert_eq!(text.matches("exec sh -c").count(), 2, "{text}");
    s.ok_in(&dir, &["down", "--volumes"]);
}

#[test]
fn an_engine_killed_mid_batch_converges_on_the_next_up() {
    let s = Env::with_image(IMAGE);
    let dir = setup(&s, "", "sleep 300");
    let src = dir.join("src");
    let chunk = vec![7u8; 32 * 1024];
    for i in 0..2000 {
        let d = src.join(format!("big/d{}", i % 40));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}.bin")), &chunk).unwrap();
    }
    let up = s
        .command(&["up", "-d"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let copy = copy_of(&s);
    eventually("the batch to be under way", 60, || {
        std::fs::read_dir(copy.join("big/d0")).is_ok_and(|d| d.count() > 5)
    });
    for pid in s.engine_pids() {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    let first = up.wait_with_output().unwrap();
    assert!(
        !first.status.success(),
        "the batch was whole before the kill"
    );
    assert!(dir.join(".servin/sync/demo/web.inflight").exists());
    // The next up starts the engine again, compares with what the copy
    // holds, sweeps the interrupted batch's temporary files and sends the
    // rest.
    let again = s.run_in(&dir, &["up", "-d"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert!(!dir.join(".servin/sync/demo/web.inflight").exists());
    assert_eq!(tree(&copy, &|_| false), tree(&src, &synced_part));
    let third = s.run_in(&dir, &["up", "-d"]);
    assert!(
        third.stderr.contains("workspace of web: up to date"),
        "{}",
        third.transcript()
    );
    s.ok_in(&dir, &["down", "--volumes"]);
}

#[test]
fn a_bound_workspace_rebuilds_on_change_and_ignores_what_it_ignores() {
    let s = Env::with_image(IMAGE);
    let file = s.write_project(
        "demo",
        r#"[project]
name = "demo"

[images.app]
build = "./ctx"

[containers.web]
image = "app"
command = ["sh", "-c", "cat /stamp.txt; sleep 300"]
stop_timeout = "1s"
workspace = { source = "./ctx", target = "/src", mode = "bind", ignore = ["*.log"], on_change = "rebuild" }
"#,
    );
    let dir = file.parent().unwrap().to_path_buf();
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nCOPY stamp.txt /stamp.txt\n"),
    )
    .unwrap();
    std::fs::write(ctx.join("stamp.txt"), "one\n").unwrap();
    s.ok_in(&dir, &["up", "-d"]);
    eventually("the first stamp", 20, || {
        s.run_in(&dir, &["logs", "demo-web-1"]).stdout == "one\n"
    });
    let w = Watch::start(&s, &dir);
    // An ignored file triggers nothing.
    std::fs::write(ctx.join("build.log"), "noise\n").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert!(!w.text().contains("rebuilding"), "{}", w.text());
    std::fs::write(ctx.join("stamp.txt"), "two\n").unwrap();
    eventually("the rebuilt container", 60, || {
        s.run_in(&dir, &["logs", "demo-web-1"]).stdout == "two\n"
    });
    let text = w.stop();
    assert_eq!(text.matches("web: rebuilding").count(), 1, "{text}");
    s.ok_in(&dir, &["down"]);
}
