//! Building TOML values for the output document.

use toml_edit::{Array, InlineTable, Value};

/// Arrays longer than this on one line are written one item a line.
const WIDE: usize = 80;

/// A TOML string.
pub(crate) fn string(s: &str) -> Value {
    Value::from(s)
}

/// An array of strings.
pub(crate) fn strings<S: AsRef<str>>(items: &[S]) -> Value {
    array(items.iter().map(|s| string(s.as_ref())).collect())
}

/// An array of values, one item a line when it is long.
pub(crate) fn array(items: Vec<Value>) -> Value {
    let mut arr = Array::new();
    for item in items {
        arr.push(item);
    }
    let one_line = arr.to_string();
    if one_line.trim().len() > WIDE || (arr.len() > 1 && arr.iter().any(|v| v.is_inline_table())) {
        for v in arr.iter_mut() {
            v.decor_mut().set_prefix("\n    ");
            v.decor_mut().set_suffix("");
        }
        arr.set_trailing_comma(true);
        arr.set_trailing("\n");
    }
    Value::Array(arr)
}

/// An inline table of the given entries, in order.
pub(crate) fn table<K: AsRef<str>>(entries: Vec<(K, Value)>) -> Value {
    let mut t = InlineTable::new();
    for (k, v) in entries {
        t.insert(k.as_ref(), v);
    }
    Value::InlineTable(t)
}
