//! `servin lock`, and the lock file handling `up` and `plan` share.

use std::collections::BTreeMap;

use servin::client::Engine;
use servin::project::Loaded;
use servin::project::lock::{self, Lock};

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Write or refresh `servin.lock`, the image digests the project runs
///
/// The lock file sits beside the project file and maps each image the
/// project's containers name to the digest the registry gave for it. `up`
/// writes the entries it lacks and then runs every locked image by digest
/// (`repository@sha256:...`), so an image retagged in the registry changes
/// nothing until the lock moves. Commit `servin.lock` with the project file
/// so everyone runs the same images. Without `--update`, this command only
/// adds the missing entries (an image already present is locked at its
/// registry digest without asking the registry); `--update` asks the
/// registry again for every image, or for the IMAGEs named, and a later `up`
/// recreates the containers whose image changed. The base images of the
/// images the project builds (their Dockerfiles' `FROM` and `COPY --from`
/// images) are locked too, and the builds start from the locked digests.
/// Images the project builds, images that were only imported or built here
/// (they have no registry digest) and references that already name a
/// digest are not locked.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub project: super::ProjectArgs,
    /// Ask the registry again instead of keeping the locked digests
    #[arg(long)]
    pub update: bool,
    /// With `--update`, only these images (as written in the project file
    /// or in the lock file)
    #[arg(value_name = "IMAGE", requires = "update")]
    pub images: Vec<String>,
}

/// `servin lock`.
pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    cli.format(&[Format::Text], Format::Text)?;
    let loaded = cli.load_project()?;
    let mut wanted = lock::lockable_images(&loaded.project);
    wanted.extend(lock::lockable_bases(&loaded.project));
    let mut update = Vec::new();
    if args.update {
        if args.images.is_empty() {
            update = wanted.iter().cloned().collect();
        } else {
            for i in &args.images {
                let found = wanted
                    .iter()
                    .find(|w| *w == i || lock::full_repository(w) == lock::full_repository(i));
                match found {
                    Some(w) => update.push(w.clone()),
                    None => {
                        return Err(Failed::Usage(format!(
                            "no image {i} in project {} (it names: {})",
                            loaded.project.project.name,
                            wanted.iter().cloned().collect::<Vec<_>>().join(", ")
                        )));
                    }
                }
            }
        }
    }
    let engine = Engine::connect()?;
    let (_, failed) = refresh(&engine, &loaded, &update, true)?;
    if failed {
        return Err(Failed::Reported);
    }
    Ok(())
}

/// The locked digests `plan` and `up --dry-run` use: read, never written.
pub fn read(loaded: &Loaded) -> Result<BTreeMap<String, String>, Failed> {
    lock::locked(&loaded.path, &loaded.project).map_err(|e| Failed::Error(Box::new(e)))
}

/// Brings the lock file up to date for `up`: locks the images it lacks,
/// asks the registry again for those in `update`, drops entries the project
/// no longer names, and writes the file when anything changed. Returns the
/// digests to run, and whether any image could not be locked (reported as
/// a warning, or as an error when `strict`).
pub fn refresh(
    engine: &Engine,
    loaded: &Loaded,
    update: &[String],
    strict: bool,
) -> Result<(BTreeMap<String, String>, bool), Failed> {
    let path = lock::path_beside(&loaded.path);
    let old = Lock::read(&path).map_err(|e| Failed::Error(Box::new(e)))?;
    let had_file = old.is_some();
    let old = old.unwrap_or_else(Lock::new);
    let mut new = Lock::new();
    let mut failed = false;
    let mut wanted = lock::lockable_images(&loaded.project);
    wanted.extend(lock::lockable_bases(&loaded.project));
    for reference in wanted {
        let fetch = update.contains(&reference);
        if !fetch && let Some(d) = old.images.get(&reference) {
            new.images.insert(reference, d.clone());
            continue;
        }
        match resolve(engine, &reference, fetch) {
            Ok(Some(digest)) => {
                match old.images.get(&reference) {
                    Some(d) if *d == digest => {}
                    Some(d) => ui::info(&format!("{reference}: {d} -> {digest}")),
                    None => ui::info(&format!("locked {reference} at {digest}")),
                }
                new.images.insert(reference, digest);
            }
            Ok(None) => {
                if strict {
                    ui::info(&format!(
                        "{reference} has no registry digest (built or imported here): not locked"
                    ));
                }
            }
            Err(e) => {
                failed = true;
                let msg = format!("cannot lock {reference}: {e}");
                if strict {
                    ui::error(&msg);
                } else {
                    ui::warning(&msg);
                }
                if let Some(d) = old.images.get(&reference) {
                    new.images.insert(reference, d.clone());
                }
            }
        }
    }
    if new != old || (!had_file && !new.images.is_empty()) || (strict && !had_file) {
        new.write(&path).map_err(|e| Failed::Error(Box::new(e)))?;
        if strict {
            ui::info(&format!("wrote {}", ui::shown(&path)));
        }
    } else if strict {
        ui::info(&format!("{} is up to date", ui::shown(&path)));
    }
    Ok((new.images, failed))
}

/// The registry digest of `reference`: the local image's when it has one
/// and `fetch` is false, else the one a pull reports. `None` for a local
/// image that never came from a registry.
fn resolve(
    engine: &Engine,
    reference: &str,
    fetch: bool,
) -> Result<Option<String>, servin::client::Error> {
    let local = engine.inspect(reference).ok();
    let local_digest = local
        .as_ref()
        .and_then(|i| lock::digest_among(reference, i.repo_digests.as_deref().unwrap_or_default()));
    match (&local, local_digest) {
        (Some(_), Some(d)) if !fetch => return Ok(Some(d)),
        (Some(_), None) => return Ok(None),
        _ => {}
    }
    let mut digest = None;
    engine.pull(reference, None, |e| {
        if let Some(d) = e.status.as_deref().and_then(|s| s.strip_prefix("Digest: "))
            && lock::is_digest(d.trim())
        {
            digest = Some(d.trim().to_string());
        }
    })?;
    if digest.is_none() {
        let image = engine.inspect(reference)?;
        digest = lock::digest_among(reference, image.repo_digests.as_deref().unwrap_or_default());
    }
    Ok(digest)
}
