//! Reads `servin.toml` into the document tree, keeping spans.

use toml::de::{DeTable, DeValue};

use super::tree::{Entry, Node, Span, SyntaxError, Value};

/// Parses TOML text into a tree. All syntax errors are returned at once.
pub fn parse(src: &str) -> Result<Node, Vec<SyntaxError>> {
    let (doc, errors) = DeTable::parse_recoverable(src);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| {
                let span = e.span().map_or(Span::new(0, 0), Span::from);
                SyntaxError {
                    span,
                    message: first_line(e.message()),
                    help: None,
                }
            })
            .collect());
    }
    let span = Span::from(doc.span());
    Ok(Node::new(table(doc.get_ref()), span))
}

fn first_line(msg: &str) -> String {
    msg.lines().next().unwrap_or(msg).trim().to_string()
}

fn table(t: &DeTable<'_>) -> Value {
    Value::Table(
        t.iter()
            .map(|(k, v)| Entry {
                key: k.get_ref().to_string(),
                key_span: Span::from(k.span()),
                node: node(v.get_ref(), Span::from(v.span())),
            })
            .collect(),
    )
}

fn node(v: &DeValue<'_>, span: Span) -> Node {
    let value = match v {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Value::Int(n),
            // Out of i64 range: keep the text so the type check can name it.
            Err(_) => Value::String(i.as_str().to_string()),
        },
        DeValue::Float(f) => Value::Float(f.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| node(i.get_ref(), Span::from(i.span())))
                .collect(),
        ),
        DeValue::Table(t) => table(t),
    };
    Node::new(value, span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_spans_of_keys_and_values() {
        let src = "[containers.web]\nimage = \"nginx\"\nports = [\"80\", 8080]\n";
        let root = parse(src).expect("valid toml");
        let web = root.entry("containers").and_then(|e| e.node.entry("web"));
        let image = web.and_then(|w| w.node.entry("image")).expect("image");
        assert_eq!(&src[image.key_span.start..image.key_span.end], "image");
        assert_eq!(
            &src[image.node.span.start..image.node.span.end],
            "\"nginx\""
        );
        let ports = web.and_then(|w| w.node.entry("ports")).expect("ports");
        let Value::Array(items) = &ports.node.value else {
            panic!("ports is an array")
        };
        assert_eq!(items[1].value, Value::Int(8080));
        assert_eq!(&src[items[1].span.start..items[1].span.end], "8080");
    }

    #[test]
    fn reports_syntax_errors_with_spans() {
        let errs = parse("a = \n[b\n").expect_err("invalid");
        assert!(!errs.is_empty());
        assert!(errs.iter().all(|e| e.span.end <= 7));
    }
}
