//! Image references with Docker's grammar:
//! `[registry[:port]/]path[:tag][@digest]`, normalised as Docker does, so
//! that every spelling of one image (`busybox`, `docker.io/busybox`,
//! `docker.io/library/busybox:latest`) is one [`ImageRef`] on both sides.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The registry used when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// Longest allowed repository name (registry and path together).
const MAX_NAME_LEN: usize = 255;

/// A normalised image reference. `to_string()` gives the full form,
/// e.g. `docker.io/library/busybox:latest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host with optional port, `docker.io` by default.
    pub registry: String,
    /// Path inside the registry, e.g. `library/redis`.
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// `algorithm:hex`, e.g. `sha256:…`.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses and normalises a reference: the first path component is the
    /// registry when there are several and it contains `.` or `:` or is
    /// `localhost`; Docker Hub (also written `index.docker.io` or
    /// `registry-1.docker.io`) names of one component get `library/`, with or
    /// without the registry written out; the tag defaults to `latest` only
    /// when there is no digest.
    pub fn parse(input: &str) -> Result<ImageRef, String> {
        if input.is_empty() {
            return Err("empty image reference".to_string());
        }
        if input.chars().any(char::is_whitespace) {
            return Err(format!(
                "invalid image reference \"{input}\": must not contain whitespace"
            ));
        }
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((name, digest)) => (name, Some(parse_digest(digest, input)?)),
            None => (input, None),
        };
        if name_and_tag.is_empty() {
            return Err(format!(
                "invalid image reference \"{input}\": missing image name"
            ));
        }
        let last_slash = name_and_tag.rfind('/');
        let (name, tag) = match name_and_tag.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                let tag = &name_and_tag[colon + 1..];
                if tag.is_empty() {
                    return Err(format!(
                        "invalid image reference \"{input}\": trailing ':' without a tag"
                    ));
                }
                check_tag(tag, input)?;
                (&name_and_tag[..colon], Some(tag.to_string()))
            }
            _ => (name_and_tag, None),
        };
        if name.is_empty() {
            return Err(format!(
                "invalid image reference \"{input}\": missing image name"
            ));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                check_registry(first, input)?;
                (first, rest)
            }
            _ => (DEFAULT_REGISTRY, name),
        };
        if path.is_empty() {
            return Err(format!(
                "invalid image reference \"{input}\": missing repository after registry \"{registry}\""
            ));
        }
        for component in path.split('/') {
            check_component(component, input)?;
        }
        if name.len() > MAX_NAME_LEN {
            return Err(format!(
                "invalid image reference \"{input}\": repository name is longer than {MAX_NAME_LEN} characters"
            ));
        }
        // Docker Hub's other names (its index, its registry host) are one
        // registry, so images pulled by either are the same image.
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DEFAULT_REGISTRY
        } else {
            registry
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (tag, _) => tag,
        };
        Ok(ImageRef {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = String;

    fn from_str(s: &str) -> Result<ImageRef, String> {
        ImageRef::parse(s)
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ImageRef, D::Error> {
        let text = String::deserialize(deserializer)?;
        ImageRef::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn check_tag(tag: &str, input: &str) -> Result<(), String> {
    let valid = tag.starts_with(is_word_char)
        && tag.len() <= 128
        && tag.chars().all(|c| is_word_char(c) || c == '.' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid tag \"{tag}\" in image reference \"{input}\": use up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        ))
    }
}

fn parse_digest(digest: &str, input: &str) -> Result<String, String> {
    if digest.is_empty() {
        return Err(format!(
            "invalid image reference \"{input}\": missing digest after '@'"
        ));
    }
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(format!(
            "invalid digest \"{digest}\" in image reference \"{input}\": use algorithm:hex, like sha256:<64 hex characters>"
        ));
    };
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "unsupported digest algorithm \"{algorithm}\" in image reference \"{input}\"; use sha256, sha384 or sha512"
            ));
        }
    };
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "invalid {algorithm} digest in image reference \"{input}\": use lowercase hex digits 0-9 and a-f"
        ));
    }
    if hex.len() != expected_len {
        return Err(format!(
            "invalid {algorithm} digest in image reference \"{input}\": expected {expected_len} hex characters, found {}",
            hex.len()
        ));
    }
    Ok(digest.to_string())
}

