//! The container monitor against the real runc: a busybox root filesystem
//! in a temporary folder, a minimal OCI config made from `runc spec`, the
//! monitor spawned from the engine binary.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use servin_guest::monitor::attach::{self, AttachReader, Frame};
use servin_guest::monitor::exec::{ExecRequest, exec};
use servin_guest::monitor::logs::{
    LogEntry, LogQuery, LogStream, follow_logs, parse_time, read_logs,
};
use servin_guest::monitor::{self, ExitRecord, LogConfig, MonitorConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const RUNC: &str = "/usr/bin/runc";
const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "sleep", "tty", "stty", "tail", "true", "ls", "seq",
];

/// A container bundle, runc root and monitor folder in a temporary folder;
/// dropping it deletes the container and kills its monitor.
struct Fixture {
    _tmp: tempfile::TempDir,
    id: String,
    root: PathBuf,
    bundle: PathBuf,
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str, args: &[&str], tty: bool) -> Self {
        Self::with(name, args, tty, |_| {})
    }

    /// A fixture whose config.json `edit` may change further.
    fn with(
        name: &str,
        args: &[&str],
        tty: bool,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> Self {
        Self::build(name, args, tty, edit, "monitor")
    }

    fn build(
        name: &str,
        args: &[&str],
        tty: bool,
        edit: impl FnOnce(&mut serde_json::Value),
        dir_name: &str,
    ) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let id = format!("servin-mon-{}-{name}", std::process::id());
        let bundle = tmp.path().join("bundle");
        let bin = bundle.join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        let status = Command::new(RUNC)
            .arg("spec")
            .arg("--bundle")
            .arg(&bundle)
            .status()
            .unwrap();
        assert!(status.success());
        let path = bundle.join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        spec["process"]["args"] = serde_json::json!(args);
        spec["process"]["terminal"] = serde_json::json!(tty);
        spec["root"]["path"] = serde_json::json!(bundle.join("rootfs"));
        spec["root"]["readonly"] = serde_json::json!(false);
        edit(&mut spec);
        std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        let root = tmp.path().join("runc");
        let dir = tmp.path().join(dir_name);
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            _tmp: tmp,
            id,
            root,
            bundle,
            dir,
        }
    }

    fn config(&self) -> MonitorConfig {
        let spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.bundle.join("config.json")).unwrap())
                .unwrap();
        MonitorConfig {
            id: self.id.clone(),
            runtime: RUNC.into(),
            runtime_root: self.root.clone(),
            bundle: self.bundle.clone(),
            tty: spec["process"]["terminal"].as_bool().unwrap_or(false),
            open_stdin: false,
            stdin_once: false,
            log: LogConfig {
                path: self.dir.join("container.log"),
                max_size: 0,
                max_files: 1,
            },
            memory_cgroup: None,
        }
    }

    async fn spawn(&self, config: &MonitorConfig) -> monitor::Created {
        monitor::spawn(
            Path::new(env!("CARGO_BIN_EXE_servin-guest")),
            &self.dir,
            config,
        )
        .await
        .unwrap()
    }

    fn runc(&self, args: &[&str]) -> std::process::Output {
        Command::new(RUNC)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .output()
            .unwrap()
    }

    fn exists(&self) -> bool {
        self.runc(&["state", &self.id]).status.success()
    }

    async fn wait(&self) -> ExitRecord {
        tokio::time::timeout(Duration::from_secs(60), monitor::wait(&self.dir))
            .await
            .expect("the container exits")
            .unwrap()
            .expect("an exit record")
    }

    fn monitor_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(monitor::PID_FILE))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    fn logs(&self, config: &MonitorConfig) -> Vec<LogEntry> {
        read_logs(
            &config.log,
            &LogQuery {
                stdout: true,
                stderr: true,
                ..LogQuery::default()
            },
        )
        .unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.runc(&["delete", "-f", &self.id]);
        if monitor::alive(&self.dir)
            && let Some(pid) = self.monitor_pid().and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// Reads frames until the exit frame: (stdout, stderr, exit).
async fn collect(reader: &mut AttachReader) -> (String, String, ExitRecord) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(60), reader.next())
            .await
            .expect("a frame")
            .unwrap()
            .expect("the monitor sends an exit frame before going");
        match frame {
            Frame::Stdout(data) => out.extend_from_slice(&data),
            Frame::Stderr(data) => err.extend_from_slice(&data),
            Frame::Exit(record) => {
                return (
                    String::from_utf8_lossy(&out).into_owned(),
                    String::from_utf8_lossy(&err).into_owned(),
                    record,
                );
            }
        }
    }
}

