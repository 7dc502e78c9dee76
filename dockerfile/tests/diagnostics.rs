//! Every diagnostic: its code, message, span (line and column) and help,
//! the rendered text, and the wire round trip.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use miette::{GraphicalReportHandler, GraphicalTheme};
use servin_dockerfile::{DockerfileError, ErrorCode, Platform, WireError, parse, plan};

fn render(error: &DockerfileError) -> String {
    let mut out = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, error)
        .unwrap();
    out
}

fn parse_error(source: &str) -> DockerfileError {
    match parse("Dockerfile", source) {
        Ok(df) => panic!("{source:?} parsed: {df:#?}"),
        Err(e) => e,
    }
}

fn amd64() -> Platform {
    Platform {
        os: "linux".into(),
        arch: "amd64".into(),
        variant: None,
    }
}

/// (source, code, line, column, spanned text, message part, help part)
type Case = (
    &'static str,
    ErrorCode,
    usize,
    usize,
    &'static str,
    &'static str,
    &'static str,
);

/// Instructions without flags refuse `--flag` words, as Docker does.
const FLAGS_ON_FLAGLESS: &[Case] = &[
    (
        "FROM x\nADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d app.tar /\n",
        ErrorCode::BadFlagValue,
        2,
        5,
        "--checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d",
        "applies only to URL sources",
        "`app.tar` is a local source",
    ),
    (
        "FROM x\nWORKDIR --mode=1 /app\n",
        ErrorCode::UnknownFlag,
        2,
        9,
        "--mode=1",
        "unknown flag `--mode` for WORKDIR",
        "WORKDIR takes no flags",
    ),
    (
        "FROM x\nENV --x A=1\n",
        ErrorCode::UnknownFlag,
        2,
        5,
        "--x",
        "unknown flag `--x` for ENV",
        "ENV takes no flags",
    ),
    (
        "FROM x\ncmd --help\n",
        ErrorCode::UnknownFlag,
        2,
        5,
        "--help",
        "unknown flag `--help` for CMD",
        "CMD takes no flags",
    ),
];

