//! Where the engine listens and keeps its state, read the way the engine
//! reads them (`SERVIN_HOST`, `SERVIN_ROOT`).

use std::fmt;
use std::path::PathBuf;

/// Default socket of a native engine.
pub const DEFAULT_SOCKET: &str = "/run/servin/engine.sock";
/// Default state root of a native engine.
pub const DEFAULT_ROOT: &str = "/var/lib/servin";

/// The engine's address and state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The unix socket.
    pub socket: PathBuf,
    /// The state root (where a started engine's log goes).
    pub root: PathBuf,
}

impl Address {
    /// From `SERVIN_HOST` and `SERVIN_ROOT`, with the engine's defaults.
    pub fn from_env() -> Self {
        Self::from_values(
            std::env::var("SERVIN_HOST").ok().as_deref(),
            std::env::var_os("SERVIN_ROOT").map(PathBuf::from),
        )
    }

    /// From the two settings; empty values count as unset. The socket does
    /// not follow the root: the engine uses the default socket unless
    /// `SERVIN_HOST` says otherwise.
    pub fn from_values(host: Option<&str>, root: Option<PathBuf>) -> Self {
        let socket = host
            .filter(|h| !h.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), socket_path);
        let root = root
            .filter(|r| !r.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        Self { socket, root }
    }
}

/// The mode in use and the engine's address in it: `SERVIN_HOST` when set
/// (in either mode), else the native default or the VM's `engine.sock`.
pub fn resolve() -> Result<(crate::vm::Mode, Address), super::Error> {
    let mode = crate::vm::Mode::from_env()?;
    let host = std::env::var("SERVIN_HOST").ok().filter(|h| !h.is_empty());
    if mode == crate::vm::Mode::Vm && host.is_none() {
        let paths = crate::vm::VmPaths::from_env()
            .ok_or_else(|| super::Error::Vm(Box::new(crate::vm::MachineError::NoVmDir)))?;
        return Ok((
            mode,
            Address {
                socket: paths.engine_socket(),
                root: paths.dir,
            },
        ));
    }
    Ok((mode, Address::from_env()))
}

/// Turns `unix:///path` or a bare path into the path.
pub fn socket_path(host: &str) -> PathBuf {
    PathBuf::from(host.strip_prefix("unix://").unwrap_or(host))
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unix://{}", self.socket.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let a = Address::from_values(None, None);
        assert_eq!(a.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(a.to_string(), "unix:///run/servin/engine.sock");
        let b = Address::from_values(Some("unix:///tmp/x.sock"), Some("/tmp/r".into()));
        assert_eq!(b.socket, PathBuf::from("/tmp/x.sock"));
        assert_eq!(b.root, PathBuf::from("/tmp/r"));
        let c = Address::from_values(Some("/tmp/y.sock"), Some("".into()));
        assert_eq!(c.socket, PathBuf::from("/tmp/y.sock"));
        assert_eq!(c.root, PathBuf::from(DEFAULT_ROOT));
    }
}
