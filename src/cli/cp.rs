//! `servin cp`.

use std::io::Write;
use std::path::Path;

use servin::client::Engine;
use servin::client::containers::PutArchiveOptions;
use servin::client::copy::{self, DestKind, Endpoint};

use super::{Cli, Format};
use crate::ui::{self, Failed};

/// Copy files and folders between a container and the host
///
/// One side is `CONTAINER:PATH` (a path relative to the container's `/`),
/// the other a path on the host, or `-`: a tar read from stdin (extracted
/// into the folder CONTAINER:PATH) or written to stdout (a tar of
/// CONTAINER:PATH). The container may be running or stopped; a copy into
/// a stopped container is there when it starts, and a copy to a path where
/// a volume is mounted goes into the volume.
///
/// As `docker cp`: a file copied to a missing DEST is created there (a DEST
/// ending in `/` must be an existing folder), over a file it replaces it,
/// into a folder it keeps its name. A folder copied to a missing DEST
/// becomes DEST; into an existing folder it goes inside it, or only its
/// content when SRC ends in `/.`; over a file it is refused.
///
/// Files keep their mode and times. Copied into a container they keep
/// their owners from the host, or with `-a` are owned by the container's
/// user; copied out they belong to you, or with `-a` keep the owners they
/// have in the container.
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "servin cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       servin cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"
)]
pub struct Args {
    /// Archive mode: into a container, owned by the container's user; out
    /// of a container, with the owners it has there (needs root)
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Follow a symlink given as SRC_PATH (links below it stay links)
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Print nothing but errors
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// What to copy: CONTAINER:PATH, a host path, or `-` (a tar on stdin)
    #[arg(value_name = "SRC")]
    pub src: String,
    /// Where to: CONTAINER:PATH, a host path, or `-` (a tar on stdout)
    #[arg(value_name = "DEST")]
    pub dest: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), Failed> {
    // Nothing but the copy is printed: no other format to give.
    cli.format(&[Format::Text], Format::Text)?;
    match (copy::endpoint(&args.src), copy::endpoint(&args.dest)) {
        (Endpoint::Container { .. }, Endpoint::Container { .. }) => Err(Failed::Usage(
            "copying between containers is not supported".to_string(),
        )),
        (Endpoint::Container { container, path }, dest) => {
            let engine = Engine::connect()?;
            from_container(&engine, args, &container, &path, &dest)
        }
        (src, Endpoint::Container { container, path }) => {
            let engine = Engine::connect()?;
            to_container(&engine, args, &src, &container, &path)
        }
        _ => Err(Failed::Usage(
            "one of SRC and DEST must be CONTAINER:PATH".to_string(),
        )),
    }
}

fn report(args: &Args, bytes: u64, to: &str) {
    if !args.quiet {
        ui::info(&format!(
            "Successfully copied {} to {to}",
            copy::size_text(bytes)
        ));
    }
}

fn from_container(
    engine: &Engine,
    args: &Args,
    container: &str,
    path: &str,
    dest: &Endpoint,
) -> Result<(), Failed> {
    let mut path = path.to_string();
    if args.follow_link
        && let Some(st) = engine.stat_path(container, &path)?
        && st.is_symlink()
    {
        path = st.link_target;
    }
    let (stat, mut tar) = engine.get_archive(container, &path)?;
    let Endpoint::Local(dest) = dest else {
        // `-`: the tar itself, as it arrives.
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut tar, &mut out)?;
        out.flush()?;
        return Ok(());
    };
    let kind = match std::fs::metadata(dest) {
        Ok(m) if m.is_dir() => DestKind::Dir,
        Ok(_) => DestKind::File,
        Err(_) => DestKind::Missing,
    };
    let place = copy::place(stat.is_dir(), dest, kind)?;
    if !Path::new(&place.dir).is_dir() {
        return Err(Failed::Error(
            format!("the destination folder {} does not exist", place.dir).into(),
        ));
    }
    let top = copy::base_of(&path);
    let rename = place.rename.as_deref().map(|new| (top.as_str(), new));
    let copied = copy::extract_local(&mut tar, Path::new(&place.dir), rename, args.archive)
        .map_err(|e| Failed::Error(format!("copy into {dest}: {e}").into()))?;
    report(args, copied.bytes, dest);
    Ok(())
}

fn to_container(
    engine: &Engine,
    args: &Args,
    src: &Endpoint,
    container: &str,
    path: &str,
) -> Result<(), Failed> {
    let opts = PutArchiveOptions {
        copy_uid_gid: args.archive,
    };
    let mut dest = engine.stat_path(container, path)?;
    let mut path = path.to_string();
    // A link at the destination is followed, as in the container.
    if let Some(st) = dest.as_ref().filter(|s| s.is_symlink()) {
        path = st.link_target.clone();
        dest = engine.stat_path(container, &path)?;
    }
    let kind = match &dest {
        Some(st) if st.is_dir() => DestKind::Dir,
        Some(_) => DestKind::File,
        None => DestKind::Missing,
    };
    let shown = format!("{container}:{path}");
    let Endpoint::Local(src) = src else {
        // `-`: stdin is a tar, extracted into the folder given.
        if kind != DestKind::Dir {
            return Err(Failed::Error(
                format!("the destination {shown} must be a folder").into(),
            ));
        }
        engine.put_archive(container, &path, opts, |out| {
            std::io::copy(&mut std::io::stdin().lock(), out)
        })?;
        return Ok(());
    };
    let follow = args.follow_link || copy::asserts_dir(src);
    let meta = if follow {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .map_err(|e| Failed::Error(format!("{src}: {e}").into()))?;
    if copy::asserts_dir(src) && !meta.is_dir() {
        return Err(Failed::Error(format!("{src} is not a folder").into()));
    }
    let place = copy::place(meta.is_dir(), &path, kind)?;
    if place.dir != path {
        match engine.stat_path(container, &place.dir)? {
            Some(st) if st.is_dir() => {}
            _ => {
                return Err(Failed::Error(
                    format!(
                        "the destination folder {container}:{} does not exist",
                        place.dir
                    )
                    .into(),
                ));
            }
        }
    }
    let top = place.rename.clone().unwrap_or_else(|| copy::base_of(src));
    let source = std::path::PathBuf::from(src);
    let copied = engine.put_archive(container, &place.dir, opts, move |out| {
        copy::write_local_tar(&source, &top, follow, out)
    })?;
    report(args, copied.bytes, &shown);
    Ok(())
}
