//! `servin import`: convert a Docker Compose file into a servin.toml.

use std::path::PathBuf;

use servin::import::{COMPOSE_FILE_NAMES, import_compose};

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Convert a Docker Compose file into a servin.toml
///
/// Every Compose key that servin cannot express is reported as a warning
/// naming the key and the service; nothing is dropped silently. The written
/// file is validated.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub project: super::ProjectArgs,

    /// The Compose file [default: compose.yaml, compose.yml,
    /// docker-compose.yml or docker-compose.yaml in the current folder]
    #[arg(value_name = "COMPOSE_FILE")]
    compose_file: Option<PathBuf>,
    /// Where to write; `-` for stdout [default: the global `-f FILE`, else
    /// servin.toml beside the Compose file]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace an existing output file
    #[arg(long)]
    force: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let cwd = std::env::current_dir()?;
    let source = match &args.compose_file {
        Some(p) => cwd.join(p),
        None => COMPOSE_FILE_NAMES
            .iter()
            .map(|n| cwd.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Failed::Usage(format!(
                    "no Compose file here ({}); name one: `servin import FILE`",
                    COMPOSE_FILE_NAMES.join(", ")
                ))
            })?,
    };
    let text = std::fs::read_to_string(&source)
        .map_err(|e| Failed::Error(format!("cannot read {}: {e}", source.display()).into()))?;
    let shown = ui::shown(&source);
    let imported = import_compose(&shown, &text)?;
    for w in &imported.warnings {
        ui::warning(&w.to_string());
    }

    let dir = source.parent().map_or_else(|| cwd.clone(), PathBuf::from);
    let to_stdout = args.output.as_deref() == Some(std::path::Path::new("-"));
    // `-o FILE`, else the global `-f FILE` (the project file to write),
    // else servin.toml beside the Compose file.
    let out_path = match (&args.output, &cli.file) {
        (Some(p), _) if !to_stdout => cwd.join(p),
        (None, Some(f)) if f.is_dir() => cwd.join(f).join("servin.toml"),
        (None, Some(f)) => cwd.join(f),
        _ => dir.join("servin.toml"),
    };

    // Validate against the folder the file belongs in, so relative paths
    // (bind mounts, build contexts, env files) are checked where they are.
    let outcome = servin::project::load_str(&out_path, &imported.toml, &cli.load_options());

    if to_stdout {
        ui::data(&imported.toml)?;
    } else {
        if out_path.exists() && !args.force {
            return Err(Failed::Usage(format!(
                "{} exists already; pass --force to replace it, or `-o -` to print",
                ui::shown(&out_path)
            )));
        }
        let tmp = out_path.with_extension("tmp~");
        std::fs::write(&tmp, &imported.toml)
            .and_then(|()| std::fs::rename(&tmp, &out_path))
            .map_err(|e| {
                Failed::Error(format!("cannot write {}: {e}", out_path.display()).into())
            })?;
        let n = imported.warnings.len();
        ui::info(&format!(
            "wrote {} from {shown}{}",
            ui::shown(&out_path),
            if n == 0 {
                String::new()
            } else {
                format!(" ({n} warning{})", if n == 1 { "" } else { "s" })
            }
        ));
    }
    match outcome {
        Ok(_) => Ok(()),
        Err(failure) => {
            ui::failure(&failure);
            ui::info(
                "the file was converted, but it does not validate as it is: fix the problems above",
            );
            Err(Failed::Reported)
        }
    }
}
