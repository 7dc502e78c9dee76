//! Builds the dashboard's page (`dashboard/`, TypeScript and Vite) into
//! `dashboard/dist` when it is missing or older than its sources, and
//! writes the list of its files for `src/dashboard/assets.rs` to embed
//! with `include_bytes!`. Needs `npm` only when the page must be rebuilt.

// A build script is not the CLI: it speaks to cargo on stdout
// (`cargo:` lines), to the user on stderr, and fails by its exit code.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The sources of the page: a change to any of them rebuilds it.
const SOURCES: [&str; 6] = [
    "src",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let page = root.join("dashboard");
    for s in SOURCES {
        println!("cargo:rerun-if-changed={}", page.join(s).display());
    }
    let dist = page.join("dist");
    println!(
        "cargo:rerun-if-changed={}",
        dist.join("index.html").display()
    );

    let sources = SOURCES.iter().filter_map(|s| newest(&page.join(s))).max();
    let built = std::fs::metadata(dist.join("index.html"))
        .and_then(|m| m.modified())
        .ok();
    let stale = match (built, sources) {
        (None, _) => true,
        (Some(b), Some(s)) => s > b,
        (Some(_), None) => false,
    };
    if stale {
        build(&page);
    }

    let mut files = Vec::new();
    list(&dist, &dist, &mut files);
    files.sort();
    if !files.iter().any(|(rel, _)| rel == "/index.html") {
        fail(&format!("{} holds no index.html", dist.display()));
    }
    let mut out = String::from(
        "/// The built page: (URL path, file).\npub static FILES: &[(&str, &[u8])] = &[\n",
    );
    for (rel, path) in &files {
        out.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out_dir.join("dashboard_files.rs"), out) {
        fail(&format!("cannot write {}: {e}", out_dir.display()));
    }
}

/// `npm ci` when the installed packages are missing or older than the
/// lock file, then `npm run build`.
fn build(page: &Path) {
    let installed = std::fs::metadata(page.join("node_modules/.package-lock.json"))
        .and_then(|m| m.modified())
        .ok();
    let locked = newest(&page.join("package-lock.json"));
    if installed.is_none() || locked > installed {
        npm(page, &["ci", "--no-audit", "--no-fund"]);
    }
    npm(page, &["run", "build"]);
}

fn npm(page: &Path, args: &[&str]) {
    match Command::new("npm").args(args).current_dir(page).status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!(
            "`npm {}` in {} failed ({s})",
            args.join(" "),
            page.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fail(
            "npm is not installed: building the dashboard's page needs Node.js and npm \
             (Debian: apt-get install nodejs npm, or run .ci/install-packages)",
        ),
        Err(e) => fail(&format!("cannot run npm in {}: {e}", page.display())),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: servin dashboard: {msg}");
    std::process::exit(1);
}

/// The newest modification time of a file or of any file below a folder.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|e| newest(&e.path()))
        .max()
}

/// Every file below `dir`, as (URL path from `base`, absolute path).
fn list(base: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        fail(&format!("cannot read {}", dir.display()));
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            list(base, &path, out);
        } else if let Ok(rel) = path.strip_prefix(base) {
            out.push((format!("/{}", rel.display()), path));
        }
    }
}
