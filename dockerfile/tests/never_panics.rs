//! `parse`, `plan` and `expand` return errors, never panic, on any input.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use servin_dockerfile::{Platform, expand, expand_words, parse, plan};

/// Pieces that steer random text into the parser's interesting corners.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("FROM x\n".to_owned()),
        Just("FROM a AS b\n".to_owned()),
        Just("RUN ".to_owned()),
        Just("COPY ".to_owned()),
        Just("ADD ".to_owned()),
        Just("ENV ".to_owned()),
        Just("ARG ".to_owned()),
        Just("ONBUILD ".to_owned()),
        Just("HEALTHCHECK ".to_owned()),
        Just("SHELL ".to_owned()),
        Just("--mount=".to_owned()),
        Just("--from=".to_owned()),
        Just("<<EOF".to_owned()),
        Just("<<-'E'".to_owned()),
        Just("EOF\n".to_owned()),
        Just("\\\n".to_owned()),
        Just("`\n".to_owned()),
        Just("# escape=`\n".to_owned()),
        Just("# syntax=docker/dockerfile:1\n".to_owned()),
        Just("[\"a\", \"b\"]".to_owned()),
        Just("${A:-".to_owned()),
        Just("}".to_owned()),
        Just("'".to_owned()),
        Just("\"".to_owned()),
        Just("\r\n".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("\t".to_owned()),
        Just("é".to_owned()),
        "[ -~]{0,8}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parse_and_plan_never_panic(pieces in proptest::collection::vec(piece(), 0..24)) {
        let source: String = pieces.concat();
        if let Ok(df) = parse("Dockerfile", &source) {
            let platform = Platform { os: "linux".into(), arch: "amd64".into(), variant: None };
            let _ = plan(&df, &BTreeMap::new(), None, platform);
            for stage in &df.stages {
                for instruction in &stage.instructions {
                    let _ = df.expand_instruction(instruction, &|_| Some("v a".to_owned()));
                }
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(source in any::<String>()) {
        let _ = parse("Dockerfile", &source);
    }

    #[test]
    fn expand_never_panics(word in "[-$A-Z{}:+?#%/*'\"\\\\` a-z]{0,24}", escape in prop_oneof![Just('\\'), Just('`')]) {
        let vars = |name: &str| name.len().is_multiple_of(2).then(|| format!("{name}-*"));
        let _ = expand(&word, escape, &vars);
        let _ = expand_words(&word, escape, &vars);
    }
}
