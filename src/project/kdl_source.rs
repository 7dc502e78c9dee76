//! Reads `servin.kdl` into the document tree, keeping spans.
//!
//! KDL has nodes (a name, arguments, properties and a child block) where TOML
//! has tables, arrays and scalars. One rule, applied at every level, maps a node
//! to a tree value:
//!
//! * one argument and nothing else is that scalar, marked `may_be_list` so the
//!   schema step can read `ports "8080:80"` as a one-element list;
//! * two or more arguments and nothing else are an array of scalars;
//! * properties and/or child nodes (no arguments) are a table: the properties in
//!   order, then one entry per child node, keyed by its name;
//! * children that are all named `-` are an array of their values:
//!   `volumes { - "data:/data"; - type="bind" source="." }`;
//! * a bare node (`networks { frontend }`) is an empty table.
//!
//! The document itself is a table of its top-level nodes. Arguments mixed with
//! properties or children, repeated keys, type annotations and integers outside
//! the 64-bit range are syntax errors. The file is KDL v2 (`#true`, `#null`,
//! `#"raw"#`); v1 spellings get a hint in the error.

use std::collections::HashMap;

use kdl::{KdlDocument, KdlEntry, KdlError, KdlIdentifier, KdlNode, KdlValue};
use miette::SourceSpan;

use super::tree::{Entry, Node, Span, SyntaxError, Value};

/// The stack the kdl parser runs on. It recurses per `{` block (up to ~40 KiB a
/// level in debug builds) and per nested `/* */` comment (~16 KiB).
const PARSER_STACK: usize = 128 << 20;
/// Stack the parser may use at most, by the counts below; leaves headroom.
const STACK_BUDGET: usize = 96 << 20;
const BLOCK_COST: usize = 48 << 10;
const COMMENT_COST: usize = 16 << 10;
/// Nesting allowed for files with too many blocks or comments to be safe
/// whatever their shape.
const MAX_DEPTH: usize = 128;
const MAX_COMMENT_DEPTH: usize = 256;
/// The kdl parser takes time exponential in how deep commented-out child
/// blocks (`/-{ }`) nest; this many are always fine.
const SLASHDASH_BLOCKS: usize = 6;
const MAX_SLASHDASH_DEPTH: usize = 3;

/// Parses KDL text into a tree. All syntax errors are returned at once.
pub fn parse(src: &str) -> Result<Node, Vec<SyntaxError>> {
    if let Some(error) = too_deep(src) {
        return Err(vec![error]);
    }
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("servin-kdl".to_string())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || read(src));
        match worker {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(vec![SyntaxError {
                    span: Span::new(0, src.len()),
                    message: "the KDL parser failed on this file".to_string(),
                    help: Some("please report this as a servin bug".to_string()),
                }])
            }),
            // No thread to be had: parse on the caller's stack.
            Err(_) => read(src),
        }
    })
}

