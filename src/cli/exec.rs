//! `servin exec`.

use bollard_stubs::models::ExecConfig;

use super::stream;
use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Run a command in a running container
///
/// The command gets the container's environment, user and working folder
/// unless `-e`, `-u` or `-w` say otherwise. Its exit code becomes this
/// command's. With `-t` it gets a terminal; with `-i` this terminal's input.
///
/// In a project folder (or with `-f` / `-p` before the command), CONTAINER
/// may be a service of the project: the command runs in its first replica.
/// A service wins over a container of the same name.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start the command and return at once
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Send this terminal's input to the command
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the command a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set an environment variable (`KEY=VALUE`); repeat for more
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Run as this user: `name`, `uid`, `name:group` or `uid:gid`
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,
    /// The working folder of the command
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// Run with every capability
    #[arg(long)]
    pub privileged: bool,
    /// The container, by name or ID, or a service of the project
    pub container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    stream::check_tty(args.tty, args.interactive)?;
    let engine = servin::client::Engine::connect()?;
    let config = ExecConfig {
        attach_stdin: Some(args.interactive && !args.detach),
        attach_stdout: Some(!args.detach),
        attach_stderr: Some(!args.detach),
        tty: Some(args.tty),
        env: (!args.env.is_empty()).then(|| args.env.clone()),
        cmd: Some(args.command.clone()),
        privileged: Some(args.privileged),
        user: args.user.clone(),
        working_dir: args.workdir.clone(),
        console_size: (args.tty && !args.detach)
            .then(stream::size)
            .flatten()
            .map(|(rows, cols)| vec![usize::from(rows), usize::from(cols)]),
        ..Default::default()
    };
    let container =
        match super::services::containers(cli, &engine, std::slice::from_ref(&args.container))? {
            Some(list) => list
                .into_iter()
                .next()
                .unwrap_or_else(|| args.container.clone()),
            None => args.container.clone(),
        };
    let id = engine.exec_create(&container, &config)?;
    if args.detach {
        let body = serde_json::json!({ "Detach": true, "Tty": args.tty }).to_string();
        let resp = engine.send(
            hyper::Method::POST,
            &format!("/exec/{}/start", servin::client::encode(&id)),
            &[("Content-Type", "application/json".to_string())],
            bytes::Bytes::from(body),
            "start the exec",
        )?;
        engine.check(resp, "start the exec")?;
        return Ok(());
    }
    match stream::exec(&engine, &id, args.tty, args.interactive) {
        Ok(code) => super::run::exit_with(code),
        Err(e) => {
            ui::error_chain(&e);
            let text = e.to_string();
            Err(Failed::Code(
                if text.contains("executable file not found") || text.contains("no such file") {
                    127
                } else if text.contains("permission denied") {
                    126
                } else {
                    1
                },
            ))
        }
    }
}
