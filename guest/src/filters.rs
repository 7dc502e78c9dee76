//! Docker's `filters` query argument, with Docker's semantics, for every
//! call that takes one (container, image, network and volume lists, their
//! prunes, and `/events`).
//!
//! The rules, as the Docker daemon applies them:
//! - The argument is JSON: `{"key":["v1","v2"]}`, or the older
//!   `{"key":{"v1":true,"v2":true}}`.
//! - A key the call does not take is refused (`invalid filter 'key'`, 400).
//! - Different keys are ANDed: an object passes only if it passes every key.
//! - The values of one key are ORed (`status=exited` and `status=created`
//!   list both)...
//! - ...except `label`, whose values are ANDed (`label=a` and `label=b=c`
//!   list the objects that have both), and `label!`, whose values each
//!   exclude (an object passes when it matches none of them).
//! - A label value is `key` (the label is present) or `key=value`.
//!
//! Nothing here knows the objects: callers give the field each key is
//! compared with.

use std::collections::{BTreeMap, HashMap};

/// A `filters` argument that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Not JSON, or not an object of lists.
    #[error("invalid filters {raw:?}: {why}")]
    Malformed {
        /// The argument as given.
        raw: String,
        /// What is wrong with it.
        why: String,
    },
    /// A key this call does not take.
    #[error("invalid filter '{0}'")]
    UnknownKey(String),
    /// A value the key does not take.
    #[error("invalid filter '{key}={value}': {why}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// What the key takes.
        why: String,
    },
}

/// The parsed `filters` argument: each key with its values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    args: BTreeMap<String, Vec<String>>,
}

impl Filters {
    /// Parses `raw` (absent or empty: no filter) and refuses a key that is
    /// not in `accepted`.
    pub fn parse(raw: Option<&str>, accepted: &[&str]) -> Result<Self, FilterError> {
        let filters = Self::parse_any(raw)?;
        if let Some(key) = filters
            .args
            .keys()
            .find(|k| !accepted.contains(&k.as_str()))
        {
            return Err(FilterError::UnknownKey(key.clone()));
        }
        Ok(filters)
    }