/// Finds nesting the kdl parser cannot handle in bounded stack and time.
///
/// This is a byte scan that does not know about strings or comments, so it
/// over-counts: a file small enough by its plain counts of `{`, `/*` and `/-{`
/// is always safe. Only a file too big for that is held to its (estimated)
/// nesting depth.
fn too_deep(src: &str) -> Option<SyntaxError> {
    let bytes = src.as_bytes();
    let (mut blocks_total, mut comments_total, mut slashdash_total) = (0usize, 0usize, 0usize);
    // The first `{`, `/*` or `/-{` that goes past each depth limit.
    let (mut deep_block, mut deep_comment, mut deep_slashdash) = (None, None, None);
    // For each open `{`: whether it is a commented-out child block.
    let mut open: Vec<bool> = Vec::new();
    let mut slashdash_depth = 0usize;
    let mut comment_depth = 0usize;
    let mut line_comment = false;
    // Only whitespace and comments since the last `/-`.
    let mut after_slashdash = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let pair = (b, bytes.get(i + 1).copied());
        let mut step = 1;
        match pair {
            (b'/', Some(b'*')) => {
                comments_total += 1;
                comment_depth += 1;
                if comment_depth > MAX_COMMENT_DEPTH && deep_comment.is_none() {
                    deep_comment = Some(i);
                }
                step = 2;
            }
            (b'*', Some(b'/')) => {
                comment_depth = comment_depth.saturating_sub(1);
                step = 2;
            }
            (b'/', Some(b'/')) => {
                line_comment = true;
                step = 2;
            }
            (b'/', Some(b'-')) => {
                after_slashdash = true;
                step = 2;
            }
            (b'{', _) => {
                blocks_total += 1;
                open.push(after_slashdash);
                if after_slashdash {
                    slashdash_total += 1;
                    slashdash_depth += 1;
                    if slashdash_depth > MAX_SLASHDASH_DEPTH && deep_slashdash.is_none() {
                        deep_slashdash = Some(i);
                    }
                }
                if open.len() > MAX_DEPTH && deep_block.is_none() {
                    deep_block = Some(i);
                }
                after_slashdash = false;
            }
            (b'}', _) => {
                if open.pop() == Some(true) {
                    slashdash_depth -= 1;
                }
                after_slashdash = false;
            }
            (b'\n', _) => line_comment = false,
            // Whitespace, line continuations, and (non-ASCII) maybe-whitespace.
            (b' ' | b'\t' | b'\r' | 0x0b | 0x0c | b'\\' | 0x80.., _) => {}
            _ if comment_depth > 0 || line_comment => {}
            _ => after_slashdash = false,
        }
        i += step;
    }
    let cost = blocks_total
        .saturating_mul(BLOCK_COST)
        .saturating_add(comments_total.saturating_mul(COMMENT_COST));
    let at = |i: usize, len: usize| Span::new(i, (i + len).min(src.len()));
    if cost > STACK_BUDGET {
        if let Some(i) = deep_block {
            return Some(SyntaxError {
                span: at(i, 1),
                message: format!("blocks are nested more than {MAX_DEPTH} levels deep"),
                help: None,
            });
        }
        if let Some(i) = deep_comment {
            return Some(SyntaxError {
                span: at(i, 2),
                message: format!("comments are nested more than {MAX_COMMENT_DEPTH} levels deep"),
                help: None,
            });
        }
    }
    if slashdash_total > SLASHDASH_BLOCKS
        && let Some(i) = deep_slashdash
    {
        return Some(SyntaxError {
            span: at(i, 1),
            message: format!(
                "commented-out child blocks (`/-{{ }}`) are nested more than {MAX_SLASHDASH_DEPTH} levels deep"
            ),
            help: Some("delete the inner commented-out blocks".to_string()),
        });
    }
    None
}

fn read(src: &str) -> Result<Node, Vec<SyntaxError>> {
    let doc = KdlDocument::parse_v2(src).map_err(|e| parse_errors(src, &e))?;
    let mut reader = Reader {
        src,
        errors: Vec::new(),
    };
    let root = reader.table(&[], doc.nodes(), None);
    if reader.errors.is_empty() {
        Ok(Node::new(root, Span::new(0, src.len())))
    } else {
        Err(reader.errors)
    }
}

/// Converts every diagnostic of the KDL parser, in order, without repeats.
fn parse_errors(src: &str, err: &KdlError) -> Vec<SyntaxError> {
    let mut out: Vec<SyntaxError> = Vec::new();
    for d in &err.diagnostics {
        let span = clamp(src, d.span);
        let message = d
            .message
            .clone()
            .or_else(|| d.label.clone())
            .unwrap_or_else(|| "invalid KDL".to_string());
        let help = v1_hint(src.get(span.start..span.end).unwrap_or("")).or_else(|| d.help.clone());
        let error = SyntaxError {
            span,
            message,
            help,
        };
        if !out.contains(&error) {
            out.push(error);
        }
    }
    if out.is_empty() {
        out.push(SyntaxError {
            span: Span::new(0, 0),
            message: "invalid KDL".to_string(),
            help: None,
        });
    }
    out
}

/// A hint for text that is valid KDL v1 but not KDL v2.
fn v1_hint(text: &str) -> Option<String> {
    let text = text.trim();
    if matches!(text, "true" | "false" | "null") {
        return Some(format!(
            "servin.kdl uses KDL v2, where keywords start with `#`: write `#{text}`"
        ));
    }
    let raw = text.strip_prefix('r')?;
    if raw.starts_with('"') || raw.starts_with("#") {
        return Some(
            "servin.kdl uses KDL v2, where raw strings are written `#\"...\"#` (no `r`)"
                .to_string(),
        );
    }
    None
}

/// A kdl span as a tree span that lies inside `src`, on character boundaries.
fn clamp(src: &str, s: SourceSpan) -> Span {
    let floor = |mut i: usize| {
        i = i.min(src.len());
        while !src.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let start = floor(s.offset());
    let end = floor(s.offset().saturating_add(s.len()));
    Span::new(start, end)
}

struct Reader<'s> {
    src: &'s str,
    errors: Vec<SyntaxError>,
}

