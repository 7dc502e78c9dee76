//! `ADD <url>`: the engine downloads the URL itself, as Docker's builders
//! do. The file lands with mode 0600 and the server's `Last-Modified` as
//! its time, named after the URL's last path segment when the destination
//! is a folder. `--checksum=sha256:...` (or sha384, sha512) is verified
//! before anything is copied; with it, the step's cache key is the
//! checksum (no download on a cache hit), without it the content's digest.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256, Sha384, Sha512};
use tokio::io::AsyncWriteExt;

/// One URL source of an `ADD`.
#[derive(Debug, Clone)]
pub struct UrlSource {
    /// The URL as written (args expanded).
    pub url: String,
    /// `--checksum`, as written.
    pub checksum: Option<String>,
    /// The download, once made.
    pub fetched: Option<Fetched>,
}

/// A downloaded URL.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Where the content is (a scratch file of the builder).
    pub path: PathBuf,
    /// `sha256:` of the content.
    pub digest: String,
    /// The server's `Last-Modified`, in seconds since the epoch (0 when
    /// it sent none, as Docker's builders then leave the time unset).
    pub mtime: u64,
}

/// A checksum algorithm `--checksum` names.
enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> String {
        let (name, bytes): (&str, Vec<u8>) = match self {
            Self::Sha256(h) => ("sha256", h.finalize().to_vec()),
            Self::Sha384(h) => ("sha384", h.finalize().to_vec()),
            Self::Sha512(h) => ("sha512", h.finalize().to_vec()),
        };
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("{name}:{hex}")
    }
}

/// Checks a `--checksum` value: `ALGORITHM:HEX` with sha256, sha384 or
/// sha512 and the right number of hex digits. Returns it in lowercase.
pub fn parse_checksum(checksum: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "invalid --checksum {checksum:?}: want sha256:<64 hex digits> (or sha384:, sha512:)"
        )
    };
    let (algo, hex) = checksum.split_once(':').ok_or_else(bad)?;
    let algo = algo.to_ascii_lowercase();
    let len = match algo.as_str() {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(bad()),
    };
    if hex.len() != len || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok(format!("{algo}:{}", hex.to_ascii_lowercase()))
}

/// Whether an `ADD` source is a URL the builder downloads.
pub fn is_http(source: &str) -> bool {
    let lower = source.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The name a URL's file gets in a destination folder: the last segment
/// of its path, else `__unnamed__` (as BuildKit names it).
pub fn file_name(url: &str) -> String {
    let path = reqwest::Url::parse(url)
        .map(|u| u.path().to_string())
        .unwrap_or_default();
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(last) if !last.is_empty() && last != "." && last != ".." => {
            percent_decoded(last).unwrap_or_else(|| last.to_string())
        }
        _ => "__unnamed__".to_string(),
    }
}

fn percent_decoded(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let name = String::from_utf8(out).ok()?;
    (!name.contains('/') && !name.contains('\0')).then_some(name)
}

/// Downloads `url` into the file `dest` (created), hashing it; with
/// `checksum` (as [`parse_checksum`] gives it) the content must match,
/// else the file is removed and the error names the URL and both
/// digests.
pub async fn fetch(url: &str, dest: &Path, checksum: Option<&str>) -> Result<Fetched, String> {
    let done = download(url, dest, checksum).await;
    if done.is_err() {
        let _ = tokio::fs::remove_file(dest).await;
    }
    done
}

async fn download(url: &str, dest: &Path, checksum: Option<&str>) -> Result<Fetched, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
    let mut resp = reqwest::get(parsed)
        .await
        .map_err(|e| format!("download {url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!(
            "download {url}: the server answered {}",
            resp.status()
        ));
    }
    let mtime = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .and_then(|t| u64::try_from(t.timestamp()).ok())
        .unwrap_or(0);
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| format!("create {}: {e}", dest.display()))?;
    let mut content = Sha256::new();
    let mut check = checksum.map(|c| match c.split_once(':').map(|(a, _)| a) {
        Some("sha384") => Hasher::Sha384(Sha384::new()),
        Some("sha512") => Hasher::Sha512(Sha512::new()),
        _ => Hasher::Sha256(Sha256::new()),
    });
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("download {url}: {e}"))?
    {
        content.update(&chunk);
        if let Some(h) = check.as_mut() {
            h.update(&chunk);
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("write {}: {e}", dest.display()))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("write {}: {e}", dest.display()))?;
    if let (Some(expected), Some(h)) = (checksum, check) {
        let actual = h.finish();
        if actual != expected {
            return Err(format!(
                "checksum mismatch for {url}: expected {expected}, got {actual}"
            ));
        }
    }
    let hex: String = content
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Fetched {
        path: dest.to_path_buf(),
        digest: format!("sha256:{hex}"),
        mtime,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn checksums_are_checked_and_lowercased() {
        let hex = "AB".repeat(32);
        assert_eq!(
            parse_checksum(&format!("sha256:{hex}")).unwrap(),
            format!("sha256:{}", hex.to_ascii_lowercase())
        );
        assert!(parse_checksum(&format!("sha512:{}", "0".repeat(128))).is_ok());
        for bad in [
            "sha256:abc",
            "md5:00",
            "nohex",
            &format!("sha256:{}", "g".repeat(64)),
        ] {
            let e = parse_checksum(bad).unwrap_err();
            assert!(
                e.contains("invalid --checksum") && e.contains("sha256:"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_url_names_its_file_by_its_last_segment() {
        assert_eq!(
            file_name("https://example.com/a/b/tool.tar.gz"),
            "tool.tar.gz"
        );
        assert_eq!(file_name("https://example.com/a/b/x.txt?v=1#top"), "x.txt");
        assert_eq!(file_name("https://example.com/dir/"), "dir");
        assert_eq!(file_name("https://example.com/my%20file"), "my file");
        assert_eq!(file_name("https://example.com"), "__unnamed__");
        assert_eq!(file_name("https://example.com/"), "__unnamed__");
        assert!(is_http("HTTPS://x/y") && is_http("http://x") && !is_http("git@x:y"));
    }
}
