//! The project file end to end: normalisation, TOML/KDL equivalence, the
//! examples, the schema, `init`, and robustness against arbitrary input.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use servin::project::{LoadOptions, load_str};
use support::Project;

const RICH_TOML: &str = r#"
[project]
name = "shop"

[images.web]
build = { context = "./web", args = { NODE = "20" }, target = "dev" }

[images.db]
ref = "postgres:16"
platform = "linux/amd64"

[volumes.data]
labels = { tier = "db" }

[networks.back]
subnet = "10.90.0.0/24"
internal = true

[secrets.token]
file = "./token.txt"

[containers.web]
image = "web"
command = "npm run dev -- --port 3000"
env = { NODE_ENV = "development", PORT = 3000, DEBUG = true, GREETING = "${GREETING:-hello}" }
ports = ["8080:3000", "127.0.0.1:9000-9001:9000-9001/udp"]
volumes = ["./web:/app:ro", { type = "tmpfs", target = "/tmp/cache", size = "64m", mode = 1777 }]
tmpfs = ["/run:size=16m"]
networks = { default = {}, back = { aliases = ["frontend"] } }
depends_on = { db = "healthy" }
healthcheck = { cmd = "wget -qO- localhost:3000", interval = "5s", retries = 5 }
restart = "on-failure:3"
resources = { memory = "512m", cpus = "1.5", pids = 200 }
stop_signal = "INT"
stop_timeout = "1m30s"
secrets = ["token"]
cap_add = ["net_admin"]
extra_hosts = ["api.local:10.0.0.5"]
sysctls = ["net.core.somaxconn=1024"]
ulimits = { nofile = { soft = 1024, hard = 2048 }, nproc = 512 }
shm_size = "128m"
expose = [9229, "5000-5001/udp"]
workspace = { source = "./web/src", target = "/app/src", mode = "sync", ignore = ["node_modules"], on_change = "restart" }

[containers.db]
image = "db"
env = ["POSTGRES_PASSWORD=dev", "POSTGRES_DB"]
volumes = ["data:/var/lib/postgresql/data"]
networks = ["back"]
healthcheck = { cmd = ["pg_isready", "-U", "postgres"], interval = "2s" }
"#;

const RICH_KDL: &str = r#"
project name="shop"
images {
    web {
        build context="./web" target="dev" {
            args NODE="20"
        }
    }
    db ref="postgres:16" platform="linux/amd64"
}
volumes {
    data { labels tier="db"; }
}
networks {
    back subnet="10.90.0.0/24" internal=#true
}
secrets {
    token file="./token.txt"
}
containers {
    web {
        image "web"
        command "npm run dev -- --port 3000"
        env NODE_ENV="development" PORT=3000 DEBUG=#true GREETING="${GREETING:-hello}"
        ports "8080:3000" "127.0.0.1:9000-9001:9000-9001/udp"
        volumes {
            - "./web:/app:ro"
            - type="tmpfs" target="/tmp/cache" size="64m" mode=1777
        }
        tmpfs "/run:size=16m"
        networks {
            default
            back { aliases "frontend"; }
        }
        depends_on db="healthy"
        healthcheck cmd="wget -qO- localhost:3000" interval="5s" retries=5
        restart "on-failure:3"
        resources memory="512m" cpus="1.5" pids=200
        stop_signal "INT"
        stop_timeout "1m30s"
        secrets "token"
        cap_add "net_admin"
        extra_hosts "api.local:10.0.0.5"
        sysctls "net.core.somaxconn=1024"
        ulimits {
            nofile soft=1024 hard=2048
            nproc 512
        }
        shm_size "128m"
        expose 9229 "5000-5001/udp"
        workspace source="./web/src" target="/app/src" mode="sync" on_change="restart" {
            ignore "node_modules"
        }
    }
    db {
        image "db"
        env "POSTGRES_PASSWORD=dev" "POSTGRES_DB"
        volumes "data:/var/lib/postgresql/data"
        networks "back"
        healthcheck interval="2s" {
            cmd "pg_isready" "-U" "postgres"
        }
    }
}
"#;

