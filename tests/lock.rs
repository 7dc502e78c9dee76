//! `servin.lock` against a real engine and a real registry: a tag moved in
//! the registry changes nothing that `up` runs until `servin lock --update`.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::Value;
use servin_testkit::image::seed_image_marked;
use servin_testkit::registry::RegistryGuard;
use support::Run;
use support::sandbox::{Env, Sandbox};

/// Imports a seed image marked `marker` as `name`, pushes it; its image ID.
fn push_seed(s: &Sandbox, name: &str, marker: &str) -> String {
    let dir = s.dir.path().join(format!("seed-{marker}"));
    std::fs::create_dir_all(&dir).unwrap();
    let tar = seed_image_marked(&dir, name, Some(marker));
    s.ok(&["image", "import", tar.to_str().unwrap()]);
    let push = s.run(&["push", name]);
    assert_eq!(push.code, 0, "{}", push.stderr);
    image_id(s, name)
}

fn image_id(s: &Sandbox, name: &str) -> String {
    let v: Value = serde_json::from_str(&s.ok(&["image", "inspect", name])).unwrap();
    v[0]["Id"].as_str().unwrap().to_string()
}

/// The image ID container `name` runs.
fn running_image(s: &Sandbox, name: &str) -> String {
    let c = s.inspect(name);
    assert_eq!(c["State"]["Status"], "running", "{c}");
    c["Image"].as_str().unwrap().to_string()
}

fn servin(s: &Sandbox, args: &[&str]) -> Run {
    let r = s.run(args);
    assert_eq!(
        r.code, 0,
        "servin {args:?} failed\nstdout: {}\nstderr: {}",
        r.stdout, r.stderr
    );
    r
}

