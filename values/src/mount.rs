//! Volumes in Compose's short syntax (`"data:/var/lib/data:ro"`,
//! `"./src:/app"`, `"/cache"`), tmpfs entries (`"/run:size=64m"`), and
//! Docker's `-v` / `HostConfig.Binds` entries (`"SRC:DST[:OPTS]"`, split by
//! [`BindSpec::split`] for the CLI's flags and the engine's create bodies
//! alike).

use serde::{Deserialize, Serialize};

use crate::size::parse_size;

/// Where a mount comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "source")]
pub enum MountSource {
    /// A named volume.
    Volume(String),
    /// A host path, as written (relative, absolute or `~`-relative).
    Bind(String),
    /// A fresh anonymous volume.
    Anonymous,
}

/// A parsed volume entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MountSpec {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
}

/// A parsed tmpfs entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TmpfsSpec {
    pub target: String,
    pub size: Option<u64>,
    pub mode: Option<u32>,
}

const MOUNT_OPTIONS_HINT: &str = "use ro, rw, z, Z or nocopy";

/// Whether a mount source names a host path rather than a volume: it starts
/// with `/`, `./`, `../` or `~`, or is `.` or `..`.
pub fn is_bind_source(source: &str) -> bool {
    source.starts_with('/')
        || source.starts_with("./")
        || source.starts_with("../")
        || source.starts_with('~')
        || source == "."
        || source == ".."
}

/// Checks a volume name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn check_volume_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("empty volume name".to_string());
    };
    if !first.is_ascii_alphanumeric() {
        return Err(format!(
            "invalid volume name \"{name}\": must start with a letter or digit"
        ));
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "invalid volume name \"{name}\": character {bad:?} is not allowed; use letters, digits, '_', '.' and '-' (or start a host path with \"./\" or \"/\")"
        ));
    }
    Ok(())
}

/// Parses a volume entry in Compose's short syntax: `source:target[:options]`
/// or a lone absolute `target` (an anonymous volume, which may also take
/// options: `/data:ro`). The source is a bind mount when [`is_bind_source`],
/// otherwise a named volume. Options are a comma-separated list of `ro`, `rw`,
/// `z`, `Z` and `nocopy`; only `ro`/`rw` are kept.
pub fn parse_mount(input: &str) -> Result<MountSpec, String> {
    if input.trim().is_empty() {
        return Err("empty volume; use \"source:/target\" or \"/target\"".to_string());
    }
    let parts: Vec<&str> = input.split(':').collect();
    let (source, target, options) = match parts.as_slice() {
        [target] => (None, *target, None),
        [first, second]
            if first.starts_with('/') && !second.starts_with('/') && !second.is_empty() =>
        {
            // "/data:ro" is an anonymous volume with options; anything else
            // with two parts is "source:target".
            if second.split(',').all(is_mount_option) {
                (None, *first, Some(*second))
            } else {
                (Some(*first), *second, None)
            }
        }
        [source, target] => (Some(*source), *target, None),
        [source, target, options] => (Some(*source), *target, Some(*options)),
        _ => {
            return Err(format!(
                "invalid volume \"{input}\": too many ':'; use \"source:/target[:options]\""
            ));
        }
    };
    check_target(target, input)?;
    let source = match source {
        None => MountSource::Anonymous,
        Some("") => {
            return Err(format!("invalid volume \"{input}\": empty source"));
        }
        Some(path) if is_bind_source(path) => MountSource::Bind(path.to_string()),
        Some(name) => {
            check_volume_name(name).map_err(|e| format!("{e} in \"{input}\""))?;
            MountSource::Volume(name.to_string())
        }
    };
    let mut read_only = None;
    if let Some(options) = options {
        for option in options.split(',') {
            let value = match option {
                "ro" => Some(true),
                "rw" => Some(false),
                "z" | "Z" => None,
                "nocopy" => {
                    if !matches!(source, MountSource::Volume(_) | MountSource::Anonymous) {
                        return Err(format!(
                            "invalid volume \"{input}\": nocopy only applies to volumes, not to host paths"
                        ));
                    }
                    None
                }
                "" => {
                    return Err(format!(
                        "invalid volume \"{input}\": empty option; {MOUNT_OPTIONS_HINT}"
                    ));
                }
                other => {
                    return Err(format!(
                        "unknown volume option \"{other}\" in \"{input}\"; {MOUNT_OPTIONS_HINT}"
                    ));
                }
            };
            if let Some(value) = value {
                if read_only.is_some_and(|previous| previous != value) {
                    return Err(format!(
                        "invalid volume \"{input}\": ro and rw contradict each other"
                    ));
                }
                read_only = Some(value);
            }
        }
    }
    Ok(MountSpec {
        source,
        target: target.to_string(),
        read_only: read_only.unwrap_or(false),
    })
}

