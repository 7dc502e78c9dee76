//! Where the engine keeps its state and where it listens.

use std::path::PathBuf;

/// Default state root of a native engine.
pub const DEFAULT_ROOT: &str = "/var/lib/servin";
/// Default socket of a native engine.
pub const DEFAULT_SOCKET: &str = "/run/servin/engine.sock";

/// The engine's settings, read from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// State root (`SERVIN_ROOT`).
    pub root: PathBuf,
    /// Unix socket path (`SERVIN_HOST`, `unix:///path` or a bare path).
    pub socket: PathBuf,
    /// Registries reached over plain `http://` besides loopback ones
    /// (`SERVIN_INSECURE_REGISTRIES`, comma separated `host[:port]`).
    pub insecure_registries: Vec<String>,
    /// Home folder holding `.servin/auth.json` and `.docker/config.json`.
    pub home: Option<PathBuf>,
}

impl Config {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Self {
        let root = std::env::var_os("SERVIN_ROOT")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_ROOT), PathBuf::from);
        let socket = std::env::var("SERVIN_HOST")
            .ok()
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), |v| socket_path(&v));
        let insecure_registries = std::env::var("SERVIN_INSECURE_REGISTRIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let home = std::env::var_os("HOME").map(PathBuf::from);
        Self {
            root,
            socket,
            insecure_registries,
            home,
        }
    }
}

/// Turns a `SERVIN_HOST` value (`unix:///path` or a bare path) into a path.
pub fn socket_path(host: &str) -> PathBuf {
    PathBuf::from(host.strip_prefix("unix://").unwrap_or(host))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn host_url_and_bare_path_give_the_same_socket() {
        assert_eq!(
            socket_path("unix:///tmp/x/engine.sock"),
            PathBuf::from("/tmp/x/engine.sock")
        );
        assert_eq!(
            socket_path("/tmp/x/engine.sock"),
            PathBuf::from("/tmp/x/engine.sock")
        );
    }
}