#[test]
fn parse_diagnostics() {
    let cases: &[Case] = &[
        (
            "FROM x\nCOPPY a b\n",
            ErrorCode::UnknownInstruction,
            2,
            1,
            "COPPY",
            "unknown instruction `COPPY`",
            "did you mean `COPY`?",
        ),
        (
            "FROM x\n  rnu echo\n",
            ErrorCode::UnknownInstruction,
            2,
            3,
            "rnu",
            "unknown instruction `rnu`",
            "did you mean `RUN`?",
        ),
        (
            "FROM x\nFLIBBERTY x\n",
            ErrorCode::UnknownInstruction,
            2,
            1,
            "FLIBBERTY",
            "unknown instruction",
            "instructions are",
        ),
        (
            "ARG A\nRUN echo\nFROM x\n",
            ErrorCode::MissingFrom,
            2,
            1,
            "RUN",
            "`RUN` comes before the first FROM",
            "only ARG",
        ),
        (
            "",
            ErrorCode::MissingFrom,
            1,
            1,
            "",
            "has no FROM",
            "FROM <image>",
        ),
        (
            "# only a comment\nARG A=1\n",
            ErrorCode::MissingFrom,
            2,
            1,
            "ARG",
            "has no FROM",
            "FROM <image>",
        ),
        (
            "FROM x\nCOPY --chmod=abc a /b\n",
            ErrorCode::BadFlagValue,
            2,
            6,
            "--chmod=abc",
            "`--chmod=abc` is not an octal file mode",
            "--chmod=755",
        ),
        (
            "FROM x\nRUN --network=bridge make\n",
            ErrorCode::BadFlagValue,
            2,
            5,
            "--network=bridge",
            "unknown network `bridge`",
            "default, none or host",
        ),
        (
            "FROM x\nCOPY --form=a b /c\n",
            ErrorCode::UnknownFlag,
            2,
            6,
            "--form=a",
            "unknown flag `--form` for COPY",
            "--from",
        ),
        (
            "FROM x\nCOPY --parents a /c\n",
            ErrorCode::UnknownFlag,
            2,
            6,
            "--parents",
            "does not support `COPY --parents`",
            "labs",
        ),
        (
            "FROM x\nADD --keep-git-dir a /c\n",
            ErrorCode::UnknownFlag,
            2,
            5,
            "--keep-git-dir",
            "ADD --keep-git-dir",
            "git",
        ),
        (
            "FROM x\nRUN --security=insecure make\n",
            ErrorCode::UnknownFlag,
            2,
            5,
            "--security=insecure",
            "RUN --security",
            "confinement",
        ),
        (
            "FROM --plat=x y\n",
            ErrorCode::UnknownFlag,
            1,
            6,
            "--plat=x",
            "unknown flag `--plat` for FROM",
            "--platform",
        ),
        (
            "FROM x\nCOPY --from a /c\n",
            ErrorCode::BadFlagValue,
            2,
            6,
            "--from",
            "`--from` needs a value",
            "--from=VALUE",
        ),
        (
            "FROM x\nCOPY --link=maybe a /c\n",
            ErrorCode::BadFlagValue,
            2,
            6,
            "--link=maybe",
            "true or false",
            "--link=false",
        ),
        (
            "FROM x\nCOPY --chown=a --chown=b a /c\n",
            ErrorCode::BadFlagValue,
            2,
            16,
            "--chown=b",
            "given twice",
            "once",
        ),
        (
            "FROM x\nADD --checksum=md5:abc http://x/y /y\n",
            ErrorCode::BadFlagValue,
            2,
            5,
            "--checksum=md5:abc",
            "not a digest",
            "sha256",
        ),
        (
            "FROM x\nRUN --mount=type=ssh git clone x\n",
            ErrorCode::BadMount,
            2,
            5,
            "--mount=type=ssh",
            "ssh agent",
            "secret",
        ),
        (
            "FROM x\nRUN --mount=type=volume,target=/x make\n",
            ErrorCode::BadMount,
            2,
            5,
            "--mount=type=volume,target=/x",
            "unknown mount type `volume`",
            "bind, cache, tmpfs and secret",
        ),
        (
            "FROM x\nRUN --mount=type=cache,target=/x,colour=red make\n",
            ErrorCode::BadMount,
            2,
            5,
            "--mount=type=cache,target=/x,colour=red",
            "unknown mount option `colour`",
            "a cache mount takes",
        ),
        (
            "FROM x\nRUN <<EOF\necho hi\n",
            ErrorCode::UnterminatedHeredoc,
            2,
            5,
            "<<EOF",
            "here-document `EOF` is never closed",
            "only `EOF`",
        ),
        (
            "FROM x\nCOPY <<a <<b /c\nA\na\nB\n",
            ErrorCode::UnterminatedHeredoc,
            2,
            10,
            "<<b",
            "`b` is never closed",
            "only `b`",
        ),
        (
            "FROM a AS build\nFROM b AS Build\n",
            ErrorCode::DuplicateStage,
            2,
            11,
            "Build",
            "duplicate stage name `build`",
            "line 1",
        ),
        (
            "FROM a AS 1st\n",
            ErrorCode::BadArgument,
            1,
            11,
            "1st",
            "invalid stage name `1st`",
            "starts with a letter",
        ),
        (
            "FROM x\nONBUILD FROM y\n",
            ErrorCode::BadOnbuild,
            2,
            9,
            "FROM",
            "FROM isn't allowed as an ONBUILD trigger",
            "except FROM",
        ),
        (
            "FROM x\nONBUILD MAINTAINER me\n",
            ErrorCode::BadOnbuild,
            2,
            9,
            "MAINTAINER",
            "MAINTAINER isn't allowed",
            "except",
        ),
        (
            "FROM x\nONBUILD ONBUILD RUN x\n",
            ErrorCode::BadOnbuild,
            2,
            1,
            "ONBUILD ONBUILD RUN x",
            "ONBUILD ONBUILD",
            "",
        ),
        (
            "FROM x\nENV A\n",
            ErrorCode::BadArgument,
            2,
            5,
            "A",
            "ENV `A` has no value",
            "ENV A=VALUE",
        ),
        (
            "FROM x\nENV A=1 B\n",
            ErrorCode::BadArgument,
            2,
            9,
            "B",
            "ENV `B` has no `=`",
            "NAME=VALUE",
        ),
        (
            "FROM x\nLABEL =x\n",
            ErrorCode::BadArgument,
            2,
            7,
            "=x",
            "LABEL names can not be blank",
            "NAME=VALUE",
        ),
        (
            "FROM x\nARG =x\n",
            ErrorCode::BadArgument,
            2,
            5,
            "=x",
            "ARG names can not be blank",
            "ARG NAME",
        ),
        (
            "FROM x\nSHELL /bin/sh -c\n",
            ErrorCode::BadJson,
            2,
            1,
            "SHELL /bin/sh -c",
            "JSON",
            "",
        ),
        (
            "FROM x\nHEALTHCHECK --interval=soon CMD true\n",
            ErrorCode::BadHealthcheck,
            2,
            13,
            "--interval=soon",
            "--interval: `soon`",
            "1m30s",
        ),
        (
            "FROM x\nHEALTHCHECK --timeout=10us CMD true\n",
            ErrorCode::BadHealthcheck,
            2,
            13,
            "--timeout=10us",
            "cannot be less than 1ms",
            "duration",
        ),
        (
            "FROM x\nHEALTHCHECK --retries=-1 CMD true\n",
            ErrorCode::BadHealthcheck,
            2,
            13,
            "--retries=-1",
            "--retries cannot be negative",
            "--retries=3",
        ),
        (
            "FROM x\nHEALTHCHECK --retries=many CMD true\n",
            ErrorCode::BadHealthcheck,
            2,
            13,
            "--retries=many",
            "is not a number",
            "--retries=3",
        ),
        (
            "FROM x\nHEALTHCHECK --every=1s CMD true\n",
            ErrorCode::UnknownFlag,
            2,
            13,
            "--every=1s",
            "unknown flag `--every` for HEALTHCHECK",
            "--interval",
        ),
        (
            "# syntax=example.com/my/frontend:2\nFROM x\n",
            ErrorCode::UnsupportedSyntax,
            1,
            10,
            "example.com/my/frontend:2",
            "cannot run the frontend image `example.com/my/frontend:2`",
            "docker/dockerfile:1",
        ),
        (
            "# escape=x\nFROM x\n",
            ErrorCode::BadDirective,
            1,
            10,
            "x",
            "invalid escape character `x`",
            "`\\`",
        ),
        (
            "FROM x\nRUN\n",
            ErrorCode::BadArgument,
            2,
            1,
            "RUN",
            "RUN needs a command",
            "RUN <command>",
        ),
    ];
    for &(source, code, line, column, spanned, message, help) in
        cases.iter().chain(FLAGS_ON_FLAGLESS)
    {
        let error = parse_error(source);
        assert_eq!(error.kind(), code, "{source:?}: {}", error.message());
        assert_eq!(
            (error.line(), error.column()),
            (line, column),
            "{source:?}: {}",
            error.message()
        );
        assert_eq!(&source[error.span()], spanned, "{source:?}");
        assert!(
            error.message().contains(message),
            "{source:?}: {}",
            error.message()
        );
        let got_help = error.help_text().unwrap_or_default();
        assert!(got_help.contains(help), "{source:?}: help {got_help:?}");
        let rendered = render(&error);
        assert!(rendered.contains(code.as_str()), "{rendered}");
        if !error.span().is_empty() {
            assert!(
                rendered.contains(&format!("[Dockerfile:{line}:{column}]")),
                "{source:?}\n{rendered}"
            );
        }
    }
}

