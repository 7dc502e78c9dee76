//! Image references as the engine uses them: the shared parser of
//! `servin-values` (the CLI's too, so both sides normalise alike: `busybox`
//! and `docker.io/busybox` are `docker.io/library/busybox:latest`), wrapped
//! with what only the engine needs (its API error, oci-client's type, the
//! loopback check of plain-HTTP registries).

use std::fmt;
use std::ops::{Deref, DerefMut};

use crate::error::{ImageError, Result};

/// The default registry of unqualified names.
pub const DOCKER_HUB: &str = servin_values::reference::DEFAULT_REGISTRY;

/// A normalised image reference; its parts are those of the shared
/// [`servin_values::ImageRef`] it derefs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef(servin_values::ImageRef);

impl Deref for ImageRef {
    type Target = servin_values::ImageRef;

    fn deref(&self) -> &servin_values::ImageRef {
        &self.0
    }
}

impl DerefMut for ImageRef {
    fn deref_mut(&mut self) -> &mut servin_values::ImageRef {
        &mut self.0
    }
}

impl ImageRef {
    /// Parses and normalises `name`; a bad one is the client's error, in
    /// Docker's words ("invalid reference format") with the shared parser's
    /// reason.
    pub fn parse(name: &str) -> Result<Self> {
        servin_values::ImageRef::parse(name)
            .map(Self)
            .map_err(|why| ImageError::InvalidReference(why.to_string()).into())
    }

    /// `registry/repository:tag`, when a tag is present.
    pub fn tagged(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// A copy that carries `digest` and no tag.
    pub fn with_digest(&self, digest: &str) -> Self {
        Self(servin_values::ImageRef {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_string()),
        })
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
        self.0.fmt(f)
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

    /// The engine once stored `docker.io/busybox` as an image of its own,
    /// next to `busybox`; both spellings name one image now.
    #[test]
    fn docker_io_busybox_is_busybox() {
        let short = ImageRef::parse("busybox").unwrap();
        let long = ImageRef::parse("docker.io/busybox").unwrap();
        assert_eq!(short, long);
        assert_eq!(
            long.tagged().as_deref(),
            Some("docker.io/library/busybox:latest")
        );
        assert_eq!(short.to_oci(), long.to_oci());
    }

    #[test]
    fn refuses_bad_names() {
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("Upper/case").is_err());
        assert!(ImageRef::parse("a/../b").is_err());
        assert!(ImageRef::parse("a@sha256:zz").is_err());
        assert!(ImageRef::parse("a:").is_err());
        assert!(ImageRef::parse("a..b").is_err());
        let err = ImageRef::parse("Upper/case").unwrap_err().to_string();
        assert!(err.starts_with("invalid reference format: "), "{err}");
    }
}
