//! Small values: restart policies, DNS labels, `extra_hosts` entries,
//! `KEY=VALUE` list items, platforms and CPU counts.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A container restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure {
        max_retries: Option<u32>,
    },
    Always,
    UnlessStopped,
}

const RESTART_HINT: &str = "use no, on-failure, on-failure:<retries>, always or unless-stopped";

/// Parses a restart policy: `"no"`, `"on-failure"`, `"on-failure:3"`,
/// `"always"` or `"unless-stopped"`.
pub fn parse_restart(input: &str) -> Result<RestartPolicy, String> {
    match input {
        "no" => Ok(RestartPolicy::No),
        "always" => Ok(RestartPolicy::Always),
        "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
        "on-failure" => Ok(RestartPolicy::OnFailure { max_retries: None }),
        "" => Err(format!("empty restart policy; {RESTART_HINT}")),
        _ => match input.strip_prefix("on-failure:") {
            Some(retries) => {
                if retries.is_empty() || !retries.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "invalid retry count \"{retries}\" in restart policy \"{input}\"; use a whole number, like on-failure:3"
                    ));
                }
                let max_retries = retries.parse::<u32>().map_err(|_| {
                    format!("retry count {retries} in restart policy \"{input}\" is too large")
                })?;
                Ok(RestartPolicy::OnFailure {
                    max_retries: Some(max_retries),
                })
            }
            None => {
                let retries_hint = if ["no", "always", "unless-stopped"]
                    .iter()
                    .any(|p| input.starts_with(&format!("{p}:")))
                {
                    "; only on-failure takes a retry count"
                } else {
                    ""
                };
                Err(format!(
                    "unknown restart policy \"{input}\"; {RESTART_HINT}{retries_hint}"
                ))
            }
        },
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::OnFailure { max_retries: None } => f.write_str("on-failure"),
            RestartPolicy::OnFailure {
                max_retries: Some(n),
            } => write!(f, "on-failure:{n}"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl FromStr for RestartPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<RestartPolicy, String> {
        parse_restart(s)
    }
}

impl serde::Serialize for RestartPolicy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RestartPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_restart(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether `label` is a DNS label: 1 to 63 characters of `[a-z0-9-]`,
/// starting and ending with a letter or digit.
pub fn is_dns_label(label: &str) -> bool {
    dns_label_error(label).is_none()
}

/// Why `label` is not a DNS label, or `None` when it is one.
pub fn dns_label_error(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some("name must not be empty".to_string());
    }
    if label.chars().any(|c| c.is_ascii_uppercase()) {
        return Some(format!("\"{label}\" has uppercase letters"));
    }
    if let Some(bad) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let what = match bad {
            '_' => "an underscore".to_string(),
            '.' => "a dot".to_string(),
            c if c.is_whitespace() => "whitespace".to_string(),
            c => format!("{c:?}"),
        };
        return Some(format!(
            "\"{label}\" contains {what}; use only lowercase letters, digits and '-'"
        ));
    }
    if label.len() > 63 {
        return Some(format!(
            "\"{label}\" is {} characters long; the limit is 63",
            label.len()
        ));
    }
    if label.starts_with('-') {
        return Some(format!("\"{label}\" must not start with '-'"));
    }
    if label.ends_with('-') {
        return Some(format!("\"{label}\" must not end with '-'"));
    }
    None
}

/// Makes a DNS label out of any name, e.g. a folder name: lowercase, `_`,
/// `.` and whitespace become `-`, other characters are dropped, runs of `-`
/// collapse, `-` is trimmed from both ends, and the result is cut to 63
/// characters. An empty result becomes `"project"`.
pub fn to_dns_label(name: &str) -> String {
    let mut label = String::with_capacity(name.len());
    for c in name.chars() {
        let mapped = match c {
            'a'..='z' | '0'..='9' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            '_' | '.' | '-' => Some('-'),
            c if c.is_whitespace() => Some('-'),
            _ => None,
        };
        if let Some(m) = mapped
            && !(m == '-' && (label.is_empty() || label.ends_with('-')))
        {
            label.push(m);
        }
    }
    label.truncate(63);
    let label = label.trim_end_matches('-');
    if label.is_empty() {
        "project".to_string()
    } else {
        label.to_string()
    }
}