fn is_mount_option(option: &str) -> bool {
    matches!(option, "ro" | "rw" | "z" | "Z" | "nocopy")
}

fn check_target(target: &str, input: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err(format!("invalid volume \"{input}\": empty target path"));
    }
    if !target.starts_with('/') {
        return Err(format!(
            "invalid target \"{target}\" in \"{input}\": the path inside the container must be absolute"
        ));
    }
    if target.bytes().all(|b| b == b'/') {
        return Err(format!(
            "invalid target \"{target}\" in \"{input}\": cannot mount over the container's root \"/\""
        ));
    }
    Ok(())
}

/// Parses a tmpfs entry: an absolute `target` with optional comma-separated
/// `size=<size>` (see [`parse_size`]) and `mode=<octal>` options:
/// `"/run"`, `"/run:size=64m,mode=1777"`.
pub fn parse_tmpfs(input: &str) -> Result<TmpfsSpec, String> {
    if input.trim().is_empty() {
        return Err("empty tmpfs; use \"/target\" or \"/target:size=64m,mode=1777\"".to_string());
    }
    let (target, options) = match input.split_once(':') {
        Some((target, options)) => (target, Some(options)),
        None => (input, None),
    };
    if target.is_empty() {
        return Err(format!("invalid tmpfs \"{input}\": empty target path"));
    }
    if !target.starts_with('/') {
        return Err(format!(
            "invalid tmpfs target \"{target}\" in \"{input}\": the path inside the container must be absolute"
        ));
    }
    if target.bytes().all(|b| b == b'/') {
        return Err(format!(
            "invalid tmpfs target \"{target}\" in \"{input}\": cannot mount over the container's root \"/\""
        ));
    }
    let mut spec = TmpfsSpec {
        target: target.to_string(),
        size: None,
        mode: None,
    };
    for option in options.into_iter().flat_map(|o| o.split(',')) {
        let Some((key, value)) = option.split_once('=') else {
            return Err(format!(
                "invalid tmpfs option \"{option}\" in \"{input}\"; use size=<size> or mode=<octal>"
            ));
        };
        match key {
            "size" => {
                if spec.size.is_some() {
                    return Err(format!("tmpfs option size is given twice in \"{input}\""));
                }
                let size = parse_size(value).map_err(|e| format!("{e} in tmpfs \"{input}\""))?;
                spec.size = Some(size);
            }
            "mode" => {
                if spec.mode.is_some() {
                    return Err(format!("tmpfs option mode is given twice in \"{input}\""));
                }
                let mode = u32::from_str_radix(value, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777 && !value.starts_with('+'))
                    .ok_or_else(|| {
                        format!(
                            "invalid tmpfs mode \"{value}\" in \"{input}\"; use octal digits up to 7777, like 1777"
                        )
                    })?;
                spec.mode = Some(mode);
            }
            other => {
                return Err(format!(
                    "unknown tmpfs option \"{other}\" in \"{input}\"; use size or mode"
                ));
            }
        }
    }
    Ok(spec)
}

/// One entry of Docker's `HostConfig.Binds` (what `-v SRC:DST[:OPTS]`
/// sends): a host path or volume name, the path inside the container, and
/// the comma-separated options (`ro`, `rw`, propagation, SELinux labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindSpec<'a> {
    /// The host path (absolute) or the volume name; may be empty, which
    /// callers refuse in their own words.
    pub source: &'a str,
    /// The path inside the container, as written.
    pub target: &'a str,
    /// The options, `""` when none are given.
    pub options: &'a str,
}

