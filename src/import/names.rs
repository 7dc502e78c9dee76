//! Names: making Compose names valid servin names, and keeping track of
//! what each Compose name became.

use std::collections::HashSet;

use indexmap::IndexMap;

/// The most characters a DNS label may have.
const DNS_MAX: usize = 63;

/// Whether `s` is a DNS label: 1 to 63 lowercase ASCII letters, digits and
/// `-`, neither starting nor ending with `-`.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= DNS_MAX
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `s` made into a DNS label: lowercased, every other character turned into
/// `-` (runs of them into one), trimmed of `-` at both ends, cut to 63.
pub(crate) fn to_dns_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(DNS_MAX).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() { "x".to_string() } else { out }
}

/// Whether `s` is a valid name for an image, volume or secret: letters,
/// digits, `_`, `.` and `-`, starting with a letter or a digit.
pub(crate) fn is_object_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `s` made into an object name: other characters become `-`, and leading
/// characters that are not letters or digits are dropped.
pub(crate) fn to_object_name(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let out = mapped.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
    if out.is_empty() {
        "x".to_string()
    } else {
        out.to_string()
    }
}

/// What the Compose names of one kind (services, volumes, ...) became.
#[derive(Debug)]
pub(crate) struct Names {
    dns: bool,
    map: IndexMap<String, String>,
    used: HashSet<String>,
}

impl Names {
    /// Names that must be DNS labels (`dns`) or object names.
    pub(crate) fn new(dns: bool) -> Self {
        Names {
            dns,
            map: IndexMap::new(),
            used: HashSet::new(),
        }
    }

    /// Whether `s` is a valid name of this kind.
    pub(crate) fn is_valid(&self, s: &str) -> bool {
        if self.dns {
            is_dns_label(s)
        } else {
            is_object_name(s)
        }
    }

    /// What the Compose name `original` became, if it is known.
    pub(crate) fn get(&self, original: &str) -> Option<&str> {
        self.map.get(original).map(String::as_str)
    }

    /// Records `original` under the name `wanted` (made valid and unique);
    /// returns the name it got.
    pub(crate) fn add(&mut self, original: &str, wanted: &str) -> String {
        if let Some(known) = self.map.get(original) {
            return known.clone();
        }
        let base = if self.is_valid(wanted) {
            wanted.to_string()
        } else if self.dns {
            to_dns_label(wanted)
        } else {
            to_object_name(wanted)
        };
        let mut name = base.clone();
        let mut n = 2;
        while self.used.contains(&name) {
            let suffix = format!("-{n}");
            let room = if self.dns {
                DNS_MAX.saturating_sub(suffix.len())
            } else {
                usize::MAX
            };
            let stem: String = base.chars().take(room).collect();
            name = format!("{}{suffix}", stem.trim_end_matches('-'));
            n += 1;
        }
        self.used.insert(name.clone());
        self.map.insert(original.to_string(), name.clone());
        name
    }

    /// The names, in the order they were added: (Compose name, servin name).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("web-1"));
        assert!(!is_dns_label("my_service"));
        assert!(!is_dns_label("Web"));
        assert!(!is_dns_label("-a"));
        assert_eq!(to_dns_label("my_service"), "my-service");
        assert_eq!(to_dns_label("Web"), "web");
        assert_eq!(to_dns_label("__a..b__"), "a-b");
        assert_eq!(to_dns_label("___"), "x");
        assert_eq!(to_dns_label(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn unique_names() {
        let mut n = Names::new(true);
        assert_eq!(n.add("my_app", "my_app"), "my-app");
        assert_eq!(n.add("my-app", "my-app"), "my-app-2");
        assert_eq!(n.add("my_app", "ignored"), "my-app");
        assert_eq!(n.get("my-app"), Some("my-app-2"));
    }

    #[test]
    fn object_names() {
        assert!(is_object_name("db_data.v1"));
        assert!(!is_object_name("_x"));
        assert_eq!(to_object_name("_x y"), "x-y");
    }
}
