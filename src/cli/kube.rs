//! `servin kube`: Kubernetes YAML.

use std::path::PathBuf;

use servin::kube::play;
use servin::project::desired::{DesiredOptions, desired};

use super::Cli;
use crate::ui::{self, Failed};

/// Run Kubernetes YAML on servin's engine
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: KubeCommand,
}

/// The `kube` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KubeCommand {
    Play(PlayArgs),
}

/// Run the Pods, Deployments and Services of a Kubernetes YAML file, or take them down
///
/// Reads every document of FILE and applies it as a servin project, through
/// the same plan and apply as `servin up`: a second play of the same file
/// changes nothing, a changed Deployment recreates its containers, and
/// containers the file no longer names are removed. Returns once the
/// containers are started.
///
/// Pods and Deployments become containers (`NAME`, or `NAME-CONTAINER` for
/// a pod of several; a Deployment's `replicas` numbered), init containers
/// `NAME-init-CONTAINER`, run to completion first, in order. Every container
/// joins the project network `default`, where a Service's name resolves to
/// the containers it selects. ConfigMaps and Secrets become env values
/// (`env[].valueFrom`, `envFrom`) and files bound read-only where a volume
/// mounts them, written under `.servin-kube/PROJECT/` beside FILE.
/// PersistentVolumeClaims and `emptyDir` volumes become named volumes;
/// exec and httpGet probes a healthcheck (httpGet runs `wget` in the
/// container).
///
/// Whatever servin does not run (another kind, a field it has no use for)
/// is named in a warning and skipped. A document that is not Kubernetes, a
/// Service selecting nothing, a reference to an undefined ConfigMap or a
/// Secret that does not decode is an error, and then nothing is applied.
///
/// The project name is `-p NAME`, else FILE's name without its extension,
/// made a DNS label.
#[derive(Debug, clap::Args)]
pub struct PlayArgs {
    /// The Kubernetes YAML file
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The project name [default: the file's name without its extension]
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Publish every Service port on the host at the same port number
    /// (`port: 8080` → host port 8080, to the container's `targetPort`). A
    /// container's own `hostPort` is always published
    #[arg(long, conflicts_with = "down")]
    pub publish: bool,
    /// Take down what FILE made instead: its containers and network, and its
    /// ConfigMap and Secret files (the file itself is not read again)
    #[arg(long)]
    pub down: bool,
    /// With `--down`: remove its volumes too (PersistentVolumeClaims and
    /// `emptyDir` volumes; their data is lost)
    #[arg(long, requires = "down")]
    pub volumes: bool,
}

/// `servin kube`.
pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    match &args.command {
        KubeCommand::Play(a) => play_cmd(cli, a),
    }
}

/// `servin kube play`.
fn play_cmd(cli: &Cli, args: &PlayArgs) -> Result<(), Failed> {
    cli.format(&[super::Format::Text], super::Format::Text)?;
    let name = project_name(cli, args)?;
    let files_dir = play::files::folder(&args.file, &name);
    if args.down {
        super::up::take_down(&name, args.volumes, false, None)?;
        play::files::remove(&files_dir).map_err(|e| Failed::Error(Box::new(e)))?;
        return Ok(());
    }
    let text = std::fs::read_to_string(&args.file).map_err(|e| {
        Failed::Error(Box::new(ReadError {
            path: args.file.clone(),
            source: e,
        }))
    })?;
    let options = play::Options {
        project: name,
        files_dir: files_dir.clone(),
        publish: args.publish,
    };
    let played = play::parse(&text)
        .and_then(|m| play::project(&m, &options))
        .map_err(|e| bad_file(&args.file, e))?;
    for w in &played.warnings {
        ui::warning(&w.to_string());
    }
    let mut desired = desired(&played.project, &DesiredOptions::default())
        .map_err(|e| Failed::Error(Box::new(e)))?;
    // Init containers run once: a later play keeps them once they completed.
    for c in &mut desired.containers {
        if played.run_once.contains(&c.service) {
            c.body
                .labels
                .get_or_insert_with(Default::default)
                .insert(servin_proto::labels::RUN_ONCE.into(), "true".into());
        }
    }
    let engine = servin::client::Engine::connect()?;
    play::files::write(&files_dir, &played.dirs, &played.files)
        .map_err(|e| Failed::Error(Box::new(e)))?;
    super::up::apply(&engine, &desired, &[], false, "kube play")
}

/// `-p` after or before the command, else the file's stem as a DNS label.
fn project_name(cli: &Cli, args: &PlayArgs) -> Result<String, Failed> {
    if let Some(name) = args.project_name.as_ref().or(cli.project_name.as_ref()) {
        if let Some(why) = servin::project::values::misc::dns_label_error(name) {
            return Err(Failed::Usage(format!(
                "project name `{name}` is not valid: {why}"
            )));
        }
        return Ok(name.clone());
    }
    let stem = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(dns_label(&stem))
}

/// `stem` lowercased, other characters than letters and digits made `-`,
/// at most 63 characters; `kube` when nothing is left.
fn dns_label(stem: &str) -> String {
    let mut out = String::new();
    for c in stem.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "kube".to_string()
    } else {
        out
    }
}

/// The file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {}", path.display())]
struct ReadError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

fn bad_file(path: &std::path::Path, e: play::PlayError) -> Failed {
    ui::error(&format!("{}: {e}", ui::shown(path)));
    ui::info("nothing was applied");
    Failed::Reported
}

#[cfg(test)]
mod tests {
    use super::dns_label;

    #[test]
    fn file_names_become_dns_labels() {
        assert_eq!(dns_label("web-app"), "web-app");
        assert_eq!(dns_label("My_App.v2"), "my-app-v2");
        assert_eq!(dns_label("__"), "kube");
        assert_eq!(dns_label(&"a".repeat(80)).len(), 63);
    }
}
