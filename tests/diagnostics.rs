//! Snapshot tests of what users read when a project file is wrong: the
//! rendered miette diagnostics, the JSON for editors, and the exit codes.
#![allow(clippy::unwrap_used)]

mod support;

use support::Project;

/// Validates a one-file project and snapshots the transcript.
fn check(name: &str, toml: &str) {
    let p = Project::new(&[("servin.toml", toml)]);
    let run = p.run(&["validate"]);
    assert_eq!(
        run.code,
        1,
        "{name} should be invalid:\n{}",
        run.transcript()
    );
    insta::assert_snapshot!(name, p.filter(&run.transcript()));
}

#[test]
fn unknown_key_suggests_the_right_one() {
    check(
        "unknown_key",
        "[containers.web]\nimage = \"nginx:1.27\"\nportz = [\"8080:80\"]\n",
    );
}

#[test]
fn compose_key_names_get_a_hint() {
    check(
        "compose_key",
        "[containers.web]\nimage = \"nginx:1.27\"\nenvironment = { A = \"1\" }\n",
    );
}

#[test]
fn wrong_type() {
    check(
        "wrong_type",
        "[containers.web]\nimage = \"nginx:1.27\"\nports = \"8080:80\"\ntty = \"yes\"\n",
    );
}

#[test]
fn undefined_references() {
    check(
        "undefined_references",
        r#"[images.app]
ref = "registry.local/app:1"

[volumes.data]

[networks.front]

[containers.web]
image = "ap"
volumes = ["dta:/data"]
networks = ["frnt"]
depends_on = ["cache"]
"#,
    );
}

#[test]
fn dependency_cycle_names_the_whole_cycle() {
    check(
        "dependency_cycle",
        r#"[containers.web]
image = "nginx:1.27"
depends_on = ["api"]

[containers.api]
image = "busybox:1.36"
depends_on = ["db"]

[containers.db]
image = "postgres:16"
depends_on = ["web"]
"#,
    );
}

#[test]
fn two_containers_on_one_host_port() {
    check(
        "port_conflict",
        r#"[containers.web]
image = "nginx:1.27"
ports = ["8080:80"]

[containers.admin]
image = "nginx:1.27"
ports = ["127.0.0.1:8080:8080"]
"#,
    );
}

#[test]
fn invalid_port_volume_duration_size() {
    check(
        "invalid_values",
        r#"[volumes.data]

[containers.web]
image = "nginx:1.27"
ports = ["80:70000", "8000-8002:9000-9001"]
volumes = ["data:relative/path"]
stop_timeout = "10 seconds"
shm_size = "64x"
resources = { memory = "lots" }
healthcheck = { cmd = "true", interval = "5" }
"#,
    );
}

#[test]
fn names_must_be_dns_safe() {
    check(
        "invalid_name",
        "[project]\nname = \"My_Project\"\n\n[containers.Web_1]\nimage = \"nginx:1.27\"\n",
    );
}

#[test]
fn missing_paths_and_env_files() {
    check(
        "missing_paths",
        r#"[containers.web]
image = "nginx:1.27"
volumes = [{ type = "bind", source = "./site", target = "/usr/share/nginx/html" }]
env_file = ".env.web"
workspace = { source = "./src", target = "/app" }
"#,
    );
}

#[test]
fn unset_variable_points_inside_the_string() {
    check(
        "undefined_variable",
        "[containers.db]\nimage = \"postgres:16\"\nenv = { PASSWORD = \"pw-${DB_PASSWORD}\", USER = \"${DB_USER:?set the database user}\" }\n",
    );
}

#[test]
fn toml_syntax_error() {
    check("toml_syntax", "[containers.web\nimage = \"nginx:1.27\"\n");
}

#[test]
fn healthy_dependency_needs_a_healthcheck() {
    check(
        "healthy_without_healthcheck",
        r#"[containers.web]
image = "nginx:1.27"
depends_on = { db = "healthy" }

[containers.db]
image = "postgres:16"
"#,
    );
}

#[test]
fn conflicting_and_missing_keys() {
    check(
        "conflicting_keys",
        r#"[images.app]
ref = "app:1"
build = "."

[secrets.token]

[containers.web]
command = "echo hi"
"#,
    );
}

#[test]
fn kdl_problems_point_into_the_kdl_file() {
    let p = Project::new(&[(
        "servin.kdl",
        "containers {\n    web {\n        image \"nginx:1.27\"\n        portz \"8080:80\"\n    }\n}\n",
    )]);
    let run = p.run(&["validate"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("kdl_unknown_key", p.filter(&run.transcript()));
}

#[test]
fn every_problem_is_reported_as_json_for_editors() {
    let p = Project::new(&[(
        "servin.toml",
        "[containers.web]\nimage = \"nginx:1.27\"\nportz = [\"8080:80\"]\nrestart = \"sometimes\"\n",
    )]);
    let run = p.run(&["validate", "--format", "json"]);
    assert_eq!(run.code, 1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0]["code"], "servin::unknown_key");
    assert_eq!(problems[0]["line"], 3);
    assert_eq!(problems[0]["column"], 1);
    assert_eq!(problems[1]["code"], "servin::invalid_value");
    assert_eq!(problems[1]["line"], 4);
    assert_eq!(problems[1]["column"], 11);
    insta::assert_snapshot!("json_output", run.stdout);
}

#[test]
fn a_valid_project_exits_zero() {
    let p = Project::new(&[("servin.toml", "[containers.web]\nimage = \"nginx:1.27\"\n")]);
    let run = p.run(&["validate"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    insta::assert_snapshot!("valid", p.filter(&run.transcript()));
    let json = p.run(&["validate", "--format", "json"]);
    assert_eq!(json.code, 0);
    assert!(json.stdout.contains("\"valid\": true"));
}

#[test]
fn usage_errors_exit_two() {
    let p = Project::new(&[("servin.toml", "[containers.web]\nimage = \"nginx:1.27\"\n")]);
    assert_eq!(p.run(&["validate", "--bogus"]).code, 2);
    assert_eq!(p.run(&["config", "--format", "text"]).code, 2);
    assert_eq!(p.run(&["nonsense"]).code, 2);
}

#[test]
fn no_project_file_is_a_clear_error() {
    let p = Project::new(&[]);
    let run = p.run(&["validate"]);
    assert_eq!(run.code, 1);
    run.assert_stderr_has("no servin.toml or servin.kdl");
}

#[test]
fn a_value_with_an_unset_variable_is_reported_once() {
    let p = Project::new(&[(
        "servin.toml",
        "[containers.web]\nimage = \"nginx:${NGINX_TAG}\"\n\n[images.x]\nref = 3\n",
    )]);
    let run = p.run(&["validate", "--format", "json"]);
    assert_eq!(run.code, 1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let codes: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["code"].as_str())
        .collect();
    assert_eq!(codes, ["servin::undefined_variable", "servin::wrong_type"]);
}
