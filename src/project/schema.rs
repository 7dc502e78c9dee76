//! The structural check: a document tree against the JSON Schema generated from
//! [`super::model`].
//!
//! It reports every unknown key (with a did-you-mean), every value of the wrong
//! type, every word outside an enum and every number out of range, each at its
//! exact span, and all of them in one pass. It also makes one repair that some
//! formats need: a KDL scalar written where a list is expected becomes a
//! one-element list.

use serde_json::{Map, Value as J};

use super::diagnostic::{Code, Problem, SourceFile};
use super::tree::{Node, Path, Span, Value};

/// Keys other tools use, and what Servin calls them.
const KNOWN_ALIASES: &[(&str, &str)] = &[
    ("environment", "servin calls it `env`"),
    ("working_dir", "servin calls it `workdir`"),
    (
        "mem_limit",
        "servin sets memory in `resources = { memory = \"512m\" }`",
    ),
    ("cpus", "servin sets CPUs in `resources = { cpus = 1.5 }`"),
    (
        "pids_limit",
        "servin sets it in `resources = { pids = 100 }`",
    ),
    ("stop_grace_period", "servin calls it `stop_timeout`"),
    (
        "container_name",
        "a container's key is its name: rename the `[containers.NAME]` table",
    ),
    (
        "deploy",
        "servin sets `replicas` and `resources` on the container itself",
    ),
    (
        "services",
        "servin calls them `containers`; `servin import` converts a Compose file",
    ),
    ("test", "servin calls the healthcheck command `cmd`"),
    ("develop", "servin calls it `workspace`"),
];

/// The outcome of a check.
pub struct Checked {
    pub problems: Vec<Problem>,
    /// Paths whose values failed the check; they are taken out of the tree
    /// before the typed reading so that one bad value does not hide the
    /// problems of its neighbours.
    pub failed: Vec<Path>,
}

/// Checks `root` against the project schema, repairing what may be repaired.
pub fn check(root: &mut Node, file: &SourceFile) -> Checked {
    let schema = super::model::json_schema();
    let defs = schema
        .get("definitions")
        .and_then(J::as_object)
        .cloned()
        .unwrap_or_default();
    let mut checker = Checker {
        defs: &defs,
        file,
        problems: Vec::new(),
        failed: Vec::new(),
    };
    checker.node(root, &schema, &Path::root(), None);
    Checked {
        problems: checker.problems,
        failed: checker.failed,
    }
}

struct Checker<'a> {
    defs: &'a Map<String, J>,
    file: &'a SourceFile,
    problems: Vec<Problem>,
    failed: Vec<Path>,
}

/// What a check of one node found, before it is reported.
enum Finding {
    Problem(Problem, Path),
}