impl Reader<'_> {
    fn error(&mut self, span: Span, message: String, help: Option<String>) {
        self.errors.push(SyntaxError {
            span,
            message,
            help,
        });
    }

    fn span(&self, s: SourceSpan) -> Span {
        clamp(self.src, s)
    }

    fn text(&self, span: Span) -> &str {
        self.src.get(span.start..span.end).unwrap_or("")
    }

    /// The 1-based line `offset` is on.
    fn line_of(&self, offset: usize) -> usize {
        self.src
            .as_bytes()
            .iter()
            .take(offset)
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    /// A node's span without the trailing whitespace kdl includes.
    fn node_span(&self, n: &KdlNode) -> Span {
        let span = self.span(n.span());
        let trimmed = self.text(span).trim_end().len();
        Span::new(span.start, span.start + trimmed)
    }

    /// The span of an entry's value alone (without `key=` or a type annotation).
    fn value_span(&self, e: &KdlEntry) -> Span {
        let whole = self.span(e.span());
        if let Some(repr) = e.format().map(|f| f.value_repr.as_str())
            && !repr.is_empty()
            && repr.len() <= whole.len()
        {
            let start = whole.end - repr.len();
            if self.src.get(start..whole.end) == Some(repr) {
                return Span::new(start, whole.end);
            }
        }
        whole
    }

    /// Reports a type annotation, pointing at it with its parentheses.
    fn type_annotation(&mut self, ty: &KdlIdentifier, before: &str, after: &str) {
        let name = self.span(ty.span());
        let open = name.start.checked_sub(before.len() + 1);
        let close = name.end + after.len() + 1;
        let span = match open {
            Some(open)
                if self.src.as_bytes().get(open) == Some(&b'(')
                    && self.src.as_bytes().get(close - 1) == Some(&b')') =>
            {
                Span::new(open, close)
            }
            _ => name,
        };
        let text = self.text(span).to_string();
        self.error(
            span,
            "servin.kdl does not use type annotations".to_string(),
            Some(format!(
                "remove `{text}`; the value's own syntax gives its type (`5`, `\"5\"`, `#true`)"
            )),
        );
    }

    /// An argument or property value.
    fn scalar(&mut self, e: &KdlEntry) -> Node {
        let span = self.value_span(e);
        if let Some(ty) = e.ty() {
            let (before, after) = e.format().map_or(("", ""), |f| {
                (f.before_ty_name.as_str(), f.after_ty_name.as_str())
            });
            self.type_annotation(ty, before, after);
        }
        let value = match e.value() {
            KdlValue::String(s) => Value::String(s.clone()),
            KdlValue::Integer(i) => match i64::try_from(*i) {
                Ok(n) => Value::Int(n),
                Err(_) => {
                    self.error(
                        span,
                        format!("integer `{i}` is out of range"),
                        Some(format!(
                            "integers in servin.kdl must be between {} and {}",
                            i64::MIN,
                            i64::MAX
                        )),
                    );
                    Value::Null
                }
            },
            KdlValue::Float(f) => Value::Float(*f),
            KdlValue::Bool(b) => Value::Bool(*b),
            KdlValue::Null => Value::Null,
        };
        Node::new(value, span)
    }

    /// The value of one node, by the layout rule in the module docs.
    fn node(&mut self, n: &KdlNode) -> Node {
        let span = self.node_span(n);
        if let Some(ty) = n.ty() {
            let (before, after) = n.format().map_or(("", ""), |f| {
                (f.before_ty_name.as_str(), f.after_ty_name.as_str())
            });
            self.type_annotation(ty, before, after);
        }
        let (props, args): (Vec<&KdlEntry>, Vec<&KdlEntry>) =
            n.entries().iter().partition(|e| e.name().is_some());
        let children = n.children().map_or(&[][..], KdlDocument::nodes);
        let name = n.name().value();

        if !args.is_empty() {
            if !props.is_empty() || !children.is_empty() {
                self.mixed(n, &args, !props.is_empty(), !children.is_empty());
                return Node::new(Value::Null, span);
            }
            if let [only] = args[..] {
                let mut node = self.scalar(only);
                node.may_be_list = true;
                return node;
            }
            let items = args.iter().map(|a| self.scalar(a)).collect();
            return Node::new(Value::Array(items), span);
        }

        if children.first().is_some_and(is_item) {
            let before = self.errors.len();
            if let Some(p) = props.first().and_then(|p| p.name()) {
                let key_span = self.span(p.span());
                self.error(
                    key_span,
                    format!("`{name}` has both properties and `-` list items"),
                    Some(format!(
                        "`-` children make `{name}` a list; move the properties into a `-` item or drop the `-` items"
                    )),
                );
            }
            if let Some(named) = children.iter().find(|c| !is_item(c)) {
                let key_span = self.span(named.name().span());
                self.error(
                    key_span,
                    format!(
                        "`{name}` mixes `-` list items with the named child `{}`",
                        named.name().value()
                    ),
                    Some(format!(
                        "`-` children make `{name}` a list; name every child `-` for a list, or none for a table"
                    )),
                );
            }
            let items: Vec<Node> = children.iter().map(|c| self.node(c)).collect();
            if self.errors.len() > before {
                return Node::new(Value::Null, span);
            }
            return Node::new(Value::Array(items), span);
        }

        Node::new(self.table(&props, children, Some(name)), span)
    }

    /// Reports a node that has arguments as well as properties or children.
    fn mixed(&mut self, n: &KdlNode, args: &[&KdlEntry], props: bool, children: bool) {
        let name = n.name().value();
        let start = self.span(n.name().span()).start;
        let end = n
            .entries()
            .iter()
            .map(|e| self.span(e.span()).end)
            .max()
            .unwrap_or(start);
        let what = match (props, children) {
            (true, true) => "properties and children",
            (true, false) => "properties",
            _ => "children",
        };
        let first = args
            .first()
            .map_or_else(String::new, |a| self.text(self.value_span(a)).to_string());
        self.error(
            Span::new(start, end),
            format!("`{name}` has both arguments and {what}"),
            Some(format!(
                "a node holds either values (arguments) or a table (properties and children); \
                 put the arguments in a child (`{name} {{ - {first} }}` for a list) or use only properties"
            )),
        );
    }

    /// A table of properties, then child nodes keyed by name.
    fn table(&mut self, props: &[&KdlEntry], children: &[KdlNode], parent: Option<&str>) -> Value {
        let mut entries: Vec<Entry> = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for p in props {
            let Some(name) = p.name() else { continue };
            let key_span = self.span(name.span());
            let node = self.scalar(p);
            self.push(&mut entries, &mut seen, name.value(), key_span, node);
        }
        for c in children {
            let key_span = self.span(c.name().span());
            if is_item(c) {
                let (message, help) = match parent {
                    Some(parent) => (
                        format!("`{parent}` mixes named children with `-` list items"),
                        format!(
                            "`-` children make `{parent}` a list; name every child `-` for a list, or none for a table"
                        ),
                    ),
                    None => (
                        "a `-` list item cannot be at the top level".to_string(),
                        "the top level of servin.kdl is a table of named nodes; put `-` items inside a node".to_string(),
                    ),
                };
                self.error(key_span, message, Some(help));
                continue;
            }
            let node = self.node(c);
            self.push(&mut entries, &mut seen, c.name().value(), key_span, node);
        }
        Value::Table(entries)
    }

    fn push(
        &mut self,
        entries: &mut Vec<Entry>,
        seen: &mut HashMap<String, Span>,
        key: &str,
        key_span: Span,
        node: Node,
    ) {
        if let Some(first) = seen.get(key) {
            let line = self.line_of(first.start);
            self.error(
                key_span,
                format!("duplicate key `{key}`"),
                Some(format!(
                    "`{key}` is already set on line {line}; for several values write them on one node \
                     (`{key} \"a\" \"b\"`) or as `-` children"
                )),
            );
            return;
        }
        seen.insert(key.to_string(), key_span);
        entries.push(Entry {
            key: key.to_string(),
            key_span,
            node,
        });
    }
}