/// (source, target, code, line, column, spanned text, message part, help part)
type PlanCase = (
    &'static str,
    Option<&'static str>,
    ErrorCode,
    usize,
    usize,
    &'static str,
    &'static str,
    &'static str,
);

#[test]
fn plan_diagnostics() {
    let cases: &[PlanCase] = &[
        (
            "FROM a AS builder\nFROM b\nCOPY --from=buidler /x /x\n",
            None,
            ErrorCode::UnknownStage,
            3,
            6,
            "--from=buidler",
            "unknown stage `buidler`",
            "did you mean `builder`?",
        ),
        (
            "FROM a\nFROM b\nCOPY --from=5 /x /x\n",
            None,
            ErrorCode::UnknownStage,
            3,
            6,
            "--from=5",
            "stage index 5 is not an earlier stage",
            "this is stage 1",
        ),
        (
            "FROM a\nCOPY --from=0 /x /x\n",
            None,
            ErrorCode::UnknownStage,
            2,
            6,
            "--from=0",
            "stage index 0",
            "count from 0",
        ),
        (
            "FROM a\nCOPY --from=later /x /x\nFROM b AS later\n",
            None,
            ErrorCode::UnknownStage,
            2,
            6,
            "--from=later",
            "stage `later` is not defined before this stage",
            "move stage `later`",
        ),
        (
            "FROM a AS cache\nFROM b\nRUN --mount=type=cache,target=/c,from=cahce make\n",
            None,
            ErrorCode::UnknownStage,
            3,
            1,
            "RUN --mount=type=cache,target=/c,from=cahce make",
            "unknown stage `cahce`",
            "did you mean `cache`?",
        ),
        (
            "FROM a AS one\nFROM b AS two\n",
            Some("three"),
            ErrorCode::UnknownTarget,
            1,
            1,
            "",
            "target stage `three` could not be found",
            "`one`, `two`",
        ),
        (
            "FROM $NOPE\n",
            None,
            ErrorCode::BadArgument,
            1,
            6,
            "$NOPE",
            "should not be blank",
            "declare the ARG",
        ),
        (
            "FROM ${V:?pass_V}\n",
            None,
            ErrorCode::BadExpansion,
            1,
            6,
            "${V:?pass_V}",
            "V: pass_V",
            "FROM sees only",
        ),
    ];
    for &(source, target, code, line, column, spanned, message, help) in cases {
        let df = parse("Dockerfile", source).unwrap();
        let error = plan(&df, &BTreeMap::new(), target, amd64()).unwrap_err();
        assert_eq!(error.kind(), code, "{source:?}: {}", error.message());
        assert_eq!((error.line(), error.column()), (line, column), "{source:?}");
        assert_eq!(&source[error.span()], spanned, "{source:?}");
        assert!(
            error.message().contains(message),
            "{source:?}: {}",
            error.message()
        );
        assert!(
            error.help_text().unwrap_or_default().contains(help),
            "{source:?}: {:?}",
            error.help_text()
        );
    }
}