impl<'a> Checker<'a> {
    /// Follows `$ref` and single-element `allOf` wrappers.
    fn resolve<'s>(&self, mut schema: &'s J) -> &'s J
    where
        'a: 's,
    {
        for _ in 0..32 {
            if let Some(r) = schema.get("$ref").and_then(J::as_str) {
                let name = r.rsplit('/').next().unwrap_or(r);
                match self.defs.get(name) {
                    Some(s) => {
                        schema = s;
                        continue;
                    }
                    None => return schema,
                }
            }
            if let Some(all) = schema.get("allOf").and_then(J::as_array)
                && all.len() == 1
            {
                schema = &all[0];
                continue;
            }
            return schema;
        }
        schema
    }

    fn report(&mut self, problem: Problem, path: &Path) {
        self.problems.push(problem);
        self.failed.push(path.clone());
    }

    /// Checks `node` against `schema`; `key_span` is the span of the key that
    /// leads to it, if any.
    fn node(&mut self, node: &mut Node, schema: &J, path: &Path, key_span: Option<Span>) {
        for Finding::Problem(p, at) in self.findings(node, schema, path, key_span) {
            self.report(p, &at);
        }
    }

    fn findings(
        &self,
        node: &mut Node,
        schema: &J,
        path: &Path,
        key_span: Option<Span>,
    ) -> Vec<Finding> {
        let schema = self.resolve(schema);
        if let Some(alts) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(J::as_array)
        {
            if alts.iter().all(|a| a.get("const").is_some()) {
                let words: Vec<J> = alts
                    .iter()
                    .filter_map(|a| a.get("const").cloned())
                    .collect();
                return self.enumeration(node, &words, path);
            }
            return self.alternatives(node, alts, path, key_span);
        }

        if node.may_be_list && wants(schema, "array") && !matches!(node.value, Value::Array(_)) {
            let item = node.clone();
            node.value = Value::Array(vec![Node {
                may_be_list: false,
                ..item
            }]);
            node.may_be_list = false;
        }

        if let Some(types) = schema.get("type") {
            let ok = match types {
                J::String(t) => type_matches(&node.value, t),
                J::Array(ts) => ts
                    .iter()
                    .filter_map(J::as_str)
                    .any(|t| type_matches(&node.value, t)),
                _ => true,
            };
            if !ok {
                return vec![self.wrong_type(node, &self.describe(schema), path)];
            }
        }

        if let Some(words) = schema.get("enum").and_then(J::as_array) {
            return self.enumeration(node, words, path);
        }

        let mut out = Vec::new();
        match &mut node.value {
            Value::Int(i) => {
                let i = *i;
                let min = schema.get("minimum").and_then(J::as_f64);
                let max = schema.get("maximum").and_then(J::as_f64);
                let below = min.is_some_and(|m| (i as f64) < m);
                let above = max.is_some_and(|m| (i as f64) > m);
                if below || above {
                    let range = match (min, max) {
                        (Some(a), Some(b)) => format!("from {a} to {b}"),
                        (Some(a), None) => format!("at least {a}"),
                        (None, Some(b)) => format!("at most {b}"),
                        (None, None) => String::new(),
                    };
                    let p = Problem::error(
                        self.file,
                        Code::InvalidValue,
                        format!("`{}` must be {range}, not {i}", last_key(path)),
                    )
                    .at(node.span, format!("must be {range}"));
                    out.push(Finding::Problem(p, path.clone()));
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter_mut().enumerate() {
                        out.extend(self.findings(item, item_schema, &path.index(i), None));
                    }
                }
            }
            Value::Table(entries) => {
                let props = schema.get("properties").and_then(J::as_object);
                let additional = schema.get("additionalProperties");
                for entry in entries.iter_mut() {
                    let child = path.key(&entry.key);
                    if let Some(s) = props.and_then(|p| p.get(&entry.key)) {
                        out.extend(self.findings(&mut entry.node, s, &child, Some(entry.key_span)));
                    } else {
                        match additional {
                            Some(J::Bool(false)) => {
                                out.push(self.unknown_key(entry.key_span, &entry.key, props, path))
                            }
                            Some(s @ J::Object(_)) => out.extend(self.findings(
                                &mut entry.node,
                                s,
                                &child,
                                Some(entry.key_span),
                            )),
                            _ => {}
                        }
                    }
                }
                if let Some(required) = schema.get("required").and_then(J::as_array) {
                    for key in required.iter().filter_map(J::as_str) {
                        if !entries.iter().any(|e| e.key == key) {
                            let at = key_span.unwrap_or(node.span);
                            let p = Problem::error(
                                self.file,
                                Code::MissingKey,
                                format!("`{path}` needs the key `{key}`"),
                            )
                            .at(at, format!("`{key}` is missing here"))
                            .help(format!(
                                "add `{key} = ...`: {}",
                                first_sentence(describe_key(schema, key))
                            ));
                            out.push(Finding::Problem(p, path.clone()));
                        }
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// `anyOf`: the node passes if any alternative passes. Otherwise, if one
    /// alternative has the node's type, its findings are the most useful;
    /// else the node has the wrong type for all of them.
    fn alternatives(
        &self,
        node: &mut Node,
        alts: &[J],
        path: &Path,
        key_span: Option<Span>,
    ) -> Vec<Finding> {
        let mut best: Option<(Node, Vec<Finding>)> = None;
        for alt in alts {
            let mut trial = node.clone();
            let findings = self.findings(&mut trial, alt, path, key_span);
            if findings.is_empty() {
                *node = trial;
                return Vec::new();
            }
            let same_kind = self.kind_matches(&trial, alt);
            if same_kind && best.is_none() {
                best = Some((trial, findings));
            }
        }
        if let Some((trial, findings)) = best {
            *node = trial;
            return findings;
        }
        let expected: Vec<String> = alts.iter().map(|a| self.describe(a)).collect();
        vec![self.wrong_type(node, &join_or(&expected), path)]
    }

    /// Whether the node has the kind (table, array, scalar type) the schema
    /// describes, ignoring what is inside.
    fn kind_matches(&self, node: &Node, schema: &J) -> bool {
        let schema = self.resolve(schema);
        match schema.get("type") {
            Some(J::String(t)) => type_matches(&node.value, t),
            Some(J::Array(ts)) => ts
                .iter()
                .filter_map(J::as_str)
                .any(|t| type_matches(&node.value, t)),
            _ => false,
        }
    }

    fn enumeration(&self, node: &Node, words: &[J], path: &Path) -> Vec<Finding> {
        let allowed: Vec<&str> = words.iter().filter_map(J::as_str).collect();
        match node.as_str() {
            Some(s) if allowed.contains(&s) => Vec::new(),
            Some(s) => {
                let list = allowed
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut p = Problem::error(
                    self.file,
                    Code::InvalidValue,
                    format!("`{s}` is not a valid `{}`", last_key(path)),
                )
                .at(node.span, format!("expected one of {list}"));
                if let Some(guess) = did_you_mean(s, allowed.iter().copied()) {
                    p = p.help(format!("did you mean `{guess}`?"));
                } else {
                    p = p.help(format!("use one of {list}"));
                }
                vec![Finding::Problem(p, path.clone())]
            }
            None => {
                let list = allowed
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                vec![self.wrong_type(node, &format!("one of {list}"), path)]
            }
        }
    }

    fn wrong_type(&self, node: &Node, expected: &str, path: &Path) -> Finding {
        let found = node.kind();
        let mut p = Problem::error(
            self.file,
            Code::WrongType,
            format!("`{path}` must be {expected}, not {found}"),
        )
        .at(node.span, format!("expected {expected}"));
        if let Some(h) = type_help(node, expected, path) {
            p = p.help(h);
        }
        Finding::Problem(p, path.clone())
    }

    fn unknown_key(
        &self,
        span: Span,
        key: &str,
        props: Option<&Map<String, J>>,
        path: &Path,
    ) -> Finding {
        let place = if path.0.is_empty() {
            "the project file".to_string()
        } else {
            format!("`{path}`")
        };
        let mut p = Problem::error(
            self.file,
            Code::UnknownKey,
            format!("unknown key `{key}` in {place}"),
        )
        .at(span, "unknown key");
        let names = props.map(|p| p.keys().map(String::as_str).collect::<Vec<_>>());
        let alias = KNOWN_ALIASES
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, h)| *h);
        let guess = names
            .as_ref()
            .and_then(|n| did_you_mean(key, n.iter().copied()));
        if let Some(g) = guess {
            p = p.help(format!("did you mean `{g}`?"));
        } else if let Some(a) = alias {
            p = p.help(a.to_string());
        } else if let Some(n) = names {
            p = p.help(format!("the keys here are: {}", n.join(", ")));
        }
        Finding::Problem(p, path.key(key))
    }

    /// A short description of what a schema accepts: "a string", "an array
    /// of strings", "a table", "one of `bind`, `sync`".
    fn describe(&self, schema: &J) -> String {
        let schema = self.resolve(schema);
        if let Some(alts) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(J::as_array)
        {
            if alts.iter().all(|a| a.get("const").is_some()) {
                let words: Vec<String> = alts
                    .iter()
                    .filter_map(|a| a.get("const").and_then(J::as_str))
                    .map(|w| format!("`{w}`"))
                    .collect();
                return format!("one of {}", words.join(", "));
            }
            let parts: Vec<String> = alts.iter().map(|a| self.describe(a)).collect();
            return join_or(&parts);
        }
        if let Some(words) = schema.get("enum").and_then(J::as_array) {
            let words: Vec<String> = words
                .iter()
                .filter_map(J::as_str)
                .map(|w| format!("`{w}`"))
                .collect();
            return format!("one of {}", words.join(", "));
        }
        let t = match schema.get("type") {
            Some(J::String(t)) => t.as_str(),
            Some(J::Array(ts)) => ts.iter().filter_map(J::as_str).next().unwrap_or("value"),
            _ => "value",
        };
        match t {
            "array" => match schema.get("items") {
                Some(items) => {
                    let inner = self.describe(items);
                    if inner.starts_with("one of") {
                        return format!("an array of {inner}");
                    }
                    let parts: Vec<String> = inner
                        .split(", ")
                        .flat_map(|p| p.split(" or "))
                        .map(plural)
                        .collect();
                    format!("an array of {}", join_or(&parts))
                }
                None => "an array".to_string(),
            },
            "object" => "a table".to_string(),
            "string" => "a string".to_string(),
            "integer" => "an integer".to_string(),
            "number" => "a number".to_string(),
            "boolean" => "a boolean (true or false)".to_string(),
            _ => "a value".to_string(),
        }
    }
}

fn wants(schema: &J, t: &str) -> bool {
    match schema.get("type") {
        Some(J::String(s)) => s == t,
        Some(J::Array(ts)) => ts.iter().any(|x| x.as_str() == Some(t)),
        _ => false,
    }
}

fn type_matches(v: &Value, t: &str) -> bool {
    matches!(
        (t, v),
        ("null", Value::Null)
            | ("boolean", Value::Bool(_))
            | ("integer", Value::Int(_))
            | ("number", Value::Int(_) | Value::Float(_))
            | ("string", Value::String(_))
            | ("array", Value::Array(_))
            | ("object", Value::Table(_))
    )
}

fn plural(desc: &str) -> String {
    let d = desc
        .strip_prefix("an ")
        .or_else(|| desc.strip_prefix("a "))
        .unwrap_or(desc);
    match d {
        "string" => "strings".into(),
        "integer" => "integers".into(),
        "table" => "tables".into(),
        "number" => "numbers".into(),
        "boolean (true or false)" => "booleans".into(),
        other => other.into(),
    }
}

fn join_or(parts: &[String]) -> String {
    let mut uniq: Vec<&String> = Vec::new();
    for p in parts {
        if !uniq.contains(&p) {
            uniq.push(p);
        }
    }
    match uniq.len() {
        0 => "a value".into(),
        1 => uniq[0].clone(),
        n => {
            let head: Vec<&str> = uniq[..n - 1].iter().map(|s| s.as_str()).collect();
            format!("{} or {}", head.join(", "), uniq[n - 1])
        }
    }
}

fn last_key(path: &Path) -> String {
    path.0
        .iter()
        .rev()
        .find_map(|s| match s {
            super::tree::Seg::Key(k) => Some(k.clone()),
            super::tree::Seg::Index(_) => None,
        })
        .unwrap_or_default()
}

fn describe_key<'s>(schema: &'s J, key: &str) -> &'s str {
    schema
        .get("properties")
        .and_then(|p| p.get(key))
        .and_then(|s| s.get("description"))
        .and_then(J::as_str)
        .unwrap_or("")
}

