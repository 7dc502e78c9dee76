//! The command line: flags and subcommands. Each command lives in its own
//! file and is a thin layer over the library.

mod attach;
mod build;
mod commit;
mod completions;
mod config;
mod cp;
mod dashboard;
mod doctor;
mod exec;
mod image;
mod images;
mod import;
mod info;
mod init;
mod inspect;
mod kube;
mod lifecycle;
mod lock;
mod login;
mod logs;
mod network;
mod pause;
mod plan;
mod port;
mod progress;
mod ps;
mod pull;
mod push;
mod rename;
mod rmi;
mod run;
mod services;
mod stats;
mod stream;
mod system;
mod tag;
mod top;
mod up;
mod update;
mod validate;
mod version;
mod vm;
mod volume;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::ui::{self, Failed};

/// Declarative dev environments on real Linux containers.
///
/// A project folder holds `servin.toml` (or `servin.kdl`) naming images,
/// volumes, networks and containers. Servin finds it in the current folder
/// or the nearest folder above.
#[derive(Debug, Parser)]
#[command(
    name = "servin",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The project file, or a folder holding one [default: servin.toml or
    /// servin.kdl in the current folder or the nearest above]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// The project name [default: `[project] name`, else the folder's name]
    #[arg(
        short = 'p',
        long = "project-name",
        value_name = "NAME",
        env = "SERVIN_PROJECT_NAME"
    )]
    pub project_name: Option<String>,

    /// Output format; each command lists the ones it takes
    #[arg(long, global = true, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Say more about what is happening (repeat for more)
    #[arg(long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// `-f` and `-p` as the commands that read a project file take them after
/// their name too (`servin validate -f x.toml`); they win over the same
/// flags given before the command.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProjectArgs {
    /// The project file, or a folder holding one [default: servin.toml or
    /// servin.kdl in the current folder or the nearest above]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// The project name [default: `[project] name`, else the folder's name;
    /// also SERVIN_PROJECT_NAME]
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people
    Text,
    /// For programs
    Json,
    /// TOML (for `config`)
    Toml,
}

/// The subcommands; each one's help comes from its `Args` doc comment.
#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::Args),
    Validate(validate::Args),
    Config(config::Args),
    Plan(plan::Args),
    Up(up::UpArgs),
    Down(up::DownArgs),
    Watch(watch::Args),
    Lock(lock::Args),
    Import(import::Args),
    Kube(kube::Args),
    Dashboard(dashboard::Args),
    Info(info::Args),
    Doctor(doctor::Args),
    Run(run::RunArgs),
    Create(run::CreateArgs),
    Start(lifecycle::StartArgs),
    Stop(lifecycle::StopArgs),
    Restart(lifecycle::RestartArgs),
    Kill(lifecycle::KillArgs),
    Rm(lifecycle::RmArgs),
    Ps(ps::Args),
    Port(port::Args),
    Cp(cp::Args),
    Commit(commit::CommitArgs),
    Diff(commit::DiffArgs),
    Export(commit::ExportArgs),
    Logs(logs::Args),
    Exec(exec::Args),
    Inspect(inspect::Args),
    Wait(lifecycle::WaitArgs),
    Stats(stats::Args),
    Top(top::Args),
    Rename(rename::Args),
    Pause(pause::PauseArgs),
    Unpause(pause::UnpauseArgs),
    Update(update::Args),
    System(system::Args),
    Build(build::Args),
    Pull(pull::Args),
    Push(push::Args),
    Images(images::Args),
    Rmi(rmi::Args),
    Tag(tag::Args),
    Image(image::Args),
    Network(network::Args),
    Volume(volume::Args),
    Login(login::LoginArgs),
    Logout(login::LogoutArgs),
    Version(version::Args),
    Vm(vm::Args),
    Completions(completions::Args),
}

