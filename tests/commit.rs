//! `servin commit`, `servin diff`, `servin export` and `servin image
//! import-rootfs` against a real engine started by servin itself.

#![allow(clippy::unwrap_used)]

mod support;

use servin_testkit::wait::eventually;
use support::sandbox::Env;

const IMAGE: &str = "test/cli:1";

#[test]
fn commit_diff_export_and_import_rootfs() {
    let s = Env::with_image(IMAGE);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "wk",
        IMAGE,
        "sh",
        "-c",
        "echo hi > /hello && busybox rm /bin/tty && echo > /ready && exec sleep 300",
    ]);
    eventually("wk ready", || {
        s.run(&["exec", "wk", "cat", "/ready"]).code == 0
    });

    let diff = s.ok(&["diff", "wk"]);
    assert_eq!(diff, "C /bin\nD /bin/tty\nA /hello\nA /ready\n");
    let json: serde_json::Value =
        serde_json::from_str(&s.ok(&["diff", "wk", "--format", "json"])).unwrap();
    assert_eq!(json[1], serde_json::json!({"Path": "/bin/tty", "Kind": 2}));

    let id = s.ok(&[
        "commit",
        "-m",
        "by the cli",
        "-c",
        "CMD cat /hello",
        "wk",
        "test/committed:cli",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(s.ok(&["run", "--rm", "test/committed:cli"]), "hi\n");
    let bad = s.run(&["commit", "-c", "RUN true", "wk"]);
    assert_ne!(bad.code, 0);
    bad.assert_stderr_has("run is not a valid change command");

    let tar = s.root().join("w.tar");
    s.ok(&["export", "wk", "-o", tar.to_str().unwrap()]);
    let bytes = std::fs::read(&tar).unwrap();
    let names: Vec<String> = tar::Archive::new(bytes.as_slice())
        .entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "hello"), "{names:?}");
    assert!(!names.iter().any(|n| n == "bin/tty"), "{names:?}");

    let id = s.ok(&[
        "image",
        "import-rootfs",
        "-c",
        r#"CMD ["cat", "/hello"]"#,
        tar.to_str().unwrap(),
        "test/imported:cli",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(s.ok(&["run", "--rm", "test/imported:cli"]), "hi\n");
    let missing = s.run(&["image", "import-rootfs", "/nonexistent.tar"]);
    assert_ne!(missing.code, 0);
    missing.assert_stderr_has("/nonexistent.tar");
}
