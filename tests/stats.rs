//! `servin stats`, `top`, `pause`, `unpause`, `update`, `rename` and `system df`
//! against a real engine started by servin itself.

#![allow(clippy::unwrap_used)]

mod support;

use servin_testkit::wait::eventually;
use support::sandbox::Env;

const IMAGE: &str = "test/cli:1";

fn started(s: &Env, name: &str, command: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name, IMAGE];
    args.extend_from_slice(command);
    s.ok(&args);
}

#[test]
fn stats_show_a_row_per_running_container() {
    let s = Env::with_image(IMAGE);
    let empty = s.ok(&["stats", "--no-stream"]);
    assert_eq!(
        empty.split_whitespace().collect::<Vec<_>>().join(" "),
        "CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM % NET I/O BLOCK I/O PIDS"
    );
    started(&s, "web", &["sleep", "1000"]);
    started(&s, "db", &["sleep", "1000"]);
    s.ok(&["create", "--name", "idle", IMAGE, "true"]);
    let table = s.ok(&["stats", "--no-stream"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(!table.contains("--"), "{table}");
    assert!(table.contains(" web ") && table.contains(" db "), "{table}");
    assert!(!table.contains("idle"), "{table}");
    let all = s.ok(&["stats", "--no-stream", "-a"]);
    assert!(all.contains("idle") && all.contains("0B / 0B"), "{all}");

    let json = s.ok(&["stats", "--no-stream", "--format", "json", "web"]);
    let row: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(row["Name"], "web");
    assert!(row["CPUPerc"].as_str().unwrap().ends_with('%'));
    let mem = row["MemUsage"].as_str().unwrap();
    assert!(mem.contains(" / ") && !mem.starts_with("0B"), "{row}");
    assert_ne!(row["PIDs"], "0", "{row}");

    let r = s.run(&["stats", "--no-stream", "nope"]);
    assert_eq!(r.code, 1, "{}", r.transcript());
    r.assert_stderr_has("nope");
}

#[test]
fn top_pause_unpause_and_update() {
    let s = Env::with_image(IMAGE);
    started(&s, "app", &["sleep", "1000"]);
    let top = s.ok(&["top", "app"]);
    assert!(
        top.starts_with("UID") && top.contains("sleep 1000"),
        "{top}"
    );
    let top = s.ok(&["top", "app", "-o", "pid,comm"]);
    assert!(top.starts_with("PID") && top.contains("sleep"), "{top}");

    assert_eq!(s.ok(&["pause", "app"]), "app\n");
    assert_eq!(s.inspect("app")["State"]["Status"], "paused");
    let ps = s.ok(&["ps"]);
    assert!(ps.contains("(Paused)"), "{ps}");
    let r = s.run(&["pause", "app"]);
    assert_eq!(r.code, 1);
    r.assert_stderr_has("already paused");
    assert_eq!(s.ok(&["unpause", "app"]), "app\n");
    assert_eq!(s.inspect("app")["State"]["Status"], "running");

    assert_eq!(
        s.ok(&[
            "update",
            "--memory",
            "64m",
            "--memory-swap",
            "64m",
            "--pids-limit",
            "30",
            "--restart",
            "always",
            "app"
        ]),
        "app\n"
    );
    let hc = &s.inspect("app")["HostConfig"];
    assert_eq!(hc["Memory"], 64 << 20);
    assert_eq!(hc["PidsLimit"], 30);
    assert_eq!(hc["RestartPolicy"]["Name"], "always");
    let row = s.ok(&["stats", "--no-stream", "--format", "json", "app"]);
    assert!(row.contains("/ 64MiB"), "{row}");

    let r = s.run(&["update", "app"]);
    assert_eq!(r.code, 2);
    r.assert_stderr_has("nothing to update");
    let r = s.run(&["update", "--cpus", "lots", "app"]);
    assert_eq!(r.code, 2);
    r.assert_stderr_has("--cpus");
    s.ok(&["stop", "-t", "1", "app"]);
    let r = s.run(&["top", "app"]);
    assert_eq!(r.code, 1);
    r.assert_stderr_has("is not running");
}

#[test]
fn system_df_sums_images_containers_and_volumes() {
    let s = Env::with_image(IMAGE);
    s.ok(&["volume", "create", "keep"]);
    started(
        &s,
        "writer",
        &[
            "sh",
            "-c",
            "busybox dd if=/dev/zero of=/big bs=1M count=2 && busybox touch /ready && exec sleep 1000",
        ],
    );
    eventually("the write", || {
        s.run(&["exec", "writer", "busybox", "test", "-e", "/ready"])
            .code
            == 0
    });
    let df = s.ok(&["system", "df"]);
    let lines: Vec<&str> = df.lines().collect();
    assert!(lines[0].starts_with("TYPE"), "{df}");
    assert!(
        lines[1].starts_with("Images") && lines[1].contains(" 1 "),
        "{df}"
    );
    assert!(
        lines[2].starts_with("Containers") && lines[2].contains("2.097MB"),
        "{df}"
    );
    assert!(lines[3].starts_with("Local Volumes"), "{df}");
    let v: serde_json::Value =
        serde_json::from_str(&s.ok(&["system", "df", "--format", "json"])).unwrap();
    assert!(v["LayersSize"].as_u64().unwrap() > 0);
    assert!(v["Containers"][0]["SizeRw"].as_u64().unwrap() >= 2 << 20);
    let details = s.ok(&["system", "df", "-v"]);
    assert!(
        details.contains("Images space usage:")
            && details.contains("writer")
            && details.contains("keep"),
        "{details}"
    );
    for cmd in ["stats", "top", "pause", "unpause", "update", "system"] {
        s.ok(&[cmd, "--help"]);
    }
}

#[test]
fn rename_works_in_any_state_and_refuses_a_taken_name() {
    let s = Env::with_image(IMAGE);
    s.ok(&["create", "--name", "first", IMAGE, "true"]);
    s.ok(&["rename", "first", "renamed"]);
    assert_eq!(s.inspect("renamed")["Name"], "/renamed");
    started(&s, "busy", &["sleep", "300"]);
    s.ok(&["rename", "busy", "busy2"]);
    assert_eq!(s.inspect("busy2")["State"]["Running"], true);
    let r = s.run(&["rename", "busy2", "renamed"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    r.assert_stderr_has("renamed");
    assert_eq!(s.inspect("busy2")["Name"], "/busy2", "nothing changed");
    s.ok(&["rm", "-f", "busy2", "renamed"]);
}

#[test]
fn system_prune_removes_what_nothing_uses() {
    let s = Env::with_image(IMAGE);
    s.ok(&["create", "--name", "stopped", IMAGE, "true"]);
    started(&s, "kept", &["sleep", "300"]);
    s.ok(&["network", "create", "unused-net"]);
    let anon = s.ok(&["volume", "create"]).trim().to_string();
    s.ok(&["volume", "create", "named-vol"]);
    // Without a terminal it wants -f, and removes nothing.
    let r = s.run(&["system", "prune"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    r.assert_stderr_has("-f");
    assert!(s.ok(&["ps", "-a"]).contains("stopped"));
    let out = s.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(out.contains("Deleted Containers"), "{out}");
    assert!(out.contains("unused-net"), "{out}");
    assert!(out.contains(&anon), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    let ps = s.ok(&["ps", "-a"]);
    assert!(!ps.contains("stopped") && ps.contains("kept"), "{ps}");
    assert!(!s.ok(&["network", "ls"]).contains("unused-net"));
    let vols = s.ok(&["volume", "ls", "-q"]);
    assert!(
        vols.contains("named-vol") && !vols.contains(&anon),
        "{vols}"
    );
    // The running container's image stays, even with -a.
    s.ok(&["system", "prune", "-af"]);
    assert!(s.ok(&["images"]).contains("test/cli"));
    s.ok(&["rm", "-f", "kept"]);
    s.ok(&["volume", "rm", "named-vol"]);
}
