//! The `--change` instructions of `docker commit` and `docker import`:
//! the Dockerfile instructions that only change an image's configuration
//! (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `ONBUILD`,
//! `STOPSIGNAL`, `USER`, `VOLUME`, `WORKDIR`), applied in order to the
//! config's `config` object. Anything else is refused naming the
//! instruction, in Docker's words (`run is not a valid change command`).

use serde_json::{Map, Value, json};

use crate::error::{ImageError, Result};

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

fn bad(msg: String) -> crate::error::Error {
    ImageError::Change(msg).into()
}

/// Applies `changes` (one instruction each, as the API's repeated
/// `changes` parameter carries them; a value may hold several lines) to
/// `config`, the image config's `config` object.
pub fn apply(config: &mut Value, changes: &[String]) -> Result<()> {
    if !config.is_object() {
        *config = json!({});
    }
    let Some(obj) = config.as_object_mut() else {
        return Ok(());
    };
    let mut cmd_set = false;
    for line in changes
        .iter()
        .flat_map(|c| c.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (word, rest) = match line.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim()),
            None => (line, ""),
        };
        let keyword = word.to_ascii_lowercase();
        let need = |what: &str| -> Result<()> {
            if rest.is_empty() {
                Err(bad(format!("{} requires {what}", keyword.to_uppercase())))
            } else {
                Ok(())
            }
        };
        match keyword.as_str() {
            "cmd" => {
                need("at least one argument")?;
                let argv = command(obj, rest);
                obj.insert("Cmd".into(), json!(argv));
                cmd_set = true;
            }
            "entrypoint" => {
                need("at least one argument")?;
                let argv = command(obj, rest);
                obj.insert("Entrypoint".into(), json!(argv));
                // As in a build: an ENTRYPOINT drops the CMD unless this
                // commit set one before it.
                if !cmd_set {
                    obj.insert("Cmd".into(), Value::Null);
                }
            }
            "env" => {
                need("at least one argument")?;
                let pairs = key_values("ENV", rest, true)?;
                let mut env: Vec<String> = obj
                    .get("Env")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                for (k, v) in pairs {
                    let entry = format!("{k}={v}");
                    match env
                        .iter_mut()
                        .find(|e| e.split('=').next() == Some(k.as_str()))
                    {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
                obj.insert("Env".into(), json!(env));
            }
            "label" => {
                need("at least one argument")?;
                let pairs = key_values("LABEL", rest, false)?;
                with_object(obj, "Labels", |labels| {
                    for (k, v) in pairs {
                        labels.insert(k, json!(v));
                    }
                });
            }
            "expose" => {
                need("at least one argument")?;
                let mut ports = Vec::new();
                for p in rest.split_whitespace() {
                    ports.extend(expose_ports(p)?);
                }
                with_object(obj, "ExposedPorts", |exposed| {
                    for p in ports {
                        exposed.insert(p, json!({}));
                    }
                });
            }
            "user" => {
                need("exactly one argument")?;
                obj.insert("User".into(), json!(rest));
            }
            "workdir" => {
                need("exactly one argument")?;
                let dir = if rest.starts_with('/') {
                    rest.to_string()
                } else {
                    let base = obj.get("WorkingDir").and_then(Value::as_str).unwrap_or("/");
                    format!("{}/{rest}", base.trim_end_matches('/'))
                };
                obj.insert("WorkingDir".into(), json!(dir));
            }
            "volume" => {
                need("at least one argument")?;
                let paths: Vec<String> = match json_array(rest) {
                    Some(list) => list,
                    None => rest.split_whitespace().map(String::from).collect(),
                };
                if paths.iter().any(|p| p.is_empty()) {
                    return Err(bad("VOLUME specified can not be an empty string".into()));
                }
                with_object(obj, "Volumes", |volumes| {
                    for p in paths {
                        volumes.insert(p, json!({}));
                    }
                });
            }
            "stopsignal" => {
                need("exactly one argument")?;
                obj.insert("StopSignal".into(), json!(rest));
            }
            "onbuild" => {
                need("at least one argument")?;
                let inner = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                if matches!(inner.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(bad(format!("{inner} isn't allowed as an ONBUILD trigger")));
                }
                let mut triggers: Vec<Value> = obj
                    .get("OnBuild")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                triggers.push(json!(rest));
                obj.insert("OnBuild".into(), json!(triggers));
            }
            _ => return Err(bad(format!("{keyword} is not a valid change command"))),
        }
    }
    Ok(())
}

/// Changes the object at `key` in `obj` (made when missing or not an
/// object) with `f`.
fn with_object(obj: &mut Map<String, Value>, key: &str, f: impl FnOnce(&mut Map<String, Value>)) {
    let mut m = match obj.remove(key) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    f(&mut m);
    obj.insert(key.to_string(), Value::Object(m));
}

/// A JSON array of strings, when `text` is one.
fn json_array(text: &str) -> Option<Vec<String>> {
    if !text.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(text).ok()
}

