//! `servin kube`: Kubernetes from the project (`generate`), and Kubernetes
//! YAML run on servin's engine (`play`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use servin::client::Engine;
use servin::kube::generate::{self as kgen, Expose, Options};
use servin::kube::play;
use servin::project::Loaded;
use servin::project::desired::{DesiredOptions, desired, image_reference};
use servin::project::lock;

use super::progress::Progress;
use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Kubernetes: write the project as Kubernetes objects, or run Kubernetes YAML
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: KubeCommand,
}

/// The `kube` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KubeCommand {
    Generate(GenerateArgs),
    Play(PlayArgs),
}

impl Args {
    /// The project flags given after the subcommand (`play` takes its
    /// own `-p`).
    pub fn project(&self) -> Option<&super::ProjectArgs> {
        match &self.command {
            KubeCommand::Generate(a) => Some(&a.project),
            KubeCommand::Play(_) => None,
        }
    }
}

/// `servin kube ...`.
pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    match &args.command {
        KubeCommand::Generate(a) => generate(cli, a),
        KubeCommand::Play(a) => play_cmd(cli, a),
    }
}

/// How published ports are reached in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExposeArg {
    /// Inside the cluster only
    Clusterip,
    /// Also on every node's port (a `<name>-public` NodePort Service)
    Nodeport,
    /// Also through the cluster's load balancer (a `<name>-public` Service)
    Loadbalancer,
}

/// Write the project as Kubernetes objects (YAML)
///
/// Each container becomes a Deployment (a StatefulSet when it alone mounts
/// a named volume), with a Service when it has ports, a ConfigMap of its
/// environment, probes from its healthcheck and an init container per
/// `healthy` dependency; named volumes become PersistentVolumeClaims
/// (`servin.size` label, else 1Gi), secrets Secrets, networks
/// NetworkPolicies. Images are named by their digest in servin.lock. What
/// does not map (bind mounts, workspaces, host networking, ...) is named
/// in a warning on stderr. The objects come in a stable order.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub project: super::ProjectArgs,
    /// Only these containers [default: all]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// `-` for one multi-document YAML on stdout, or a folder to write one
    /// file per object in (`<kind>-<name>.yaml`), made if missing
    #[arg(short, long, value_name = "DIR|-", default_value = "-")]
    pub output: PathBuf,
    /// The type of the Services of published ports
    #[arg(long, value_enum, default_value = "clusterip")]
    pub expose: ExposeArg,
    /// Push the images the project builds to this registry (`HOST/PREFIX`,
    /// e.g. `registry.example:5000/team`) and name them by the pushed
    /// digest; needed when a container runs a built image
    #[arg(long, value_name = "HOST/PREFIX")]
    pub registry: Option<String>,
    /// Leave the Secrets out (they are named on stderr); the pods still
    /// mount them, so create them in the cluster first
    #[arg(long)]
    pub no_secrets: bool,
}

fn generate(cli: &Cli, args: &GenerateArgs) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let loaded = cli.load_project()?;
    let project = &loaded.project;
    let mut options = Options {
        containers: args.services.clone(),
        expose: match args.expose {
            ExposeArg::Clusterip => Expose::ClusterIp,
            ExposeArg::Nodeport => Expose::NodePort,
            ExposeArg::Loadbalancer => Expose::LoadBalancer,
        },
        locked: super::lock::read(&loaded)?,
        no_secrets: args.no_secrets,
        ..Options::default()
    };
    let containers = kgen::selected(project, &options)?;
    let built = kgen::built_images(project, &containers);
    if !built.is_empty() {
        match &args.registry {
            None => {
                let first = built.iter().next().cloned().unwrap_or_default();
                return Err(kgen::GenerateError::BuiltImage { image: first }.into());
            }
            Some(registry) => options.built = push_built(&loaded, &built, registry)?,
        }
    }
    if !args.no_secrets {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        options.secrets = kgen::read_secrets(project, &containers, &env)?;
    }
    let generated = kgen::generate(project, &options)?;
    for w in &generated.warnings {
        ui::warning(&w.to_string());
    }
    if args.output == Path::new("-") {
        return ui::data(&kgen::render_yaml(&generated.objects));
    }
    write_folder(&args.output, &generated.objects)
}

