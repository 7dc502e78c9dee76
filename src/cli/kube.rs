//! `servin kube`: Kubernetes from the project, and back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use servin::client::Engine;
use servin::kube::generate::{self as kgen, Expose, Options};
use servin::project::Loaded;
use servin::project::desired::image_reference;
use servin::project::lock;

use super::progress::Progress;
use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Kubernetes: write the project as Kubernetes objects
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: KubeCommand,
}

/// The `kube` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KubeCommand {
    Generate(GenerateArgs),
}

impl Args {
    /// The project flags given after the subcommand.
    pub fn project(&self) -> &super::ProjectArgs {
        match &self.command {
            KubeCommand::Generate(a) => &a.project,
        }
    }
}

/// `servin kube ...`.
pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    match &args.command {
        KubeCommand::Generate(a) => generate(cli, a),
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
        assert_eq!(args.project().file.as_deref(), Some(Path::new("b.toml")));
        let KubeCommand::Generate(g) = &args.command;
        assert_eq!(g.services, ["web", "db"]);
        assert_eq!(g.output, Path::new("k8s"));
        assert_eq!(g.expose, ExposeArg::Nodeport);
        assert_eq!(g.registry.as_deref(), Some("reg:5000/team"));
        assert!(g.no_secrets);
        let cli = Cli::try_parse_from(["servin", "kube", "generate"]).unwrap();
        let Command::Kube(args) = &cli.command else {
            panic!()
        };
        let KubeCommand::Generate(g) = &args.command;
        assert_eq!(g.output, Path::new("-"));
        assert_eq!(g.expose, ExposeArg::Clusterip);
        assert!(Cli::try_parse_from(["servin", "kube", "generate", "--expose", "x"]).is_err());
    }
}
