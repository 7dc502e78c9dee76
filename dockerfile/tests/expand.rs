//! Docker's word expansion, case by case (behaviour as documented for
//! Dockerfile 1.x and exercised by BuildKit's shell lexer).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use servin_dockerfile::{expand, expand_tracked, expand_words};

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn run(word: &str, env: &BTreeMap<String, String>, escape: char) -> Result<String, String> {
    let lookup = |name: &str| env.get(name).cloned();
    expand(word, escape, &lookup).map_err(|e| e.to_string())
}

#[test]
fn expansion_table() {
    let env = vars(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
        ("FOO", "xxyy"),
        ("PATHS", "/tmp/tmp/bar.txt"),
        ("SPACED", "a b  c"),
        ("URL", "http://example.com"),
    ]);
    let cases: &[(&str, &str)] = &[
        // plain and braced names
        ("hello", "hello"),
        ("$PWD", "/home"),
        ("${PWD}", "/home"),
        ("$PWD/x", "/home/x"),
        ("${PWD}x", "/homex"),
        ("$PWDx", ""),
        ("$KOREAN", "한국어"),
        ("${KOREAN}!", "한국어!"),
        ("$UNSET", ""),
        ("${UNSET}", ""),
        ("a${UNSET}b", "ab"),
        ("$", "$"),
        ("a$", "a$"),
        ("$ a", "$ a"),
        ("$1", ""),
        ("$$", ""),
        ("100%", "100%"),
        // escapes
        ("\\$PWD", "$PWD"),
        ("\\${PWD}", "${PWD}"),
        ("\\\\$PWD", "\\/home"),
        ("a\\ b", "a b"),
        ("\\a", "a"),
        ("abc\\", "abc"),
        // single quotes are literal
        ("'$PWD'", "$PWD"),
        ("'a b'", "a b"),
        ("'\\$PWD'", "\\$PWD"),
        ("'\"'", "\""),
        // double quotes expand
        ("\"$PWD\"", "/home"),
        ("\"a b\"", "a b"),
        ("\"'$PWD'\"", "'/home'"),
        ("\"\\$PWD\"", "$PWD"),
        ("\"\\\"\"", "\""),
        ("\"\\a\"", "\\a"),
        ("\"\\\\\"", "\\"),
        ("x\"y\"z", "xyz"),
        ("\"\"", ""),
        // defaults and alternatives
        ("${UNSET:-def}", "def"),
        ("${NULL:-def}", "def"),
        ("${PWD:-def}", "/home"),
        ("${UNSET-def}", "def"),
        ("${NULL-def}", ""),
        ("${PWD-def}", "/home"),
        ("${UNSET:-$SHELL}", "bash"),
        ("${UNSET:-'a b'}", "a b"),
        ("${UNSET:-}", ""),
        ("${PWD:+alt}", "alt"),
        ("${NULL:+alt}", ""),
        ("${UNSET:+alt}", ""),
        ("${PWD+alt}", "alt"),
        ("${NULL+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${PWD:+${SHELL}}", "bash"),
        ("${PWD:?oops}", "/home"),
        ("${NULL?oops}", ""),
        // trims
        ("${FOO#x}", "xyy"),
        ("${FOO##*x}", "yy"),
        ("${FOO#*}", "xxyy"),
        ("${FOO#}", "xxyy"),
        ("${FOO%y}", "xxy"),
        ("${FOO%%y*}", "xx"),
        ("${FOO%?y}", "xx"),
        ("${FOO#nomatch}", "xxyy"),
        ("${FOO#?\\?}", "xxyy"),
        ("${UNSET#x}", ""),
        ("${URL#*://}", "example.com"),
        ("${PATHS##*/}", "bar.txt"),
        ("${PATHS%/*}", "/tmp/tmp"),
        ("${PATHS%%.*}", "/tmp/tmp/bar"),
        // replacement
        ("${PATHS/tmp/x}", "/x/tmp/bar.txt"),
        ("${PATHS//tmp/x}", "/x/x/bar.txt"),
        ("${PATHS//\\//-}", "-tmp-tmp-bar.txt"),
        ("${FOO/x*/z}", "z"),
        ("${FOO/?/z}", "zxyy"),
        ("${FOO///}", "xxyy"),
        ("${UNSET/a/b}", ""),
        ("${URL/http:/https:}", "https://example.com"),
        // whitespace survives ProcessWord
        ("$SPACED", "a b  c"),
        ("x $SPACED y", "x a b  c y"),
    ];
    for (word, expected) in cases {
        assert_eq!(
            run(word, &env, '\\').as_deref(),
            Ok(*expected),
            "expanding {word:?}"
        );
    }
}