#[test]
fn rendered_unknown_instruction() {
    let error = parse_error("FROM alpine\nCOPPY . /app\n");
    let rendered = render(&error);
    let expected = "servin::dockerfile::unknown-instruction

  × unknown instruction `COPPY`
   ╭─[Dockerfile:2:1]
 1 │ FROM alpine
 2 │ COPPY . /app
   · ──┬──
   ·   ╰── not an instruction
   ╰────
  help: did you mean `COPY`?
";
    assert_eq!(rendered, expected, "\n{rendered}");
}

#[test]
fn rendered_unknown_target_and_empty_file_have_no_snippet() {
    let df = parse("Dockerfile", "FROM a AS dev\nFROM b AS prod\n").unwrap();
    let error = plan(&df, &BTreeMap::new(), Some("test"), amd64()).unwrap_err();
    assert_eq!(
        render(&error),
        "servin::dockerfile::unknown-target\n\n  × target stage `test` could not be found\n  help: the stages are `dev`, `prod`\n"
    );
    let rendered = render(&parse_error(""));
    assert!(!rendered.contains('╭'), "{rendered}");
}

#[test]
fn rendered_unknown_stage() {
    let source = "FROM golang AS builder\nRUN go build -o /app\nFROM scratch\nCOPY --from=buidler /app /app\n";
    let df = parse("Dockerfile", source).unwrap();
    let error = plan(&df, &BTreeMap::new(), None, amd64()).unwrap_err();
    let rendered = render(&error);
    assert!(rendered.contains("× unknown stage `buidler`"), "{rendered}");
    assert!(
        rendered.contains("4 │ COPY --from=buidler /app /app"),
        "{rendered}"
    );
    assert!(
        rendered.contains("help: did you mean `builder`?"),
        "{rendered}"
    );
}

#[test]
fn wire_round_trip() {
    let source = "FROM x\nRUN --network=bridge make\n";
    let error = parse_error(source);
    let wire = error.to_wire();
    let json = serde_json::to_string(&wire).unwrap();
    assert!(json.contains("\"code\":\"bad-flag-value\""), "{json}");
    let back: WireError = serde_json::from_str(&json).unwrap();
    assert_eq!(back, wire);
    assert_eq!(
        (wire.line, wire.column, wire.offset, wire.length),
        (2, 5, 11, 16)
    );
    let again = DockerfileError::from_wire(&back, "Dockerfile", source);
    assert_eq!(render(&again), render(&error));
    // A wire error past the end of a (changed) text is clamped, not a panic.
    let clamped = DockerfileError::from_wire(
        &WireError {
            offset: 999,
            ..back
        },
        "Dockerfile",
        "FROM x\n",
    );
    assert_eq!(clamped.span(), 7..7);
}
