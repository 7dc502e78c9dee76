//! Parsing: every instruction, both command forms, here-documents,
//! continuations, comments, the escape directive.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use servin_dockerfile::{
    AddInstr, ArgDecl, CacheSharing, Command, CopyInstr, Healthcheck, Heredoc, Instruction,
    InstructionKind, RunMount, RunNetwork, parse,
};

/// The instructions after `FROM base` in `body`.
fn instructions(body: &str) -> Vec<Instruction> {
    let source = format!("FROM base\n{body}");
    let df = parse("Dockerfile", &source)
        .unwrap_or_else(|e| panic!("{body:?}: {e} at {}:{}", e.line(), e.column()));
    df.stages.into_iter().next().unwrap().instructions
}

fn one(body: &str) -> InstructionKind {
    let mut all = instructions(body);
    assert_eq!(all.len(), 1, "{body:?}: {all:#?}");
    all.remove(0).kind
}

fn shell(s: &str) -> Command {
    Command::Shell(s.to_owned())
}

fn exec(words: &[&str]) -> Command {
    Command::Exec(words.iter().map(|w| w.to_string()).collect())
}

fn run(command: Command) -> InstructionKind {
    InstructionKind::Run {
        command,
        heredocs: vec![],
        mounts: vec![],
        network: RunNetwork::Default,
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn copy(sources: &[&str], dest: &str) -> CopyInstr {
    CopyInstr {
        sources: strings(sources),
        dest: dest.into(),
        from: None,
        from_span: None,
        chown: None,
        chmod: None,
        link: false,
        heredocs: vec![],
    }
}

#[test]
fn instruction_table() {
    let cases: Vec<(&str, InstructionKind)> = vec![
        ("RUN echo hi", run(shell("echo hi"))),
        ("run echo hi", run(shell("echo hi"))),
        ("RUN [\"echo\", \"hi\"]", run(exec(&["echo", "hi"]))),
        // Not valid JSON: shell form, as Docker does.
        ("RUN [\"echo\", 'hi']", run(shell("[\"echo\", 'hi']"))),
        ("RUN [ -f /x ] && echo y", run(shell("[ -f /x ] && echo y"))),
        (
            "RUN echo a \\\n  && echo b",
            run(shell("echo a   && echo b")),
        ),
        ("RUN echo a \\\n# a comment\n  b", run(shell("echo a   b"))),
        ("RUN echo a \\\n\n  b", run(shell("echo a   b"))),
        (
            "RUN --network=none make",
            InstructionKind::Run {
                command: shell("make"),
                heredocs: vec![],
                mounts: vec![],
                network: RunNetwork::None,
            },
        ),
        (
            "RUN --network=host make",
            InstructionKind::Run {
                command: shell("make"),
                heredocs: vec![],
                mounts: vec![],
                network: RunNetwork::Host,
            },
        ),
        (
            "RUN --mount=type=cache,target=/root/.cache,sharing=private --mount=type=tmpfs,target=/tmp make",
            InstructionKind::Run {
                command: shell("make"),
                heredocs: vec![],
                mounts: vec![
                    RunMount::Cache {
                        target: "/root/.cache".into(),
                        id: "/root/.cache".into(),
                        sharing: CacheSharing::Private,
                        from: None,
                        source: None,
                        mode: None,
                        uid: None,
                        gid: None,
                        readonly: false,
                    },
                    RunMount::Tmpfs {
                        target: "/tmp".into(),
                        size: None,
                    },
                ],
                network: RunNetwork::Default,
            },
        ),
        (
            "CMD [\"/app\", \"--port\", \"80\"]",
            InstructionKind::Cmd(exec(&["/app", "--port", "80"])),
        ),
        (
            "CMD /app --port 80",
            InstructionKind::Cmd(shell("/app --port 80")),
        ),
        ("CMD []", InstructionKind::Cmd(exec(&[]))),
        (
            "ENTRYPOINT [\"/bin/tini\", \"--\"]",
            InstructionKind::Entrypoint(exec(&["/bin/tini", "--"])),
        ),
        (
            "ENTRYPOINT exec /app",
            InstructionKind::Entrypoint(shell("exec /app")),
        ),
        ("ENV A=1", InstructionKind::Env(pairs(&[("A", "1")]))),
        (
            "ENV A=1 B=\"two words\" C=a\\ b",
            InstructionKind::Env(pairs(&[("A", "1"), ("B", "\"two words\""), ("C", "a\\ b")])),
        ),
        (
            "ENV A hello world",
            InstructionKind::Env(pairs(&[("A", "hello world")])),
        ),
        ("ENV A=", InstructionKind::Env(pairs(&[("A", "")]))),
        (
            "ENV A=1 \\\n    B=2",
            InstructionKind::Env(pairs(&[("A", "1"), ("B", "2")])),
        ),
        (
            "LABEL a=b \"c d\"=\"e f\"",
            InstructionKind::Label(pairs(&[("a", "b"), ("\"c d\"", "\"e f\"")])),
        ),
        (
            "LABEL maintainer me",
            InstructionKind::Label(pairs(&[("maintainer", "me")])),
        ),
        (
            "ARG A B=2 C=\"x y\"",
            InstructionKind::Arg(vec![
                ArgDecl {
                    name: "A".into(),
                    default: None,
                },
                ArgDecl {
                    name: "B".into(),
                    default: Some("2".into()),
                },
                ArgDecl {
                    name: "C".into(),
                    default: Some("\"x y\"".into()),
                },
            ]),
        ),
        (
            "WORKDIR /app/$NAME",
            InstructionKind::Workdir("/app/$NAME".into()),
        ),
        ("USER app:app", InstructionKind::User("app:app".into())),
        (
            "EXPOSE 80 443/tcp 53/udp",
            InstructionKind::Expose(strings(&["80", "443/tcp", "53/udp"])),
        ),
        (
            "VOLUME [\"/data\", \"/logs\"]",
            InstructionKind::Volume(strings(&["/data", "/logs"])),
        ),
        (
            "VOLUME /data /logs",
            InstructionKind::Volume(strings(&["/data", "/logs"])),
        ),
        (
            "STOPSIGNAL SIGTERM",
            InstructionKind::StopSignal("SIGTERM".into()),
        ),
        (
            "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]",
            InstructionKind::Shell(strings(&["/bin/bash", "-o", "pipefail", "-c"])),
        ),
        (
            "MAINTAINER Jane <jane@example.com>",
            InstructionKind::Maintainer("Jane <jane@example.com>".into()),
        ),
        (
            "HEALTHCHECK NONE",
            InstructionKind::Healthcheck(Healthcheck::None),
        ),
        (
            "HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 CMD curl -f http://localhost/",
            InstructionKind::Healthcheck(Healthcheck::Cmd {
                command: shell("curl -f http://localhost/"),
                interval: Some(Duration::from_secs(30)),
                timeout: Some(Duration::from_secs(90)),
                start_period: Some(Duration::from_millis(500)),
                start_interval: Some(Duration::from_secs(2)),
                retries: Some(3),
            }),
        ),
        (
            "HEALTHCHECK CMD [\"/check\"]",
            InstructionKind::Healthcheck(Healthcheck::Cmd {
                command: exec(&["/check"]),
                interval: None,
                timeout: None,
                start_period: None,
                start_interval: None,
                retries: None,
            }),
        ),
        (
            "COPY a b /dest/",
            InstructionKind::Copy(copy(&["a", "b"], "/dest/")),
        ),
        (
            "COPY [\"a b\", \"/dest dir/\"]",
            InstructionKind::Copy(copy(&["a b"], "/dest dir/")),
        ),
        (
            "COPY --from=build --chown=app:app --chmod=0644 --link /out /app",
            InstructionKind::Copy(CopyInstr {
                from: Some("build".into()),
                from_span: Some(15..27),
                chown: Some("app:app".into()),
                chmod: Some("0644".into()),
                link: true,
                ..copy(&["/out"], "/app")
            }),
        ),
        (
            "COPY --link=false a /b",
            InstructionKind::Copy(copy(&["a"], "/b")),
        ),
        (
            "ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/x.tar.gz /x",
            InstructionKind::Add(AddInstr {
                sources: strings(&["https://example.com/x.tar.gz"]),
                dest: "/x".into(),
                chown: None,
                chmod: None,
                link: false,
                checksum: Some(
                    "sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d"
                        .into(),
                ),
                heredocs: vec![],
            }),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(one(body), expected, "{body:?}");
    }
}

fn heredoc(
    name: &str,
    content: &str,
    expand: bool,
    strip_tabs: bool,
    span: std::ops::Range<usize>,
) -> Heredoc {
    Heredoc {
        name: name.into(),
        content: content.into(),
        expand,
        strip_tabs,
        span,
    }
}

#[test]
fn heredocs() {
    // Offsets count from the start of the file: `FROM base\n` is 10 bytes.
    let cases: Vec<(&str, Command, Vec<Heredoc>)> = vec![
        (
            "RUN <<EOF\necho hi\nEOF\n",
            shell("<<EOF"),
            vec![heredoc("EOF", "echo hi\n", true, false, 14..19)],
        ),
        (
            "RUN cat <<EOF > /x\nhello $NAME\n  indented\nEOF\n",
            shell("cat <<EOF > /x"),
            vec![heredoc(
                "EOF",
                "hello $NAME\n  indented\n",
                true,
                false,
                18..23,
            )],
        ),
        (
            "RUN <<'EOF'\n$X\nEOF\n",
            shell("<<'EOF'"),
            vec![heredoc("EOF", "$X\n", false, false, 14..21)],
        ),
        (
            "RUN <<\"EOF\"\n$X\nEOF\n",
            shell("<<\"EOF\""),
            vec![heredoc("EOF", "$X\n", false, false, 14..21)],
        ),
        (
            "RUN <<-EOF\n\t\tindented\n\tEOF\n",
            shell("<<-EOF"),
            vec![heredoc("EOF", "indented\n", true, true, 14..20)],
        ),
        (
            "RUN <<A cat - && <<B cat -\na\nA\nb\nB\n",
            shell("<<A cat - && <<B cat -"),
            vec![
                heredoc("A", "a\n", true, false, 14..17),
                heredoc("B", "b\n", true, false, 27..30),
            ],
        ),
        (
            "RUN python3 <<PY > out\nprint('x')\nPY\n",
            shell("python3 <<PY > out"),
            vec![heredoc("PY", "print('x')\n", true, false, 22..26)],
        ),
        (
            "RUN 3<<EOF cat <&3\nx\nEOF\n",
            shell("3<<EOF cat <&3"),
            vec![heredoc("EOF", "x\n", true, false, 14..20)],
        ),
        (
            "RUN <<EOF\nEOF\n",
            shell("<<EOF"),
            vec![heredoc("EOF", "", true, false, 14..19)],
        ),
        // `<<` inside quotes or without a delimiter is no here-document.
        ("RUN echo '<<EOF'\n", shell("echo '<<EOF'"), vec![]),
        ("RUN echo a<<b\n", shell("echo a<<b"), vec![]),
    ];
    for (body, command, expected) in cases {
        match one(body) {
            InstructionKind::Run {
                command: got,
                heredocs,
                ..
            } => {
                assert_eq!(got, command, "{body:?}");
                assert_eq!(heredocs, expected, "{body:?}");
            }
            other => panic!("{body:?}: {other:?}"),
        }
    }
}

#[test]
fn copy_heredocs_and_following_instructions() {
    let all = instructions(
        "COPY <<one <<-\"two\" /etc/\n1 $X\none\n\t2 $X\n\ttwo\nRUN <<EOF\nFROM inside\nEOF\nUSER app\n",
    );
    assert_eq!(all.len(), 3);
    match &all[0].kind {
        InstructionKind::Copy(copy) => {
            assert!(copy.sources.is_empty());
            assert_eq!(copy.dest, "/etc/");
            assert_eq!(
                copy.heredocs,
                vec![
                    heredoc("one", "1 $X\n", true, false, 15..20),
                    heredoc("two", "2 $X\n", false, true, 21..29)
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(all[0].line, 2);
    assert_eq!(all[1].line, 7);
    assert_eq!(all[1].original, "RUN <<EOF\nFROM inside\nEOF");
    assert_eq!(all[2].kind, InstructionKind::User("app".into()));
    assert_eq!(all[2].line, 10);
}

#[test]
fn spans_lines_and_original() {
    let source = "# syntax=docker/dockerfile:1\nARG V=1\n\nFROM alpine:$V AS Build\n  RUN echo a \\\n    b\nCOPY . /src\n";
    let df = parse("Dockerfile", source).unwrap();
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(
        df.global_args,
        vec![ArgDecl {
            name: "V".into(),
            default: Some("1".into())
        }]
    );
    let stage = &df.stages[0];
    assert_eq!(stage.name.as_deref(), Some("build"));
    assert_eq!(stage.from.image, "alpine:$V");
    assert_eq!(stage.from.line, 4);
    assert_eq!(&source[stage.from.image_span.clone()], "alpine:$V");
    let run = &stage.instructions[0];
    assert_eq!(run.line, 5);
    assert_eq!(&source[run.span.clone()], "RUN echo a \\\n    b");
    assert_eq!(run.original, "RUN echo a     b");
    assert_eq!(stage.instructions[1].line, 7);
}

#[test]
fn escape_directive_backtick() {
    let source = "# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir C:\\ `\n  && echo done\nCOPY C:\\src C:\\dest\\\n";
    let df = parse("Dockerfile", source).unwrap();
    assert_eq!(df.escape, '`');
    let kinds: Vec<_> = df.stages[0]
        .instructions
        .iter()
        .map(|i| i.kind.clone())
        .collect();
    assert_eq!(kinds[0], run(shell("dir C:\\   && echo done")));
    assert_eq!(
        kinds[1],
        InstructionKind::Copy(copy(&["C:\\src"], "C:\\dest\\"))
    );
}

#[test]
fn onbuild_and_platform_and_stages() {
    let source = "FROM --platform=$BUILDPLATFORM golang AS build\nONBUILD RUN make\nONBUILD COPY . /src\nFROM build\n";
    let df = parse("Dockerfile", source).unwrap();
    assert_eq!(df.stages.len(), 2);
    assert_eq!(
        df.stages[0].from.platform.as_deref(),
        Some("$BUILDPLATFORM")
    );
    match &df.stages[0].instructions[0].kind {
        InstructionKind::OnBuild(inner) => {
            assert_eq!(inner.kind, run(shell("make")));
            assert_eq!(inner.original, "RUN make");
            assert_eq!(&source[inner.span.clone()], "RUN make");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(df.stages[1].index, 1);
    assert_eq!(df.stages[1].name, None);
}

#[test]
fn a_line_of_only_the_escape_character_is_skipped() {
    let df = parse("Dockerfile", "FROM x\n\\\nRUN a\n").unwrap();
    assert_eq!(df.stages[0].instructions[0].kind, run(shell("a")));
}

#[test]
fn comments_blank_lines_bom_and_crlf() {
    let source = "\u{feff}# a comment\r\n\r\nFROM x\r\n# another\r\n  RUN a \\\r\n  b\r\n";
    let df = parse("Dockerfile", source).unwrap();
    let run_instr = &df.stages[0].instructions[0];
    assert_eq!(run_instr.kind, run(shell("a   b")));
    assert_eq!(run_instr.line, 5);
}

#[test]
fn expanded_instructions() {
    let source = "FROM x\nENV A=$X B=\"${X} y\" C='$X'\nCOPY --chown=$U:$U $SRC/* /dst/$X/\nCOPY <<EOF <<'RAW' /etc/\nv=$X \"q\" '$X' \\$X a\\nb\nEOF\nv=$X\nRAW\nRUN --mount=type=cache,target=/c/$X,id=$X echo $X\nEXPOSE $PORTS 9000\nWORKDIR /w/${X:-none}\nCMD echo $X\n";
    let df = parse("Dockerfile", source).unwrap();
    let vars = |name: &str| match name {
        "X" => Some("1".to_owned()),
        "U" => Some("app".to_owned()),
        "SRC" => Some("src".to_owned()),
        "PORTS" => Some("80 443".to_owned()),
        _ => None,
    };
    let expanded: Vec<InstructionKind> = df.stages[0]
        .instructions
        .iter()
        .map(|i| df.expand_instruction(i, &vars).unwrap())
        .collect();
    assert_eq!(
        expanded[0],
        InstructionKind::Env(pairs(&[("A", "1"), ("B", "1 y"), ("C", "$X")]))
    );
    match &expanded[1] {
        InstructionKind::Copy(copy) => {
            assert_eq!(copy.chown.as_deref(), Some("app:app"));
            assert_eq!(copy.sources, strings(&["src/*"]));
            assert_eq!(copy.dest, "/dst/1/");
        }
        other => panic!("{other:?}"),
    }
    match &expanded[2] {
        InstructionKind::Copy(copy) => {
            // Docker's lexer without quote processing: quotes are text, `$`
            // expands even inside single quotes, a backslash escapes.
            assert_eq!(copy.heredocs[0].content, "v=1 \"q\" '1' $X anb\n");
            assert_eq!(copy.heredocs[1].content, "v=$X\n");
        }
        other => panic!("{other:?}"),
    }
    match &expanded[3] {
        InstructionKind::Run {
            command, mounts, ..
        } => {
            assert_eq!(command, &shell("echo $X"), "RUN is left to the shell");
            assert!(
                matches!(&mounts[0], RunMount::Cache { target, id, .. } if target == "/c/1" && id == "1")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        expanded[4],
        InstructionKind::Expose(strings(&["80", "443", "9000"]))
    );
    assert_eq!(expanded[5], InstructionKind::Workdir("/w/1".into()));
    assert_eq!(expanded[6], InstructionKind::Cmd(shell("echo $X")));

    let bad = parse("Dockerfile", "FROM x\nWORKDIR ${NEED:?set NEED}\n").unwrap();
    let error = bad
        .expand_instruction(&bad.stages[0].instructions[0], &|_| None)
        .unwrap_err();
    assert_eq!((error.line(), error.column()), (2, 1));
    assert!(
        error.message().contains("NEED: set NEED"),
        "{}",
        error.message()
    );
}

#[test]
fn a_realistic_multi_stage_dockerfile() {
    let source = r#"# syntax=docker/dockerfile:1.7
# check=skip=JSONArgsRecommended

ARG GO_VERSION=1.22
ARG ALPINE_VERSION=3.20

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=bind,source=go.sum,target=go.sum \
    --mount=type=bind,source=go.mod,target=go.mod \
    go mod download -x
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=bind,target=. \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /bin/server ./cmd/server

FROM alpine:${ALPINE_VERSION} AS final
RUN --mount=type=cache,target=/var/cache/apk \
    apk --update add ca-certificates tzdata && update-ca-certificates
ARG UID=10001
RUN adduser \
    --disabled-password \
    --gecos "" \
    --home "/nonexistent" \
    --shell "/sbin/nologin" \
    --no-create-home \
    --uid "${UID}" \
    appuser
USER appuser
COPY --from=build /bin/server /bin/
COPY <<EOF /etc/server.conf
listen = ":8080"
EOF
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD ["/bin/server", "-check"]
ENTRYPOINT [ "/bin/server" ]
"#;
    let df = parse("Dockerfile", source).unwrap();
    assert_eq!(df.global_args.len(), 2);
    assert_eq!(df.stages.len(), 2);
    assert_eq!(df.stages[0].instructions.len(), 4);
    assert_eq!(df.stages[1].instructions.len(), 9);
    match &df.stages[0].instructions[3].kind {
        InstructionKind::Run {
            command, mounts, ..
        } => {
            assert_eq!(mounts.len(), 2);
            assert_eq!(
                command,
                &shell(
                    "CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /bin/server ./cmd/server"
                )
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(df.stages[1].instructions[3].line, 30);
    assert_eq!(
        df.stages[1].instructions[3].kind,
        InstructionKind::User("appuser".into())
    );
    let plan = servin_dockerfile::plan(
        &df,
        &Default::default(),
        None,
        servin_dockerfile::Platform {
            os: "linux".into(),
            arch: "amd64".into(),
            variant: None,
        },
    )
    .unwrap();
    assert_eq!(
        plan.stages[0].base,
        servin_dockerfile::Base::Image("golang:1.22-alpine".into())
    );
    assert_eq!(plan.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(
        plan.stages[1].base,
        servin_dockerfile::Base::Image("alpine:3.20".into())
    );
    assert_eq!(plan.waves, vec![vec![0], vec![1]]);
}
