//! `servin init`: write a commented starter project file.

use std::path::PathBuf;

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Where `init` puts the JSON Schema, relative to the project file. The
/// `#:schema` line at the top of the starter file points editors at it.
const SCHEMA_PATH: &str = ".servin/servin.schema.json";

/// Write a commented starter servin.toml
///
/// Writes it in the current folder (or at `-f FILE`), with the JSON Schema
/// that editors use for completion and hover help in
/// `.servin/servin.schema.json`. Refuses to replace a project file unless
/// `--force` is given.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub project: super::ProjectArgs,

    /// The project name [default: the folder's name, made DNS-safe]
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Replace an existing project file
    #[arg(long)]
    force: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let cwd = std::env::current_dir()?;
    let path = match &cli.file {
        Some(f) if f.is_dir() => f.join("servin.toml"),
        Some(f) => cwd.join(f),
        None => cwd.join("servin.toml"),
    };
    if path.extension().is_some_and(|e| e == "kdl") {
        return Err(Failed::Usage(
            "init writes servin.toml; see the book's KDL page to write servin.kdl".into(),
        ));
    }
    let dir = path.parent().map_or_else(|| cwd.clone(), PathBuf::from);
    for existing in servin::project::FILE_NAMES.map(|n| dir.join(n)) {
        if existing.exists() && !args.force {
            return Err(Failed::Usage(format!(
                "{} exists already; pass --force to replace it",
                ui::shown(&existing)
            )));
        }
    }
    let name = match args.name.as_ref().or(cli.project_name.as_ref()) {
        Some(n) => {
            if let Some(why) = servin::project::values::dns_label_error(n) {
                return Err(Failed::Usage(format!(
                    "project name `{n}` is not valid: {why}"
                )));
            }
            n.clone()
        }
        None => servin::project::values::to_dns_label(
            &dir.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };

    let schema_path = dir.join(SCHEMA_PATH);
    if let Some(parent) = schema_path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failed::Error(io_error("create", parent, e)))?;
    }
    write_atomic(&schema_path, &servin::project::model::schema_text())?;
    write_atomic(&path, &starter(&name))?;
    ui::info(&format!(
        "wrote {} (project `{name}`) and {}",
        ui::shown(&path),
        ui::shown(&schema_path)
    ));
    ui::info("next: edit it, then `servin validate`");
    Ok(())
}

fn io_error(
    what: &str,
    path: &std::path::Path,
    e: std::io::Error,
) -> Box<dyn std::error::Error + Send + Sync> {
    format!("cannot {what} {}: {e}", path.display()).into()
}

/// Writes through a temporary file and a rename, so a crash leaves either
/// the old file or the new one.
fn write_atomic(path: &std::path::Path, text: &str) -> Result<(), Failed> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).map_err(|e| Failed::Error(io_error("write", &tmp, e)))?;
    std::fs::rename(&tmp, path).map_err(|e| Failed::Error(io_error("write", path, e)))?;
    Ok(())
}

/// The starter file. It is valid as written, and its comments show the
/// commonest keys.
pub fn starter(name: &str) -> String {
    format!(
        r#"#:schema ./{SCHEMA_PATH}
# The containers of this project. `servin validate` checks this file,
# `servin config` shows it with every default filled in.
# Every key is described in the book's servin.toml reference.

[project]
name = "{name}"

# Images: pulled from a registry (`ref`) or built from a Dockerfile (`build`).
# [images.app]
# build = "."                     # ./Dockerfile

[containers.web]
image = "nginx:1.27"              # or the name of an [images] entry
ports = ["8080:80"]               # host:container
# env = {{ LOG_LEVEL = "debug" }}
# volumes = ["./site:/usr/share/nginx/html:ro"]
# depends_on = {{ db = "healthy" }}

# [containers.db]
# image = "postgres:16"
# env = {{ POSTGRES_PASSWORD = "${{DB_PASSWORD:-dev}}" }}
# volumes = ["db-data:/var/lib/postgresql/data"]
# healthcheck = {{ cmd = "pg_isready -U postgres", interval = "2s" }}

# [volumes.db-data]
"#
    )
}