fn first_sentence(s: &str) -> String {
    let s = s.replace('\n', " ");
    match s.find(". ") {
        Some(i) => s[..i].to_string(),
        None => s.trim_end_matches('.').to_string(),
    }
}

/// Help for the commonest type mistakes.
fn type_help(node: &Node, expected: &str, path: &Path) -> Option<String> {
    let key = last_key(path);
    match (&node.value, expected) {
        (Value::String(s), e) if e.starts_with("an array") => {
            Some(format!("write a list: `{key} = [\"{s}\"]`"))
        }
        (Value::String(s), e) if e.contains("boolean") && (s == "true" || s == "false") => {
            Some(format!("write `{key} = {s}` without quotes"))
        }
        (Value::String(s), e)
            if (e.contains("integer") || e.contains("number")) && s.parse::<f64>().is_ok() =>
        {
            Some(format!("write `{key} = {s}` without quotes"))
        }
        (Value::Int(i), e) if e.starts_with("a string") || e == "an array of strings" => {
            Some(format!("write it as a string: `{key} = \"{i}\"`"))
        }
        _ => None,
    }
}

/// The closest candidate to `word`, if one is close enough to be a typo.
pub fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let word_l = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(&word_l, &c.to_lowercase())))
        .filter(|(c, score)| *score >= 0.85 || strsim::levenshtein(&word_l, &c.to_lowercase()) <= 1)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::toml_source;

    fn run(src: &str) -> (Node, Checked) {
        let file = SourceFile::new("servin.toml", src);
        let mut root = toml_source::parse(src).expect("valid toml");
        let checked = check(&mut root, &file);
        (root, checked)
    }

    fn codes(c: &Checked) -> Vec<&'static str> {
        c.problems.iter().map(|p| p.code.as_str()).collect()
    }

    #[test]
    fn accepts_a_full_container() {
        let (_, c) = run(r#"
[containers.web]
image = "nginx"
command = "nginx -g 'daemon off;'"
env = { A = "1", B = 2, C = true }
ports = ["8080:80", 443, { target = 53, protocol = "udp" }]
volumes = ["data:/data", { type = "bind", source = "./x", target = "/x" }]
networks = { front = { aliases = ["www"] } }
depends_on = { db = "healthy" }
healthcheck = { cmd = ["CMD", "true"], interval = "5s", retries = 3 }
resources = { memory = "512m", cpus = 1.5, pids = 100 }
ulimits = { nofile = { soft = 1024, hard = 2048 }, nproc = 512 }
workspace = { source = ".", target = "/app", mode = "sync", on_change = "restart" }
"#);
        assert!(c.problems.is_empty(), "{:?}", codes(&c));
    }

    #[test]
    fn unknown_keys_get_suggestions_and_aliases() {
        let (_, c) = run("[containers.web]\nimgae = \"x\"\nenvironment = { A = \"1\" }\n");
        assert_eq!(codes(&c), ["servin::unknown_key", "servin::unknown_key"]);
        assert_eq!(c.problems[0].help.as_deref(), Some("did you mean `image`?"));
        assert!(
            c.problems[1]
                .help
                .as_deref()
                .is_some_and(|h| h.contains("`env`"))
        );
    }

    #[test]
    fn wrong_types_name_the_expected_type() {
        let (_, c) = run("[containers.web]\nports = \"80\"\ntty = \"true\"\nreplicas = 2000\n");
        assert_eq!(
            codes(&c),
            [
                "servin::wrong_type",
                "servin::wrong_type",
                "servin::invalid_value"
            ]
        );
        assert!(
            c.problems[0].message.contains("an array of"),
            "{}",
            c.problems[0].message
        );
        assert_eq!(
            c.failed,
            vec![
                Path::of(&["containers", "web", "ports"]),
                Path::of(&["containers", "web", "tty"]),
                Path::of(&["containers", "web", "replicas"]),
            ]
        );
    }

    #[test]
    fn problems_inside_a_matching_alternative_are_reported_there() {
        let (_, c) = run("[containers.web]\nports = [{ target = 80, publish = 8080 }]\n");
        assert_eq!(codes(&c), ["servin::unknown_key"]);
        assert_eq!(
            c.problems[0].help.as_deref(),
            Some("did you mean `published`?")
        );
    }

    #[test]
    fn enum_words_are_checked() {
        let (_, c) = run("[containers.web]\ndepends_on = { db = \"healty\" }\n");
        assert_eq!(codes(&c), ["servin::invalid_value"]);
        assert_eq!(
            c.problems[0].help.as_deref(),
            Some("did you mean `healthy`?")
        );
    }

    #[test]
    fn a_list_scalar_from_kdl_becomes_a_list() {
        let file = SourceFile::new("servin.kdl", "");
        let mut root = toml_source::parse("[containers.web]\nports = \"80\"\n").expect("toml");
        let path = Path::of(&["containers", "web", "ports"]);
        if let Some(n) = root.at_mut(&path.0) {
            n.may_be_list = true;
        }
        let c = check(&mut root, &file);
        assert!(c.problems.is_empty());
        let ports = root.at(&path.0).expect("ports");
        assert!(matches!(ports.value, Value::Array(ref v) if v.len() == 1));
    }
}
