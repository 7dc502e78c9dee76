//! `RUN --mount=...`: the comma-separated options Docker takes, typed per
//! mount type.

use crate::instruction::{CacheSharing, RunMount};

/// Parses the value of one `--mount` flag. The error is a message and a
/// line of help.
pub(crate) fn parse_mount(value: &str) -> Result<RunMount, (String, String)> {
    let fields =
        split_csv(value).map_err(|e| (e, "quote a value holding a comma with `\"`".to_owned()))?;
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    for field in fields {
        if field.is_empty() {
            continue;
        }
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_owned())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        pairs.push((key, val));
    }
    let mount_type = pairs
        .iter()
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.clone().unwrap_or_default())
        .unwrap_or_else(|| "bind".to_owned());
    let allowed: &[&str] = match mount_type.as_str() {
        "bind" => &[
            "type",
            "target",
            "dst",
            "destination",
            "source",
            "src",
            "from",
            "readonly",
            "ro",
            "readwrite",
            "rw",
        ],
        "cache" => &[
            "type",
            "target",
            "dst",
            "destination",
            "source",
            "src",
            "from",
            "readonly",
            "ro",
            "id",
            "sharing",
            "mode",
            "uid",
            "gid",
        ],
        "tmpfs" => &["type", "target", "dst", "destination", "size"],
        "secret" => &[
            "type",
            "target",
            "dst",
            "destination",
            "id",
            "required",
            "mode",
            "uid",
            "gid",
            "env",
        ],
        "ssh" => {
            return Err((
                "servin cannot forward an ssh agent into a build: `--mount=type=ssh` is not supported".to_owned(),
                "fetch private sources before the build, or pass a key with `--mount=type=secret`".to_owned(),
            ));
        }
        other => {
            return Err((
                format!("unknown mount type `{other}`"),
                "mount types are bind, cache, tmpfs and secret".to_owned(),
            ));
        }
    };
    let mut target = None;
    let mut source = None;
    let mut from = None;
    let mut readonly = None;
    let mut readwrite = None;
    let mut id = None;
    let mut sharing = CacheSharing::Shared;
    let mut mode = None;
    let mut uid = None;
    let mut gid = None;
    let mut size = None;
    let mut required = false;
    let mut env = None;
    for (key, val) in pairs {
        if !allowed.contains(&key.as_str()) {
            let known = [
                "type",
                "target",
                "dst",
                "destination",
                "source",
                "src",
                "from",
                "readonly",
                "ro",
                "readwrite",
                "rw",
                "id",
                "sharing",
                "mode",
                "uid",
                "gid",
                "size",
                "required",
                "env",
            ];
            let help = format!("a {mount_type} mount takes {}", allowed.join(", "));
            if known.contains(&key.as_str()) {
                return Err((
                    format!("option `{key}` does not apply to a {mount_type} mount"),
                    help,
                ));
            }
            return Err((format!("unknown mount option `{key}`"), help));
        }
        let needs_value = |val: Option<String>| {
            val.filter(|v| !v.is_empty()).ok_or_else(|| {
                (
                    format!("mount option `{key}` needs a value"),
                    format!("write `{key}=VALUE`"),
                )
            })
        };
        let flag = |val: Option<String>| -> Result<bool, (String, String)> {
            match val.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("true") => Ok(true),
                Some("false") => Ok(false),
                Some(other) => Err((
                    format!("mount option `{key}` takes true or false, not `{other}`"),
                    format!("write `{key}` or `{key}=false`"),
                )),
            }
        };
        match key.as_str() {
            "type" => {}
            "target" | "dst" | "destination" => target = Some(needs_value(val)?),
            "source" | "src" => source = Some(needs_value(val)?),
            "from" => from = Some(needs_value(val)?),
            "readonly" | "ro" => readonly = Some(flag(val)?),
            "readwrite" | "rw" => readwrite = Some(flag(val)?),
            "id" => id = Some(needs_value(val)?),
            "sharing" => {
                sharing = match needs_value(val)?.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    other => {
                        return Err((
                            format!("unknown cache sharing `{other}`"),
                            "sharing is shared, private or locked".to_owned(),
                        ));
                    }
                }
            }
            "mode" => {
                let v = needs_value(val)?;
                if !v.contains('$') && (v.len() > 4 || !v.chars().all(|c| ('0'..='7').contains(&c)))
                {
                    return Err((
                        format!("mount mode `{v}` is not an octal file mode"),
                        "write the mode in octal, e.g. `mode=0755`".to_owned(),
                    ));
                }
                mode = Some(v);
            }
            "uid" | "gid" => {
                let v = needs_value(val)?;
                if !v.contains('$') && v.parse::<u32>().is_err() {
                    return Err((
                        format!("mount `{key}` `{v}` is not a number"),
                        format!("write a numeric id, e.g. `{key}=1000`"),
                    ));
                }
                if key == "uid" {
                    uid = Some(v);
                } else {
                    gid = Some(v);
                }
            }
            "size" => size = Some(needs_value(val)?),
            "required" => required = flag(val)?,
            "env" => env = Some(needs_value(val)?),
            _ => {}
        }
    }
    let need_target = |target: Option<String>| {
        target.ok_or_else(|| {
            (
                format!("a {mount_type} mount needs a target"),
                "add `target=/path/in/the/container`".to_owned(),
            )
        })
    };
    Ok(match mount_type.as_str() {
        "bind" => RunMount::Bind {
            target: need_target(target)?,
            source,
            from,
            readwrite: readwrite.unwrap_or(false) && readonly != Some(true),
        },
        "cache" => {
            let target = need_target(target)?;
            RunMount::Cache {
                id: id.unwrap_or_else(|| target.clone()),
                target,
                sharing,
                from,
                source,
                mode,
                uid,
                gid,
                readonly: readonly.unwrap_or(false),
            }
        }
        "tmpfs" => RunMount::Tmpfs {
            target: need_target(target)?,
            size,
        },
        _ => {
            let id = match (id, &target) {
                (Some(id), _) => id,
                (None, Some(target)) => target.rsplit('/').next().unwrap_or(target).to_owned(),
                (None, None) => {
                    return Err((
                        "a secret mount needs an `id` or a `target`".to_owned(),
                        "write `--mount=type=secret,id=NAME`".to_owned(),
                    ));
                }
            };
            let target = match (target, &env) {
                (Some(target), _) => Some(target),
                (None, Some(_)) => None,
                (None, None) => Some(format!("/run/secrets/{id}")),
            };
            RunMount::Secret {
                id,
                target,
                required,
                mode,
                uid,
                gid,
                env,
            }
        }
    })
}

