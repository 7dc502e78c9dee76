//! `servin import`: Compose files of the shapes real projects use, converted
//! to `servin.toml` (snapshots of the TOML and the warnings), the converted
//! files validated by the project loader, errors, and robustness.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use servin::import::{COMPOSE_FILE_NAMES, ImportError, ImportWarning, Imported, import_compose};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose")
}

/// Every fixture, by name (without `.yaml`), sorted.
fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn import_fixture(name: &str) -> Imported {
    let text = std::fs::read_to_string(fixtures().join(format!("{name}.yaml"))).unwrap();
    match import_compose(&format!("{name}.yaml"), &text) {
        Ok(i) => i,
        Err(e) => panic!("{name}.yaml does not import: {e}"),
    }
}

/// The TOML, then the warnings, as one text for a snapshot.
fn render(imported: &Imported) -> String {
    let mut out = imported.toml.clone();
    out.push_str("\n# ---- warnings\n");
    if imported.warnings.is_empty() {
        out.push_str("(none)\n");
    }
    for w in &imported.warnings {
        out.push_str(&format!("[{}] {w}\n", w.service.as_deref().unwrap_or("-")));
    }
    out
}

macro_rules! snapshot {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            insta::assert_snapshot!(render(&import_fixture(stringify!($name))));
        }
    )*};
}

snapshot!(
    web_postgres_redis,
    nginx_proxy,
    build_contexts,
    healthcheck_depends,
    profiles,
    secrets,
    develop_watch,
    long_syntax,
    deploy_resources,
    container_names,
    anchors_merge,
    unsupported,
    networks,
    odd_values,
);

#[test]
fn every_fixture_has_a_snapshot_test() {
    let tested = [
        "anchors_merge",
        "build_contexts",
        "container_names",
        "deploy_resources",
        "develop_watch",
        "healthcheck_depends",
        "long_syntax",
        "networks",
        "nginx_proxy",
        "odd_values",
        "profiles",
        "secrets",
        "unsupported",
        "web_postgres_redis",
    ];
    assert_eq!(fixture_names(), tested);
}

#[test]
fn output_starts_with_the_header_and_is_deterministic() {
    for name in fixture_names() {
        let a = import_fixture(&name);
        let b = import_fixture(&name);
        assert_eq!(a, b, "{name}");
        let header = format!("# Imported from {name}.yaml by servin import.\n\n");
        assert!(a.toml.starts_with(&header), "{name}: {}", a.toml);
        assert!(!a.toml.contains("\n\n\n"), "{name}: {}", a.toml);
    }
}

#[test]
fn output_is_valid_toml() {
    for name in fixture_names() {
        let imported = import_fixture(&name);
        if let Err(e) = imported.toml.parse::<toml_edit::DocumentMut>() {
            panic!("{name}: {e}\n{}", imported.toml);
        }
    }
}

#[test]
fn warnings_name_the_key_and_the_service() {
    let imported = import_fixture("unsupported");
    let logging = imported
        .warnings
        .iter()
        .find(|w| w.key == "services.app.logging")
        .unwrap();
    assert_eq!(logging.service.as_deref(), Some("app"));
    assert_eq!(
        logging.to_string(),
        "services.app.logging: not supported by servin; dropped"
    );
    let version = imported
        .warnings
        .iter()
        .find(|w| w.key == "version")
        .unwrap();
    assert_eq!(version.service, None);
    let w = ImportWarning {
        service: None,
        key: "services.web.logging".into(),
        message: "not supported by servin; dropped".into(),
    };
    assert_eq!(
        w.to_string(),
        "services.web.logging: not supported by servin; dropped"
    );
}

#[test]
fn compose_file_names() {
    assert_eq!(
        COMPOSE_FILE_NAMES,
        [
            "compose.yaml",
            "compose.yml",
            "docker-compose.yml",
            "docker-compose.yaml"
        ]
    );
}

