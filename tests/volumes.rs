//! `servin volume ...` and `servin run -v` against a real engine started by
//! servin itself.

#![allow(clippy::unwrap_used)]

mod support;

use servin_testkit::cleanup::{OwnsRoot, mounts_below};
use servin_testkit::wait::eventually;
use support::sandbox::{Env, Sandbox};

const IMAGE: &str = "test/cli:1";

fn sandbox() -> Env {
    Env::with_image(IMAGE)
}

fn names(s: &Sandbox, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["volume", "ls", "-q"];
    args.extend_from_slice(extra);
    let mut v: Vec<String> = s.ok(&args).lines().map(String::from).collect();
    v.sort();
    v
}

#[test]
fn volume_create_ls_inspect_rm_prune() {
    let s = sandbox();
    assert_eq!(
        s.ok(&[
            "volume", "create", "--label", "app=web", "-l", "tier", "web"
        ]),
        "web\n"
    );
    assert_eq!(s.ok(&["volume", "create", "web"]), "web\n", "idempotent");
    let random = s.ok(&["volume", "create"]);
    assert_eq!(random.trim().len(), 64, "{random}");
    let table = s.ok(&["volume", "ls"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("DRIVER") && lines[0].ends_with("VOLUME NAME"));
    assert!(table.contains("local    web"), "{table}");
    assert_eq!(names(&s, &["--filter", "label=app=web"]), ["web"]);
    assert_eq!(names(&s, &["--filter", "label=tier"]), ["web"]);
    assert_eq!(names(&s, &["--filter", "label!=tier"]), [random.trim()]);
    assert_eq!(names(&s, &["--filter", "name=we"]), ["web"]);
    let json: serde_json::Value =
        serde_json::from_str(&s.ok(&["volume", "ls", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);

    let v: serde_json::Value = serde_json::from_str(&s.ok(&["volume", "inspect", "web"])).unwrap();
    assert_eq!(v[0]["Name"], "web");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Labels"]["app"], "web");
    assert_eq!(v[0]["Labels"]["tier"], "");
    assert_eq!(
        v[0]["Mountpoint"],
        s.root().join("volumes/web/_data").display().to_string()
    );

    // Bad input.
    let r = s.run(&["volume", "create", "no/slash"]);
    assert_eq!(r.code, 1);
    r.assert_stderr_has("invalid volume name");
    let r = s.run(&["volume", "inspect", "ghost"]);
    assert_eq!(r.code, 1);
    r.assert_stderr_has("no such volume: ghost");
    let r = s.run(&["volume", "rm", "ghost", "web"]);
    assert_eq!(r.code, 1, "one of two failed");
    r.assert_stderr_has("no such volume: ghost");
    assert_eq!(r.stdout, "web\n");
    s.ok(&["volume", "rm", "-f", "ghost"]);
    let r = s.run(&["volume", "ls", "--filter", "colour=red"]);
    assert_eq!(r.code, 1);
    r.assert_stderr_has("invalid filter");

    // Prune asks first; without a terminal it wants -f.
    let r = s.run(&["volume", "prune"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    r.assert_stderr_has("-f");
    // A volume made without a name is anonymous, as Docker makes it: a
    // plain prune takes it and leaves the named ones.
    s.ok(&["volume", "create", "named"]);
    let out = s.ok(&["volume", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert!(out.contains(random.trim()), "{out}");
    assert_eq!(names(&s, &[]), ["named"], "named volumes stay");
    let out = s.ok(&["volume", "prune", "-af"]);
    assert!(out.contains("named"), "{out}");
    assert!(names(&s, &[]).is_empty());
    s.finish_once_unmounted();
}

#[test]
fn run_with_named_anonymous_and_device_volumes() {
    let s = sandbox();
    s.ok(&[
        "run",
        "--name",
        "first",
        "-v",
        "data:/data",
        IMAGE,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let r = s.run(&["volume", "rm", "data"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("in use") && r.stderr.contains("first"),
        "{}",
        r.stderr
    );
    s.ok(&["rm", "first"]);
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data:ro",
        IMAGE,
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "kept\n", "the data outlived its container");
    let r = s.run(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,source=data,target=/d,readonly",
        IMAGE,
        "sh",
        "-c",
        "echo x > /d/g",
    ]);
    assert_ne!(r.code, 0);
    r.assert_stderr_has("Read-only");

    // `-v /path` and `--mount` without a source: anonymous volumes, gone
    // with `--rm`.
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        "/scratch",
        "--mount",
        "type=volume,target=/other",
        IMAGE,
        "sh",
        "-c",
        "echo a > /scratch/a && echo b > /other/b && cat /scratch/a /other/b",
    ]);
    assert_eq!(out, "a\nb\n");
    eventually("the anonymous volumes to go", || names(&s, &[]) == ["data"]);

    // A tmpfs volume: mounted on first use, unmounted when removed.
    s.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        "fast",
    ]);
    let out = s.ok(&[
        "run",
        "--rm",
        "-v",
        "fast:/fast",
        IMAGE,
        "sh",
        "-c",
        "echo quick > /fast/f && cat /fast/f",
    ]);
    assert_eq!(out, "quick\n");
    let data = s.root().join("volumes/fast/_data");
    assert!(
        mounts_below(&data).contains(&data.display().to_string()),
        "the tmpfs stays mounted while the volume exists"
    );
    let r = s.run(&["volume", "create", "--opt", "size=1m", "odd"]);
    assert_eq!(r.code, 1);
    r.assert_stderr_has("invalid option");
    eventually("auto-removal", || s.ok(&["ps", "-aq"]).trim().is_empty());
    s.ok(&["volume", "rm", "fast", "data"]);
    assert!(mounts_below(&data).is_empty());
    s.finish_once_unmounted();
}