impl<'a> BindSpec<'a> {
    /// Splits `SRC:DST` or `SRC:DST:OPTS`; `None` for any other number of
    /// `:`-separated parts (one part is an anonymous volume in `-v`, not a
    /// bind).
    pub fn split(spec: &'a str) -> Option<BindSpec<'a>> {
        let mut parts = spec.split(':');
        let source = parts.next()?;
        let target = parts.next()?;
        let options = parts.next().unwrap_or("");
        if parts.next().is_some() {
            return None;
        }
        Some(BindSpec {
            source,
            target,
            options,
        })
    }

    /// Whether the source is a host path rather than a volume name.
    pub fn is_host_path(&self) -> bool {
        self.source.starts_with('/')
    }

    /// Whether the options make the mount read-only.
    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn splits_docker_binds() {
        assert_eq!(
            BindSpec::split("/tmp:/x:ro,rshared"),
            Some(BindSpec {
                source: "/tmp",
                target: "/x",
                options: "ro,rshared"
            })
        );
        let named = BindSpec::split("data:/data").unwrap();
        assert_eq!(
            (named.source, named.target, named.options),
            ("data", "/data", "")
        );
        assert!(!named.is_host_path());
        assert!(!named.read_only());
        assert!(BindSpec::split("/h:/c:rw,ro").unwrap().read_only());
        assert!(BindSpec::split("/h:/c:ro").unwrap().is_host_path());
        assert_eq!(BindSpec::split(":/x").map(|b| b.source), Some(""));
        for bad in ["/scratch", "a:/b:ro:x", ""] {
            assert_eq!(BindSpec::split(bad), None, "{bad}");
        }
    }

    fn mount(source: MountSource, target: &str, read_only: bool) -> MountSpec {
        MountSpec {
            source,
            target: target.to_string(),
            read_only,
        }
    }

    fn volume(name: &str) -> MountSource {
        MountSource::Volume(name.to_string())
    }

    fn bind(path: &str) -> MountSource {
        MountSource::Bind(path.to_string())
    }

    #[test]
    fn parses_valid_mounts() {
        let cases: Vec<(&str, MountSpec)> = vec![
            ("name:/path", mount(volume("name"), "/path", false)),
            ("name:/path:ro", mount(volume("name"), "/path", true)),
            ("name:/path:rw", mount(volume("name"), "/path", false)),
            (
                "my_vol.1-x:/data",
                mount(volume("my_vol.1-x"), "/data", false),
            ),
            ("9lives:/data", mount(volume("9lives"), "/data", false)),
            ("./rel:/path", mount(bind("./rel"), "/path", false)),
            ("../rel:/path", mount(bind("../rel"), "/path", false)),
            (".:/app", mount(bind("."), "/app", false)),
            ("..:/app", mount(bind(".."), "/app", false)),
            ("/abs:/path:ro", mount(bind("/abs"), "/path", true)),
            ("~/dir:/path", mount(bind("~/dir"), "/path", false)),
            ("~:/home", mount(bind("~"), "/home", false)),
            ("/path", mount(MountSource::Anonymous, "/path", false)),
            ("/data:ro", mount(MountSource::Anonymous, "/data", true)),
            (
                "/data:nocopy",
                mount(MountSource::Anonymous, "/data", false),
            ),
            ("name:/path:ro,z", mount(volume("name"), "/path", true)),
            ("./src:/app:Z", mount(bind("./src"), "/app", false)),
            ("name:/path:nocopy,ro", mount(volume("name"), "/path", true)),
            ("name:/path:ro,ro", mount(volume("name"), "/path", true)),
            ("/a:/b/", mount(bind("/a"), "/b/", false)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_mount(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn rejects_invalid_mounts() {
        let cases: &[(&str, &str)] = &[
            ("", "empty volume; use \"source:/target\" or \"/target\""),
            ("  ", "empty volume; use \"source:/target\" or \"/target\""),
            (
                "data",
                "invalid target \"data\" in \"data\": the path inside the container must be absolute",
            ),
            (
                "name:path",
                "invalid target \"path\" in \"name:path\": the path inside the container must be absolute",
            ),
            ("name:", "invalid volume \"name:\": empty target path"),
            (":/path", "invalid volume \":/path\": empty source"),
            (
                "name:/",
                "invalid target \"/\" in \"name:/\": cannot mount over the container's root \"/\"",
            ),
            (
                "/",
                "invalid target \"/\" in \"/\": cannot mount over the container's root \"/\"",
            ),
            (
                "name://",
                "invalid target \"//\" in \"name://\": cannot mount over the container's root \"/\"",
            ),
            (
                "a:/b:ro:x",
                "invalid volume \"a:/b:ro:x\": too many ':'; use \"source:/target[:options]\"",
            ),
            (
                "name:/path:rx",
                "unknown volume option \"rx\" in \"name:/path:rx\"; use ro, rw, z, Z or nocopy",
            ),
            (
                "name:/path:RO",
                "unknown volume option \"RO\" in \"name:/path:RO\"; use ro, rw, z, Z or nocopy",
            ),
            (
                "name:/path:",
                "invalid volume \"name:/path:\": empty option; use ro, rw, z, Z or nocopy",
            ),
            (
                "name:/path:ro,",
                "invalid volume \"name:/path:ro,\": empty option; use ro, rw, z, Z or nocopy",
            ),
            (
                "name:/path:ro,rw",
                "invalid volume \"name:/path:ro,rw\": ro and rw contradict each other",
            ),
            (
                "./src:/app:nocopy",
                "invalid volume \"./src:/app:nocopy\": nocopy only applies to volumes, not to host paths",
            ),
            (
                "_vol:/data",
                "invalid volume name \"_vol\": must start with a letter or digit in \"_vol:/data\"",
            ),
            (
                "-vol:/data",
                "invalid volume name \"-vol\": must start with a letter or digit in \"-vol:/data\"",
            ),
            (
                ".hidden:/data",
                "invalid volume name \".hidden\": must start with a letter or digit in \".hidden:/data\"",
            ),
            (
                "my vol:/data",
                "invalid volume name \"my vol\": character ' ' is not allowed; use letters, digits, '_', '.' and '-' (or start a host path with \"./\" or \"/\") in \"my vol:/data\"",
            ),
            (
                "src/app:/data",
                "invalid volume name \"src/app\": character '/' is not allowed; use letters, digits, '_', '.' and '-' (or start a host path with \"./\" or \"/\") in \"src/app:/data\"",
            ),
            (
                "/abs:data",
                "invalid target \"data\" in \"/abs:data\": the path inside the container must be absolute",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(parse_mount(input), Err(message.to_string()), "{input}");
        }
    }

    #[test]
    fn classifies_sources() {
        for bind in ["/", "/a", "./a", "../a", "~", "~/a", ".", ".."] {
            assert!(is_bind_source(bind), "{bind}");
        }
        for name in ["a", "a/b", ".a", "..a", "a.b"] {
            assert!(!is_bind_source(name), "{name}");
        }
        assert_eq!(check_volume_name(""), Err("empty volume name".to_string()));
        assert_eq!(check_volume_name("Ab_1.-"), Ok(()));
    }

    #[test]
    fn parses_tmpfs() {
        let tmpfs = |target: &str, size, mode| TmpfsSpec {
            target: target.to_string(),
            size,
            mode,
        };
        let cases: Vec<(&str, TmpfsSpec)> = vec![
            ("/run", tmpfs("/run", None, None)),
            ("/run:size=64m", tmpfs("/run", Some(64 << 20), None)),
            (
                "/run:size=64m,mode=1777",
                tmpfs("/run", Some(64 << 20), Some(0o1777)),
            ),
            ("/tmp:mode=0755", tmpfs("/tmp", None, Some(0o755))),
            (
                "/tmp:mode=700,size=1024",
                tmpfs("/tmp", Some(1024), Some(0o700)),
            ),
            ("/tmp:mode=7777", tmpfs("/tmp", None, Some(0o7777))),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_tmpfs(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn rejects_invalid_tmpfs() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "empty tmpfs; use \"/target\" or \"/target:size=64m,mode=1777\"",
            ),
            (
                "run",
                "invalid tmpfs target \"run\" in \"run\": the path inside the container must be absolute",
            ),
            (":size=1m", "invalid tmpfs \":size=1m\": empty target path"),
            (
                "/",
                "invalid tmpfs target \"/\" in \"/\": cannot mount over the container's root \"/\"",
            ),
            (
                "/run:",
                "invalid tmpfs option \"\" in \"/run:\"; use size=<size> or mode=<octal>",
            ),
            (
                "/run:ro",
                "invalid tmpfs option \"ro\" in \"/run:ro\"; use size=<size> or mode=<octal>",
            ),
            (
                "/run:uid=0",
                "unknown tmpfs option \"uid\" in \"/run:uid=0\"; use size or mode",
            ),
            (
                "/run:size=64x",
                "invalid size unit \"x\" in \"64x\"; use b, k, m, g, t or p (optionally followed by b or ib) in tmpfs \"/run:size=64x\"",
            ),
            (
                "/run:size=1m,size=2m",
                "tmpfs option size is given twice in \"/run:size=1m,size=2m\"",
            ),
            (
                "/run:mode=1,mode=2",
                "tmpfs option mode is given twice in \"/run:mode=1,mode=2\"",
            ),
            (
                "/run:mode=8",
                "invalid tmpfs mode \"8\" in \"/run:mode=8\"; use octal digits up to 7777, like 1777",
            ),
            (
                "/run:mode=",
                "invalid tmpfs mode \"\" in \"/run:mode=\"; use octal digits up to 7777, like 1777",
            ),
            (
                "/run:mode=+7",
                "invalid tmpfs mode \"+7\" in \"/run:mode=+7\"; use octal digits up to 7777, like 1777",
            ),
            (
                "/run:mode=17777",
                "invalid tmpfs mode \"17777\" in \"/run:mode=17777\"; use octal digits up to 7777, like 1777",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(parse_tmpfs(input), Err(message.to_string()), "{input}");
        }
    }
}