/// Writes one file per object in `dir`, made if missing.
fn write_folder(dir: &Path, objects: &[kgen::Object]) -> Result<(), Failed> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Failed::Error(format!("cannot make {}: {e}", dir.display()).into()))?;
    for o in objects {
        let path = dir.join(o.file_name());
        // A new file rather than the old one truncated: ext4 flushes a
        // truncated file's data on close (auto_da_alloc), which made
        // writing a folder again 20 times slower than the first time.
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Failed::Error(
                    format!("cannot replace {}: {e}", path.display()).into(),
                ));
            }
        }
        std::fs::write(&path, o.to_yaml())
            .map_err(|e| Failed::Error(format!("cannot write {}: {e}", path.display()).into()))?;
    }
    ui::info(&format!(
        "wrote {} objects in {}",
        objects.len(),
        ui::shown(dir)
    ));
    Ok(())
}

/// Tags each built image as `REGISTRY/<project>-<image>:latest`, pushes it
/// and returns the references by digest, by `[images]` key.
fn push_built(
    loaded: &Loaded,
    built: &std::collections::BTreeSet<String>,
    registry: &str,
) -> Result<BTreeMap<String, String>, Failed> {
    let registry = registry.trim_end_matches('/');
    if registry.is_empty() || registry.contains(char::is_whitespace) || registry.contains('@') {
        return Err(Failed::Usage(format!(
            "--registry {registry:?} is not HOST/PREFIX (e.g. registry.example:5000/team)"
        )));
    }
    let engine = Engine::connect()?;
    let mut out = BTreeMap::new();
    for key in built {
        let local = image_reference(&loaded.project, key);
        let target = format!("{registry}/{local}:latest");
        engine.tag(&local, &target).map_err(|e| {
            Failed::Error(
                format!("cannot tag image {key} ({local}) as {target}: {e}; build it first (`servin up` or `servin build`)").into(),
            )
        })?;
        let mut progress = Progress::new(false);
        let mut digest = None;
        let result = engine.push(&target, |e| {
            if let Some(d) = e
                .status
                .as_deref()
                .and_then(|s| s.split_once("digest: "))
                .and_then(|(_, rest)| rest.split_whitespace().next())
                && lock::is_digest(d)
            {
                digest = Some(d.to_string());
            }
            progress.event(e);
        });
        progress.finish();
        result?;
        let digest = match digest {
            Some(d) => d,
            None => {
                let image = engine.inspect(&target)?;
                lock::digest_among(&target, image.repo_digests.as_deref().unwrap_or_default())
                    .ok_or_else(|| {
                        Failed::Error(format!("the registry gave no digest for {target}").into())
                    })?
            }
        };
        ui::info(&format!("pushed {target} at {digest}"));
        out.insert(key.clone(), lock::pinned(&target, &digest));
    }
    Ok(out)
}

/// Run the Pods, Deployments, StatefulSets and Services of a Kubernetes YAML file, or take them down
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
    #![allow(clippy::unwrap_used)]
    use clap::Parser;

    use super::super::{Cli, Command};
    use super::*;

    #[test]
    fn generate_takes_its_flags_and_the_project_flags() {
        let cli = Cli::try_parse_from([
            "servin",
            "kube",
            "generate",
            "-f",
            "b.toml",
            "-o",
            "k8s",
            "--expose",
            "nodeport",
            "--registry",
            "reg:5000/team",
            "--no-secrets",
            "web",
            "db",
        ])
        .unwrap();
        let Command::Kube(args) = &cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(
            args.project().and_then(|p| p.file.as_deref()),
            Some(Path::new("b.toml"))
        );
        let KubeCommand::Generate(g) = &args.command else {
            panic!("{args:?}")
        };
        assert_eq!(g.services, ["web", "db"]);
        assert_eq!(g.output, Path::new("k8s"));
        assert_eq!(g.expose, ExposeArg::Nodeport);
        assert_eq!(g.registry.as_deref(), Some("reg:5000/team"));
        assert!(g.no_secrets);
        let cli = Cli::try_parse_from(["servin", "kube", "generate"]).unwrap();
        let Command::Kube(args) = &cli.command else {
            panic!()
        };
        let KubeCommand::Generate(g) = &args.command else {
            panic!("{args:?}")
        };
        assert_eq!(g.output, Path::new("-"));
        assert_eq!(g.expose, ExposeArg::Clusterip);
        assert!(Cli::try_parse_from(["servin", "kube", "generate", "--expose", "x"]).is_err());
    }

    #[test]
    fn file_names_become_dns_labels() {
        assert_eq!(dns_label("web-app"), "web-app");
        assert_eq!(dns_label("My_App.v2"), "my-app-v2");
        assert_eq!(dns_label("__"), "kube");
        assert_eq!(dns_label(&"a".repeat(80)).len(), 63);
    }
}