/// Runs the command line and returns the exit code: 0 success, 1 failure
/// (an invalid project, a failed operation), 2 usage error.
pub fn main() -> ExitCode {
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return ExitCode::from(u8::try_from(code).unwrap_or(2));
        }
    };
    if let Some(p) = cli.command.project_args().cloned() {
        if p.file.is_some() {
            cli.file = p.file;
        }
        if p.project_name.is_some() {
            cli.project_name = p.project_name;
        }
    }
    servin::vm::set_progress(ui::info);
    let result = match &cli.command {
        Command::Init(args) => init::run(&cli, args),
        Command::Validate(args) => validate::run(&cli, args),
        Command::Config(args) => config::run(&cli, args),
        Command::Plan(args) => plan::run(&cli, args),
        Command::Up(args) => up::up(&cli, args),
        Command::Down(args) => up::down(&cli, args),
        Command::Watch(args) => watch::run(&cli, args),
        Command::Lock(args) => lock::run(&cli, args),
        Command::Import(args) => import::run(&cli, args),
        Command::Kube(args) => kube::run(&cli, args),
        Command::Build(args) => build::run(&cli, args),
        Command::Dashboard(args) => dashboard::run(&cli, args),
        Command::Info(args) => info::run(&cli, args),
        Command::Doctor(args) => doctor::run(&cli, args),
        Command::Run(args) => run::run(&cli, args),
        Command::Create(args) => run::create_cmd(&cli, args),
        Command::Start(args) => lifecycle::start(&cli, args),
        Command::Stop(args) => lifecycle::stop(&cli, args),
        Command::Restart(args) => lifecycle::restart(&cli, args),
        Command::Kill(args) => lifecycle::kill(&cli, args),
        Command::Rm(args) => lifecycle::rm(&cli, args),
        Command::Ps(args) => ps::run(&cli, args),
        Command::Port(args) => port::run(&cli, args),
        Command::Commit(args) => commit::commit(&cli, args),
        Command::Diff(args) => commit::diff(&cli, args),
        Command::Export(args) => commit::export(&cli, args),
        Command::Cp(args) => cp::run(&cli, args),
        Command::Logs(args) => logs::run(&cli, args),
        Command::Exec(args) => exec::run(&cli, args),
        Command::Inspect(args) => inspect::run(&cli, args),
        Command::Wait(args) => lifecycle::wait(&cli, args),
        Command::Pull(args) => pull::run(&cli, args),
        Command::Push(args) => push::run(&cli, args),
        Command::Images(args) => images::run(&cli, args),
        Command::Rmi(args) => rmi::run(&cli, args),
        Command::Tag(args) => tag::run(&cli, args),
        Command::Image(args) => image::run(&cli, args),
        Command::Network(args) => network::run(&cli, args),
        Command::Volume(args) => volume::run(&cli, args),
        Command::Login(args) => login::login(&cli, args),
        Command::Logout(args) => login::logout(&cli, args),
        Command::Version(args) => version::run(&cli, args),
        Command::Vm(args) => vm::run(&cli, args),
        Command::Completions(args) => completions::run(&cli, args),
        Command::Stats(args) => stats::run(&cli, args),
        Command::Top(args) => top::run(&cli, args),
        Command::Rename(args) => rename::run(&cli, args),
        Command::Pause(args) => pause::pause(&cli, args),
        Command::Unpause(args) => pause::unpause(&cli, args),
        Command::Update(args) => update::run(&cli, args),
        Command::System(args) => system::run(&cli, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failed::Reported) => ExitCode::from(1),
        Err(Failed::Code(code)) => ExitCode::from(code),
        Err(Failed::Usage(msg)) => {
            ui::error(&msg);
            ExitCode::from(2)
        }
        Err(Failed::Error(e)) => {
            ui::error_chain(e.as_ref());
            ExitCode::from(1)
        }
    }
}

impl Command {
    /// The project flags given after the command, for commands that take them.
    fn project_args(&self) -> Option<&ProjectArgs> {
        match self {
            Command::Init(a) => Some(&a.project),
            Command::Validate(a) => Some(&a.project),
            Command::Config(a) => Some(&a.project),
            Command::Plan(a) => Some(&a.project),
            Command::Up(a) => Some(&a.project),
            Command::Down(a) => Some(&a.project),
            Command::Watch(a) => Some(&a.project),
            Command::Lock(a) => Some(&a.project),
            Command::Import(a) => Some(&a.project),
            Command::Kube(a) => a.project(),
            _ => None,
        }
    }
}