fn check_registry(registry: &str, input: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "invalid registry \"{registry}\" in image reference \"{input}\": use a host name or address with an optional port, like \"registry.example.com:5000\""
        )
    };
    let (host, port) = if let Some(bracketed) = registry.strip_prefix('[') {
        let (ip, rest) = bracketed.split_once(']').ok_or_else(bad)?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad());
        }
        match rest {
            "" => (None, None),
            _ => (None, Some(rest.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |label: &str| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(port) = port
        && (port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err())
    {
        return Err(bad());
    }
    Ok(())
}

fn check_component(component: &str, input: &str) -> Result<(), String> {
    if component.is_empty() {
        return Err(format!(
            "invalid image reference \"{input}\": empty path component"
        ));
    }
    if component.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "invalid image reference \"{input}\": repository names must be lowercase"
        ));
    }
    if let Some(bad) = component
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "invalid character {bad:?} in image reference \"{input}\""
        ));
    }
    // Runs of [a-z0-9] separated by ".", "_", "__" or one or more "-".
    let is_alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut valid = component.starts_with(is_alnum) && component.ends_with(is_alnum);
    for separator in component.split(is_alnum).filter(|s| !s.is_empty()) {
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        valid &= ok;
    }
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid path component \"{component}\" in image reference \"{input}\": separate letters and digits with '.', '_', '__' or dashes"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn hex(n: usize) -> String {
        "0123456789abcdef".repeat(16)[..n].to_string()
    }

    /// registry, repository, tag, digest
    type Parts<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

    #[test]
    fn parses_and_normalises() {
        let sha = format!("sha256:{}", hex(64));
        let sha512 = format!("sha512:{}", hex(128));
        let sha384 = format!("sha384:{}", hex(96));
        let cases: Vec<(String, Parts<'_>, String)> = vec![
            (
                "busybox".into(),
                ("docker.io", "library/busybox", Some("latest"), None),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "redis:7".into(),
                ("docker.io", "library/redis", Some("7"), None),
                "docker.io/library/redis:7".into(),
            ),
            (
                "bitnami/redis:7.2-debian".into(),
                ("docker.io", "bitnami/redis", Some("7.2-debian"), None),
                "docker.io/bitnami/redis:7.2-debian".into(),
            ),
            (
                "docker.io/redis".into(),
                ("docker.io", "library/redis", Some("latest"), None),
                "docker.io/library/redis:latest".into(),
            ),
            (
                "index.docker.io/redis".into(),
                ("docker.io", "library/redis", Some("latest"), None),
                "docker.io/library/redis:latest".into(),
            ),
            (
                "ghcr.io/owner/app:v1".into(),
                ("ghcr.io", "owner/app", Some("v1"), None),
                "ghcr.io/owner/app:v1".into(),
            ),
            (
                "ghcr.io/app".into(),
                ("ghcr.io", "app", Some("latest"), None),
                "ghcr.io/app:latest".into(),
            ),
            (
                format!("localhost:5000/a/b@{sha}"),
                ("localhost:5000", "a/b", None, Some(&sha)),
                format!("localhost:5000/a/b@{sha}"),
            ),
            (
                "localhost/app".into(),
                ("localhost", "app", Some("latest"), None),
                "localhost/app:latest".into(),
            ),
            (
                format!("redis:7@{sha}"),
                ("docker.io", "library/redis", Some("7"), Some(&sha)),
                format!("docker.io/library/redis:7@{sha}"),
            ),
            (
                format!("redis@{sha512}"),
                ("docker.io", "library/redis", None, Some(&sha512)),
                format!("docker.io/library/redis@{sha512}"),
            ),
            (
                format!("redis@{sha384}"),
                ("docker.io", "library/redis", None, Some(&sha384)),
                format!("docker.io/library/redis@{sha384}"),
            ),
            (
                "[::1]:5000/app:Tag_1".into(),
                ("[::1]:5000", "app", Some("Tag_1"), None),
                "[::1]:5000/app:Tag_1".into(),
            ),
            (
                "Registry.Example.COM/a".into(),
                ("Registry.Example.COM", "a", Some("latest"), None),
                "Registry.Example.COM/a:latest".into(),
            ),
            (
                "example.com".into(),
                ("docker.io", "library/example.com", Some("latest"), None),
                "docker.io/library/example.com:latest".into(),
            ),
            (
                "a__b/c--d.e_f:_tag".into(),
                ("docker.io", "a__b/c--d.e_f", Some("_tag"), None),
                "docker.io/a__b/c--d.e_f:_tag".into(),
            ),
            (
                "localhost".into(),
                ("docker.io", "library/localhost", Some("latest"), None),
                "docker.io/library/localhost:latest".into(),
            ),
            (
                "localhost:5000".into(),
                ("docker.io", "library/localhost", Some("5000"), None),
                "docker.io/library/localhost:5000".into(),
            ),
        ];
        for (input, (registry, repository, tag, digest), display) in cases {
            let parsed = ImageRef::parse(&input).unwrap();
            assert_eq!(
                parsed,
                ImageRef {
                    registry: registry.into(),
                    repository: repository.into(),
                    tag: tag.map(Into::into),
                    digest: digest.map(Into::into),
                },
                "{input}"
            );
            assert_eq!(parsed.to_string(), display, "{input}");
            assert_eq!(ImageRef::parse(&display), Ok(parsed.clone()), "{display}");
            assert_eq!(display.parse::<ImageRef>(), Ok(parsed), "{display}");
        }
    }

    #[test]
    fn rejects_invalid_references() {
        let short = format!("sha256:{}", hex(12));
        let upper = format!("sha256:{}", hex(64).to_uppercase());
        let long_tag = "t".repeat(129);
        let long_name = format!("{}/{}", "a".repeat(200), "b".repeat(60));
        let cases: Vec<(String, String)> = vec![
            ("".into(), "empty image reference".into()),
            (
                "redis 7".into(),
                "invalid image reference \"redis 7\": must not contain whitespace".into(),
            ),
            (
                "Redis".into(),
                "invalid image reference \"Redis\": repository names must be lowercase".into(),
            ),
            (
                "ghcr.io/Owner/app".into(),
                "invalid image reference \"ghcr.io/Owner/app\": repository names must be lowercase"
                    .into(),
            ),
            (
                "redis:".into(),
                "invalid image reference \"redis:\": trailing ':' without a tag".into(),
            ),
            (
                "redis:.x".into(),
                "invalid tag \".x\" in image reference \"redis:.x\": use up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'".into(),
            ),
            (
                "redis:a+b".into(),
                "invalid tag \"a+b\" in image reference \"redis:a+b\": use up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'".into(),
            ),
            (
                format!("redis:{long_tag}"),
                format!("invalid tag \"{long_tag}\" in image reference \"redis:{long_tag}\": use up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"),
            ),
            (
                "redis@".into(),
                "invalid image reference \"redis@\": missing digest after '@'".into(),
            ),
            (
                "redis@abc".into(),
                "invalid digest \"abc\" in image reference \"redis@abc\": use algorithm:hex, like sha256:<64 hex characters>".into(),
            ),
            (
                "redis@md5:abc".into(),
                "unsupported digest algorithm \"md5\" in image reference \"redis@md5:abc\"; use sha256, sha384 or sha512".into(),
            ),
            (
                format!("redis@{short}"),
                format!("invalid sha256 digest in image reference \"redis@{short}\": expected 64 hex characters, found 12"),
            ),
            (
                format!("redis@{upper}"),
                format!("invalid sha256 digest in image reference \"redis@{upper}\": use lowercase hex digits 0-9 and a-f"),
            ),
            (
                format!("redis@sha512:{}", hex(64)),
                format!("invalid sha512 digest in image reference \"redis@sha512:{}\": expected 128 hex characters, found 64", hex(64)),
            ),
            (
                format!("redis@{}@x", format_args!("sha256:{}", hex(64))),
                format!("invalid sha256 digest in image reference \"redis@sha256:{}@x\": use lowercase hex digits 0-9 and a-f", hex(64)),
            ),
            (
                format!("@sha256:{}", hex(64)),
                format!("invalid image reference \"@sha256:{}\": missing image name", hex(64)),
            ),
            (
                ":tag".into(),
                "invalid image reference \":tag\": missing image name".into(),
            ),
            (
                "re$dis".into(),
                "invalid character '$' in image reference \"re$dis\"".into(),
            ),
            (
                "a//b".into(),
                "invalid image reference \"a//b\": empty path component".into(),
            ),
            (
                "a/".into(),
                "invalid image reference \"a/\": empty path component".into(),
            ),
            (
                "ghcr.io/".into(),
                "invalid image reference \"ghcr.io/\": missing repository after registry \"ghcr.io\"".into(),
            ),
            (
                "a..b".into(),
                "invalid path component \"a..b\" in image reference \"a..b\": separate letters and digits with '.', '_', '__' or dashes".into(),
            ),
            (
                "a___b".into(),
                "invalid path component \"a___b\" in image reference \"a___b\": separate letters and digits with '.', '_', '__' or dashes".into(),
            ),
            (
                "-a".into(),
                "invalid path component \"-a\" in image reference \"-a\": separate letters and digits with '.', '_', '__' or dashes".into(),
            ),
            (
                "a-".into(),
                "invalid path component \"a-\" in image reference \"a-\": separate letters and digits with '.', '_', '__' or dashes".into(),
            ),
            (
                "a._b".into(),
                "invalid path component \"a._b\" in image reference \"a._b\": separate letters and digits with '.', '_', '__' or dashes".into(),
            ),
            (
                "host:port/app".into(),
                "invalid registry \"host:port\" in image reference \"host:port/app\": use a host name or address with an optional port, like \"registry.example.com:5000\"".into(),
            ),
            (
                "-bad.io/app".into(),
                "invalid registry \"-bad.io\" in image reference \"-bad.io/app\": use a host name or address with an optional port, like \"registry.example.com:5000\"".into(),
            ),
            (
                "bad..io/app".into(),
                "invalid registry \"bad..io\" in image reference \"bad..io/app\": use a host name or address with an optional port, like \"registry.example.com:5000\"".into(),
            ),
            (
                "localhost:99999/app".into(),
                "invalid registry \"localhost:99999\" in image reference \"localhost:99999/app\": use a host name or address with an optional port, like \"registry.example.com:5000\"".into(),
            ),
            (
                "[zz]:5000/app".into(),
                "invalid registry \"[zz]:5000\" in image reference \"[zz]:5000/app\": use a host name or address with an optional port, like \"registry.example.com:5000\"".into(),
            ),
            (
                "[::1]x/app".into(),
                "invalid registry \"[::1]x\" in image reference \"[::1]x/app\": use a host name or address with an optional port, like \"registry.example.com:5000\"".into(),
            ),
            (
                long_name.clone(),
                format!("invalid image reference \"{long_name}\": repository name is longer than 255 characters"),
            ),
        ];
        for (input, message) in cases {
            assert_eq!(ImageRef::parse(&input), Err(message), "{input}");
        }
    }

    /// The spellings the CLI and the engine once read differently: the
    /// engine took `docker.io/busybox` for `docker.io/busybox:latest`,
    /// accepted `a..b` and refused sha512 digests.
    #[test]
    fn docker_io_names_get_library() {
        let short = ImageRef::parse("busybox").unwrap();
        for spelling in [
            "docker.io/busybox",
            "docker.io/library/busybox",
            "docker.io/library/busybox:latest",
            "index.docker.io/busybox",
            "registry-1.docker.io/library/busybox",
        ] {
            assert_eq!(ImageRef::parse(spelling), Ok(short.clone()), "{spelling}");
        }
        assert_eq!(short.to_string(), "docker.io/library/busybox:latest");
    }

    #[test]
    fn refuses_double_dots() {
        for input in ["a..b", "docker.io/a..b", "ghcr.io/x/a..b:1"] {
            let err = ImageRef::parse(input).unwrap_err();
            assert!(
                err.starts_with("invalid path component \"a..b\""),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn accepts_sha512_digests() {
        let digest = format!("sha512:{}", hex(128));
        let image = ImageRef::parse(&format!("ghcr.io/x/app@{digest}")).unwrap();
        assert_eq!(image.digest.as_deref(), Some(digest.as_str()));
        assert_eq!(image.tag, None);
        assert_eq!(image.to_string(), format!("ghcr.io/x/app@{digest}"));
    }

    /// References as the CLI writes them into a project and as Docker
    /// clients send them to the engine, with the one normal form both
    /// sides must agree on (the engine pulls, stores and lists by it).
    #[test]
    fn cli_and_engine_agree_on_a_table() {
        let sha = format!("sha256:{}", hex(64));
        let cases: Vec<(String, String)> = vec![
            ("busybox".into(), "docker.io/library/busybox:latest".into()),
            (
                "busybox:1.36".into(),
                "docker.io/library/busybox:1.36".into(),
            ),
            (
                "docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            ("me/app".into(), "docker.io/me/app:latest".into()),
            ("docker.io/me/app:2".into(), "docker.io/me/app:2".into()),
            (
                "index.docker.io/redis".into(),
                "docker.io/library/redis:latest".into(),
            ),
            (
                "registry-1.docker.io/redis".into(),
                "docker.io/library/redis:latest".into(),
            ),
            (
                "127.0.0.1:5000/a/b:v1".into(),
                "127.0.0.1:5000/a/b:v1".into(),
            ),
            ("localhost:5000/x".into(), "localhost:5000/x:latest".into()),
            ("localhost/x".into(), "localhost/x:latest".into()),
            ("ghcr.io/o/app".into(), "ghcr.io/o/app:latest".into()),
            (
                format!("busybox@{sha}"),
                format!("docker.io/library/busybox@{sha}"),
            ),
            (
                format!("busybox:1@{sha}"),
                format!("docker.io/library/busybox:1@{sha}"),
            ),
        ];
        for (input, normal) in cases {
            let parsed = ImageRef::parse(&input).unwrap();
            assert_eq!(parsed.to_string(), normal, "{input}");
            assert_eq!(ImageRef::parse(&normal), Ok(parsed), "{normal}");
        }
    }

    #[test]
    fn name_and_serde() {
        let image = ImageRef::parse("redis:7").unwrap();
        assert_eq!(image.name(), "docker.io/library/redis");
        let json = serde_json::to_string(&image).unwrap();
        assert_eq!(json, "\"docker.io/library/redis:7\"");
        assert_eq!(serde_json::from_str::<ImageRef>(&json).unwrap(), image);
        assert!(serde_json::from_str::<ImageRef>("\"Bad\"").is_err());
    }
}