/// Reads stdout frames until `needle` has appeared.
async fn read_until(reader: &mut AttachReader, needle: &str) -> String {
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains(needle) {
        let frame = tokio::time::timeout(Duration::from_secs(60), reader.next())
            .await
            .expect("a frame")
            .unwrap();
        match frame {
            Some(Frame::Stdout(data)) => out.extend_from_slice(&data),
            other => panic!("waiting for {needle:?}, got {other:?}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn text(entries: &[LogEntry], stream: LogStream) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e.stream == stream)
        .map(|e| String::from_utf8_lossy(&e.line).into_owned())
        .collect()
}

#[tokio::test]
async fn output_lands_in_the_log_with_its_stream_and_time() {
    let fx = Fixture::new(
        "log",
        &["sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 3"],
        false,
    );
    let config = fx.config();
    let before = SystemTime::now();
    let created = fx.spawn(&config).await;
    assert!(created.monitor_pid > 0);
    created.start().await.unwrap();
    let pid: i32 = std::fs::read_to_string(fx.dir.join(monitor::CONTAINER_PID_FILE))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 0, "the runtime wrote the init's pid");
    let record = fx.wait().await;
    let after = SystemTime::now();
    assert_eq!(record.code, 3);
    assert!(!record.oom_killed);
    assert_eq!(monitor::read_exit(&fx.dir).unwrap(), Some(record.clone()));
    let finished = parse_time(&record.finished_at).unwrap();
    assert!(before <= finished && finished <= after);

    let entries = fx.logs(&config);
    assert_eq!(text(&entries, LogStream::Stdout), ["out1\n", "out2\n"]);
    assert_eq!(text(&entries, LogStream::Stderr), ["err1\n"]);
    for entry in &entries {
        let time = parse_time(&entry.time).unwrap();
        assert!(before <= time && time <= after, "{}", entry.time);
    }
    let raw = std::fs::read_to_string(&config.log.path).unwrap();
    assert!(
        raw.lines()
            .any(|l| l.starts_with(r#"{"log":"err1\n","stream":"stderr","time":""#)),
        "{raw}"
    );
}

#[tokio::test]
async fn a_restart_in_the_same_folder_starts_clean_and_appends_to_the_log() {
    let fx = Fixture::new("restart", &["sh", "-c", "echo run; exit 1"], false);
    let config = fx.config();
    fx.spawn(&config).await.start().await.unwrap();
    assert_eq!(fx.wait().await.code, 1);
    assert!(fx.runc(&["delete", &fx.id]).status.success());

    let created = fx.spawn(&config).await;
    // The previous run's exit record is gone until this one exits.
    assert_eq!(monitor::read_exit(&fx.dir).unwrap(), None);
    created.start().await.unwrap();
    assert_eq!(fx.wait().await.code, 1);
    assert_eq!(
        text(&fx.logs(&config), LogStream::Stdout),
        ["run\n", "run\n"]
    );
}

#[tokio::test]
async fn a_killed_container_exits_with_128_plus_the_signal() {
    let fx = Fixture::new("kill", &["sleep", "1000"], false);
    let created = fx.spawn(&fx.config()).await;
    created.start().await.unwrap();
    assert!(monitor::alive(&fx.dir));
    assert_eq!(monitor::read_exit(&fx.dir).unwrap(), None);
    // A second monitor for the same container refuses, and leaves it be.
    let second = fx.dir.with_file_name("second");
    std::fs::create_dir(&second).unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_servin-guest"));
    let error = monitor::spawn(exe, &second, &fx.config())
        .await
        .err()
        .unwrap();
    assert!(error.full_message().contains("already exists"), "{error}");
    assert!(fx.exists());
    let killed = fx.runc(&["kill", &fx.id, "KILL"]);
    assert!(killed.status.success(), "{killed:?}");
    assert_eq!(fx.wait().await.code, 137);
}

#[tokio::test]
async fn an_attach_client_gets_the_output_then_the_exit() {
    let fx = Fixture::new(
        "attach",
        &["sh", "-c", "echo hello; echo oops >&2; exit 4"],
        false,
    );
    let created = fx.spawn(&fx.config()).await;
    let (mut reader, _writer) = attach::connect(&fx.dir).await.unwrap();
    created.start().await.unwrap();
    let (out, err, record) = collect(&mut reader).await;
    assert_eq!(out, "hello\n");
    assert_eq!(err, "oops\n");
    assert_eq!(record.code, 4);
    assert_eq!(reader.next().await.unwrap(), None);
}

#[tokio::test]
async fn stdin_frames_reach_cat_and_closing_stdin_ends_it() {
    let fx = Fixture::new("stdin", &["cat"], false);
    let mut config = fx.config();
    config.open_stdin = true;
    config.stdin_once = true;
    let created = fx.spawn(&config).await;
    let (mut reader, mut writer) = attach::connect(&fx.dir).await.unwrap();
    created.start().await.unwrap();
    writer.stdin(b"ping\n").await.unwrap();
    read_until(&mut reader, "ping\n").await;
    writer.stdin(b"pong\n").await.unwrap();
    writer.close_stdin().await.unwrap();
    let (out, _, record) = collect(&mut reader).await;
    assert_eq!(out, "pong\n");
    assert_eq!(record.code, 0);
    assert_eq!(
        text(&fx.logs(&config), LogStream::Stdout),
        ["ping\n", "pong\n"]
    );
}

#[tokio::test]
async fn a_tty_container_gets_its_terminal_and_resizes() {
    // A monitor folder whose socket paths exceed sun_path's 108 bytes.
    let deep = format!("{}/{}", "d".repeat(60), "e".repeat(60));
    let fx = Fixture::build(
        "tty",
        &["sh", "-c", "read x; tty; stty size"],
        true,
        |_| {},
        &deep,
    );
    assert!(fx.dir.join("attach.sock").as_os_str().len() > 108);
    let mut config = fx.config();
    config.open_stdin = true;
    let created = fx.spawn(&config).await;
    let (mut reader, mut writer) = attach::connect(&fx.dir).await.unwrap();
    created.start().await.unwrap();
    writer.resize(40, 100).await.unwrap();
    writer.stdin(b"go\n").await.unwrap();
    let (out, err, record) = collect(&mut reader).await;
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("40 100"), "{out:?}");
    assert_eq!(err, "");
    assert_eq!(record.code, 0);
    let logged = text(&fx.logs(&config), LogStream::Stdout).concat();
    assert!(logged.contains("40 100"), "{logged:?}");
}

#[tokio::test]
async fn the_monitor_outlives_its_control_channel_and_sighup() {
    let fx = Fixture::new("survive", &["cat"], false);
    let mut config = fx.config();
    config.open_stdin = true;
    let created = fx.spawn(&config).await;
    let monitor_pid = created.monitor_pid;
    // start() consumes the control pipes: the engine's side is gone.
    created.start().await.unwrap();
    let pid = rustix::process::Pid::from_raw(monitor_pid).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    let (mut reader, mut writer) = attach::connect(&fx.dir).await.unwrap();
    writer.stdin(b"still here\n").await.unwrap();
    read_until(&mut reader, "still here\n").await;
    assert!(monitor::alive(&fx.dir));
    // Its own memory is the anonymous part; the binary's pages are shared
    // with the engine and the other monitors.
    let status = std::fs::read_to_string(format!("/proc/{monitor_pid}/status")).unwrap();
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    eprintln!(
        "monitor VmRSS {} kB, RssAnon {} kB",
        kb("VmRSS:"),
        kb("RssAnon:")
    );
    assert!(kb("RssAnon:") < 4 * 1024, "{status}");
    writer.close_stdin().await.unwrap();
    let (_, _, record) = collect(&mut reader).await;
    assert_eq!(record.code, 0);
}

#[tokio::test]
async fn rotation_keeps_max_files_and_filters_apply() {
    let fx = Fixture::new(
        "rotate",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done",
        ],
        false,
    );
    let mut config = fx.config();
    config.log.max_size = 3000;
    config.log.max_files = 3;
    fx.spawn(&config).await.start().await.unwrap();
    assert_eq!(fx.wait().await.code, 0);
    let rotated = |n: u32| PathBuf::from(format!("{}.{n}", config.log.path.display()));
    assert!(rotated(1).exists() && rotated(2).exists());
    assert!(!rotated(3).exists());

    let all = text(&fx.logs(&config), LogStream::Stdout);
    assert!(all.len() > 30 && all.len() < 300, "{} lines", all.len());
    let first: usize = all[0].trim().trim_start_matches("line ").parse().unwrap();
    let expected: Vec<String> = (first..300).map(|i| format!("line {i}\n")).collect();
    assert_eq!(all, expected);

    let stdout = LogQuery {
        stdout: true,
        ..LogQuery::default()
    };
    let tail = read_logs(
        &config.log,
        &LogQuery {
            tail: Some(3),
            ..stdout.clone()
        },
    )
    .unwrap();
    assert_eq!(
        text(&tail, LogStream::Stdout),
        ["line 297\n", "line 298\n", "line 299\n"]
    );
    let none = LogQuery {
        stderr: true,
        ..LogQuery::default()
    };
    assert!(read_logs(&config.log, &none).unwrap().is_empty());

    let entries = read_logs(&config.log, &stdout).unwrap();
    let middle = &entries[entries.len() / 2];
    let since = parse_time(&middle.time).unwrap();
    let after = read_logs(
        &config.log,
        &LogQuery {
            since: Some(since),
            ..stdout.clone()
        },
    )
    .unwrap();
    assert!(after.iter().all(|e| parse_time(&e.time).unwrap() >= since));
    assert!(after.iter().any(|e| e.line == middle.line));
    let before = read_logs(
        &config.log,
        &LogQuery {
            until: Some(since),
            ..stdout
        },
    )
    .unwrap();
    assert!(before.iter().all(|e| parse_time(&e.time).unwrap() <= since));
    // Entries logged at exactly `since` are on both sides.
    let ties = entries
        .iter()
        .filter(|e| parse_time(&e.time) == Some(since))
        .count();
    assert_eq!(after.len() + before.len(), entries.len() + ties);
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<LogEntry>) -> Option<LogEntry> {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("a log entry")
}

#[tokio::test]
async fn follow_logs_delivers_new_lines_until_the_container_exits() {
    let fx = Fixture::new("follow", &["cat"], false);
    let mut config = fx.config();
    config.open_stdin = true;
    let created = fx.spawn(&config).await;
    let (mut reader, mut writer) = attach::connect(&fx.dir).await.unwrap();
    created.start().await.unwrap();
    writer.stdin(b"before\n").await.unwrap();
    read_until(&mut reader, "before\n").await;

    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let dir = fx.dir.clone();
    let query = LogQuery {
        stdout: true,
        stderr: true,
        ..LogQuery::default()
    };
    let follower = tokio::spawn(follow_logs(config.log.clone(), query, tx, async move {
        let _ = monitor::wait(&dir).await;
    }));
    assert_eq!(&next(&mut rx).await.unwrap().line[..], b"before\n");
    writer.stdin(b"after\n").await.unwrap();
    assert_eq!(&next(&mut rx).await.unwrap().line[..], b"after\n");
    writer.stdin(b"last\n").await.unwrap();
    writer.close_stdin().await.unwrap();
    assert_eq!(&next(&mut rx).await.unwrap().line[..], b"last\n");
    // The container exited: the follower ends.
    assert!(next(&mut rx).await.is_none());
    follower.await.unwrap();
}

#[tokio::test]
async fn a_create_failure_reports_the_runtime_message_and_cleans_up() {
    let fx = Fixture::new("nocmd", &["/no/such/command"], false);
    let created = monitor::spawn(
        Path::new(env!("CARGO_BIN_EXE_servin-guest")),
        &fx.dir,
        &fx.config(),
    )
    .await
    .unwrap();
    // The runtime runs the container on start: that is where it fails.
    let error = created.start().await.expect_err("the start fails");
    let message = error.full_message();
    assert!(message.contains(&fx.id), "{message}");
    assert!(message.contains("/no/such/command"), "{message}");
    assert!(!fx.exists());
    assert!(!monitor::alive(&fx.dir));
}

#[tokio::test]
async fn abort_deletes_the_created_container() {
    let fx = Fixture::new("abort", &["sleep", "1000"], false);
    let created = fx.spawn(&fx.config()).await;
    // Nothing runs before the start.
    assert!(!fx.exists());
    created.abort().await.unwrap();
    assert!(!fx.exists());
    assert!(!monitor::alive(&fx.dir));
    assert_eq!(monitor::read_exit(&fx.dir).unwrap(), None);
}

#[tokio::test]
async fn an_oom_kill_is_recorded() {
    let cgroup_name = format!("servin-mon-{}-oom", std::process::id());
    let memory = PathBuf::from("/sys/fs/cgroup/memory").join(&cgroup_name);
    let fx = Fixture::with("oom", &["tail", "/dev/zero"], false, |spec| {
        spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{cgroup_name}"));
        spec["linux"]["resources"]["memory"] = serde_json::json!({"limit": 16 * 1024 * 1024});
    });
    let mut config = fx.config();
    config.memory_cgroup = Some(memory);
    fx.spawn(&config).await.start().await.unwrap();
    let record = fx.wait().await;
    assert_eq!(record.code, 137);
    assert!(record.oom_killed);
}

fn process_file(fx: &Fixture, args: &[&str], tty: bool) -> PathBuf {
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.bundle.join("config.json")).unwrap()).unwrap();
    let mut process = spec["process"].clone();
    process["args"] = serde_json::json!(args);
    process["terminal"] = serde_json::json!(tty);
    let path = fx
        .dir
        .join(format!("exec-{}.json", if tty { "tty" } else { "pipes" }));
    std::fs::write(&path, serde_json::to_vec(&process).unwrap()).unwrap();
    path
}

