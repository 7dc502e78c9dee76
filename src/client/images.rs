//! Image operations over the Docker API.

use std::io::Write;
use std::path::Path;

use bollard_stubs::models::{
    CreateImageInfo, ImageDeleteResponseItem, ImageInspect, ImagePruneResponse, ImageSummary,
    SystemInfo, SystemVersion,
};
use bytes::Bytes;
use hyper::Method;

use super::auth;
use super::{Engine, Error, encode};

impl Engine {
    /// `GET /version`.
    pub fn version(&self) -> Result<SystemVersion, Error> {
        self.json(Method::GET, "/version", "read the engine's version")
    }

    /// `GET /info`.
    pub fn info(&self) -> Result<SystemInfo, Error> {
        self.json(Method::GET, "/info", "read the engine's info")
    }

    /// `GET /servin/v1/info`: mode, root, runtime, storage figures.
    pub fn servin_info(&self) -> Result<serde_json::Value, Error> {
        self.json(
            Method::GET,
            "/servin/v1/info",
            "read the engine's servin info",
        )
    }

    /// `POST /auth`: checks credentials with the registry.
    pub fn login(&self, registry: &str, c: &super::auth::Credentials) -> Result<(), Error> {
        let body = serde_json::json!({
            "username": c.username,
            "password": c.password,
            "serveraddress": registry,
        });
        // The engine's message names the registry.
        let step = "check the credentials";
        let resp = self.send(
            hyper::Method::POST,
            "/auth",
            &[("Content-Type", "application/json".to_string())],
            bytes::Bytes::from(body.to_string()),
            step,
        )?;
        let resp = self.check(resp, step)?;
        self.body(resp, step).map(|_| ())
    }

    /// `GET /images/json`.
    pub fn images(&self, all: bool) -> Result<Vec<ImageSummary>, Error> {
        let path = if all {
            "/images/json?all=1"
        } else {
            "/images/json"
        };
        self.json(Method::GET, path, "list images")
    }

    /// `GET /images/{name}/json`.
    pub fn inspect(&self, name: &str) -> Result<ImageInspect, Error> {
        self.json(
            Method::GET,
            &format!("/images/{}/json", encode(name)),
            &format!("inspect {name}"),
        )
    }

    /// `DELETE /images/{name}`.
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<ImageDeleteResponseItem>, Error> {
        self.json(
            Method::DELETE,
            &format!("/images/{}?force={force}", encode(name)),
            &format!("remove {name}"),
        )
    }

