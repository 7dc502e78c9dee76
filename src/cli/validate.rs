//! `servin validate`: check the project file and report every problem.

use serde::Serialize;

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Check the project file and report every problem at once
///
/// Exit status: 0 when the project is valid, 1 when it is not. With
/// `--format json`, prints `{valid, file, problems}` for editors; each
/// problem has file, line, column, end_line, end_column, severity, code,
/// message, label and help.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub project: super::ProjectArgs,

    /// Print nothing when the project is valid
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Serialize)]
struct Report {
    valid: bool,
    file: String,
    problems: Vec<servin::project::diagnostic::JsonProblem>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    let format = cli.format(&[Format::Text, Format::Json], Format::Text)?;
    if format == Format::Text {
        let loaded = cli.load_project()?;
        if !args.quiet {
            let p = &loaded.project;
            let n = p.containers.len();
            ui::info(&format!(
                "{} is valid: project `{}`, {n} container{}, {} image{}, {} volume{}, {} network{}",
                ui::shown(&loaded.path),
                p.project.name,
                plural(n),
                p.images.len(),
                plural(p.images.len()),
                p.volumes.len(),
                plural(p.volumes.len()),
                p.networks.len(),
                plural(p.networks.len()),
            ));
        }
        return Ok(());
    }

    let cwd = std::env::current_dir()?;
    let path = servin::project::find(&cwd, cli.file.as_deref())?;
    let outcome = servin::project::load(&path, &cli.load_options())?;
    let (valid, problems) = match &outcome {
        Ok(loaded) => (true, &loaded.warnings),
        Err(failure) => (false, &failure.problems),
    };
    let report = Report {
        valid,
        file: ui::shown(&path),
        problems: problems.iter().map(|p| p.to_json()).collect(),
    };
    ui::data(&serde_json::to_string_pretty(&report)?)?;
    if valid { Ok(()) } else { Err(Failed::Reported) }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