fn exec_request(fx: &Fixture, process_json: PathBuf, tty: bool) -> ExecRequest {
    ExecRequest {
        runtime: RUNC.into(),
        runtime_root: fx.root.clone(),
        id: fx.id.clone(),
        process_json,
        tty,
        stdin: true,
    }
}

#[tokio::test]
async fn exec_with_pipes_and_with_a_tty() {
    let fx = Fixture::new("exec", &["sleep", "1000"], false);
    fx.spawn(&fx.config()).await.start().await.unwrap();

    let script = "echo out; echo err >&2; read x; echo got $x; exit 5";
    let file = process_file(&fx, &["sh", "-c", script], false);
    let mut process = exec(&exec_request(&fx, file, false)).await.unwrap();
    assert!(process.pid().is_some());
    assert!(process.resizer().is_none());
    let io = process.take_io();
    let mut stdin = io.stdin.unwrap();
    stdin.write_all(b"hi\n").await.unwrap();
    drop(stdin);
    let (mut out, mut err) = (String::new(), String::new());
    let mut stdout = io.stdout;
    let mut stderr = io.stderr.unwrap();
    let (a, b) = tokio::join!(
        stdout.read_to_string(&mut out),
        stderr.read_to_string(&mut err)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(out, "out\ngot hi\n");
    assert_eq!(err, "err\n");
    assert_eq!(process.wait().await.unwrap(), 5);
    assert_eq!(process.runtime_error(), None);

    // The runtime copies the size on SIGWINCH, concurrently with the
    // input: the script waits for it (a broken resize times out).
    let script = r#"read x; tty; while [ "$(stty size)" != "30 90" ]; do sleep 1; done; echo resized; exit 7"#;
    let file = process_file(&fx, &["sh", "-c", script], true);
    let mut process = exec(&exec_request(&fx, file, true)).await.unwrap();
    process.resizer().unwrap().resize(30, 90).unwrap();
    let io = process.take_io();
    assert!(io.stderr.is_none());
    let mut stdin = io.stdin.unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    let mut out = String::new();
    let mut stdout = io.stdout;
    tokio::time::timeout(Duration::from_secs(60), stdout.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("resized"), "{out:?}");
    // The container's terminal echoes the input; the relay adds no echo.
    assert_eq!(out.matches("go").count(), 1, "{out:?}");
    assert_eq!(process.wait().await.unwrap(), 7);

    let file = process_file(&fx, &["no-such-command"], false);
    let mut process = exec(&exec_request(&fx, file, false)).await.unwrap();
    drop(process.take_io());
    assert_ne!(process.wait().await.unwrap(), 0);
    let message = process.runtime_error().expect("the runtime's error");
    assert!(message.contains("no-such-command"), "{message}");

    // The container itself runs on.
    assert!(monitor::alive(&fx.dir));
    assert_eq!(monitor::read_exit(&fx.dir).unwrap(), None);
}

#[test]
fn handles_can_move_between_tasks() {
    fn send<T: Send + 'static>() {}
    send::<monitor::Created>();
    send::<AttachReader>();
    send::<attach::AttachWriter>();
    send::<servin_guest::monitor::exec::ExecProcess>();
    send::<servin_guest::monitor::exec::Resizer>();
    send::<servin_guest::monitor::exec::ExecIo>();
}

#[tokio::test]
async fn a_standby_monitor_runs_the_container_it_is_handed() {
    let exe = Path::new(env!("CARGO_BIN_EXE_servin-guest"));
    let fx = Fixture::new("standby", &["sh", "-c", "echo from-standby"], false);
    let config = fx.config();
    let root = fx.dir.parent().unwrap();
    let standby = monitor::Standby::start(exe, root).unwrap();
    let created = monitor::spawn_with(exe, &fx.dir, &config, Some(standby))
        .await
        .unwrap();
    created.start().await.unwrap();
    let record = fx.wait().await;
    assert_eq!(record.code, 0);
    assert_eq!(
        text(&fx.logs(&config), LogStream::Stdout),
        ["from-standby\n"]
    );
    // Its diagnostics went to the folder's monitor log once it had one.
    assert!(fx.dir.join(monitor::MONITOR_LOG).exists());

    // A folder outside the standby's root is refused, and nothing runs.
    let other = Fixture::new("standby-out", &["true"], false);
    let elsewhere = tempfile::tempdir().unwrap();
    let standby = monitor::Standby::start(exe, elsewhere.path()).unwrap();
    let refused = monitor::spawn_with(exe, &other.dir, &other.config(), Some(standby)).await;
    let message = refused.err().unwrap().full_message();
    assert!(
        message.contains("is not a container folder under"),
        "{message}"
    );
    assert!(!other.exists());
}
