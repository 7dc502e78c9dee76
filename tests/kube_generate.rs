//! `servin kube generate` run as users run it: one YAML on stdout or a
//! file per object, warnings on stderr, `--no-secrets`, a built image
//! refused without `--registry`; a snapshot of the fixture's YAML; and
//! every manifest, of the fixture and of every example project, validated
//! strictly by `kubernetes-validate` (installed by `.ci/install-packages`
//! in /opt/servin-kube-venv) against Kubernetes 1.30. With a real engine
//! and Debian's registry: `--registry` tags and pushes a built image and
//! names it by the pushed digest.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use servin::kube::generate::{self as kgen, Options};
use servin::project::{LoadOptions, find, load};
use servin_testkit::image::seed_image;
use servin_testkit::registry::RegistryGuard;
use support::sandbox::Sandbox;
use support::{Run, run_in};

const VALIDATE: &str = "/opt/servin-kube-venv/bin/kubernetes-validate";
const KUBERNETES: &str = "1.30.0";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    repo().join("tests/fixtures/kube")
}

fn generate(args: &[&str]) -> Run {
    let mut all = vec!["kube", "generate"];
    all.extend_from_slice(args);
    run_in(&fixture(), &all, &[])
}

/// Validates `files` strictly; fails the test with the validator's output.
#[track_caller]
fn validate(files: &[PathBuf]) {
    assert!(
        Path::new(VALIDATE).exists(),
        "{VALIDATE} is missing: run .ci/install-packages"
    );
    let out = Command::new(VALIDATE)
        .args(["--strict", "--quiet", "-k", KUBERNETES])
        .args(files)
        .output()
        .unwrap();
    let run = Run::of(out);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn the_fixture_as_one_yaml_on_stdout() {
    let r = generate(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!("fixture_yaml", r.stdout);
    // Warnings on stderr, one line each, naming the key.
    let stderr = r.stderr.replace(&fixture().display().to_string(), "[DIR]");
    insta::assert_snapshot!("fixture_warnings", stderr);
    let again = generate(&["-o", "-"]);
    assert_eq!(again.stdout, r.stdout, "the output is stable");
}

#[test]
fn a_file_per_object_in_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k8s/manifests");
    let r = generate(&["-o", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.assert_stderr_has("wrote 13 objects in");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for want in [
        "statefulset-db.yaml",
        "deployment-api.yaml",
        "deployment-web.yaml",
        "service-backend.yaml",
        "persistentvolumeclaim-db-data.yaml",
        "secret-db-password.yaml",
        "configmap-api-env.yaml",
        "networkpolicy-network-back.yaml",
    ] {
        assert!(names.contains(&want.to_string()), "{want} not in {names:?}");
    }
    // The files hold the same documents as stdout.
    let stdout = generate(&[]).stdout;
    for n in &names {
        let text = std::fs::read_to_string(out.join(n)).unwrap();
        assert!(stdout.contains(&text), "{n}");
    }
    let files: Vec<PathBuf> = names.iter().map(|n| out.join(n)).collect();
    validate(&files);
}

#[test]
fn no_secrets_leaves_them_out_and_names_them() {
    let r = generate(&["--no-secrets", "--expose", "loadbalancer"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("kind: Secret"), "{}", r.stdout);
    assert!(r.stdout.contains("secretName: db-password"));
    r.assert_stderr_has("warning: secret db-password: left out (--no-secrets)");
    assert!(r.stdout.contains("name: web-public"));
    assert!(r.stdout.contains("type: LoadBalancer"));
}

#[test]
fn only_the_containers_named() {
    let r = generate(&["db"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("kind: StatefulSet"));
    assert!(!r.stdout.contains("name: web"), "{}", r.stdout);
    let r = generate(&["nope"]);
    assert_eq!(r.code, 1);
    r.assert_stderr_has("no container nope in project shop (it has: api, db, web)");
}

#[test]
fn a_built_image_without_registry_is_refused() {
    let dir = repo().join("examples/web-db-cache");
    let r = run_in(&dir, &["kube", "generate"], &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    r.assert_stderr_has("image web is built by the project");
    r.assert_stderr_has("--registry HOST/PREFIX");
    assert!(r.stdout.is_empty());
    // Not a built image's container: no registry needed.
    let r = run_in(&dir, &["kube", "generate", "db", "cache"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn the_fixture_validates_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.yaml");
    for (n, args) in [
        (0, vec![]),
        (1, vec!["--expose", "nodeport"]),
        (2, vec!["--expose", "loadbalancer", "--no-secrets"]),
    ] {
        let r = generate(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let f = file.with_extension(format!("{n}.yaml"));
        std::fs::write(&f, r.stdout).unwrap();
        validate(&[f]);
    }
}

/// Every example project, through the library: the images it builds are
/// named as `--registry` would name them after a push (pushing needs the
/// images built: that is `built_images_are_pushed_and_named_by_digest`'s
/// job), every other image as `servin.lock` has it.
#[test]
fn every_example_validates_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    examples.sort();
    assert!(examples.len() >= 5, "{examples:?}");
    for example in examples {
        let path = find(&example, None).unwrap();
        let options = LoadOptions {
            project_name: None,
            env: [("WEB_PORT".to_string(), "8080".to_string())].into(),
        };
        let loaded = match load(&path, &options).unwrap() {
            Ok(l) => l,
            Err(f) => panic!("{}: {:?}", path.display(), f.problems),
        };
        let project = &loaded.project;
        let mut options = Options::default();
        let all = kgen::selected(project, &options).unwrap();
        for key in kgen::built_images(project, &all) {
            options.built.insert(
                key.clone(),
                format!(
                    "registry.example:5000/team/{}-{key}@sha256:{}",
                    project.project.name,
                    "0".repeat(64)
                ),
            );
        }
        options.secrets = kgen::read_secrets(project, &all, &options_env()).unwrap();
        let generated = kgen::generate(project, &options).unwrap();
        let yaml = kgen::render_yaml(&generated.objects);
        let file = dir.path().join(format!(
            "{}.yaml",
            example.file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&file, yaml).unwrap();
        files.push(file);
    }
    validate(&files);
}

fn options_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars().collect()
}

/// `--registry`: the engine's image of a built `[images]` entry (here an
/// imported one under the name a build gives it, `<project>-<image>`) is
/// tagged `REGISTRY/<project>-<image>:latest`, pushed, and the Deployment
/// names it by the digest the registry holds.
#[test]
fn built_images_are_pushed_and_named_by_digest() {
    let s = Sandbox::new();
    let reg = RegistryGuard::start();
    let seed = seed_image(s.dir.path(), "docker.io/library/seed:1");
    s.ok(&["image", "import", seed.to_str().unwrap()]);
    s.ok(&["tag", "seed:1", "demo-app"]);
    let file = s.write_project(
        "demo",
        "[project]\nname = \"demo\"\n\n[images.app]\nbuild = { context = \".\" }\n\n[containers.app]\nimage = \"app\"\nports = [\"8080:80\"]\n",
    );
    let dir = file.parent().unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();

    let refused = s.run_in(dir, &["kube", "generate"]);
    assert_eq!(refused.code, 1);
    refused.assert_stderr_has("image app is built by the project");

    let registry = format!("{}/team", reg.addr());
    let r = s.run_in(dir, &["kube", "generate", "--registry", &registry]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pushed = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix(&format!("pushed {registry}/demo-app:latest at ")))
        .unwrap_or_else(|| panic!("{}", r.stderr))
        .to_string();
    assert!(pushed.starts_with("sha256:"), "{pushed}");
    // (Quoted: a plain scalar may not start with a digit here.)
    let image = format!("image: \"{registry}/demo-app@{pushed}\"");
    assert!(r.stdout.contains(&image), "{image} not in\n{}", r.stdout);
    // The registry serves it by that digest.
    s.ok(&["rmi", &format!("{registry}/demo-app:latest")]);
    s.ok(&["pull", &format!("{registry}/demo-app@{pushed}")]);

    let out = s.dir.path().join("k8s.yaml");
    std::fs::write(&out, &r.stdout).unwrap();
    validate(&[out]);
}