/// Splits one CSV record (fields may be `"quoted"`, `""` is a quote).
fn split_csv(value: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = value.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if in_quotes {
        return Err(format!("unclosed quote in `{value}`"));
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn cache(target: &str, id: &str, sharing: CacheSharing) -> RunMount {
        RunMount::Cache {
            target: target.into(),
            id: id.into(),
            sharing,
            from: None,
            source: None,
            mode: None,
            uid: None,
            gid: None,
            readonly: false,
        }
    }

    #[test]
    fn mounts() {
        let cases: Vec<(&str, RunMount)> = vec![
            (
                "target=/src",
                RunMount::Bind {
                    target: "/src".into(),
                    source: None,
                    from: None,
                    readwrite: false,
                },
            ),
            (
                "type=bind,source=app,target=/app,from=builder,rw",
                RunMount::Bind {
                    target: "/app".into(),
                    source: Some("app".into()),
                    from: Some("builder".into()),
                    readwrite: true,
                },
            ),
            (
                "type=cache,target=/root/.cache",
                cache("/root/.cache", "/root/.cache", CacheSharing::Shared),
            ),
            (
                "type=cache,dst=/var/cache/apt,id=apt,sharing=locked",
                cache("/var/cache/apt", "apt", CacheSharing::Locked),
            ),
            (
                "type=tmpfs,target=/tmp,size=64m",
                RunMount::Tmpfs {
                    target: "/tmp".into(),
                    size: Some("64m".into()),
                },
            ),
            (
                "type=secret,id=npmrc",
                RunMount::Secret {
                    id: "npmrc".into(),
                    target: Some("/run/secrets/npmrc".into()),
                    required: false,
                    mode: None,
                    uid: None,
                    gid: None,
                    env: None,
                },
            ),
            (
                "type=secret,target=/root/.npmrc,required",
                RunMount::Secret {
                    id: ".npmrc".into(),
                    target: Some("/root/.npmrc".into()),
                    required: true,
                    mode: None,
                    uid: None,
                    gid: None,
                    env: None,
                },
            ),
            (
                "type=secret,id=token,env=TOKEN",
                RunMount::Secret {
                    id: "token".into(),
                    target: None,
                    required: false,
                    mode: None,
                    uid: None,
                    gid: None,
                    env: Some("TOKEN".into()),
                },
            ),
            (
                "type=cache,target=\"/a,b\"",
                cache("/a,b", "/a,b", CacheSharing::Shared),
            ),
            (
                "type=cache,target=$DIR",
                cache("$DIR", "$DIR", CacheSharing::Shared),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_mount(value), Ok(expected), "{value}");
        }
    }

    #[test]
    fn bad_mounts() {
        let cases = [
            ("type=ssh", "ssh agent"),
            ("type=volume,target=/x", "unknown mount type `volume`"),
            ("type=bind", "needs a target"),
            (
                "type=cache,target=/x,sharing=sometimes",
                "unknown cache sharing",
            ),
            ("type=cache,target=/x,mode=999", "not an octal file mode"),
            ("type=cache,target=/x,uid=root", "not a number"),
            (
                "type=bind,target=/x,sharing=locked",
                "does not apply to a bind mount",
            ),
            (
                "type=cache,target=/x,colour=red",
                "unknown mount option `colour`",
            ),
            ("type=secret", "needs an `id` or a `target`"),
            ("type=bind,target=/x,ro=maybe", "takes true or false"),
            ("type=bind,target=\"/x", "unclosed quote"),
        ];
        for (value, expected) in cases {
            let (message, _) = parse_mount(value).unwrap_err();
            assert!(message.contains(expected), "{value}: {message}");
        }
    }
}
