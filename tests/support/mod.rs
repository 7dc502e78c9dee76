//! The host CLI's own test support: running the real `servin` binary in a
//! temporary project folder ([`Project`]) or in a sandbox with its own
//! engine ([`Sandbox`], [`Env`]). What the engine's tests share
//! (registries, images, clean-up, network objects) is in `servin-testkit`.
#![allow(dead_code, clippy::unwrap_used)]

pub mod sandbox;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary project folder.
pub struct Project {
    pub dir: tempfile::TempDir,
}

/// What a run of `servin` (or another command) did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished command did.
    pub fn of(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Fails the test, showing stderr, unless stderr holds `part`.
    #[track_caller]
    pub fn assert_stderr_has(&self, part: &str) {
        assert!(self.stderr.contains(part), "{}", self.stderr);
    }

    /// Exit code, stdout and stderr, for a snapshot.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Project {
    /// A folder named `demo` (so the default project name is stable)
    /// holding `files` (path, contents); a path ending in `/` is a folder.
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("servin-test")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("demo")).unwrap();
        let p = Project { dir };
        for (path, text) in files {
            p.write(path, text);
        }
        p
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("demo")
    }

    pub fn write(&self, path: &str, text: &str) {
        let full = self.root().join(path);
        if path.ends_with('/') {
            std::fs::create_dir_all(&full).unwrap();
            return;
        }
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(full, text).unwrap();
    }

    /// Runs servin in the project folder with a clean environment plus `env`.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        run_in(&self.root(), args, env)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Replaces the temporary folder's path with `[DIR]` in text.
    pub fn filter(&self, text: &str) -> String {
        text.replace(&self.root().display().to_string(), "[DIR]")
    }
}

/// A project `nets` of one container `app` of `image` on network `back`,
/// whose label `tier` is `tier`: changing `tier` changes the network's
/// definition.
pub fn network_project(image: &str, tier: &str) -> String {
    format!(
        r#"[project]
name = "nets"

[networks.back]
labels = {{ tier = "{tier}" }}

[containers.app]
image = "{image}"
command = ["sleep", "300"]
networks = ["back"]
stop_timeout = "1s"
"#
    )
}

pub fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_servin"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run::of(out)
}

/// `GET PATH` on 127.0.0.1:`port` until the raw answer holds `want` (5 s
/// at most: a server just started may not listen yet); the last answer.
pub fn http_get_until(port: u16, path: &str, want: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut answer = String::new();
    for _ in 0..50 {
        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            c.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
                .unwrap();
            answer.clear();
            let _ = c.read_to_string(&mut answer);
            if answer.contains(want) {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    answer
}
