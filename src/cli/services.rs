//! Services as arguments of the container commands: in a project folder
//! (or with `-f` / `-p`), `servin exec web sh` and `servin stop web db`
//! act on the containers of services `web` and `db`.
//!
//! The rule: when the first argument is a service of the project in
//! context, every argument must be one, and each stands for the service's
//! containers (all its replicas, in replica order). Otherwise the arguments
//! are container names or IDs, as without a project.

use std::collections::BTreeSet;

use servin::client::Engine;
use servin_proto::labels;

use super::Cli;
use crate::ui::Failed;

/// The project in context: its name and the services its file names
/// (empty when only `-p` names it). `None` outside a project, or when the
/// project file does not load (the arguments are then containers).
pub fn context(cli: &Cli) -> Option<(String, BTreeSet<String>)> {
    let cwd = std::env::current_dir().ok();
    let found = cwd.and_then(|cwd| servin::project::find(&cwd, cli.file.as_deref()).ok());
    let loaded = found.and_then(|path| {
        servin::project::load(&path, &cli.load_options())
            .ok()
            .and_then(Result::ok)
    });
    match (loaded, &cli.project_name) {
        (Some(l), _) => Some((
            l.project.project.name.clone(),
            l.project.containers.keys().cloned().collect(),
        )),
        (None, Some(name)) => Some((name.clone(), BTreeSet::new())),
        (None, None) => None,
    }
}

/// The containers `names` stand for: `None` when they are container names
/// (the first is no service of the project in context), else the
/// containers of the services, each service's in replica order.
pub fn containers(
    cli: &Cli,
    engine: &Engine,
    names: &[String],
) -> Result<Option<Vec<String>>, Failed> {
    let Some(first) = names.first() else {
        return Ok(None);
    };
    let Some((project, mut services)) = context(cli) else {
        return Ok(None);
    };
    let of_project = of_project(engine, &project)?;
    services.extend(of_project.iter().map(|c| c.0.clone()));
    if !services.contains(first) {
        return Ok(None);
    }
    let mut out = Vec::new();
    for n in names {
        if !services.contains(n) {
            return Err(Failed::Usage(format!(
                "{n} is no service of project {project} (services: {}); give either services or containers",
                services.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        let before = out.len();
        out.extend(of_project.iter().filter(|c| &c.0 == n).map(|c| c.2.clone()));
        if out.len() == before {
            return Err(Failed::Usage(format!(
                "service {n} of project {project} has no container (run `servin up`)"
            )));
        }
    }
    Ok(Some(out))
}

/// The containers of `project`: (service, replica, name), sorted.
pub fn of_project(engine: &Engine, project: &str) -> Result<Vec<(String, u32, String)>, Failed> {
    let all = engine.containers(true)?;
    let mut of_project: Vec<(String, u32, String)> = all
        .iter()
        .filter_map(|c| {
            let l = c.labels.as_ref()?;
            if l.get(labels::PROJECT).map(String::as_str) != Some(project) {
                return None;
            }
            let service = l.get(labels::NAME)?.clone();
            let replica = l
                .get(labels::REPLICA)
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            let name = c
                .names
                .as_ref()?
                .first()?
                .trim_start_matches('/')
                .to_string();
            Some((service, replica, name))
        })
        .collect();
    of_project.sort();
    Ok(of_project)
}

/// `names` with each service replaced by its containers (see
/// [`containers`]).
pub fn expand(cli: &Cli, engine: &Engine, names: &[String]) -> Result<Vec<String>, Failed> {
    Ok(containers(cli, engine, names)?.unwrap_or_else(|| names.to_vec()))
}