/// The exec form as is; the shell form under the config's `Shell` (or
/// `/bin/sh -c`).
fn command(obj: &Map<String, Value>, rest: &str) -> Vec<String> {
    if let Some(argv) = json_array(rest) {
        return argv;
    }
    let mut argv: Vec<String> = obj
        .get("Shell")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .filter(|s: &Vec<String>| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect());
    argv.push(rest.to_string());
    argv
}

/// Splits words on unquoted whitespace; quotes (`"`, `'`) and backslash
/// escapes are removed as a Dockerfile does.
fn words(text: &str, what: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if quote.is_some() {
        return Err(bad(format!("{what}: unmatched quote in {text:?}")));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `K=V K2="v 2"` pairs; with `legacy`, also `K rest of the line`.
fn key_values(what: &str, rest: &str, legacy: bool) -> Result<Vec<(String, String)>> {
    let list = words(rest, what)?;
    if legacy
        && list.first().is_some_and(|w| !w.contains('='))
        && let Some((k, v)) = rest.split_once(char::is_whitespace)
    {
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    list.into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(bad(format!("{what} names must not be empty"))),
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(bad(format!("{what} {w:?} has no value: write {w}=VALUE"))),
        })
        .collect()
}

/// The ports of one `EXPOSE` word: `80`, `80/udp`, `8000-8002/tcp`.
fn expose_ports(word: &str) -> Result<Vec<String>> {
    let (ports, proto) = word.split_once('/').unwrap_or((word, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad(format!("invalid proto: {proto}")));
    }
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| bad(format!("invalid containerPort: {p}")))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if hi < lo {
        return Err(bad(format!(
            "invalid range specified for containerPort: {ports}"
        )));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn applied(config: Value, changes: &[&str]) -> Value {
        let mut c = config;
        apply(
            &mut c,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        c
    }

    #[test]
    fn json_and_shell_forms() {
        let c = applied(json!({"Cmd": ["sh"]}), &[r#"CMD ["x", "y"]"#]);
        assert_eq!(c["Cmd"], json!(["x", "y"]));
        let c = applied(json!({}), &["cmd echo hi"]);
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        let c = applied(json!({"Shell": ["/bin/bash", "-xc"]}), &["CMD echo hi"]);
        assert_eq!(c["Cmd"], json!(["/bin/bash", "-xc", "echo hi"]));
        // An ENTRYPOINT drops the CMD unless the same commit set one first.
        let c = applied(json!({"Cmd": ["sh"]}), &[r#"ENTRYPOINT ["/e"]"#]);
        assert_eq!(c["Cmd"], Value::Null);
        let c = applied(json!({}), &[r#"CMD ["a"]"#, r#"ENTRYPOINT ["/e"]"#]);
        assert_eq!(c["Cmd"], json!(["a"]));
        assert_eq!(c["Entrypoint"], json!(["/e"]));
    }

    #[test]
    fn env_label_expose_volume_user_workdir_onbuild() {
        let c = applied(
            json!({"Env": ["PATH=/bin", "A=0"], "WorkingDir": "/app"}),
            &[
                "ENV A=1 B=\"two words\"",
                "ENV C the rest",
                "LABEL a=b 'c d'=e",
                "EXPOSE 80 53/udp 8000-8001",
                r#"VOLUME ["/data", "/logs"]"#,
                "VOLUME /x",
                "USER nobody:nogroup",
                "WORKDIR sub",
                "ONBUILD RUN make",
                "STOPSIGNAL SIGINT",
            ],
        );
        assert_eq!(
            c["Env"],
            json!(["PATH=/bin", "A=1", "B=two words", "C=the rest"])
        );
        assert_eq!(c["Labels"], json!({"a": "b", "c d": "e"}));
        assert_eq!(
            c["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}})
        );
        assert_eq!(c["Volumes"], json!({"/data": {}, "/logs": {}, "/x": {}}));
        assert_eq!(c["User"], "nobody:nogroup");
        assert_eq!(c["WorkingDir"], "/app/sub");
        assert_eq!(c["OnBuild"], json!(["RUN make"]));
        assert_eq!(c["StopSignal"], "SIGINT");
    }

    #[test]
    fn other_instructions_are_refused_by_name() {
        for (change, want) in [
            ("RUN echo hi", "run is not a valid change command"),
            ("FROM busybox", "from is not a valid change command"),
            ("COPY a b", "copy is not a valid change command"),
            ("EXPOSE 99999", "invalid containerPort: 99999"),
            ("ENV", "ENV requires at least one argument"),
            ("LABEL novalue", "LABEL \"novalue\" has no value"),
            ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        ] {
            let mut c = json!({});
            let e = apply(&mut c, &[change.to_string()]).unwrap_err();
            assert!(
                e.full_message().contains(want),
                "{change}: {}",
                e.full_message()
            );
        }
    }
}
