//! `docker stats`, `top`, `pause`/`unpause`, `update` and `system df` for
//! real: the docker CLI against the engine, runc, the cgroup freezer and
//! the container's cgroup files.
#![allow(clippy::unwrap_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "a test is a synchronous program of its own: it may sleep on its thread"
)]

mod support;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use servin_testkit::wait::eventually;
use support::{EngineGuard, IMAGE};

fn engine() -> EngineGuard {
    EngineGuard::with_image(IMAGE, &[])
}

fn api_json(e: &EngineGuard, method: &str, path: &str) -> (u16, serde_json::Value) {
    let r = e.api(method, path, &[], b"");
    let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    (r.status, v)
}

/// The container's cgroup folder of v1 `controller` (or its v2 folder),
/// from its init's `/proc/PID/cgroup`.
fn cgroup_dir(e: &EngineGuard, name: &str, controller: &str) -> PathBuf {
    let pid = e.inspect_container(name)["State"]["Pid"].as_i64().unwrap();
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        if ctrls.split(',').any(|c| c == controller) {
            let dir = PathBuf::from(format!("/sys/fs/cgroup/{ctrls}{path}"));
            if dir.exists() {
                return dir;
            }
            return PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}"));
        }
    }
    let path = text.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    PathBuf::from(format!("/sys/fs/cgroup{path}"))
}