#[test]
fn yaml_syntax_errors_have_a_location() {
    let err = import_compose("compose.yaml", "services:\n  web:\n    image: [nginx\n").unwrap_err();
    match &err {
        ImportError::Syntax { line, column, .. } => {
            assert!(line.is_some() && column.is_some(), "{err:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().starts_with("compose.yaml: invalid YAML: "),
        "{err}"
    );
}

type Expect = fn(&ImportError) -> bool;

#[test]
fn files_that_are_not_compose_files() {
    let cases: [(&str, Expect); 7] = [
        ("", |e| matches!(e, ImportError::Empty { .. })),
        ("# only a comment\n", |e| {
            matches!(e, ImportError::Empty { .. })
        }),
        ("- a\n- b\n", |e| {
            matches!(e, ImportError::NotAMapping { .. })
        }),
        ("just text", |e| {
            matches!(e, ImportError::NotAMapping { .. })
        }),
        ("version: '3'\n", |e| {
            matches!(e, ImportError::NoServices { .. })
        }),
        ("services: {}\n", |e| {
            matches!(e, ImportError::NoServices { .. })
        }),
        (
            "services: [web]\n",
            |e| matches!(e, ImportError::NotAMappingAt { key, .. } if key == "services"),
        ),
    ];
    for (text, expected) in cases {
        let err = import_compose("compose.yaml", text).unwrap_err();
        assert!(expected(&err), "{text:?}: {err:?}");
        assert!(err.to_string().starts_with("compose.yaml: "), "{err}");
    }
    let err = import_compose("c.yml", "services:\n  web: nginx\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "c.yml: `services.web` is a string; Compose wants a mapping here"
    );
    let err = import_compose(
        "c.yml",
        "services:\n  web:\n    image: a\nvolumes: [data]\n",
    )
    .unwrap_err();
    assert!(
        matches!(&err, ImportError::NotAMappingAt { key, .. } if key == "volumes"),
        "{err:?}"
    );
}

#[test]
fn a_service_with_nothing_is_kept_and_reported() {
    let imported = import_compose("compose.yaml", "services:\n  web:\n").unwrap();
    assert!(
        imported.toml.contains("[containers.web]"),
        "{}",
        imported.toml
    );
    assert_eq!(imported.warnings.len(), 1, "{:?}", imported.warnings);
    assert_eq!(imported.warnings[0].key, "services.web");
}

#[test]
fn extension_fields_are_ignored_silently() {
    let text = "x-top: 1\nservices:\n  web:\n    image: nginx:1\n    x-meta: {a: 1}\n    healthcheck:\n      test: [CMD, true]\n      x-note: hi\nx-other: [1]\n";
    let imported = import_compose("compose.yaml", text).unwrap();
    assert!(imported.warnings.is_empty(), "{:?}", imported.warnings);
    assert!(
        imported
            .toml
            .contains("healthcheck = { cmd = [\"CMD\", \"true\"] }"),
        "{}",
        imported.toml
    );
}

#[test]
fn labels_and_environment_keep_keys_that_start_with_x() {
    let text = "services:\n  web:\n    image: nginx:1\n    labels:\n      x-team: a\n    environment:\n      x-forwarded: 'yes'\n";
    let imported = import_compose("compose.yaml", text).unwrap();
    assert!(
        imported.toml.contains("labels = { x-team = \"a\" }"),
        "{}",
        imported.toml
    );
    assert!(
        imported.toml.contains("env = { x-forwarded = \"yes\" }"),
        "{}",
        imported.toml
    );
}

/// Every value of every fixture replaced by values of every other shape:
/// the import may warn or fail, never panic, and stays deterministic.
#[test]
fn no_panic_on_values_of_the_wrong_shape() {
    use serde_yaml_ng::Value as Y;
    let shapes: Vec<Y> = [
        "~",
        "0",
        "-1",
        "1.5",
        "true",
        "''",
        "'x:y:z'",
        "[]",
        "{}",
        "[1, null, [a], {a: b}]",
        "{a: null, b: [1], 'c': {d: e}, 1: 2}",
    ]
    .iter()
    .map(|s| serde_yaml_ng::from_str(s).unwrap())
    .collect();

    fn paths(v: &Y, here: &mut Vec<Y>, out: &mut Vec<Vec<Y>>) {
        out.push(here.clone());
        match v {
            Y::Mapping(m) => {
                for (k, v) in m {
                    here.push(k.clone());
                    paths(v, here, out);
                    here.pop();
                }
            }
            Y::Sequence(items) => {
                for (i, v) in items.iter().enumerate() {
                    here.push(Y::from(i as u64));
                    paths(v, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    fn replace(v: &mut Y, path: &[Y], with: &Y) {
        let Some((first, rest)) = path.split_first() else {
            *v = with.clone();
            return;
        };
        match (v, first) {
            (Y::Mapping(m), k) => {
                if let Some(child) = m.get_mut(k) {
                    replace(child, rest, with);
                }
            }
            (Y::Sequence(items), Y::Number(n)) => {
                if let Some(child) = items.get_mut(n.as_u64().unwrap() as usize) {
                    replace(child, rest, with);
                }
            }
            _ => {}
        }
    }

    let mut runs = 0;
    for name in fixture_names() {
        let text = std::fs::read_to_string(fixtures().join(format!("{name}.yaml"))).unwrap();
        let mut root: Y = serde_yaml_ng::from_str(&text).unwrap();
        root.apply_merge().unwrap();
        let mut all = Vec::new();
        paths(&root, &mut Vec::new(), &mut all);
        for path in &all {
            for shape in &shapes {
                let mut changed = root.clone();
                replace(&mut changed, path, shape);
                let text = serde_yaml_ng::to_string(&changed).unwrap();
                let first = import_compose("compose.yaml", &text);
                let second = import_compose("compose.yaml", &text);
                match (&first, &second) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a, b);
                        assert!(
                            a.toml.parse::<toml_edit::DocumentMut>().is_ok(),
                            "{path:?}\n{}",
                            a.toml
                        );
                    }
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    _ => panic!("not deterministic: {path:?}"),
                }
                runs += 1;
            }
        }
    }
    assert!(runs > 1000, "{runs}");
}

#[test]
fn no_panic_on_broken_text() {
    for name in fixture_names() {
        let text = std::fs::read_to_string(fixtures().join(format!("{name}.yaml"))).unwrap();
        let bytes = text.as_bytes();
        for cut in (0..bytes.len()).step_by(13) {
            let head = String::from_utf8_lossy(&bytes[..cut]);
            let _ = import_compose("compose.yaml", &head);
        }
    }
    let odd = [
        "services:\n  web: &a\n    image: x\n    <<: *a\n",
        "services:\n  web:\n    <<: 5\n",
        "services:\n  web:\n    <<: [[1]]\n",
        "a: &a [*a]\n",
        "services:\n  ? [1, 2]\n  : {image: x}\n",
        "services:\n  web: !custom\n    image: !!str x\n",
        "services:\n  web:\n    image: x\n---\nservices: {}\n",
        "\u{feff}services:\n  web:\n    image: x\n",
        "services:\n  web:\n    image: x\n    ports: [\"\u{1F600}:80\"]\n    container_name: \"\u{1F600}\"\n",
    ];
    for text in odd {
        let _ = import_compose("compose.yaml", text);
    }
}

/// The variables a converted file needs set: `${VAR}` and `${VAR:?...}`
/// without a default, and the variables secrets read.
fn variables(toml: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let mut rest = toml;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        let end = rest.find('}').unwrap_or(rest.len());
        let inner = &rest[..end];
        let name_end = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let (name, op) = inner.split_at(name_end);
        if !op.starts_with(":-") && !op.starts_with('-') {
            vars.insert(name.to_string(), "1".to_string());
        }
    }
    vars
}

/// A host path a converted file names: created as a file when its last
/// part has a dot, else as a folder.
fn create(dir: &Path, rel: &str, file: bool) {
    if rel.starts_with('/') || rel.contains('$') {
        return;
    }
    let p = dir.join(rel);
    if file {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if !p.exists() {
            std::fs::write(&p, "").unwrap();
        }
    } else {
        std::fs::create_dir_all(&p).unwrap();
    }
}

fn looks_like_file(rel: &str) -> bool {
    let last = rel.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    last.contains('.') && last != "." && last != ".."
}

/// Creates what the converted file refers to: build contexts and
/// Dockerfiles, env files, bind-mount sources, secret files, workspaces.
fn create_referenced(dir: &Path, toml: &str, vars: &mut BTreeMap<String, String>) {
    let doc: toml::Table = toml::from_str(toml).unwrap();
    let get = |t: &toml::Table, k: &str| t.get(k).cloned();
    if let Some(toml::Value::Table(images)) = get(&doc, "images") {
        for (_, image) in images {
            match image.get("build") {
                Some(toml::Value::String(ctx)) => {
                    create(dir, ctx, false);
                    create(dir, &format!("{ctx}/Dockerfile"), true);
                }
                Some(toml::Value::Table(b)) => {
                    let ctx = b.get("context").and_then(|c| c.as_str()).unwrap();
                    create(dir, ctx, false);
                    let df = b
                        .get("dockerfile")
                        .and_then(|d| d.as_str())
                        .unwrap_or("Dockerfile");
                    create(dir, &format!("{ctx}/{df}"), true);
                }
                _ => {}
            }
        }
    }
    if let Some(toml::Value::Table(secrets)) = get(&doc, "secrets") {
        for (_, s) in secrets {
            if let Some(f) = s.get("file").and_then(|f| f.as_str()) {
                create(dir, f, true);
            }
            if let Some(v) = s.get("environment").and_then(|f| f.as_str()) {
                vars.insert(v.to_string(), "secret".to_string());
            }
        }
    }
    if let Some(toml::Value::Table(containers)) = get(&doc, "containers") {
        for (_, c) in containers {
            match c.get("env_file") {
                Some(toml::Value::String(f)) => create(dir, f, true),
                Some(toml::Value::Array(fs)) => {
                    for f in fs {
                        create(dir, f.as_str().unwrap(), true);
                    }
                }
                _ => {}
            }
            if let Some(toml::Value::Array(vols)) = c.get("volumes") {
                for v in vols {
                    match v {
                        toml::Value::String(s) => {
                            if let Some((src, _)) = s.split_once(':')
                                && (src.starts_with('.') || src.starts_with('/'))
                            {
                                create(dir, src, looks_like_file(src));
                            }
                        }
                        toml::Value::Table(t)
                            if t.get("type").and_then(|k| k.as_str()) == Some("bind") =>
                        {
                            let src = t.get("source").and_then(|s| s.as_str()).unwrap();
                            create(dir, src, looks_like_file(src));
                        }
                        _ => {}
                    }
                }
            }
            if let Some(src) = c
                .get("workspace")
                .and_then(|w| w.get("source"))
                .and_then(|s| s.as_str())
            {
                create(dir, src, false);
            }
        }
    }
}

/// Every converted fixture loads as a valid servin project.
#[test]
fn imported_files_validate() {
    for name in fixture_names() {
        let imported = import_fixture(&name);
        let dir = tempfile::tempdir().unwrap();
        let mut env = variables(&imported.toml);
        create_referenced(dir.path(), &imported.toml, &mut env);
        let path = dir.path().join("servin.toml");
        std::fs::write(&path, &imported.toml).unwrap();
        let options = servin::project::LoadOptions {
            env,
            ..Default::default()
        };
        if let Err(failure) = servin::project::load_str(&path, &imported.toml, &options) {
            panic!(
                "{name}.yaml converts to a file that does not load:\n{}\n{failure:?}",
                imported.toml
            );
        }
    }
}

#[test]
fn a_bind_of_dockers_socket_is_kept_and_said_in_one_line() {
    let text = "services:\n  proxy:\n    image: traefik:3\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock:ro\n  runner:\n    image: runner:1\n    volumes:\n      - type: bind\n        source: /var/run/docker.sock\n        target: /var/run/docker.sock\n";
    let imported = import_compose("compose.yaml", text).unwrap();
    assert!(
        imported
            .toml
            .contains("/var/run/docker.sock:/var/run/docker.sock:ro"),
        "{}",
        imported.toml
    );
    assert_eq!(imported.warnings.len(), 2, "{:?}", imported.warnings);
    for w in &imported.warnings {
        assert!(w.message.contains("engine socket"), "{w:?}");
    }
}
