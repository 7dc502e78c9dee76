//! Image references, normalised as Docker does: `busybox` is
//! `docker.io/library/busybox:latest`.

use std::fmt;

use crate::error::{Error, Result};

/// The default registry of unqualified names.
pub const DOCKER_HUB: &str = "docker.io";

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host, with its port if any.
    pub registry: String,
    /// Repository path inside the registry.
    pub repository: String,
    /// Tag, if given (defaults to `latest` when neither tag nor digest is).
    pub tag: Option<String>,
    /// Digest, if given.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses and normalises `name`.
    pub fn parse(name: &str) -> Result<Self> {
        let bad =
            |why: &str| Error::BadRequest(format!("invalid reference format {name:?}: {why}"));
        if name.is_empty() || name.len() > 4096 {
            return Err(bad("empty or too long"));
        }
        let (rest, digest) = match name.split_once('@') {
            Some((r, d)) => {
                crate::image::digest::hex_of(d).map_err(|_| bad("bad digest"))?;
                (r, Some(d.to_string()))
            }
            None => (name, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(rest[at + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                && !t.starts_with(['.', '-']);
            if !ok {
                return Err(bad("bad tag"));
            }
        }
        let (registry, repository) = match path.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            Some(_) => (DOCKER_HUB.to_string(), path.to_string()),
            None => (DOCKER_HUB.to_string(), format!("library/{path}")),
        };
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase()
                            || b.is_ascii_digit()
                            || matches!(b, b'.' | b'_' | b'-')
                    })
                    && !part.starts_with(['.', '_', '-'])
            });
        if !repo_ok {
            return Err(bad("repository names must be lowercase"));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// `registry/repository:tag`, when a tag is present.
    pub fn tagged(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// A copy that carries `digest` and no tag.
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        }
    }

    /// The reference in oci-client's type.
    pub fn to_oci(&self) -> oci_client::Reference {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.clone(),
            ),
            (t, None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                t.clone().unwrap_or_else(|| "latest".to_string()),
            ),
        }
    }

    /// Whether the registry is on a loopback address.
    pub fn is_loopback_registry(&self) -> bool {
        let host = host_of(&self.registry);
        host == "localhost" || host == "::1" || host.starts_with("127.")
    }
}

/// The host part of `host[:port]` or `[v6]:port`.
pub fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.split(':').next().unwrap_or(registry)
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Docker's short form of a full name: `docker.io/library/busybox:latest`
/// becomes `busybox:latest`.
pub fn familiar(full: &str) -> String {
    if let Some(rest) = full.strip_prefix("docker.io/library/") {
        rest.to_string()
    } else if let Some(rest) = full.strip_prefix("docker.io/") {
        rest.to_string()
    } else {
        full.to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn normalises_like_docker() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let r = ImageRef::parse("127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert!(r.is_loopback_registry());
        let r = ImageRef::parse("localhost:5000/x").unwrap();
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(
            familiar("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar("docker.io/me/app:1"), "me/app:1");
    }

    #[test]
    fn refuses_bad_names() {
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("Upper/case").is_err());
        assert!(ImageRef::parse("a/../b").is_err());
        assert!(ImageRef::parse("a@sha256:zz").is_err());
        assert!(ImageRef::parse("a:").is_err());
    }
}
