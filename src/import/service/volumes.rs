//! `volumes` (short `SOURCE:TARGET:MODE` or long mappings, binds, named
//! volumes and tmpfs) → `volumes`; named volumes the file does not
//! declare are declared.

use serde_yaml_ng::{Mapping, Value as Y};
use toml_edit::Value;

use super::{Svc, Used};
use crate::import::out::{array, string, table};

impl Svc<'_> {
    pub(super) fn volumes(&mut self, at: &str, v: &Y) {
        let Some(items) = self.short_or_long(
            at,
            v,
            |svc, iat, s| Some(string(&svc.short_volume(iat, &s))),
            Self::long_volume,
        ) else {
            return;
        };
        let out = items.into_iter().map(|(_, t)| t).collect();
        self.set("volumes", array(out));
    }

    /// `SOURCE:TARGET[:MODE]`: the volume name rewritten, modes servin
    /// does not know dropped.
    fn short_volume(&mut self, at: &str, s: &str) -> String {
        let Some((source, rest)) = s.split_once(':') else {
            return s.to_string();
        };
        let is_path = source.is_empty()
            || source.starts_with(['.', '/', '~', '$'])
            || (source.len() == 1 && rest.starts_with('\\'));
        self.note_docker_socket(at, source);
        let source = if is_path {
            source.to_string()
        } else {
            self.used_name(Used::Volume, source, at)
        };
        let (target, mode) = match rest.rsplit_once(':') {
            Some((t, m)) if !m.starts_with('/') => (t, Some(m)),
            _ => (rest, None),
        };
        let mut kept = Vec::new();
        if let Some(mode) = mode {
            for m in mode.split(',') {
                match m {
                    "ro" => kept.push(m),
                    "rw" | "" => {}
                    other => self.warn(
                        at.to_string(),
                        format!("the mount option `{other}` is not supported by servin; dropped"),
                    ),
                }
            }
        }
        let mut out = format!("{source}:{target}");
        if !kept.is_empty() {
            out.push(':');
            out.push_str(&kept.join(","));
        }
        out
    }

    /// A bind of Docker's socket is kept: the engine gives the container
    /// its own socket there. Said in one line, as a warning, so nobody is
    /// surprised that the container drives servin.
    fn note_docker_socket(&mut self, at: &str, source: &str) {
        if matches!(source, "/var/run/docker.sock" | "/run/docker.sock") {
            self.warn(
                at.to_string(),
                format!(
                    "`{source}` is Docker's socket: servin binds its own engine socket there, so the container drives servin"
                ),
            );
        }
    }

    fn long_volume(&mut self, at: &str, m: &Mapping) -> Option<Value> {
        let mut kind_ = None;
        let mut source = None;
        let mut target = None;
        let mut read_only = None;
        let mut size = None;
        let mut mode = None;
        for (k, v) in self.fields(m, at) {
            let kat = format!("{at}.{k}");
            match k.as_str() {
                "type" => kind_ = self.string(kat, v),
                "source" => {
                    source = self.string(kat, v);
                    if let Some(src) = source.clone() {
                        self.note_docker_socket(at, &src);
                    }
                }
                "target" => target = self.string(kat, v),
                "read_only" => read_only = self.boolean(kat, v),
                "tmpfs" => {
                    let Y::Mapping(t) = v else {
                        self.expected(kat, "a mapping", v);
                        continue;
                    };
                    for (tk, tv) in self.fields(t, &kat) {
                        let tat = format!("{kat}.{tk}");
                        match tk.as_str() {
                            "size" => size = self.size(&tat, tv),
                            "mode" => mode = self.mode(&tat, tv),
                            _ => self.dropped(tat),
                        }
                    }
                }
                "bind" | "volume" | "image" => {
                    let Y::Mapping(t) = v else {
                        self.expected(kat, "a mapping", v);
                        continue;
                    };
                    for (tk, _) in self.fields(t, &kat) {
                        self.dropped(format!("{kat}.{tk}"));
                    }
                }
                "consistency" => self.dropped(kat),
                _ => self.dropped(kat),
            }
        }
        let Some(target) = target else {
            self.warn(at.to_string(), "a mount without a `target`; dropped");
            return None;
        };
        let kind_ = kind_.unwrap_or_else(|| "volume".to_string());
        match kind_.as_str() {
            "volume" | "bind" | "tmpfs" => {}
            other => {
                self.warn(
                    at.to_string(),
                    format!("`{other}` mounts are not supported by servin; dropped"),
                );
                return None;
            }
        }
        let source = match (kind_.as_str(), source) {
            ("volume", Some(s)) => Some(self.used_name(Used::Volume, &s, &format!("{at}.source"))),
            ("tmpfs", Some(_)) => {
                self.warn(
                    format!("{at}.source"),
                    "a tmpfs mount has no source; dropped",
                );
                None
            }
            (_, s) => s,
        };
        if kind_ != "tmpfs" && (size.is_some() || mode.is_some()) {
            self.warn(
                format!("{at}.tmpfs"),
                "applies to tmpfs mounts only; dropped",
            );
            size = None;
            mode = None;
        }
        let mut entries = vec![("type", string(&kind_))];
        if let Some(s) = source {
            entries.push(("source", string(&s)));
        }
        entries.push(("target", string(&target)));
        if read_only == Some(true) {
            entries.push(("read_only", Value::from(true)));
        }
        if let Some(s) = size {
            entries.push(("size", s));
        }
        if let Some(m) = mode {
            entries.push(("mode", m));
        }
        Some(table(entries))
    }

    /// A tmpfs mode as octal digits: `1777` as written, or the octal
    /// spelling of a number YAML read as octal (`0o1777`).
    fn mode(&mut self, at: &str, v: &Y) -> Option<Value> {
        let digits = match v {
            Y::Number(n) => {
                let n = n.as_u64()?;
                let written = n.to_string();
                if written.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                    written
                } else {
                    format!("{n:o}")
                }
            }
            Y::String(s) => {
                let s = s.trim();
                let s = s.strip_prefix("0o").unwrap_or(s);
                s.trim_start_matches('0').to_string()
            }
            other => {
                self.expected(at.to_string(), "a file mode such as 1777", other);
                return None;
            }
        };
        let digits = if digits.is_empty() {
            "0".to_string()
        } else {
            digits
        };
        match (u32::from_str_radix(&digits, 8), digits.parse::<i64>()) {
            (Ok(m), Ok(n)) if m <= 0o7777 => Some(Value::from(n)),
            _ => {
                self.warn(
                    at.to_string(),
                    format!("`{digits}` is not a file mode; dropped"),
                );
                None
            }
        }
    }
}