fn read_trim(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn stats_report_real_figures_and_top_lists_the_processes() {
    let e = engine();
    // 50 MB in the container's /dev/shm, charged to its memory cgroup, and
    // 5 MB in its writable layer.
    e.run_detached(
        "hog",
        &["--memory", "256m"],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/shm/fill bs=1M count=50 && dd if=/dev/zero of=/rw bs=1M count=5 && touch /ready && exec sleep 1000",
        ],
    );
    e.run_detached("idle", &[], &["sleep", "1000"]);
    eventually("the hog to fill its memory", || {
        e.docker(&["exec", "hog", "test", "-e", "/ready"])
            .status
            .success()
    });

    let (status, v) = api_json(&e, "GET", "/v1.47/containers/hog/stats?stream=false");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["name"], "/hog");
    let usage = v["memory_stats"]["usage"].as_u64().unwrap();
    let limit = v["memory_stats"]["limit"].as_u64().unwrap();
    assert_eq!(limit, 256 << 20, "{v}");
    assert!(usage >= 50 << 20 && usage < limit, "usage {usage}: {v}");
    assert!(v["pids_stats"]["current"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    assert!(v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(v["cpu_stats"]["online_cpus"].as_u64().unwrap() >= 1);
    // stream=false waits for a second sample: precpu is filled.
    assert!(
        v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert_ne!(v["preread"], "0001-01-01T00:00:00Z");
    assert!(v["networks"]["eth0"]["rx_bytes"].is_u64(), "{v}");
    assert!(
        v["blkio_stats"]["io_service_bytes_recursive"].is_array(),
        "{v}"
    );

    // An unlimited container reports the host's memory as its limit.
    let (_, idle) = api_json(
        &e,
        "GET",
        "/v1.47/containers/idle/stats?stream=false&one-shot=true",
    );
    let host_mem = std::fs::read_to_string("/proc/meminfo").unwrap();
    let host_kb: u64 = host_mem
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        idle["memory_stats"]["limit"].as_u64().unwrap(),
        host_kb * 1024
    );
    assert_eq!(
        idle["preread"], "0001-01-01T00:00:00Z",
        "one-shot has no precpu"
    );

    // The docker CLI, one container and every running one.
    let row = e.docker_ok(&["stats", "--no-stream", "--format", "{{json .}}", "hog"]);
    let row: serde_json::Value = serde_json::from_str(row.trim()).unwrap();
    assert_eq!(row["Name"], "hog");
    let mem = row["MemUsage"].as_str().unwrap();
    assert!(mem.ends_with("/ 256MiB"), "{row}");
    assert_ne!(row["PIDs"], "0");
    let all = e.docker_ok(&["stats", "--no-stream"]);
    assert!(!all.contains("--"), "{all}");
    assert!(all.contains("hog") && all.contains("idle"), "{all}");

    // A stopped container: Docker's zeroed stats, once.
    e.docker_ok(&["stop", "-t", "1", "idle"]);
    let (status, z) = api_json(&e, "GET", "/v1.47/containers/idle/stats?stream=false");
    assert_eq!(status, 200);
    assert_eq!(z["read"], "0001-01-01T00:00:00Z");
    assert_eq!(z["cpu_stats"]["cpu_usage"]["total_usage"], 0);
    assert_eq!(z["name"], "/idle");

    // top: ps -ef rows of the container's processes only.
    let top = e.docker_ok(&["top", "hog"]);
    assert!(top.contains("UID") && top.contains("sleep 1000"), "{top}");
    assert!(!top.contains("servin-guest"), "{top}");
    let (status, t) = api_json(&e, "GET", "/v1.47/containers/hog/top?ps_args=-o%20pid,comm");
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["Titles"], serde_json::json!(["PID", "COMMAND"]));
    assert!(
        t["Processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p[1] == "sleep"),
        "{t}"
    );
    let err = e.docker_err(&["top", "idle"]);
    assert!(err.contains("is not running"), "{err}");
    let (status, _) = api_json(&e, "GET", "/v1.47/containers/nope/stats?stream=false");
    assert_eq!(status, 404);
}

/// Reads a streamed stats answer until two samples came.
fn two_streamed_samples(e: &EngineGuard, name: &str) -> (Duration, String) {
    let mut s = std::os::unix::net::UnixStream::connect(e.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /v1.47/containers/{name}/stats HTTP/1.1\r\nHost: engine\r\n\r\n"
    )
    .unwrap();
    let start = Instant::now();
    let mut text = String::new();
    let mut buf = [0u8; 65536];
    while text.matches("\"read\"").count() < 2 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    (start.elapsed(), text)
}

#[test]
fn stats_stream_a_sample_a_second() {
    let e = engine();
    e.run_detached("st", &[], &["sleep", "1000"]);
    let (took, text) = two_streamed_samples(&e, "st");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(text.contains("\"precpu_stats\""), "{text}");
    e.docker_ok(&["rm", "-f", "st"]);
}

/// The container events of `name` since `since` (unix seconds), by action.
fn actions(e: &EngineGuard, name: &str, since: &str) -> Vec<String> {
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let filter = format!("container={name}");
    e.docker_ok(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        &filter,
        "--format",
        "{{.Action}}",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

fn log_lines(e: &EngineGuard, name: &str) -> usize {
    e.docker_ok(&["logs", name]).lines().count()
}

#[test]
fn pause_freezes_the_processes_and_survives_an_engine_restart() {
    let mut e = engine();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    e.run_detached(
        "counter",
        &[],
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done",
        ],
    );
    eventually("the counter to count", || log_lines(&e, "counter") > 3);
    e.docker_ok(&["pause", "counter"]);
    let freezer = cgroup_dir(&e, "counter", "freezer");
    if freezer.join("freezer.state").exists() {
        assert_eq!(read_trim(freezer.join("freezer.state")), "FROZEN");
    } else {
        assert_eq!(read_trim(freezer.join("cgroup.freeze")), "1");
    }
    let frozen = log_lines(&e, "counter");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(log_lines(&e, "counter"), frozen, "it counted while paused");

    let state = &e.inspect_container("counter")["State"];
    assert_eq!(state["Status"], "paused");
    assert_eq!(state["Paused"], true);
    assert_eq!(state["Running"], true);
    let ps = e.docker_ok(&[
        "ps",
        "--filter",
        "status=paused",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(
        ps.starts_with("counter Up") && ps.contains("(Paused)"),
        "{ps}"
    );
    let err = e.docker_err(&["pause", "counter"]);
    assert!(err.contains("is already paused"), "{err}");
    let err = e.docker_err(&["exec", "counter", "true"]);
    assert!(
        err.contains("is paused, unpause the container before exec"),
        "{err}"
    );

    assert!(actions(&e, "counter", &started).contains(&"pause".to_string()));

    // Still paused after the engine restarts (its event history is new).
    let restarted = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    e.kill();
    e.spawn();
    assert_eq!(e.inspect_container("counter")["State"]["Status"], "paused");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(log_lines(&e, "counter"), frozen);

    e.docker_ok(&["unpause", "counter"]);
    eventually("the counter to count again", || {
        log_lines(&e, "counter") > frozen + 3
    });
    assert_eq!(e.inspect_container("counter")["State"]["Status"], "running");
    let err = e.docker_err(&["unpause", "counter"]);
    assert!(err.contains("is not paused"), "{err}");
    assert!(actions(&e, "counter", &restarted).contains(&"unpause".to_string()));
    // A paused container stops: it is thawed so the signal lands.
    e.docker_ok(&["pause", "counter"]);
    let began = Instant::now();
    e.docker_ok(&["stop", "-t", "10", "counter"]);
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "{:?}",
        began.elapsed()
    );
    let state = &e.inspect_container("counter")["State"];
    assert_eq!(state["Status"], "exited");
    assert_eq!(state["Paused"], false);
    let err = e.docker_err(&["pause", "counter"]);
    assert!(err.contains("is not running"), "{err}");
}

#[test]
fn update_changes_the_cgroup_the_record_and_is_enforced() {
    let e = engine();
    e.run_detached("upd", &[], &["sleep", "1000"]);
    e.docker_ok(&[
        "update",
        "--memory",
        "64m",
        "--memory-swap",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "40",
        "--restart",
        "on-failure:3",
        "upd",
    ]);
    let mem = cgroup_dir(&e, "upd", "memory");
    let v1 = mem.join("memory.limit_in_bytes").exists();
    let limit = if v1 {
        read_trim(mem.join("memory.limit_in_bytes"))
    } else {
        read_trim(mem.join("memory.max"))
    };
    assert_eq!(limit, (64u64 << 20).to_string());
    let pids = cgroup_dir(&e, "upd", "pids");
    assert_eq!(read_trim(pids.join("pids.max")), "40");
    let cpu = cgroup_dir(&e, "upd", "cpu");
    if v1 {
        assert_eq!(read_trim(cpu.join("cpu.cfs_quota_us")), "50000");
    } else {
        assert_eq!(read_trim(cpu.join("cpu.max")), "50000 100000");
    }
    let hc = &e.inspect_container("upd")["HostConfig"];
    assert_eq!(hc["Memory"], 64 << 20);
    assert_eq!(hc["NanoCpus"], 500_000_000);
    assert_eq!(hc["PidsLimit"], 40);
    assert_eq!(hc["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(hc["RestartPolicy"]["MaximumRetryCount"], 3);

    // Enforced: 100 MB of anonymous memory is killed.
    let out = e.docker(&[
        "exec",
        "upd",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=100M",
        "count=1",
    ]);
    assert_eq!(out.status.code(), Some(137), "{out:?}");

    // A restart keeps the limits.
    e.docker_ok(&["restart", "-t", "1", "upd"]);
    let mem = cgroup_dir(&e, "upd", "memory");
    let file = if v1 {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    assert_eq!(read_trim(mem.join(file)), (64u64 << 20).to_string());
    let (_, s) = api_json(
        &e,
        "GET",
        "/v1.47/containers/upd/stats?stream=false&one-shot=true",
    );
    assert_eq!(
        s["memory_stats"]["limit"],
        64 << 20,
        "{s} {}",
        e.inspect_container("upd")["State"]
    );

    // What servin cannot apply is refused by name.
    let err = e.docker_err(&["update", "--blkio-weight", "300", "upd"]);
    assert!(err.contains("BlkioWeight"), "{err}");
    let r = e.api(
        "POST",
        "/v1.47/containers/upd/update",
        &[("Content-Type", "application/json")],
        br#"{"Memory": 134217728, "MemorySwap": 134217728}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text().trim(), r#"{"Warnings":[]}"#);
    let r = e.api("POST", "/v1.47/containers/nope/update", &[], b"{}");
    assert_eq!(r.status, 404);
}

#[test]
fn system_df_measures_images_containers_and_volumes() {
    let e = engine();
    e.docker_ok(&["volume", "create", "data"]);
    e.run_detached(
        "wr",
        &["-v", "data:/data"],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/data/f bs=1M count=3 && dd if=/dev/zero of=/rw bs=1M count=2 && touch /ready && exec sleep 1000",
        ],
    );
    eventually("the writes", || {
        e.docker(&["exec", "wr", "test", "-e", "/ready"])
            .status
            .success()
    });
    let (status, v) = api_json(&e, "GET", "/v1.47/system/df");
    assert_eq!(status, 200, "{v}");
    assert!(v["LayersSize"].as_i64().unwrap() > 0, "{v}");
    assert_eq!(v["BuildCache"], serde_json::json!([]));
    let img = &v["Images"][0];
    assert_eq!(img["Containers"], 1, "{v}");
    assert!(img["Size"].as_i64().unwrap() > 0);
    let c = &v["Containers"][0];
    let rw = c["SizeRw"].as_i64().unwrap();
    assert!(rw >= 2 << 20, "{c}");
    assert!(c["SizeRootFs"].as_i64().unwrap() > rw);
    let vol = v["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["Name"] == "data")
        .unwrap();
    assert_eq!(vol["UsageData"]["RefCount"], 1);
    assert!(
        vol["UsageData"]["Size"].as_i64().unwrap() >= 3 << 20,
        "{vol}"
    );
    let out = e.docker_ok(&["system", "df"]);
    assert!(
        out.contains("Images") && out.contains("Containers") && out.contains("Local Volumes"),
        "{out}"
    );
    let out = e.docker_ok(&["system", "df", "-v"]);
    assert!(
        out.contains("data") && out.contains(IMAGE.split(':').next().unwrap()),
        "{out}"
    );
}