    /// Parses `raw` without checking its keys.
    pub fn parse_any(raw: Option<&str>) -> Result<Self, FilterError> {
        let raw = match raw.map(str::trim) {
            None | Some("") => return Ok(Self::default()),
            Some(r) => r,
        };
        let malformed = |why: String| FilterError::Malformed {
            raw: raw.to_string(),
            why,
        };
        let value: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| malformed(e.to_string()))?;
        let serde_json::Value::Object(map) = value else {
            return Err(malformed("want a JSON object of lists".to_string()));
        };
        let mut args = BTreeMap::new();
        for (key, v) in map {
            let values: Vec<String> = match v {
                serde_json::Value::Array(a) => a
                    .into_iter()
                    .map(|x| match x {
                        serde_json::Value::String(s) => Ok(s),
                        other => Err(malformed(format!(
                            "the values of {key:?} are strings, not {other}"
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
                serde_json::Value::Object(o) => o.keys().cloned().collect(),
                serde_json::Value::String(s) => vec![s],
                other => {
                    return Err(malformed(format!(
                        "the values of {key:?} are a list, not {other}"
                    )));
                }
            };
            args.insert(key, values);
        }
        Ok(Self { args })
    }

    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.args.values().all(Vec::is_empty)
    }

    /// Whether `key` has values.
    pub fn contains(&self, key: &str) -> bool {
        self.args.get(key).is_some_and(|v| !v.is_empty())
    }

    /// The values of `key` (none when it is not set).
    pub fn get(&self, key: &str) -> &[String] {
        self.args.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    /// Adds `value` to `key` (used where a call implies a filter).
    pub fn add(&mut self, key: &str, value: &str) {
        self.args
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
    }

    /// `key` passes when it is not set or when one of its values is
    /// `source`.
    pub fn exact(&self, key: &str, source: &str) -> bool {
        self.any(key, |w| w == source)
    }

    /// `key` passes when it is not set or when `matches` holds for one of
    /// its values.
    pub fn any(&self, key: &str, matches: impl Fn(&str) -> bool) -> bool {
        let values = self.get(key);
        values.is_empty() || values.iter().any(|w| matches(w))
    }

    /// An ID filter: a value passes when it is a prefix of `id`.
    pub fn id_prefix(&self, key: &str, id: &str) -> bool {
        self.any(key, |w| !w.is_empty() && id.starts_with(w))
    }

    /// A name filter: Docker matches names as regular expressions (a plain
    /// word matches names that contain it); a value that is not a valid
    /// expression is compared as text.
    pub fn name(&self, key: &str, name: &str) -> bool {
        self.any(key, |w| match regex::Regex::new(w) {
            Ok(re) => re.is_match(name),
            Err(_) => name.contains(w),
        })
    }

    /// The `label` and `label!` filters against `labels`: every `label`
    /// value matches and no `label!` value does.
    pub fn labels(&self, labels: &HashMap<String, String>) -> bool {
        self.get("label").iter().all(|w| label_matches(labels, w))
            && !self.get("label!").iter().any(|w| label_matches(labels, w))
    }

    /// A boolean filter (`true`/`1`, `false`/`0`): `None` when not set;
    /// when given twice, the last value counts.
    pub fn boolean(&self, key: &str) -> Result<Option<bool>, FilterError> {
        let mut out = None;
        for v in self.get(key) {
            out = Some(match v.as_str() {
                "1" | "true" | "True" | "TRUE" => true,
                "0" | "false" | "False" | "FALSE" => false,
                other => {
                    return Err(FilterError::InvalidValue {
                        key: key.to_string(),
                        value: other.to_string(),
                        why: "want true or false".to_string(),
                    });
                }
            });
        }
        Ok(out)
    }

    /// The values of `key` checked against `allowed` (e.g. `status`).
    pub fn check_values(&self, key: &str, allowed: &[&str]) -> Result<(), FilterError> {
        match self
            .get(key)
            .iter()
            .find(|v| !allowed.contains(&v.as_str()))
        {
            Some(v) => Err(FilterError::InvalidValue {
                key: key.to_string(),
                value: v.clone(),
                why: format!("use one of {}", allowed.join(", ")),
            }),
            None => Ok(()),
        }
    }

    /// `until`: unix seconds below which an object's creation must fall,
    /// from Docker's forms (unix seconds with an optional fraction, an
    /// RFC 3339 date, or a duration before `now` such as `24h` or `90m`).
    /// `None` when not set; the earliest when given twice.
    pub fn until(&self, now: i64) -> Result<Option<i64>, FilterError> {
        self.timestamps("until", now)
            .map(|all| all.into_iter().reduce(i64::min))
    }

    /// Every value of `key` as a timestamp (see [`Self::until`]).
    pub fn timestamps(&self, key: &str, now: i64) -> Result<Vec<i64>, FilterError> {
        self.get(key)
            .iter()
            .map(|v| {
                timestamp(v, now).ok_or_else(|| FilterError::InvalidValue {
                    key: key.to_string(),
                    value: v.clone(),
                    why: "want unix seconds, an RFC 3339 date or a duration such as 24h".into(),
                })
            })
            .collect()
    }
}

/// `key` or `key=value` against `labels`.
pub fn label_matches(labels: &HashMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

/// Go's `path.Match`, which Docker's `reference` filter uses: `*` is any
/// run of characters but `/`, `?` one character but `/`, `[a-z]` and
/// `[^a-z]` a class, `\\` escapes. A malformed pattern matches nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => {
            let rest = &p[1..];
            (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != '/')
                .any(|i| glob_at(rest, &n[i..]))
        }
        Some('?') => n.first().is_some_and(|c| *c != '/') && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(c) = n.first() else { return false };
            let Some((matched, used)) = class(&p[1..], *c) else {
                return false;
            };
            matched && *c != '/' && glob_at(&p[1 + used..], &n[1..])
        }
        Some('\\') => match (p.get(1), n.first()) {
            (Some(a), Some(b)) => a == b && glob_at(&p[2..], &n[1..]),
            _ => false,
        },
        Some(a) => n.first() == Some(a) && glob_at(&p[1..], &n[1..]),
    }
}

/// A `[...]` class (after its `[`) against `c`: whether it matches and how
/// many pattern characters it used, its `]` included.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 0;
    let negated = p.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        let lo = if lo == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            lo
        };
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|x| *x != ']') {
            let hi = *p.get(i + 1)?;
            i += 2;
            matched |= lo <= c && c <= hi;
        } else {
            matched |= lo == c;
        }
    }
}