impl Cli {
    /// The format, checked against those the command takes.
    pub fn format(&self, allowed: &[Format], default: Format) -> Result<Format, Failed> {
        match self.format {
            None => Ok(default),
            Some(f) if allowed.contains(&f) => Ok(f),
            Some(f) => {
                let names: Vec<String> = allowed
                    .iter()
                    .filter_map(|a| a.to_possible_value().map(|v| v.get_name().to_string()))
                    .collect();
                let name = f
                    .to_possible_value()
                    .map(|v| v.get_name().to_string())
                    .unwrap_or_default();
                Err(Failed::Usage(format!(
                    "this command does not print `--format {name}`; it takes {}",
                    names.join(", ")
                )))
            }
        }
    }

    /// The load options from the flags and the environment.
    pub fn load_options(&self) -> servin::project::LoadOptions {
        servin::project::LoadOptions {
            project_name: self.project_name.clone(),
            env: std::env::vars().collect(),
        }
    }

    /// Finds and loads the project, rendering every problem on failure.
    pub fn load_project(&self) -> Result<servin::project::Loaded, Failed> {
        let cwd = std::env::current_dir().map_err(|e| Failed::Error(Box::new(e)))?;
        let path = servin::project::find(&cwd, self.file.as_deref())
            .map_err(|e| Failed::Error(Box::new(e)))?;
        if self.verbose > 0 {
            ui::info(&format!("loading {}", path.display()));
        }
        if let Some(name) = &self.project_name
            && !servin::project::values::is_dns_label(name)
        {
            let why = servin::project::values::dns_label_error(name).unwrap_or_default();
            return Err(Failed::Usage(format!(
                "project name `{name}` is not valid: {why}"
            )));
        }
        match servin::project::load(&path, &self.load_options())
            .map_err(|e| Failed::Error(Box::new(e)))?
        {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    ui::problem(w);
                }
                Ok(loaded)
            }
            Err(failure) => {
                ui::failure(&failure);
                Err(Failed::Reported)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("servin").chain(args.iter().copied()))
    }

    #[test]
    fn short_flags_belong_to_the_commands() {
        let cli = parse(&["logs", "-f", "web"]).unwrap();
        assert!(matches!(&cli.command, Command::Logs(a) if a.follow && a.containers == ["web"]));
        assert!(cli.file.is_none());
        let cli = parse(&["rm", "-f", "-v", "web"]).unwrap();
        assert!(matches!(&cli.command, Command::Rm(a) if a.force && a.volumes));
        let cli = parse(&["rmi", "-f", "busybox"]).unwrap();
        assert!(matches!(&cli.command, Command::Rmi(a) if a.force));
        let cli = parse(&["volume", "rm", "-f", "a", "b"]).unwrap();
        assert!(matches!(&cli.command, Command::Volume(_)));
        let cli = parse(&["run", "-v", "/a:/b", "busybox"]).unwrap();
        assert!(matches!(&cli.command, Command::Run(a) if a.container.volume == ["/a:/b"]));
        assert_eq!(parse(&["--verbose", "--verbose", "ps"]).unwrap().verbose, 2);
        assert_eq!(parse(&["ps", "--verbose"]).unwrap().verbose, 1);
        assert!(parse(&["-v", "ps"]).is_err(), "-v is no global flag");
        assert!(
            parse(&["ps", "-p", "x"]).is_err(),
            "-p is not taken after commands that read no project"
        );
    }

    #[test]
    fn project_flags_go_before_or_after_the_command() {
        let cli = parse(&["-f", "a.toml", "-p", "one", "config"]).unwrap();
        assert_eq!(cli.file.as_deref(), Some(std::path::Path::new("a.toml")));
        assert_eq!(cli.project_name.as_deref(), Some("one"));
        for cmd in [
            "validate", "config", "plan", "up", "down", "lock", "import", "init",
        ] {
            let cli = parse(&["-f", "a.toml", cmd, "-f", "b.toml", "-p", "two"]).unwrap();
            let p = cli.command.project_args().unwrap();
            assert_eq!(p.file.as_deref(), Some(std::path::Path::new("b.toml")));
            assert_eq!(p.project_name.as_deref(), Some("two"));
        }
    }
}