    /// `POST /images/{source}/tag`.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), Error> {
        let (repo, tag) = split_tag(target);
        let mut path = format!("/images/{}/tag?repo={}", encode(source), encode(repo));
        if let Some(t) = tag {
            path.push_str(&format!("&tag={}", encode(t)));
        }
        let step = format!("tag {source} as {target}");
        let resp = self.send(Method::POST, &path, &[], Bytes::new(), &step)?;
        self.check(resp, &step).map(|_| ())
    }

    /// `POST /images/prune`.
    pub fn prune(&self, all: bool) -> Result<ImagePruneResponse, Error> {
        let path = if all {
            "/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D"
        } else {
            "/images/prune"
        };
        self.json(Method::POST, path, "prune images")
    }

    /// `POST /images/create`: pulls `image`, calling `each` per progress event.
    pub fn pull(
        &self,
        image: &str,
        platform: Option<&str>,
        each: impl FnMut(&CreateImageInfo),
    ) -> Result<(), Error> {
        let mut path = format!("/images/create?fromImage={}", encode(image));
        if let Some(p) = platform {
            path.push_str(&format!("&platform={}", encode(p)));
        }
        self.progress(Method::POST, &path, image, &format!("pull {image}"), each)
    }

    /// `POST /images/{name}/push`, calling `each` per progress event.
    pub fn push(&self, image: &str, each: impl FnMut(&CreateImageInfo)) -> Result<(), Error> {
        let (repo, tag) = split_tag(image);
        let mut path = format!("/images/{}/push", encode(repo));
        if let Some(t) = tag {
            path.push_str(&format!("?tag={}", encode(t)));
        }
        self.progress(Method::POST, &path, image, &format!("push {image}"), each)
    }

    fn progress(
        &self,
        method: Method,
        path: &str,
        image: &str,
        step: &str,
        mut each: impl FnMut(&CreateImageInfo),
    ) -> Result<(), Error> {
        let registry = auth::registry_of(image);
        let mut headers = Vec::new();
        if let Some(c) = auth::lookup(&registry)? {
            headers.push(("X-Registry-Auth", auth::header(&registry, &c)));
        }
        let resp = self.send(method, path, &headers, Bytes::new(), step)?;
        let resp = self.check(resp, step)?;
        let mut failure = None;
        self.json_lines(resp, step, |v| {
            let info: CreateImageInfo =
                serde_json::from_value(v).map_err(|source| Error::Decode {
                    step: step.to_string(),
                    source,
                })?;
            if let Some(e) = info.error_detail.as_ref().and_then(|d| d.message.clone()) {
                failure = Some(e);
            }
            each(&info);
            Ok(())
        })?;
        match failure {
            Some(message) => Err(Error::Engine {
                step: step.to_string(),
                status: 500,
                message,
            }),
            None => Ok(()),
        }
    }

    /// `POST /images/load` with a docker-save or OCI-layout tar; returns the
    /// engine's messages (`Loaded image: ...`).
    pub fn load(&self, file: &Path) -> Result<Vec<String>, Error> {
        let body = std::fs::read(file).map_err(|source| Error::File {
            path: file.to_path_buf(),
            source,
        })?;
        let step = format!("import {}", file.display());
        let headers = [("Content-Type", "application/x-tar".to_string())];
        let resp = self.send(
            Method::POST,
            "/images/load",
            &headers,
            Bytes::from(body),
            &step,
        )?;
        let resp = self.check(resp, &step)?;
        let mut out = Vec::new();
        let mut failure = None;
        self.json_lines(resp, &step, |v| {
            if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
                out.push(s.trim().to_string());
            }
            if let Some(e) = v.get("error").and_then(|s| s.as_str()) {
                failure = Some(e.to_string());
            }
            Ok(())
        })?;
        match failure {
            Some(message) => Err(Error::Engine {
                step,
                status: 500,
                message,
            }),
            None => Ok(out),
        }
    }

    /// `GET /images/get`: writes a tar of `images` to `file` (through a
    /// temporary file renamed into place).
    pub fn export(&self, images: &[String], file: &Path) -> Result<(), Error> {
        let query: Vec<String> = images
            .iter()
            .map(|i| format!("names={}", encode(i)))
            .collect();
        let step = format!("export {}", images.join(", "));
        let resp = self.send(
            Method::GET,
            &format!("/images/get?{}", query.join("&")),
            &[],
            Bytes::new(),
            &step,
        )?;
        let resp = self.check(resp, &step)?;
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.part", std::process::id()));
        let ferr = |p: &Path| {
            let p = p.to_path_buf();
            move |source| Error::File { path: p, source }
        };
        let mut out = std::fs::File::create(&tmp).map_err(ferr(&tmp))?;
        let result = self
            .stream(resp, &step, |chunk| {
                out.write_all(chunk).map_err(ferr(&tmp))
            })
            .and_then(|()| out.sync_all().map_err(ferr(&tmp)))
            .and_then(|()| std::fs::rename(&tmp, file).map_err(ferr(file)));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// Splits `repo[:tag]`, minding a registry port (`host:5000/x`) and digests.
pub fn split_tag(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    match image.rfind(':') {
        Some(i) if !image[i + 1..].contains('/') => (&image[..i], Some(&image[i + 1..])),
        _ => (image, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_tags() {
        assert_eq!(split_tag("a"), ("a", None));
        assert_eq!(split_tag("a:1"), ("a", Some("1")));
        assert_eq!(split_tag("h:5000/a"), ("h:5000/a", None));
        assert_eq!(split_tag("h:5000/a:2"), ("h:5000/a", Some("2")));
    }
}