fn locked(lock: &std::path::Path) -> BTreeMapOf {
    let text = std::fs::read_to_string(lock).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    v["images"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

type BTreeMapOf = std::collections::BTreeMap<String, String>;

#[test]
fn a_retagged_image_changes_nothing_until_lock_update() {
    let s = Env::new();
    let reg = RegistryGuard::start();
    let image = format!("{}/team/app:v1", reg.addr());
    let first = push_seed(&s, &image, "one");

    let file = s.write_project(
        "proj",
        &format!(
            "[project]\nname = \"locked\"\n\n[containers.app]\nimage = \"{image}\"\ncommand = [\"sleep\", \"300\"]\nstop_timeout = \"1s\"\n"
        ),
    );
    let dir = file.parent().unwrap().to_path_buf();
    let file = file.to_str().unwrap();
    let lock = dir.join("servin.lock");

    // The first `up` locks the image at its registry digest.
    servin(&s, &["up", "-d", "-f", file]);
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(text.starts_with("# servin.lock"), "{text}");
    assert!(text.contains("Commit it"), "{text}");
    let entries = locked(&lock);
    assert_eq!(entries.len(), 1, "{text}");
    let digest_one = entries[&image].clone();
    assert!(digest_one.starts_with("sha256:"), "{text}");
    assert_eq!(running_image(&s, "locked-app-1"), first);
    let v: Value = serde_json::from_str(&s.ok(&["inspect", "locked-app-1"])).unwrap();
    assert_eq!(
        v[0]["Config"]["Labels"]["servin.image-digest"],
        digest_one.as_str()
    );

    // The registry's tag moves to another image.
    let second = push_seed(&s, &image, "two");
    assert_ne!(first, second);

    // `plan` and `up` keep the locked image; the lock file is unchanged.
    let plan = servin(&s, &["plan", "-f", file, "--format", "json"]);
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["actions"][0]["kind"], "keep", "{plan}");
    let up = servin(&s, &["up", "-d", "-f", file]);
    up.assert_stderr_has("1 unchanged");
    assert_eq!(running_image(&s, "locked-app-1"), first);
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), text);

    // A fresh machine with the lock file: nothing local, `up` pulls by
    // digest and runs the locked image, not what the tag names now.
    servin(&s, &["down", "-f", file]);
    servin(&s, &["rmi", "-f", &first, &second]);
    servin(&s, &["up", "-d", "-f", file]);
    assert_eq!(running_image(&s, "locked-app-1"), first);
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), text);

    // `lock --update` moves the lock to what the tag names now; the next
    // `up` recreates the container with it.
    let update = servin(&s, &["lock", "--update", "-f", file]);
    update.assert_stderr_has(&digest_one);
    let digest_two = locked(&lock)[&image].clone();
    assert_ne!(digest_two, digest_one);
    let plan = servin(&s, &["plan", "-f", file]);
    assert!(
        plan.stdout.contains("image digest changed"),
        "{}",
        plan.stdout
    );
    let up = servin(&s, &["up", "-d", "-f", file]);
    up.assert_stderr_has("1 recreated");
    assert_eq!(running_image(&s, "locked-app-1"), second);

    // Naming an image the project does not use is a usage error.
    let bad = s.run(&["lock", "--update", "-f", file, "nope:1"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    bad.assert_stderr_has("no image nope:1");
    servin(&s, &["down", "-f", file]);
}

#[test]
fn images_imported_here_are_not_locked() {
    let s = Env::new();
    let tar = seed_image_marked(s.dir.path(), "test/local:1", None);
    s.ok(&["image", "import", tar.to_str().unwrap()]);
    let file = s.write_project(
        "proj",
        "[project]\nname = \"local\"\n\n[containers.app]\nimage = \"test/local:1\"\ncommand = [\"sleep\", \"300\"]\nstop_timeout = \"1s\"\n",
    );
    let dir = file.parent().unwrap().to_path_buf();
    let file = file.to_str().unwrap();
    let r = servin(&s, &["lock", "-f", file]);
    r.assert_stderr_has("not locked");
    assert!(locked(&dir.join("servin.lock")).is_empty());
    servin(&s, &["up", "-d", "-f", file]);
    running_image(&s, "local-app-1");
    servin(&s, &["down", "-f", file]);
}

#[test]
fn lock_help_says_what_it_does() {
    let s = Sandbox::new();
    let help = s.ok(&["lock", "--help"]);
    for needle in ["servin.lock", "--update", "[IMAGE]...", "Commit", "digest"] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    let up = s.ok(&["up", "--help"]);
    assert!(up.contains("servin.lock"), "{up}");
}

/// The `SEED` a running container's image carries (from its base).
fn seed_of(s: &Sandbox, container: &str) -> String {
    s.ok(&["exec", container, "sh", "-c", "echo $SEED"])
}

#[test]
fn the_bases_of_built_images_are_locked_and_built_on() {
    let s = Env::new();
    let reg = RegistryGuard::start();
    let base = format!("{}/team/base:v1", reg.addr());
    push_seed(&s, &base, "one");
    let file = s.write_project(
        "proj",
        "[project]\nname = \"lockbuild\"\n\n[images.app]\nbuild = \"./app\"\n\n\
         [containers.app]\nimage = \"app\"\ncommand = [\"sleep\", \"300\"]\nstop_timeout = \"1s\"\n",
    );
    let dir = file.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(dir.join("app")).unwrap();
    // The base is named through a build arg with a default, as is common.
    std::fs::write(
        dir.join("app/Dockerfile"),
        format!("ARG BASE={base}\nFROM $BASE\nCOPY msg.txt /msg\n"),
    )
    .unwrap();
    std::fs::write(dir.join("app/msg.txt"), "hello\n").unwrap();
    let file = file.to_str().unwrap();
    let lock = dir.join("servin.lock");

    // The first `up` locks the base at its registry digest and builds on it.
    servin(&s, &["up", "-d", "-f", file]);
    let entries = locked(&lock);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let digest_one = entries[&base].clone();
    assert_eq!(seed_of(&s, "lockbuild-app-1"), "one\n");
    let container = s.inspect("lockbuild-app-1")["Id"].clone();

    // The tag moves in the registry and here (a teammate pulled it): the
    // build still starts from the locked digest, so nothing changes.
    push_seed(&s, &base, "two");
    let up = servin(&s, &["up", "-d", "-f", file]);
    up.assert_stderr_has("1 unchanged");
    assert_eq!(s.inspect("lockbuild-app-1")["Id"], container);
    assert_eq!(locked(&lock)[&base], digest_one);
    // `servin build` in the project builds on the locked base too.
    let built = s.run_in(&dir, &["build"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let plan = servin(&s, &["plan", "-f", file]);
    assert!(!plan.stdout.contains("rebuilt"), "{}", plan.stdout);

    // `lock --update` moves the base; `up` rebuilds on it and recreates.
    let update = servin(&s, &["lock", "--update", "-f", file, &base]);
    update.assert_stderr_has(&digest_one);
    assert_ne!(locked(&lock)[&base], digest_one);
    let up = servin(&s, &["up", "-d", "-f", file]);
    up.assert_stderr_has("1 recreated");
    assert_eq!(seed_of(&s, "lockbuild-app-1"), "two\n");
    servin(&s, &["down", "-f", file]);
}
