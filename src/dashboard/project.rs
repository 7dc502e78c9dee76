//! A whole project from the page: Plan, Up and Down.
//!
//! The page only names the project. Its file is the one recorded in its
//! containers' [`labels::PROJECT_FILE`] label by `servin up`, so nothing the
//! page sends is ever read or run as a path. Plan is what `servin plan`
//! does (the file loaded with the project's own name, the digests of its
//! lock, the engine's plan); Up runs this very binary as `servin up -d`
//! on that file, so builds, the lock and the apply are exactly the CLI's;
//! Down is `servin down` (the engine removes the project's containers and
//! networks by label, volumes kept).
//!
//! The engine client's calls block, so each operation runs on a thread of
//! its own with a client of its own, off the server's runtime.

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use servin_proto::labels;

use crate::client::{Engine, encode};
use crate::project::desired::{DesiredOptions, desired};
use crate::project::{LoadOptions, Loaded};

/// What the page asks of a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The engine's plan for the project file as it is now.
    Plan,
    /// Apply the project file, as `servin up -d`.
    Up,
    /// Take the project down, as `servin down`.
    Down,
}

/// A refusal or failure: the status and the message the page shows.
#[derive(Debug, PartialEq, Eq)]
pub struct Failure(pub StatusCode, pub String);

/// Runs `op` on project `name`; the JSON answer for the page.
pub async fn run(engine: &Engine, name: &str, op: Op) -> Result<serde_json::Value, Failure> {
    let containers = project_containers(engine, name).await?;
    if containers.is_empty() {
        return Err(Failure(
            StatusCode::NOT_FOUND,
            format!(
                "no project {name}: no container carries its {} label",
                labels::PROJECT
            ),
        ));
    }
    if op == Op::Down {
        // As `servin down -p NAME`: the labels say what to remove, the
        // file is not needed.
        let name = name.to_string();
        return blocking(move || down(&name)).await;
    }
    let file = recorded_file(name, &containers)?;
    let loaded = load(name, &file)?;
    if op == Op::Plan {
        return blocking(move || plan(&loaded)).await;
    }
    let name = name.to_string();
    blocking(move || up(&name, &file)).await
}

/// The project's containers (`Labels` and `Created` of each), from the
/// engine's list filtered by the project label.
async fn project_containers(
    engine: &Engine,
    name: &str,
) -> Result<Vec<serde_json::Value>, Failure> {
    let filter = serde_json::json!({ "label": [format!("{}={name}", labels::PROJECT)] });
    let path = format!(
        "/containers/json?all=1&filters={}",
        encode(&filter.to_string())
    );
    let step = format!("list the containers of project {name}");
    let bad = |e: String| Failure(StatusCode::BAD_GATEWAY, format!("{step}: {e}"));
    let resp = engine
        .send_async(Method::GET, &path, &[], Bytes::new(), &step)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| bad(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(bad(format!(
            "the engine answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))
}

/// The project file the newest of `containers` records.
fn recorded_file(name: &str, containers: &[serde_json::Value]) -> Result<PathBuf, Failure> {
    containers
        .iter()
        .filter_map(|c| {
            let file = c["Labels"][labels::PROJECT_FILE].as_str()?;
            Some((c["Created"].as_i64().unwrap_or(0), file))
        })
        .max()
        .map(|(_, f)| PathBuf::from(f))
        .filter(|f| f.is_absolute())
        .ok_or_else(|| {
            Failure(
                StatusCode::CONFLICT,
                format!(
                    "project {name} has no recorded project file (no {} label on its containers): \
                     run `servin up` in its folder once",
                    labels::PROJECT_FILE
                ),
            )
        })
}

/// Loads the recorded file under the project's own name (as `-p NAME`).
fn load(name: &str, file: &std::path::Path) -> Result<Loaded, Failure> {
    let options = LoadOptions {
        project_name: Some(name.to_string()),
        env: std::env::vars().collect(),
    };
    let unusable = |why: String| {
        Failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("project {name}: {why}"),
        )
    };
    match crate::project::load(file, &options) {
        // Kept containers keep the label they were made with (a changed
        // label is no change to the plan): a moved project is found at its
        // new place once `up` recreates its containers.
        Err(e) => Err(unusable(format!(
            "{}\nhelp: its containers were made from this file; if the project moved, use the CLI in its new folder (the containers record the new place when `servin up` next recreates them)",
            chain(&e)
        ))),
        Ok(Err(failure)) => Err(unusable(format!(
            "{} has {} problem(s):\n{failure}",
            file.display(),
            failure.errors()
        ))),
        Ok(Ok(loaded)) => Ok(loaded),
    }
}

/// The engine's plan, as `servin plan` asks for it.
fn plan(loaded: &Loaded) -> Result<serde_json::Value, Failure> {
    let name = &loaded.project.project.name;
    let unusable = |why: String| {
        Failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("project {name}: {why}"),
        )
    };
    let options = DesiredOptions {
        image_digests: crate::project::lock::locked(&loaded.path, &loaded.project)
            .map_err(|e| unusable(chain(&e)))?,
        ..Default::default()
    };
    let desired = desired(&loaded.project, &options).map_err(|e| unusable(e.to_string()))?;
    let engine = connect()?;
    let plan = engine
        .plan_project(&desired, &[], false)
        .map_err(|e| Failure(StatusCode::BAD_GATEWAY, chain(&e)))?;
    serde_json::to_value(plan)
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// `servin up -d` on the recorded file, by this very binary; its report
/// (the steps and the summary it prints) is the answer.
fn up(name: &str, file: &std::path::Path) -> Result<serde_json::Value, Failure> {
    let exe = std::env::current_exe().map_err(|e| {
        Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot find the servin binary to run `servin up`: {e}"),
        )
    })?;
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg("up")
        .arg("-d")
        .arg("--file")
        .arg(file)
        .arg("--project-name")
        .arg(name)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    if let Some(dir) = file.parent() {
        cmd.current_dir(dir);
    }
    let out = cmd.output().map_err(|e| {
        Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot run {} up: {e}", exe.display()),
        )
    })?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(serde_json::json!({ "project": name, "output": report }))
    } else {
        Err(Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "servin up of project {name} failed ({}):\n{}",
                out.status,
                report.trim_end()
            ),
        ))
    }
}

