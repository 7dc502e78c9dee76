//! The user's choices: which mode servin runs in, and the VM's size.
//!
//! The mode is `SERVIN_MODE` (`vm` or `native`), else `mode` in the user's
//! `~/.config/servin/config.toml` (`$XDG_CONFIG_HOME/servin/config.toml`),
//! else native. The VM's size and its shared host folders are
//! `vm-config.json` in the VM folder, written with the defaults on first
//! start and read on every start.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// On this host, as root.
    Native,
    /// In servin's VM, as the user.
    Vm,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Vm => "vm",
        }
    }

    fn parse(value: &str, from: &str) -> Result<Self, SettingsError> {
        match value.trim() {
            "native" => Ok(Self::Native),
            "vm" => Ok(Self::Vm),
            other => Err(SettingsError::Mode {
                from: from.to_string(),
                value: other.to_string(),
            }),
        }
    }

    /// The mode from the environment and the user's settings.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_values(
            std::env::var("SERVIN_MODE").ok().as_deref(),
            user_config_path().as_deref(),
        )
    }

    pub fn from_values(env: Option<&str>, config: Option<&Path>) -> Result<Self, SettingsError> {
        if let Some(v) = env.filter(|v| !v.is_empty()) {
            return Self::parse(v, "SERVIN_MODE");
        }
        let Some(path) = config else {
            return Ok(Self::Native);
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::Native),
            Err(source) => {
                return Err(SettingsError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let config: UserConfig = toml::from_str(&text).map_err(|e| SettingsError::Parse {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        match config.mode {
            Some(m) => Self::parse(&m, &format!("mode in {}", path.display())),
            None => Ok(Self::Native),
        }
    }
}

/// `~/.config/servin/config.toml`.
#[derive(Debug, Default, Deserialize)]
struct UserConfig {
    mode: Option<String>,
}

/// The user's settings file: `$XDG_CONFIG_HOME/servin/config.toml`, else
/// `~/.config/servin/config.toml`.
pub fn user_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("servin").join("config.toml"))
}

/// A settings problem.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{from} is {value:?}: want \"vm\" or \"native\"")]
    Mode { from: String, value: String },
    #[error("{}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: {message}", .path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The VM's size and shared folders (`vm-config.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    pub cpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
    /// Host folders mounted in the guest at the same path (9p), where
    /// bind mounts may come from. A file written before the key existed
    /// gets the default: the home folder and `/tmp`.
    #[serde(default = "default_shares")]
    pub shares: Vec<String>,
}

/// The user's home folder (`$HOME`) and the system temp folder `/tmp`.
pub fn default_shares() -> Vec<String> {
    let home = std::env::var("HOME")
        .ok()
        .filter(|h| h.starts_with('/') && servin_values::share::normalize_share(h).is_ok());
    home.into_iter().chain(["/tmp".to_string()]).collect()
}

impl Default for VmConfig {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get().min(4) as u32)
            .unwrap_or(2);
        Self {
            cpus,
            memory_mib: 2048,
            disk_gib: 64,
            shares: default_shares(),
        }
    }
}

