//! The command line itself: help, version, completions.
#![allow(clippy::unwrap_used)]

mod support;

use support::Project;

#[test]
fn help_lists_every_command() {
    let p = Project::new(&[]);
    let run = p.run(&["--help"]);
    assert_eq!(run.code, 0);
    insta::assert_snapshot!("help", run.stdout);
}

#[test]
fn version_names_the_release() {
    let p = Project::new(&[]);
    let run = p.run(&["version"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout
            .starts_with(&format!("servin {}", env!("CARGO_PKG_VERSION")))
    );
    let json = p.run(&["version", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn completions_for_each_shell() {
    let p = Project::new(&[]);
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = p.run(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(
            run.stdout.contains("validate"),
            "{shell} completions name the commands"
        );
    }
    assert_eq!(p.run(&["completions", "tcsh"]).code, 2);
}

#[test]
fn commands_refuse_formats_they_do_not_print() {
    let p = Project::new(&[]);
    for args in [
        &["--format", "json", "init"][..],
        &["--format", "json", "completions", "bash"][..],
        &["--format", "toml", "import", "compose.yaml"][..],
        &["--format", "toml", "validate"][..],
    ] {
        let run = p.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.transcript());
        run.assert_stderr_has("does not print");
    }
    assert!(
        !p.root().join("servin.toml").exists(),
        "a refused init writes nothing"
    );
}

#[test]
fn import_writes_where_asked_and_validates() {
    let p = Project::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: nginx:1.27\n    ports: [\"8080:80\"]\n    logging:\n      driver: json-file\n",
    )]);
    let run = p.run(&["-f", "converted.toml", "import"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    run.assert_stderr_has("services.web.logging");
    let text = std::fs::read_to_string(p.root().join("converted.toml")).unwrap();
    assert!(text.contains("[containers.web]"));
    let again = p.run(&["-f", "converted.toml", "import"]);
    assert_eq!(
        again.code,
        2,
        "import must not overwrite: {}",
        again.transcript()
    );
    let stdout = p.run(&["import", "-o", "-"]);
    assert_eq!(stdout.code, 0);
    assert_eq!(stdout.stdout, text);
    assert!(!p.root().join("servin.toml").exists());
}

#[test]
fn doctor_names_each_missing_piece_and_its_fix() {
    let p = Project::new(&[]);
    let run = p.run_env(
        &["doctor", "--format", "json"],
        &[
            ("PATH", "/nonexistent"),
            ("SERVIN_ENGINE", ""),
            ("SERVIN_INIT", "/no/such/init"),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let checks: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let get = |name: &str| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(get("runtime")["outcome"], "fail");
    assert!(
        get("runtime")["fix"]
            .as_str()
            .unwrap()
            .contains("apt-get install runc")
    );
    assert_eq!(get("init")["outcome"], "fail");
    assert!(get("init")["fix"].as_str().unwrap().contains("tini"));
    assert_eq!(get("overlayfs")["outcome"], "ok");

    // In VM mode the host's overlayfs and cgroups are not the engine's.
    let run = p.run_env(
        &["doctor", "--format", "json"],
        &[("SERVIN_MODE", "vm"), ("SERVIN_INIT", "/no/such/init")],
    );
    let checks: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    for name in ["overlayfs", "cgroups"] {
        let c = checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap();
        assert_eq!(c["outcome"], "ok", "{c}");
        assert!(c["detail"].as_str().unwrap().contains("VM mode"), "{c}");
    }

    let runc = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("runc"))
        .find(|p| p.is_file())
        .expect("runc is installed");
    let run = p.run_env(
        &["doctor"],
        &[
            ("SERVIN_RUNTIME", runc.to_str().unwrap()),
            ("SERVIN_INIT", "/no/such/init"),
        ],
    );
    assert!(run.stdout.contains("runc version"), "{}", run.stdout);
    assert!(run.stdout.contains("FAIL  init"), "{}", run.stdout);
    assert!(
        run.stdout.contains("fix: install it: apt-get install tini"),
        "{}",
        run.stdout
    );
}

#[test]
fn project_flags_before_or_after_the_command() {
    let p = Project::new(&[
        ("a.toml", "[containers.alpha]\nimage = \"nginx:1.27\"\n"),
        ("b.toml", "[containers.beta]\nimage = \"nginx:1.27\"\n"),
    ]);
    let before = p.run(&["-f", "a.toml", "-p", "first", "config", "--format", "json"]);
    assert_eq!(before.code, 0, "{}", before.transcript());
    assert!(before.stdout.contains("\"alpha\""), "{}", before.stdout);
    assert!(before.stdout.contains("\"name\": \"first\""));
    let after = p.run(&[
        "-f", "a.toml", "-p", "first", "config", "-f", "b.toml", "-p", "second", "--format", "json",
    ]);
    assert_eq!(after.code, 0, "{}", after.transcript());
    assert!(
        after.stdout.contains("\"beta\"") && !after.stdout.contains("\"alpha\""),
        "the flags after the command win: {}",
        after.stdout
    );
    assert!(after.stdout.contains("\"name\": \"second\""));
    let valid = p.run(&["validate", "--file", "b.toml", "--verbose"]);
    assert_eq!(valid.code, 0, "{}", valid.transcript());
    assert!(valid.stderr.contains("loading") && valid.stderr.contains("b.toml"));
    let short_v = p.run(&["-v", "validate"]);
    assert_eq!(
        short_v.code,
        2,
        "-v is no global flag: {}",
        short_v.transcript()
    );
    let bad_name = p.run(&["config", "-f", "a.toml", "-p", "Not_A_Label"]);
    assert_eq!(bad_name.code, 2, "{}", bad_name.transcript());
}
