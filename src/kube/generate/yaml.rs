//! A small YAML writer for JSON values, in the block style `kubectl`
//! prints.
//!
//! Why not `serde_yaml_ng`: it writes YAML 1.2, where `no`, `on` or `y`
//! are plain strings, but the YAML 1.1 readers of the Kubernetes world
//! (`sigs.k8s.io/yaml`'s go-yaml, PyYAML) read them as booleans, so an
//! argument `no` became `false`. Here a string is written plain only when
//! no reader can take it for anything else: it starts with a letter or `/`,
//! holds only letters, digits and `-_./@+=:` (no `: `), and is no YAML 1.1
//! boolean or null. Every other string is written double-quoted, with
//! JSON's escapes, which YAML reads the same way.

use serde_json::Value;

/// `value` as a YAML document (a mapping at the top, as every object is).
pub(super) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(_) => block(value, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

const YAML_11_WORDS: [&str; 14] = [
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "nan", "inf", "yaml", "=",
];

fn plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./@+=:".contains(c))
        && !s.ends_with(':')
        && !YAML_11_WORDS.contains(&s.to_ascii_lowercase().as_str())
}

fn string(s: &str) -> String {
    if plain(s) {
        s.to_string()
    } else {
        // A JSON string is a YAML double-quoted scalar.
        Value::String(s.to_string()).to_string()
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => string(s),
        Value::Object(m) if m.is_empty() => "{}".to_string(),
        Value::Array(a) if a.is_empty() => "[]".to_string(),
        // Numbers, booleans, null, and (only inside a sequence of
        // sequences) a flow collection: JSON is YAML.
        other => other.to_string(),
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                out.push_str(&pad);
                out.push_str(&string(k));
                out.push(':');
                match val {
                    Value::Object(_) if is_block(val) => {
                        out.push('\n');
                        block(val, indent + 2, out);
                    }
                    // Sequences at the key's own indent, as kubectl writes.
                    Value::Array(_) if is_block(val) => {
                        out.push('\n');
                        block(val, indent, out);
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(&scalar(val));
                        out.push('\n');
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(_) if is_block(item) => {
                        let mut inner = String::new();
                        block(item, indent + 2, &mut inner);
                        out.push_str(&pad);
                        out.push_str("- ");
                        out.push_str(&inner[indent + 2..]);
                    }
                    _ => {
                        out.push_str(&pad);
                        out.push_str("- ");
                        out.push_str(&scalar(item));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn yaml_11_words_and_odd_strings_are_quoted() {
        let v = json!({
            "args": ["no", "On", "y", "", "80", "1.5", "-x", "a b", "a: b", "#c", "*x", "ok", "/bin/sh", "sha256:ab"],
            "n": 3, "b": true, "z": null, "e": {}, "l": [],
            "nested": [{ "a": 1, "b": { "c": "d" } }, [1, 2]],
            "not a key": "x\ny",
        });
        assert_eq!(
            to_yaml(&v),
            r##"args:
- "no"
- "On"
- "y"
- ""
- "80"
- "1.5"
- "-x"
- "a b"
- "a: b"
- "#c"
- "*x"
- ok
- /bin/sh
- sha256:ab
"n": 3
b: true
z: null
e: {}
l: []
nested:
- a: 1
  b:
    c: d
- [1,2]
"not a key": "x\ny"
"##
        );
    }

    #[test]
    fn the_text_reads_back_as_the_value() {
        let v = json!({
            "metadata": { "name": "x", "labels": { "app.kubernetes.io/name": "x", "t": "true" } },
            "spec": { "containers": [ { "name": "c", "args": ["no", "off", "0x1f", "~", "1e3"], "env": [ { "name": "A", "value": "yes" } ] } ] },
        });
        let back: Value = serde_yaml_ng::from_str(&to_yaml(&v)).unwrap();
        assert_eq!(back, v);
    }
}