impl VmConfig {
    /// Reads the file, writing the defaults there when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, SettingsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let config = Self::default();
                let write = |source| SettingsError::Write {
                    path: path.to_path_buf(),
                    source,
                };
                let text = serde_json::to_string_pretty(&config)
                    .map_err(|e| write(std::io::Error::other(e)))?;
                let tmp = path.with_extension("json.tmp");
                std::fs::write(&tmp, text + "\n").map_err(write)?;
                std::fs::rename(&tmp, path).map_err(write)?;
                Ok(config)
            }
            Err(source) => Err(SettingsError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, SettingsError> {
        let config: Self = serde_json::from_str(text).map_err(|e| SettingsError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| SettingsError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if !(1..=64).contains(&config.cpus) {
            return Err(invalid(format!("cpus is {}: want 1 to 64", config.cpus)));
        }
        if !(256..=1024 * 1024).contains(&config.memory_mib) {
            return Err(invalid(format!(
                "memory_mib is {}: want 256 or more (the engine and its containers live in it)",
                config.memory_mib
            )));
        }
        if !(1..=16 * 1024).contains(&config.disk_gib) {
            return Err(invalid(format!(
                "disk_gib is {}: want 1 to 16384",
                config.disk_gib
            )));
        }
        for (i, share) in config.shares.iter().enumerate() {
            servin_values::share::normalize_share(share)
                .map_err(|e| invalid(format!("shares[{i}] {e}")))?;
        }
        Ok(config)
    }

    /// The shares to mount, normalised, each once, none inside another.
    pub fn shares(&self) -> Vec<PathBuf> {
        let all: Vec<PathBuf> = self
            .shares
            .iter()
            .filter_map(|s| servin_values::share::normalize_share(s).ok())
            .collect();
        servin_values::share::outermost(&all)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mode_from_env_then_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        assert_eq!(Mode::from_values(None, Some(&file)).unwrap(), Mode::Native);
        std::fs::write(&file, "mode = \"vm\"\n").unwrap();
        assert_eq!(Mode::from_values(None, Some(&file)).unwrap(), Mode::Vm);
        assert_eq!(
            Mode::from_values(Some("native"), Some(&file)).unwrap(),
            Mode::Native
        );
        let e = Mode::from_values(Some("kvm"), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "SERVIN_MODE is \"kvm\": want \"vm\" or \"native\""
        );
        std::fs::write(&file, "mode = \"cloud\"\n").unwrap();
        let e = Mode::from_values(None, Some(&file)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "mode in {} is \"cloud\": want \"vm\" or \"native\"",
                file.display()
            )
        );
        std::fs::write(&file, "mode = [").unwrap();
        assert!(matches!(
            Mode::from_values(None, Some(&file)),
            Err(SettingsError::Parse { .. })
        ));
    }

    #[test]
    fn vm_config_defaults_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm-config.json");
        let made = VmConfig::load_or_create(&path).unwrap();
        assert_eq!(made, VmConfig::default());
        assert_eq!(VmConfig::load_or_create(&path).unwrap(), made);
        let p = Path::new("/v/vm-config.json");
        let e = VmConfig::parse(r#"{"cpus":0,"memory_mib":512,"disk_gib":8}"#, p).unwrap_err();
        assert_eq!(e.to_string(), "/v/vm-config.json: cpus is 0: want 1 to 64");
        let e = VmConfig::parse(r#"{"cpus":1,"memory_mib":64,"disk_gib":8}"#, p).unwrap_err();
        assert!(e.to_string().contains("memory_mib is 64"), "{e}");
        let e = VmConfig::parse(r#"{"cpus":1,"memory":512,"disk_gib":8}"#, p).unwrap_err();
        assert!(e.to_string().contains("unknown field `memory`"), "{e}");
    }

    #[test]
    fn vm_config_shares() {
        let p = Path::new("/v/vm-config.json");
        // A file from before the key: the home folder and /tmp.
        let c = VmConfig::parse(r#"{"cpus":1,"memory_mib":512,"disk_gib":8}"#, p).unwrap();
        assert_eq!(c.shares, default_shares());
        assert_eq!(c.shares.last().map(String::as_str), Some("/tmp"));
        let c = VmConfig::parse(
            r#"{"cpus":1,"memory_mib":512,"disk_gib":8,"shares":["/tmp/a/","/srv/x","/tmp"]}"#,
            p,
        )
        .unwrap();
        assert_eq!(c.shares(), [PathBuf::from("/srv/x"), PathBuf::from("/tmp")]);
        let c = VmConfig::parse(r#"{"cpus":1,"memory_mib":512,"disk_gib":8,"shares":[]}"#, p);
        assert!(c.unwrap().shares().is_empty());
        let e = VmConfig::parse(
            r#"{"cpus":1,"memory_mib":512,"disk_gib":8,"shares":["/home/u","src"]}"#,
            p,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/v/vm-config.json: shares[1] \"src\" is not an absolute path: write the host folder in full, as /home/me/src"
        );
        let e = VmConfig::parse(
            r#"{"cpus":1,"memory_mib":512,"disk_gib":8,"shares":["/etc/x"]}"#,
            p,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("shares[0] \"/etc/x\" is on the VM's own /etc"),
            "{e}"
        );
    }
}