/// Whether `host` is a host name: dot-separated labels of letters, digits
/// and `-` (not at either end of a label), each at most 63 characters, at
/// most 253 in all.
fn is_hostname(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Parses an `extra_hosts` entry, `host:ip` or `host=ip`: `"db:10.0.0.5"`,
/// `"db=10.0.0.5"`, `"v6host:::1"`, `"v6host=[::1]"`.
pub fn parse_extra_host(input: &str) -> Result<(String, IpAddr), String> {
    let Some((host, address)) = input.split_once('=').or_else(|| input.split_once(':')) else {
        return Err(format!(
            "invalid extra host \"{input}\"; use \"hostname=ip\" or \"hostname:ip\""
        ));
    };
    if host.is_empty() {
        return Err(format!("invalid extra host \"{input}\": missing host name"));
    }
    if !is_hostname(host) {
        return Err(format!(
            "invalid host name \"{host}\" in extra host \"{input}\"; use letters, digits, '-' and '.'"
        ));
    }
    if address.is_empty() {
        return Err(format!(
            "invalid extra host \"{input}\": missing IP address"
        ));
    }
    if address == "host-gateway" {
        return Err(format!(
            "\"host-gateway\" is not supported in extra host \"{input}\"; give an IP address"
        ));
    }
    let bare = address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address);
    let ip = bare
        .parse::<IpAddr>()
        .map_err(|_| format!("invalid IP address \"{address}\" in extra host \"{input}\""))?;
    Ok((host.to_string(), ip))
}

/// Parses an item of a `KEY=VALUE` list (environment, labels): `"KEY=VAL"`
/// gives the value, a bare `"KEY"` gives `None`. Only the first `=` splits.
pub fn parse_key_value(input: &str) -> Result<(String, Option<String>), String> {
    let (key, value) = match input.split_once('=') {
        Some((key, value)) => (key, Some(value.to_string())),
        None => (input, None),
    };
    if key.is_empty() {
        return Err(if value.is_some() {
            format!("invalid entry \"{input}\": missing key before \"=\"")
        } else {
            "empty entry; use \"KEY=VALUE\" or \"KEY\"".to_string()
        });
    }
    if key.chars().any(char::is_whitespace) {
        return Err(format!(
            "invalid key \"{key}\" in \"{input}\": must not contain whitespace"
        ));
    }
    Ok((key.to_string(), value))
}

const ARCHES: &str = "amd64, arm64, arm, 386, ppc64le, s390x, riscv64, mips64le, loong64";

/// Parses a platform `os/arch[/variant]`, normalised and lowercase:
/// `"linux/x86_64"` → `"linux/amd64"`, `"linux/aarch64"` → `"linux/arm64"`,
/// `"linux/arm64/v8"` → `"linux/arm64"` (v8 is the default),
/// `"linux/arm"` → `"linux/arm/v7"`.
pub fn parse_platform(input: &str) -> Result<String, String> {
    let lower = input.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    let (os, arch, variant) = match parts.as_slice() {
        [os, arch] => (*os, *arch, None),
        [os, arch, variant] => (*os, *arch, Some(*variant)),
        _ => {
            return Err(format!(
                "invalid platform \"{input}\"; use os/arch[/variant], like linux/amd64 or linux/arm/v7"
            ));
        }
    };
    let component_ok =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !component_ok(os) {
        return Err(format!(
            "invalid operating system \"{os}\" in platform \"{input}\"; use e.g. linux"
        ));
    }
    if let Some(variant) = variant
        && !component_ok(variant)
    {
        return Err(format!(
            "invalid variant \"{variant}\" in platform \"{input}\"; use e.g. v7 or v8"
        ));
    }
    let (arch, implied_variant) = match arch {
        "amd64" | "x86_64" | "x86-64" => ("amd64", None),
        "arm64" | "aarch64" => ("arm64", None),
        "arm" => ("arm", None),
        "armhf" => ("arm", Some("v7")),
        "armel" => ("arm", Some("v6")),
        "386" | "i386" | "i686" | "x86" => ("386", None),
        "ppc64le" | "ppc64" | "s390x" | "riscv64" | "mips64le" | "mips64" | "mipsle" | "mips"
        | "loong64" => (arch, None),
        _ => {
            return Err(format!(
                "unknown architecture \"{arch}\" in platform \"{input}\"; use {ARCHES}"
            ));
        }
    };
    let variant = match (implied_variant, variant) {
        (Some(implied), Some(given)) if implied != given => {
            return Err(format!(
                "conflicting variant \"{given}\" in platform \"{input}\"; the architecture implies {implied}"
            ));
        }
        (Some(implied), _) => Some(implied),
        (None, given) => given,
    };
    let variant = match (arch, variant) {
        ("arm64", Some("v8" | "8")) | ("amd64", Some("v1")) => None,
        ("arm", None) => Some("v7"),
        ("arm", Some(v @ ("5" | "6" | "7" | "8"))) => {
            return Ok(format!("{os}/arm/v{v}"));
        }
        (_, variant) => variant,
    };
    Ok(match variant {
        Some(variant) => format!("{os}/{arch}/{variant}"),
        None => format!("{os}/{arch}"),
    })
}