#[test]
fn expansion_errors() {
    let env = vars(&[("NULL", ""), ("FOO", "xxyy")]);
    let cases: &[(&str, &str)] = &[
        ("${UNSET:?}", "UNSET: is not allowed to be unset"),
        ("${NULL:?}", "NULL: is not allowed to be empty"),
        ("${UNSET?}", "UNSET: is not allowed to be unset"),
        ("${UNSET:?set it please}", "UNSET: set it please"),
        ("${UNSET", "missing '}'"),
        ("${UNSET:-x", "missing '}'"),
        ("${}", "bad substitution"),
        ("${:x}", "bad substitution"),
        ("${{x}", "bad substitution"),
        ("${FOO=x}", "unsupported modifier (=)"),
        ("${FOO:x}", "unsupported modifier (:x)"),
        ("${FOO//ww}", "missing '/'"),
        ("'abc", "single-quote"),
        ("\"abc", "double-quote"),
        ("${FOO#\\x}", "invalid escape"),
    ];
    for (word, expected) in cases {
        let error = run(word, &env, '\\').expect_err(word);
        assert!(error.contains(expected), "{word:?}: {error}");
        assert!(
            error.contains(&format!("`{word}`")),
            "names the word: {error}"
        );
    }
}

#[test]
fn backtick_escape() {
    let env = vars(&[("A", "1")]);
    let cases: &[(&str, &str)] = &[
        ("`$A", "$A"),
        ("\\$A", "\\1"),
        ("C:\\dir\\$A", "C:\\dir\\1"),
        ("\"`\"\"", "\""),
        ("a` b", "a b"),
    ];
    for (word, expected) in cases {
        assert_eq!(run(word, &env, '`').as_deref(), Ok(*expected), "{word:?}");
    }
}

#[test]
fn word_splitting() {
    let env = vars(&[("PORTS", "80 443/tcp"), ("EMPTY", ""), ("SPACED", " a  b ")]);
    let lookup = |name: &str| env.get(name).cloned();
    let cases: &[(&str, &[&str])] = &[
        ("$PORTS", &["80", "443/tcp"]),
        ("\"$PORTS\"", &["80 443/tcp"]),
        ("8080 $PORTS", &["8080", "80", "443/tcp"]),
        ("$EMPTY", &[]),
        ("$SPACED", &["a", "b"]),
        ("x${SPACED}y", &["x", "a", "b", "y"]),
        ("'a b' c", &["a b", "c"]),
        ("a\\ b c", &["a b", "c"]),
        ("", &[]),
    ];
    for (word, expected) in cases {
        assert_eq!(
            expand_words(word, '\\', &lookup).unwrap(),
            *expected,
            "{word:?}"
        );
    }
}

#[test]
fn tracked_names_are_those_set() {
    let env = vars(&[("A", "1"), ("B", "")]);
    let lookup = |name: &str| env.get(name).cloned();
    let expansion = expand_tracked("$A ${B:-x} $C ${A}", '\\', &lookup).unwrap();
    assert_eq!(expansion.value, "1 x  1");
    assert_eq!(expansion.used, ["A", "B"]);
}
