//! The calls that take a container's files out as an image or a tar and
//! bring a root filesystem tar in: `POST /commit`, `GET
//! /containers/{id}/changes`, `GET /containers/{id}/export` and `POST
//! /images/create?fromSrc=-`.

use std::io::Write;
use std::path::Path;

use bytes::Bytes;
use hyper::Method;

use super::{Engine, Error, encode};

/// What `servin commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `REPO[:TAG]` to name the image.
    pub name: Option<String>,
    /// The commit message.
    pub message: Option<String>,
    /// The author.
    pub author: Option<String>,
    /// Dockerfile instructions applied to the image's configuration.
    pub changes: Vec<String>,
    /// Freeze the container while committing.
    pub pause: bool,
}

/// One changed path of `servin diff`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Change {
    /// The path in the container.
    #[serde(rename = "Path")]
    pub path: String,
    /// 0 changed, 1 added, 2 deleted.
    #[serde(rename = "Kind")]
    pub kind: u8,
}

impl Change {
    /// Docker's letter for the kind: `C`, `A` or `D`.
    pub fn letter(&self) -> char {
        match self.kind {
            1 => 'A',
            2 => 'D',
            _ => 'C',
        }
    }
}

fn name_query(name: Option<&str>) -> Vec<String> {
    let Some(name) = name else {
        return Vec::new();
    };
    let (repo, tag) = super::images::split_tag(name);
    let mut q = vec![format!("repo={}", encode(repo))];
    if let Some(t) = tag {
        q.push(format!("tag={}", encode(t)));
    }
    q
}

impl Engine {
    /// `POST /commit`: a new image of `container`; returns its ID.
    pub fn commit_container(&self, container: &str, o: &CommitOptions) -> Result<String, Error> {
        let mut q = vec![format!("container={}", encode(container))];
        q.extend(name_query(o.name.as_deref()));
        if let Some(m) = &o.message {
            q.push(format!("comment={}", encode(m)));
        }
        if let Some(a) = &o.author {
            q.push(format!("author={}", encode(a)));
        }
        for c in &o.changes {
            q.push(format!("changes={}", encode(c)));
        }
        q.push(format!("pause={}", o.pause));
        let v: serde_json::Value = self.post_json(
            &format!("/commit?{}", q.join("&")),
            &serde_json::json!({}),
            &format!("commit {container}"),
        )?;
        Ok(v.get("Id")
            .and_then(|i| i.as_str())
            .unwrap_or_default()
            .to_string())
    }

    /// `GET /containers/{id}/changes`, sorted by path.
    pub fn container_changes(&self, container: &str) -> Result<Vec<Change>, Error> {
        let list: Option<Vec<Change>> = self.json(
            Method::GET,
            &format!("/containers/{}/changes", encode(container)),
            &format!("diff {container}"),
        )?;
        let mut list = list.unwrap_or_default();
        list.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(list)
    }

    /// `GET /containers/{id}/export`: the tar of the container's files,
    /// written to `out` as it arrives.
    pub fn export_container(&self, container: &str, out: &mut dyn Write) -> Result<(), Error> {
        let step = format!("export {container}");
        let resp = self.send(
            Method::GET,
            &format!("/containers/{}/export", encode(container)),
            &[],
            Bytes::new(),
            &step,
        )?;
        let resp = self.check(resp, &step)?;
        self.stream(resp, &step, |chunk| {
            out.write_all(chunk).map_err(|source| Error::File {
                path: "-".into(),
                source,
            })
        })
    }

    /// [`Engine::export_container`] into `file`, through a temporary file
    /// renamed into place, so a failed export leaves no partial file.
    pub fn export_container_to(&self, container: &str, file: &Path) -> Result<(), Error> {
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
            .export_container(container, &mut out)
            .and_then(|()| out.sync_all().map_err(ferr(&tmp)))
            .and_then(|()| std::fs::rename(&tmp, file).map_err(ferr(file)));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// `POST /images/create?fromSrc=-` (`docker import`): `tar` (plain,
    /// gzip or zstd) becomes a one-layer image; returns its ID.
    pub fn import_rootfs(
        &self,
        tar: Vec<u8>,
        name: Option<&str>,
        message: Option<&str>,
        changes: &[String],
    ) -> Result<String, Error> {
        let mut q = vec!["fromSrc=-".to_string()];
        q.extend(name_query(name));
        if let Some(m) = message {
            q.push(format!("message={}", encode(m)));
        }
        for c in changes {
            q.push(format!("changes={}", encode(c)));
        }
        let step = "import the root filesystem".to_string();
        let resp = self.send(
            Method::POST,
            &format!("/images/create?{}", q.join("&")),
            &[("Content-Type", "application/x-tar".to_string())],
            Bytes::from(tar),
            &step,
        )?;
        let resp = self.check(resp, &step)?;
        let mut id = None;
        let mut failure = None;
        self.json_lines(resp, &step, |v| {
            if let Some(e) = v.get("error").and_then(|s| s.as_str()) {
                failure = Some(e.to_string());
            } else if let Some(s) = v.get("status").and_then(|s| s.as_str())
                && s.starts_with("sha256:")
            {
                id = Some(s.to_string());
            }
            Ok(())
        })?;
        match (failure, id) {
            (Some(message), _) => Err(Error::Engine {
                step,
                status: 500,
                message,
            }),
            (None, Some(id)) => Ok(id),
            (None, None) => Err(Error::Engine {
                step,
                status: 500,
                message: "the engine's answer ended without an image ID".to_string(),
            }),
        }
    }
}