fn rich_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("web/Dockerfile", "FROM node:20\n"),
        ("web/src/", ""),
        ("token.txt", "s3cret\n"),
    ]
}

fn options(env: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        project_name: None,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn canonical_json(path: &Path, text: &str, env: &[(&str, &str)]) -> String {
    match load_str(path, text, &options(env)) {
        Ok(loaded) => serde_json::to_string_pretty(&loaded.project).unwrap(),
        Err(f) => panic!("{} did not load:\n{f}", path.display()),
    }
}

#[test]
fn the_canonical_form_fills_every_default() {
    let p = Project::new(&rich_files());
    let json = canonical_json(
        &p.root().join("servin.toml"),
        RICH_TOML,
        &[("POSTGRES_DB", "shop")],
    );
    insta::assert_snapshot!("canonical_json", p.filter(&json));
}

#[test]
fn toml_and_kdl_normalise_to_the_same_bytes() {
    let p = Project::new(&rich_files());
    let env = [("POSTGRES_DB", "shop")];
    let from_toml = canonical_json(&p.root().join("servin.toml"), RICH_TOML, &env);
    let from_kdl = canonical_json(&p.root().join("servin.kdl"), RICH_KDL, &env);
    assert_eq!(from_toml, from_kdl);
}

#[test]
fn config_output_is_a_valid_project_file_with_the_same_meaning() {
    let mut files = rich_files();
    files.push(("servin.toml", RICH_TOML));
    let p = Project::new(&files);
    let first = p.run_env(&["config"], &[("POSTGRES_DB", "shop")]);
    assert_eq!(first.code, 0, "{}", first.transcript());
    let again = canonical_json(&p.root().join("servin.toml"), &first.stdout, &[]);
    let original = canonical_json(
        &p.root().join("servin.toml"),
        RICH_TOML,
        &[("POSTGRES_DB", "shop")],
    );
    assert_eq!(again, original);
    let json = p.run_env(&["config", "--format", "json"], &[("POSTGRES_DB", "shop")]);
    assert_eq!(json.code, 0);
    assert_eq!(json.stdout.trim_end(), original);
}

#[test]
fn variables_come_from_the_environment_over_dotenv() {
    let p = Project::new(&[
        (".env", "TAG=from-dotenv\nPORT=8080\n"),
        (
            "servin.toml",
            "[containers.web]\nimage = \"nginx:${TAG}\"\nports = [\"${PORT}:80\"]\nenv = { LITERAL = \"$$HOME\" }\n",
        ),
    ]);
    let run = p.run_env(&["config", "--format", "json"], &[("TAG", "from-env")]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let web = &v["containers"]["web"];
    assert_eq!(web["image"], "docker.io/library/nginx:from-env");
    assert_eq!(web["ports"][0]["published"], 8080);
    assert_eq!(web["env"]["LITERAL"], "$HOME");
}

#[test]
fn the_project_file_is_found_in_a_parent_folder() {
    let p = Project::new(&[
        ("servin.toml", "[containers.web]\nimage = \"nginx:1.27\"\n"),
        ("deep/er/", ""),
    ]);
    let run = support::run_in(
        &p.root().join("deep/er"),
        &["config", "--format", "json"],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.stdout.contains("\"name\": \"demo\""));
    let named = support::run_in(
        &p.root().join("deep/er"),
        &["-p", "other", "config", "--format", "json"],
        &[],
    );
    assert!(named.stdout.contains("\"name\": \"other\""));
}

#[test]
fn init_writes_a_valid_starter_with_the_schema() {
    let p = Project::new(&[]);
    let run = p.run(&["init"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let text = std::fs::read_to_string(p.root().join("servin.toml")).unwrap();
    assert!(text.starts_with("#:schema ./.servin/servin.schema.json\n"));
    let schema = std::fs::read_to_string(p.root().join(".servin/servin.schema.json")).unwrap();
    assert_eq!(schema, servin::project::model::schema_text());
    let valid = p.run(&["validate"]);
    assert_eq!(valid.code, 0, "{}", valid.transcript());
    let again = p.run(&["init"]);
    assert_eq!(
        again.code,
        2,
        "init must not overwrite: {}",
        again.transcript()
    );
}

fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found
}

#[test]
fn every_example_validates() {
    let found = examples();
    assert!(
        found.len() >= 4,
        "expected at least four examples, found {found:?}"
    );
    let mut kdl = 0;
    for dir in found {
        if dir.join("servin.kdl").exists() {
            kdl += 1;
        }
        let run = support::run_in(&dir, &["validate"], &[]);
        assert_eq!(run.code, 0, "{}:\n{}", dir.display(), run.transcript());
    }
    assert!(kdl >= 1, "one example is written in KDL");
}

#[test]
fn the_committed_schema_matches_the_model() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/servin.schema.json");
    let generated = servin::project::model::schema_text();
    if std::env::var_os("SERVIN_UPDATE_SCHEMA").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/servin.schema.json is out of date: run `SERVIN_UPDATE_SCHEMA=1 cargo test --test project the_committed_schema`"
    );
}

#[test]
fn every_schema_key_has_a_description() {
    fn walk(v: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
        if let Some(props) = v.get("properties").and_then(|p| p.as_object()) {
            for (k, s) in props {
                if s.get("description")
                    .and_then(|d| d.as_str())
                    .is_none_or(str::is_empty)
                {
                    missing.push(format!("{path}.{k}"));
                }
            }
        }
        if let Some(obj) = v.as_object() {
            for (k, child) in obj {
                walk(child, &format!("{path}/{k}"), missing);
            }
        }
        if let Some(items) = v.as_array() {
            for child in items {
                walk(child, path, missing);
            }
        }
    }
    let mut missing = Vec::new();
    walk(&servin::project::model::json_schema(), "", &mut missing);
    assert!(
        missing.is_empty(),
        "keys without a description: {missing:?}"
    );
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    fn load_both(text: &str) {
        let dir = std::env::temp_dir();
        let _ = load_str(&dir.join("fuzz/servin.toml"), text, &LoadOptions::default());
        let _ = load_str(&dir.join("fuzz/servin.kdl"), text, &LoadOptions::default());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            load_both(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn mutated_project_files_never_panic(
            cut in 0usize..2000,
            insert in "[\\[\\]{}=\"'$:,./a-z0-9 \\n-]{0,12}",
        ) {
            for base in [RICH_TOML, RICH_KDL] {
                let at = cut.min(base.len());
                let at = (0..=at).rev().find(|i| base.is_char_boundary(*i)).unwrap_or(0);
                let text = format!("{}{}{}", &base[..at], insert, &base[at..]);
                load_both(&text);
            }
        }

        #[test]
        fn arbitrary_values_in_every_container_key_never_panic(
            key in prop::sample::select(vec![
                "ports", "volumes", "env", "command", "depends_on", "healthcheck",
                "resources", "restart", "stop_timeout", "shm_size", "networks",
                "extra_hosts", "ulimits", "tmpfs", "expose", "user", "workspace",
                "cap_add", "stop_signal", "image",
            ]),
            value in prop_oneof![
                "\"[^\"\\\\]{0,24}\"",
                "-?[0-9]{1,20}",
                "\\[\"[^\"\\\\]{0,16}\"\\]",
                "\\{ [a-z]{1,8} = \"[^\"\\\\]{0,12}\" \\}",
                Just("true".to_string()),
            ],
        ) {
            let text = format!("[containers.web]\nimage = \"nginx\"\n{key} = {value}\n");
            load_both(&text);
        }
    }
}
