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