/// Checks a CPU count (`cpus: 1.5`): finite and greater than zero.
pub fn parse_cpus(cpus: f64) -> Result<f64, String> {
    if !cpus.is_finite() {
        return Err(format!("invalid cpus {cpus}: must be a finite number"));
    }
    if cpus <= 0.0 {
        return Err(format!("invalid cpus {cpus}: must be greater than 0"));
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn restart_policies() {
        let cases: &[(&str, RestartPolicy)] = &[
            ("no", RestartPolicy::No),
            ("always", RestartPolicy::Always),
            ("unless-stopped", RestartPolicy::UnlessStopped),
            ("on-failure", RestartPolicy::OnFailure { max_retries: None }),
            (
                "on-failure:3",
                RestartPolicy::OnFailure {
                    max_retries: Some(3),
                },
            ),
            (
                "on-failure:0",
                RestartPolicy::OnFailure {
                    max_retries: Some(0),
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_restart(input), Ok(*expected), "{input}");
            assert_eq!(expected.to_string(), *input);
            assert_eq!(input.parse::<RestartPolicy>(), Ok(*expected));
        }
        assert_eq!(RestartPolicy::default(), RestartPolicy::No);
        let json = serde_json::to_string(&cases[4].1).unwrap();
        assert_eq!(json, "\"on-failure:3\"");
        assert_eq!(
            serde_json::from_str::<RestartPolicy>(&json).unwrap(),
            cases[4].1
        );
        assert!(serde_json::from_str::<RestartPolicy>("\"sometimes\"").is_err());
    }

    #[test]
    fn restart_errors() {
        let hint = RESTART_HINT;
        let cases: Vec<(&str, String)> = vec![
            ("", format!("empty restart policy; {hint}")),
            ("yes", format!("unknown restart policy \"yes\"; {hint}")),
            ("No", format!("unknown restart policy \"No\"; {hint}")),
            (
                "always:3",
                format!("unknown restart policy \"always:3\"; {hint}; only on-failure takes a retry count"),
            ),
            (
                "on-failure:",
                "invalid retry count \"\" in restart policy \"on-failure:\"; use a whole number, like on-failure:3".to_string(),
            ),
            (
                "on-failure:-1",
                "invalid retry count \"-1\" in restart policy \"on-failure:-1\"; use a whole number, like on-failure:3".to_string(),
            ),
            (
                "on-failure:x",
                "invalid retry count \"x\" in restart policy \"on-failure:x\"; use a whole number, like on-failure:3".to_string(),
            ),
            (
                "on-failure:99999999999",
                "retry count 99999999999 in restart policy \"on-failure:99999999999\" is too large".to_string(),
            ),
        ];
        for (input, message) in cases {
            assert_eq!(parse_restart(input), Err(message), "{input}");
        }
    }

    #[test]
    fn dns_labels() {
        for label in [
            "a",
            "web",
            "my-app",
            "a1",
            "1a",
            "0",
            &"a".repeat(63),
            "a--b",
        ] {
            assert!(is_dns_label(label), "{label}");
            assert_eq!(dns_label_error(label), None);
        }
        let long = "a".repeat(64);
        let cases: Vec<(&str, String)> = vec![
            ("", "name must not be empty".to_string()),
            ("Web", "\"Web\" has uppercase letters".to_string()),
            (
                "my_app",
                "\"my_app\" contains an underscore; use only lowercase letters, digits and '-'"
                    .to_string(),
            ),
            (
                "my.app",
                "\"my.app\" contains a dot; use only lowercase letters, digits and '-'".to_string(),
            ),
            (
                "my app",
                "\"my app\" contains whitespace; use only lowercase letters, digits and '-'"
                    .to_string(),
            ),
            (
                "café",
                "\"café\" contains 'é'; use only lowercase letters, digits and '-'".to_string(),
            ),
            (
                &long,
                format!("\"{long}\" is 64 characters long; the limit is 63"),
            ),
            ("-web", "\"-web\" must not start with '-'".to_string()),
            ("web-", "\"web-\" must not end with '-'".to_string()),
        ];
        for (label, message) in cases {
            assert!(!is_dns_label(label), "{label}");
            assert_eq!(dns_label_error(label), Some(message), "{label}");
        }
    }

    #[test]
    fn makes_dns_labels() {
        let long = format!("{}-b", "a".repeat(62));
        let cases: Vec<(&str, String)> = vec![
            ("My Project", "my-project".into()),
            ("my_app.v2", "my-app-v2".into()),
            ("--weird__name--", "weird-name".into()),
            ("café (copy)", "caf-copy".into()),
            ("", "project".into()),
            ("___", "project".into()),
            ("日本", "project".into()),
            ("ok", "ok".into()),
            ("a\tb", "a-b".into()),
            (&long, "a".repeat(62)),
        ];
        for (name, expected) in cases {
            let label = to_dns_label(name);
            assert_eq!(label, expected, "{name}");
            assert!(is_dns_label(&label), "{label}");
        }
        assert_eq!(to_dns_label(&"x".repeat(100)).len(), 63);
    }

    #[test]
    fn extra_hosts() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases: &[(&str, &str, &str)] = &[
            ("db:10.0.0.5", "db", "10.0.0.5"),
            ("db=10.0.0.5", "db", "10.0.0.5"),
            ("v6host:::1", "v6host", "::1"),
            ("v6host=::1", "v6host", "::1"),
            ("v6host=[::1]", "v6host", "::1"),
            ("v6host:[2001:db8::1]", "v6host", "2001:db8::1"),
            (
                "my-host.example.com:1.2.3.4",
                "my-host.example.com",
                "1.2.3.4",
            ),
            ("Host1=1.2.3.4", "Host1", "1.2.3.4"),
        ];
        for (input, host, addr) in cases {
            assert_eq!(
                parse_extra_host(input),
                Ok((host.to_string(), ip(addr))),
                "{input}"
            );
        }
        let errors: &[(&str, &str)] = &[
            (
                "db",
                "invalid extra host \"db\"; use \"hostname=ip\" or \"hostname:ip\"",
            ),
            (
                ":1.2.3.4",
                "invalid extra host \":1.2.3.4\": missing host name",
            ),
            (
                "=1.2.3.4",
                "invalid extra host \"=1.2.3.4\": missing host name",
            ),
            ("db:", "invalid extra host \"db:\": missing IP address"),
            (
                "db_1:1.2.3.4",
                "invalid host name \"db_1\" in extra host \"db_1:1.2.3.4\"; use letters, digits, '-' and '.'",
            ),
            (
                "-db:1.2.3.4",
                "invalid host name \"-db\" in extra host \"-db:1.2.3.4\"; use letters, digits, '-' and '.'",
            ),
            (
                "a..b:1.2.3.4",
                "invalid host name \"a..b\" in extra host \"a..b:1.2.3.4\"; use letters, digits, '-' and '.'",
            ),
            (
                "db:1.2.3",
                "invalid IP address \"1.2.3\" in extra host \"db:1.2.3\"",
            ),
            (
                "db=[1.2.3.4",
                "invalid IP address \"[1.2.3.4\" in extra host \"db=[1.2.3.4\"",
            ),
            (
                "db:host-gateway",
                "\"host-gateway\" is not supported in extra host \"db:host-gateway\"; give an IP address",
            ),
        ];
        for (input, message) in errors {
            assert_eq!(parse_extra_host(input), Err(message.to_string()), "{input}");
        }
    }

    #[test]
    fn key_values() {
        let some = |k: &str, v: &str| Ok((k.to_string(), Some(v.to_string())));
        assert_eq!(parse_key_value("KEY=VAL"), some("KEY", "VAL"));
        assert_eq!(parse_key_value("KEY="), some("KEY", ""));
        assert_eq!(parse_key_value("KEY=a=b c"), some("KEY", "a=b c"));
        assert_eq!(
            parse_key_value("com.example.label=x"),
            some("com.example.label", "x")
        );
        assert_eq!(parse_key_value("KEY"), Ok(("KEY".to_string(), None)));
        assert_eq!(
            parse_key_value(""),
            Err("empty entry; use \"KEY=VALUE\" or \"KEY\"".to_string())
        );
        assert_eq!(
            parse_key_value("=VAL"),
            Err("invalid entry \"=VAL\": missing key before \"=\"".to_string())
        );
        assert_eq!(
            parse_key_value("MY KEY=1"),
            Err("invalid key \"MY KEY\" in \"MY KEY=1\": must not contain whitespace".to_string())
        );
    }

    #[test]
    fn platforms() {
        let cases: &[(&str, &str)] = &[
            ("linux/amd64", "linux/amd64"),
            ("Linux/AMD64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/x86-64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm64/8", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/v7", "linux/arm/v7"),
            ("linux/arm/6", "linux/arm/v6"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/armhf/v7", "linux/arm/v7"),
            ("linux/i386", "linux/386"),
            ("linux/386", "linux/386"),
            ("linux/ppc64le", "linux/ppc64le"),
            ("linux/s390x", "linux/s390x"),
            ("linux/riscv64", "linux/riscv64"),
            ("windows/amd64", "windows/amd64"),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_platform(input), Ok(expected.to_string()), "{input}");
        }
        let errors: Vec<(&str, String)> = vec![
            (
                "linux",
                "invalid platform \"linux\"; use os/arch[/variant], like linux/amd64 or linux/arm/v7"
                    .to_string(),
            ),
            (
                "linux/arm/v7/x",
                "invalid platform \"linux/arm/v7/x\"; use os/arch[/variant], like linux/amd64 or linux/arm/v7"
                    .to_string(),
            ),
            (
                "/amd64",
                "invalid operating system \"\" in platform \"/amd64\"; use e.g. linux".to_string(),
            ),
            (
                "linux/amd64/",
                "invalid variant \"\" in platform \"linux/amd64/\"; use e.g. v7 or v8".to_string(),
            ),
            (
                "linux/sparc",
                format!("unknown architecture \"sparc\" in platform \"linux/sparc\"; use {ARCHES}"),
            ),
            (
                "linux/",
                format!("unknown architecture \"\" in platform \"linux/\"; use {ARCHES}"),
            ),
            (
                "linux/armhf/v6",
                "conflicting variant \"v6\" in platform \"linux/armhf/v6\"; the architecture implies v7"
                    .to_string(),
            ),
        ];
        for (input, message) in errors {
            assert_eq!(parse_platform(input), Err(message), "{input}");
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus(1.5), Ok(1.5));
        assert_eq!(parse_cpus(0.01), Ok(0.01));
        assert_eq!(
            parse_cpus(0.0),
            Err("invalid cpus 0: must be greater than 0".to_string())
        );
        assert_eq!(
            parse_cpus(-1.0),
            Err("invalid cpus -1: must be greater than 0".to_string())
        );
        assert_eq!(
            parse_cpus(f64::NAN),
            Err("invalid cpus NaN: must be a finite number".to_string())
        );
        assert_eq!(
            parse_cpus(f64::INFINITY),
            Err("invalid cpus inf: must be a finite number".to_string())
        );
    }
}