/// `servin down` (volumes and images kept, each container its own stop
/// timeout).
fn down(name: &str) -> Result<serde_json::Value, Failure> {
    let engine = connect()?;
    let summary = engine
        .down_project(name, false, false, None, |_| {})
        .map_err(|e| Failure(StatusCode::BAD_GATEWAY, chain(&e)))?;
    if summary.failed.is_empty() {
        return serde_json::to_value(&summary)
            .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
    }
    let lines: Vec<String> = summary
        .failed
        .iter()
        .map(|f| format!("{} {}: {}", f.object.as_str(), f.name, f.error))
        .collect();
    Err(Failure(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("down of project {name} failed for:\n{}", lines.join("\n")),
    ))
}

fn connect() -> Result<Engine, Failure> {
    Engine::connect().map_err(|e| Failure(StatusCode::BAD_GATEWAY, chain(&e)))
}

/// An error with its causes, as one message.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Runs `f` on a thread of its own (the client blocks on a runtime of its
/// own, which cannot run inside the server's).
async fn blocking<F>(f: F) -> Result<serde_json::Value, Failure>
where
    F: FnOnce() -> Result<serde_json::Value, Failure> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.unwrap_or_else(|_| {
        Err(Failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the project operation stopped without an answer".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn the_newest_recorded_absolute_file_is_used() {
        let c = |created: i64, file: Option<&str>| {
            let mut l = BTreeMap::new();
            if let Some(f) = file {
                l.insert(labels::PROJECT_FILE, f);
            }
            serde_json::json!({ "Created": created, "Labels": l })
        };
        let list = [
            c(5, Some("/old/servin.toml")),
            c(9, Some("/new/servin.toml")),
            c(12, None),
        ];
        assert_eq!(
            recorded_file("shop", &list).unwrap(),
            PathBuf::from("/new/servin.toml")
        );
        let none = recorded_file("shop", &[c(1, None)]).unwrap_err();
        assert_eq!(none.0, StatusCode::CONFLICT);
        assert!(
            none.1.contains("project shop has no recorded project file"),
            "{}",
            none.1
        );
        // A relative value was not written by servin: not used.
        assert_eq!(
            recorded_file("shop", &[c(1, Some("servin.toml"))])
                .unwrap_err()
                .0,
            StatusCode::CONFLICT
        );
    }
}