/// A timestamp in one of Docker's filter forms, in unix seconds.
fn timestamp(v: &str, now: i64) -> Option<i64> {
    let v = v.trim();
    if let Some(secs) = crate::timefmt::parse_rfc3339(v) {
        return Some(secs);
    }
    if let Some(date) = v
        .len()
        .eq(&10)
        .then(|| chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
        .flatten()
    {
        return date.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
    }
    let whole = v.split_once('.').map_or(v, |(w, _)| w);
    if !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()) {
        return whole.parse().ok();
    }
    duration_secs(v).map(|d| now.saturating_sub(d))
}

/// A Go duration (`1h30m`, `90s`, `1.5h`) in whole seconds.
fn duration_secs(v: &str) -> Option<i64> {
    let mut rest = v;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest.get(..number_end)?.parse().ok()?;
        rest = rest.get(number_end..)?;
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match rest.get(..unit_end)? {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = rest.get(unit_end..)?;
        total += number * scale;
    }
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn both_json_forms_parse_and_unknown_keys_are_refused() {
        let a = Filters::parse(Some(r#"{"status":["exited","created"]}"#), &["status"]).unwrap();
        let b = Filters::parse(
            Some(r#"{"status":{"exited":true,"created":true}}"#),
            &["status"],
        )
        .unwrap();
        assert_eq!(a.get("status").len(), 2);
        assert_eq!(b.get("status").len(), 2);
        assert_eq!(
            Filters::parse(Some(r#"{"colour":["red"]}"#), &["status"]).unwrap_err(),
            FilterError::UnknownKey("colour".into())
        );
        assert_eq!(
            Filters::parse(Some(r#"{"colour":["red"]}"#), &["status"])
                .unwrap_err()
                .to_string(),
            "invalid filter 'colour'"
        );
        assert!(matches!(
            Filters::parse(Some("{"), &[]),
            Err(FilterError::Malformed { .. })
        ));
        assert!(matches!(
            Filters::parse(Some(r#"{"status":[1]}"#), &["status"]),
            Err(FilterError::Malformed { .. })
        ));
        assert!(Filters::parse(None, &[]).unwrap().is_empty());
        assert!(Filters::parse(Some(""), &[]).unwrap().is_empty());
    }

    #[test]
    fn labels_are_anded_other_values_ored() {
        let f = Filters::parse(
            Some(r#"{"label":["com.docker.compose.project=p","com.docker.compose.service=s"]}"#),
            &["label"],
        )
        .unwrap();
        let both = labels(&[
            ("com.docker.compose.project", "p"),
            ("com.docker.compose.service", "s"),
        ]);
        let other_service = labels(&[
            ("com.docker.compose.project", "p"),
            ("com.docker.compose.service", "t"),
        ]);
        assert!(f.labels(&both));
        assert!(!f.labels(&other_service));
        let f = Filters::parse(Some(r#"{"status":["exited","created"]}"#), &["status"]).unwrap();
        assert!(f.exact("status", "exited") && f.exact("status", "created"));
        assert!(!f.exact("status", "running"));
        assert!(f.exact("name", "anything"), "an unset key passes");
    }

    #[test]
    fn label_keys_values_and_exclusions() {
        let l = labels(&[("a", "1"), ("b", "")]);
        let f = |raw: &str| Filters::parse(Some(raw), &["label", "label!"]).unwrap();
        assert!(f(r#"{"label":["a"]}"#).labels(&l));
        assert!(f(r#"{"label":["a=1"]}"#).labels(&l));
        assert!(!f(r#"{"label":["a=2"]}"#).labels(&l));
        assert!(f(r#"{"label":["b="]}"#).labels(&l));
        assert!(!f(r#"{"label":["c"]}"#).labels(&l));
        assert!(!f(r#"{"label!":["a"]}"#).labels(&l));
        assert!(!f(r#"{"label!":["c","a=1"]}"#).labels(&l));
        assert!(f(r#"{"label!":["a=2","c"]}"#).labels(&l));
    }

    #[test]
    fn names_are_regular_expressions_and_ids_prefixes() {
        let f =
            Filters::parse(Some(r#"{"name":["^web$"],"id":["abc"]}"#), &["name", "id"]).unwrap();
        assert!(f.name("name", "web"));
        assert!(!f.name("name", "web-1"));
        assert!(f.id_prefix("id", "abcdef"));
        assert!(!f.id_prefix("id", "bcdef"));
        let f = Filters::parse(Some(r#"{"name":["we"]}"#), &["name"]).unwrap();
        assert!(f.name("name", "my-web"));
        let f = Filters::parse(Some(r#"{"name":["a["]}"#), &["name"]).unwrap();
        assert!(
            f.name("name", "xa[y"),
            "a bad expression is compared as text"
        );
    }

    #[test]
    fn booleans_and_values_are_checked() {
        let f = Filters::parse(Some(r#"{"dangling":["true"]}"#), &["dangling"]).unwrap();
        assert_eq!(f.boolean("dangling").unwrap(), Some(true));
        let f = Filters::parse(Some(r#"{"dangling":["maybe"]}"#), &["dangling"]).unwrap();
        assert_eq!(
            f.boolean("dangling").unwrap_err().to_string(),
            "invalid filter 'dangling=maybe': want true or false"
        );
        let f = Filters::parse(Some(r#"{"status":["sleeping"]}"#), &["status"]).unwrap();
        assert!(f.check_values("status", &["running", "exited"]).is_err());
    }

    #[test]
    fn globs_match_like_gos_path_match() {
        assert!(glob_match("busybox", "busybox"));
        assert!(glob_match("busybox:*", "busybox:1.36"));
        assert!(glob_match("*", "busybox:1.36"));
        assert!(!glob_match("*", "localhost:5000/busybox"));
        assert!(glob_match("*/busybox", "localhost:5000/busybox"));
        assert!(glob_match("busy?ox", "busybox"));
        assert!(glob_match("b[a-z]sybox", "busybox"));
        assert!(!glob_match("b[^u]sybox", "busybox"));
        assert!(glob_match("a\\*b", "a*b"));
        assert!(!glob_match("a\\*b", "axb"));
        assert!(!glob_match("b[u", "bu"));
    }

    #[test]
    fn until_takes_dockers_forms() {
        let now = 1_700_000_000;
        let f = |v: &str| {
            Filters::parse(Some(&format!(r#"{{"until":["{v}"]}}"#)), &["until"])
                .unwrap()
                .until(now)
        };
        assert_eq!(f("1600000000").unwrap(), Some(1_600_000_000));
        assert_eq!(f("1600000000.5").unwrap(), Some(1_600_000_000));
        assert_eq!(f("24h").unwrap(), Some(now - 86_400));
        assert_eq!(f("1h30m").unwrap(), Some(now - 5_400));
        assert_eq!(f("2020-01-01T00:00:00Z").unwrap(), Some(1_577_836_800));
        assert_eq!(f("2020-01-01").unwrap(), Some(1_577_836_800));
        assert!(f("soon").is_err());
        assert_eq!(
            Filters::parse(None, &["until"])
                .unwrap()
                .until(now)
                .unwrap(),
            None
        );
    }
}