/// A `-` child: one item of its parent's list.
fn is_item(n: &KdlNode) -> bool {
    n.name().value() == "-"
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::project::toml_source;

    fn ok(src: &str) -> Node {
        match parse(src) {
            Ok(node) => node,
            Err(errors) => panic!("expected {src:?} to parse, got {errors:#?}"),
        }
    }

    fn errs(src: &str) -> Vec<SyntaxError> {
        match parse(src) {
            Ok(node) => panic!("expected {src:?} to fail, got {:#}", node.to_json()),
            Err(errors) => errors,
        }
    }

    /// The single error of `src`.
    fn err(src: &str) -> SyntaxError {
        let mut errors = errs(src);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors.remove(0)
    }

    fn at(src: &str, span: Span) -> &str {
        &src[span.start..span.end]
    }

    fn path<'a>(root: &'a Node, keys: &[&str]) -> &'a Node {
        let mut node = root;
        for key in keys {
            node = &node
                .entry(key)
                .unwrap_or_else(|| panic!("no key {key}"))
                .node;
        }
        node
    }

    fn json(src: &str) -> serde_json::Value {
        ok(src).to_json()
    }

    /// KDL's JSON, with `may_be_list` scalars wrapped where TOML has an array
    /// (what the schema step does), serialised so key order counts too.
    fn like(kdl: &Node, toml: &Node) -> String {
        fn go(kdl: &Node, toml: &Node) -> serde_json::Value {
            match (&kdl.value, &toml.value) {
                (Value::Table(k), Value::Table(_)) => serde_json::Value::Object(
                    k.iter()
                        .map(|e| {
                            let value = match toml.entry(&e.key) {
                                Some(t) => go(&e.node, &t.node),
                                None => e.node.to_json(),
                            };
                            (e.key.clone(), value)
                        })
                        .collect(),
                ),
                (Value::Array(k), Value::Array(t)) if k.len() == t.len() => {
                    serde_json::Value::Array(k.iter().zip(t).map(|(k, t)| go(k, t)).collect())
                }
                (_, Value::Array(_)) if kdl.may_be_list => {
                    serde_json::Value::Array(vec![kdl.to_json()])
                }
                _ => kdl.to_json(),
            }
        }
        go(kdl, toml).to_string()
    }

    fn assert_same(toml: &str, kdl: &str) {
        let t = toml_source::parse(toml).expect("valid toml");
        let k = ok(kdl);
        assert_eq!(like(&k, &t), t.to_json().to_string());
    }

    // ---- equivalence with TOML ----

    #[test]
    fn the_shop_example_reads_like_its_toml() {
        assert_same(
            include_str!("../../tests/fixtures/kdl/shop.toml"),
            include_str!("../../tests/fixtures/kdl/shop.kdl"),
        );
    }

    #[test]
    fn the_full_fixture_reads_like_its_toml() {
        assert_same(
            include_str!("../../tests/fixtures/kdl/full.toml"),
            include_str!("../../tests/fixtures/kdl/full.kdl"),
        );
    }

    #[test]
    fn properties_and_children_give_the_same_table() {
        let toml = "[env]\nNODE_ENV = \"production\"\nDEBUG = \"1\"\n";
        assert_same(toml, "env NODE_ENV=\"production\" DEBUG=\"1\"");
        assert_same(toml, "env { NODE_ENV \"production\"; DEBUG \"1\"; }");
        assert_same(toml, "env NODE_ENV=production {\n    DEBUG \"1\"\n}\n");
    }

    #[test]
    fn scalars_match_toml() {
        assert_same(
            "s = \"x\"\ni = -42\nf = 1.5\nt = true\nfl = false\nbig = 9223372036854775807\nhex = 255\n",
            "s x\ni -42\nf 1.5\nt #true\nfl #false\nbig 9223372036854775807\nhex 0xff\n",
        );
    }

    #[test]
    fn lists_of_tables_and_of_lists_match_toml() {
        assert_same(
            "a = [{ x = 1 }, { y = [1, 2] }, [3, 4], {}]\n",
            "a { - x=1; - { y 1 2; }; - 3 4; - }",
        );
    }

    #[test]
    fn empty_tables_match_toml() {
        assert_same(
            "[networks.frontend]\n[networks.backend]\n[empty]\n",
            "networks { frontend; backend {}; }\nempty",
        );
    }

    #[test]
    fn one_argument_wraps_only_where_toml_has_a_list() {
        assert_same(
            "ports = [\"80\"]\nimage = \"nginx\"\n",
            "ports \"80\"\nimage nginx",
        );
    }

    // ---- the mapping rule ----

    #[test]
    fn an_empty_document_is_an_empty_table() {
        assert_eq!(ok("").value, Value::Table(Vec::new()));
        assert_eq!(ok("// only a comment\n").value, Value::Table(Vec::new()));
    }

    #[test]
    fn one_argument_is_a_scalar_that_may_be_a_list() {
        let root = ok("ports \"8080:80\"");
        let ports = path(&root, &["ports"]);
        assert_eq!(ports.value, Value::String("8080:80".into()));
        assert!(ports.may_be_list);
    }

    #[test]
    fn several_arguments_are_an_array() {
        let root = ok("command npm start 1 #null");
        let command = path(&root, &["command"]);
        assert!(!command.may_be_list);
        assert_eq!(
            command.to_json(),
            serde_json::json!(["npm", "start", 1, null])
        );
    }

    #[test]
    fn properties_and_scalars_are_not_marked_as_lists_in_tables() {
        let root = ok("env A=\"1\"");
        assert!(!path(&root, &["env", "A"]).may_be_list);
    }

    #[test]
    fn dash_children_are_an_array_of_their_values() {
        let root = ok("volumes { - \"data:/data\"; - type=bind source=\".\"; }");
        assert_eq!(
            path(&root, &["volumes"]).to_json(),
            serde_json::json!(["data:/data", { "type": "bind", "source": "." }])
        );
    }

    #[test]
    fn quoted_and_raw_names_and_strings_work() {
        assert_eq!(
            json("\"my key\" #\"raw \"quoted\"\"#\nmulti \"\"\"\n    a\n    b\n    \"\"\""),
            serde_json::json!({ "my key": "raw \"quoted\"", "multi": "a\nb" })
        );
    }

    #[test]
    fn slashdash_comments_drop_things() {
        assert_eq!(
            json("/-gone 1\nkept /-1 2 /-x=1 /-{ y }"),
            serde_json::json!({ "kept": 2 })
        );
    }

    #[test]
    fn special_floats_are_floats() {
        let root = ok("a #inf\nb #nan");
        assert_eq!(path(&root, &["a"]).value, Value::Float(f64::INFINITY));
        assert!(matches!(path(&root, &["b"]).value, Value::Float(f) if f.is_nan()));
    }

    // ---- spans ----

    #[test]
    fn spans_point_at_names_values_and_nodes() {
        let src = "containers {\n    web image=\"nginx\" {\n        ports \"80\" 8080\n        cmd x\n    }\n}\n";
        let root = ok(src);
        assert_eq!(root.span, Span::new(0, src.len()));
        let containers = root.entry("containers").expect("containers");
        assert_eq!(at(src, containers.key_span), "containers");
        let web = containers.node.entry("web").expect("web");
        assert_eq!(at(src, web.key_span), "web");
        assert!(at(src, web.node.span).starts_with("web image="));
        assert!(at(src, web.node.span).ends_with('}'));
        let image = web.node.entry("image").expect("image");
        assert_eq!(at(src, image.key_span), "image");
        assert_eq!(at(src, image.node.span), "\"nginx\"");
        let ports = web.node.entry("ports").expect("ports");
        assert_eq!(at(src, ports.key_span), "ports");
        assert_eq!(at(src, ports.node.span), "ports \"80\" 8080");
        let Value::Array(items) = &ports.node.value else {
            panic!("ports is an array")
        };
        assert_eq!(at(src, items[0].span), "\"80\"");
        assert_eq!(at(src, items[1].span), "8080");
        let cmd = web.node.entry("cmd").expect("cmd");
        assert_eq!(at(src, cmd.node.span), "x");
    }

    #[test]
    fn property_value_spans_skip_spaces_and_keys() {
        let src = "a key = #\"raw\"# other=-1.5e3";
        let root = ok(src);
        let key = path(&root, &["a"]).entry("key").expect("key");
        assert_eq!(at(src, key.key_span), "key");
        assert_eq!(at(src, key.node.span), "#\"raw\"#");
        let other = path(&root, &["a"]).entry("other").expect("other");
        assert_eq!(at(src, other.node.span), "-1.5e3");
        assert_eq!(other.node.value, Value::Float(-1500.0));
    }

    #[test]
    fn dash_item_spans_are_their_nodes_or_values() {
        let src = "v {\n  - \"a\"\n  - x=1\n}";
        let root = ok(src);
        let Value::Array(items) = &path(&root, &["v"]).value else {
            panic!("v is an array")
        };
        assert_eq!(at(src, items[0].span), "\"a\"");
        assert_eq!(at(src, items[1].span), "- x=1");
    }

    // ---- errors ----

    #[test]
    fn arguments_with_properties_are_an_error() {
        let src = "build \"./web\" target=dev";
        let e = err(src);
        assert_eq!(e.message, "`build` has both arguments and properties");
        assert_eq!(at(src, e.span), src);
        let help = e.help.expect("help");
        assert!(
            help.contains("child") && help.contains("only properties"),
            "{help}"
        );
    }

    #[test]
    fn arguments_with_children_are_an_error() {
        let src = "top {\n  ports \"80\" {\n    - \"81\"\n  }\n}";
        let e = err(src);
        assert_eq!(e.message, "`ports` has both arguments and children");
        assert_eq!(at(src, e.span), "ports \"80\"");
        let e = err("a 1 b=2 { c }");
        assert_eq!(
            e.message,
            "`a` has both arguments and properties and children"
        );
    }

    #[test]
    fn repeated_nodes_are_duplicate_keys() {
        let src = "ports \"80\"\nports \"81\"\n";
        let e = err(src);
        assert_eq!(e.message, "duplicate key `ports`");
        assert_eq!(e.span, Span::new(11, 16));
        assert!(e.help.expect("help").contains("line 1"));
    }

    #[test]
    fn repeated_properties_are_duplicate_keys() {
        let src = "env A=1 B=2 A=3";
        let e = err(src);
        assert_eq!(e.message, "duplicate key `A`");
        assert_eq!(e.span, Span::new(12, 13));
    }

    #[test]
    fn a_property_and_a_child_with_one_name_are_duplicate_keys() {
        let src = "env A=1 {\n  A 2\n}";
        let e = err(src);
        assert_eq!(e.message, "duplicate key `A`");
        assert_eq!(e.span, Span::new(12, 13));
    }

    #[test]
    fn duplicates_in_nested_tables_and_list_items_are_found() {
        let errors = errs("a { b { c 1; c 2; }; }\nv { - x=1 x=2; }");
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["duplicate key `c`", "duplicate key `x`"]);
    }

    #[test]
    fn type_annotations_are_errors() {
        let src = "a (u8)5";
        let e = err(src);
        assert_eq!(e.message, "servin.kdl does not use type annotations");
        assert_eq!(at(src, e.span), "(u8)");
        assert!(e.help.expect("help").contains("`(u8)`"));

        let src = "a b=( date )\"x\"";
        assert_eq!(at(src, err(src).span), "( date )");

        let src = "(tag)node 1";
        assert_eq!(at(src, err(src).span), "(tag)");
    }

    #[test]
    fn integers_outside_i64_are_errors() {
        let src = "a 9223372036854775808\nb x=-9223372036854775809";
        let errors = errs(src);
        assert_eq!(errors.len(), 2);
        assert_eq!(
            errors[0].message,
            "integer `9223372036854775808` is out of range"
        );
        assert_eq!(at(src, errors[0].span), "9223372036854775808");
        assert_eq!(at(src, errors[1].span), "-9223372036854775809");
        assert_eq!(
            path(&ok("a -9223372036854775808"), &["a"]).value,
            Value::Int(i64::MIN)
        );
    }

    #[test]
    fn dash_items_mixed_with_named_children_are_errors() {
        let src = "v {\n  - 1\n  named 2\n}";
        let e = err(src);
        assert_eq!(
            e.message,
            "`v` mixes `-` list items with the named child `named`"
        );
        assert_eq!(at(src, e.span), "named");

        let src = "v {\n  named 2\n  - 1\n}";
        let e = err(src);
        assert_eq!(e.message, "`v` mixes named children with `-` list items");
        assert_eq!(at(src, e.span), "-");
    }

    #[test]
    fn dash_items_with_properties_are_errors() {
        let src = "v x=1 {\n  - 1\n}";
        let e = err(src);
        assert_eq!(e.message, "`v` has both properties and `-` list items");
        assert_eq!(at(src, e.span), "x");
    }

    #[test]
    fn dash_items_at_the_top_level_are_errors() {
        let src = "- 1";
        let e = err(src);
        assert_eq!(e.message, "a `-` list item cannot be at the top level");
        assert_eq!(at(src, e.span), "-");
    }

    #[test]
    fn all_conversion_errors_are_reported_together() {
        let errors = errs("a 1 b=2\nc (x)1\nc 2\nd 99999999999999999999");
        assert_eq!(errors.len(), 4, "{errors:#?}");
    }

    #[test]
    fn kdl_syntax_errors_keep_span_message_and_help() {
        let src = "a \"unterminated\nb 1";
        let errors = errs(src);
        assert!(!errors.is_empty());
        let e = &errors[0];
        assert_eq!(e.message, "Unexpected newline in single-line quoted string");
        assert!(e.help.is_some());
        assert!(e.span.start >= 2 && e.span.end <= src.len());
    }

    #[test]
    fn every_kdl_diagnostic_is_reported() {
        let errors = errs("a 1 {\n");
        assert!(errors.len() >= 2, "{errors:#?}");
        assert!(errors.iter().any(|e| e.message.contains("closing '}'")));
    }

    #[test]
    fn kdl_v1_keywords_and_raw_strings_get_a_hint() {
        let e = &errs("a true")[0];
        assert_eq!(at("a true", e.span), "true");
        assert!(
            e.help.as_deref().is_some_and(|h| h.contains("`#true`")),
            "{e:?}"
        );
        let e = &errs("a r\"x\"")[0];
        assert!(
            e.help.as_deref().is_some_and(|h| h.contains("raw strings")),
            "{e:?}"
        );
    }

    #[test]
    fn error_spans_stay_on_char_boundaries() {
        for src in [
            "é \"ü",
            "a (ü)1",
            "ü 1 ü=2",
            "\u{feff}x {",
            "a 1 {\n\u{1F600}",
        ] {
            if let Err(errors) = parse(src) {
                for e in errors {
                    assert!(src.get(e.span.start..e.span.end).is_some(), "{src:?} {e:?}");
                }
            }
        }
    }

    // ---- robustness ----

    #[test]
    fn deep_but_reasonable_nesting_parses() {
        let depth = 300;
        let src = "a {".repeat(depth) + &"}".repeat(depth);
        let root = ok(&src);
        let mut node = &root;
        for _ in 0..depth {
            node = path(node, &["a"]);
        }
        assert_eq!(node.value, Value::Table(Vec::new()));
    }

    #[test]
    fn absurd_nesting_is_an_error_not_a_crash() {
        let src = "a {".repeat(5000);
        let e = err(&src);
        assert_eq!(e.message, "blocks are nested more than 128 levels deep");
        assert_eq!(e.span, Span::new(128 * 3 + 2, 128 * 3 + 3));

        let src = "/*".repeat(20_000);
        assert!(errs(&src)[0].message.contains("comments are nested"));
        let src = "/*".repeat(2000) + &"*/".repeat(2000) + "a 1";
        assert_eq!(json(&src), serde_json::json!({ "a": 1 }));
    }

    #[test]
    fn nested_commented_out_blocks_are_limited() {
        let src = "a /-{".repeat(12) + &"}".repeat(12);
        let e = err(&src);
        assert!(e.message.contains("commented-out child blocks"), "{e:?}");
        let mut src: String = (0..20).map(|i| format!("n{i} /-{{ b }}\n")).collect();
        src.push_str("last /-{ b /-{ c /-{ d } } }");
        let root = ok(&src);
        assert_eq!(path(&root, &["n7"]).value, Value::Table(Vec::new()));
        assert_eq!(path(&root, &["last"]).value, Value::Table(Vec::new()));
    }

    #[test]
    fn braces_in_strings_do_not_count_against_small_files() {
        let src = format!("a \"{}\"", "{".repeat(500));
        assert_eq!(json(&src), serde_json::json!({ "a": "{".repeat(500) }));
    }

    fn check_no_panic(src: &str) {
        match parse(src) {
            Ok(node) => {
                let _ = node.to_json();
            }
            Err(errors) => {
                assert!(!errors.is_empty());
                for e in errors {
                    assert!(src.get(e.span.start..e.span.end).is_some(), "{src:?} {e:?}");
                }
            }
        }
    }

    /// Text built from KDL-ish pieces, to reach past the parser into the rule.
    fn kdlish() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "a",
            "b",
            "-",
            " ",
            " ",
            "\n",
            ";",
            "{",
            "}",
            "=",
            "\"s\"",
            "1",
            "-1",
            "1.5",
            "#true",
            "#null",
            "#inf",
            "(t)",
            "/-",
            "//c\n",
            "/*c*/",
            "9223372036854775808",
            "0x10",
            "#\"r\"#",
            "é",
            "\\",
            "\"\"\"\n x\n \"\"\"",
        ]);
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(src in ".*") {
            check_no_panic(&src);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            check_no_panic(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn kdl_like_text_never_panics(src in kdlish()) {
            check_no_panic(&src);
        }
    }
}
