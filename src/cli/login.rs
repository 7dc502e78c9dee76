//! `servin login` and `servin logout`.

use std::io::BufRead;

use servin::client::auth::{self, Credentials};

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Store credentials for a registry
///
/// Checks them with the registry (through the engine, which it starts when
/// none answers), then writes them to `~/.servin/auth.json` (mode 0600), or
/// with `--docker-config` to `~/.docker/config.json`; `pull` and `push`
/// send them to the engine for that registry. Credentials the registry
/// refuses are not stored.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The registry host, e.g. `registry.example:5000`
    pub registry: String,
    /// The user name
    #[arg(short, long)]
    pub username: Option<String>,
    /// Read the password from stdin (its first line)
    #[arg(long)]
    pub password_stdin: bool,
    /// Store the credentials without checking them (for a registry that
    /// cannot be reached now)
    #[arg(long)]
    pub no_verify: bool,
    /// Store them in `~/.docker/config.json` (as the docker CLI does
    /// without a credential helper) instead of servin's own file, so the
    /// docker CLI uses them too
    #[arg(long)]
    pub docker_config: bool,
}

/// Forget the credentials stored for a registry
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// The registry host
    pub registry: String,
}

fn read_line(prompt: Option<&str>) -> Result<String, Failed> {
    if let Some(p) = prompt {
        ui::prompt(p);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn login(cli: &Cli, args: &LoginArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let username = match &args.username {
        Some(u) => u.clone(),
        None if args.password_stdin => {
            return Err(Failed::Usage(
                "--password-stdin needs --username".to_string(),
            ));
        }
        None => read_line(Some("Username: "))?,
    };
    let password = if args.password_stdin {
        read_line(None)?
    } else {
        read_line(Some("Password: "))?
    };
    if username.is_empty() || password.is_empty() {
        return Err(Failed::Usage(
            "user name and password must not be empty".to_string(),
        ));
    }
    let credentials = Credentials { username, password };
    if !args.no_verify {
        let engine = servin::client::Engine::connect()?;
        if let Err(e) = engine.login(&args.registry, &credentials) {
            ui::error_chain(&e);
            if matches!(e, servin::client::Error::Engine { status, .. } if status >= 500) {
                ui::info(&format!(
                    "the credentials were not stored; to store them without checking while {} cannot be reached, use `servin login --no-verify`",
                    args.registry
                ));
            }
            return Err(Failed::Reported);
        }
    }
    let path = if args.docker_config {
        auth::store_in_docker_config(&args.registry, &credentials)?
    } else {
        auth::store(&args.registry, &credentials)?
    };
    if args.no_verify {
        ui::info(&format!(
            "credentials for {} stored in {} (not verified: they are checked on the next pull or push)",
            args.registry,
            path.display()
        ));
    } else {
        ui::info(&format!(
            "Login Succeeded: credentials for {} stored in {}",
            args.registry,
            path.display()
        ));
    }
    Ok(())
}

pub fn logout(cli: &Cli, args: &LogoutArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    if auth::remove(&args.registry)? {
        ui::info(&format!("removed the credentials for {}", args.registry));
    } else {
        ui::info(&format!("no credentials stored for {}", args.registry));
    }
    Ok(())
}
