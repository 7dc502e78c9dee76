//! The build plan: ARG scoping, bases, stage graph, waves, unused args.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use servin_dockerfile::{ArgScope, Base, BuildPlan, InstructionKind, Platform, parse, plan};

fn platform() -> Platform {
    Platform {
        os: "linux".into(),
        arch: "arm64".into(),
        variant: Some("v8".into()),
    }
}

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// (Dockerfile, build args, expected bases)
type BaseCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Vec<Base>,
);

/// Variables seen, the RUN environment and the cache-key args.
type ScopeResult = (
    BTreeMap<String, String>,
    Vec<(String, String)>,
    Vec<(String, String)>,
);

fn planned(source: &str, build_args: &[(&str, &str)], target: Option<&str>) -> BuildPlan {
    let df = parse("Dockerfile", source).unwrap();
    plan(&df, &args(build_args), target, platform()).unwrap_or_else(|e| panic!("{source:?}: {e}"))
}

#[test]
fn from_images_use_global_args() {
    let cases: Vec<BaseCase> = vec![
        (
            "ARG V=3.20\nFROM alpine:$V\n",
            &[],
            vec![Base::Image("alpine:3.20".into())],
        ),
        (
            "ARG V=3.20\nFROM alpine:$V\n",
            &[("V", "edge")],
            vec![Base::Image("alpine:edge".into())],
        ),
        (
            "ARG REG=docker.io\nARG IMG=${REG}/library/busybox\nFROM $IMG\n",
            &[],
            vec![Base::Image("docker.io/library/busybox".into())],
        ),
        (
            "ARG IMG\nFROM ${IMG:-busybox}\n",
            &[],
            vec![Base::Image("busybox".into())],
        ),
        // A --build-arg with no global ARG does not reach FROM.
        (
            "FROM busybox${TAG}\n",
            &[("TAG", ":1")],
            vec![Base::Image("busybox".into())],
        ),
        ("FROM scratch\n", &[], vec![Base::Scratch]),
        ("FROM SCRATCH\n", &[], vec![Base::Scratch]),
        (
            "FROM alpine AS Base\nFROM base\n",
            &[],
            vec![Base::Image("alpine".into()), Base::Stage(0)],
        ),
        (
            "ARG S=base\nFROM alpine AS base\nFROM $S\n",
            &[],
            vec![Base::Image("alpine".into()), Base::Stage(0)],
        ),
        (
            "FROM --platform=$BUILDPLATFORM alpine-$TARGETARCH\n",
            &[],
            vec![Base::Image("alpine-arm64".into())],
        ),
    ];
    for (source, build_args, bases) in &cases {
        let plan = planned(source, build_args, None);
        let got: Vec<Base> = plan.stages.iter().map(|s| s.base.clone()).collect();
        assert_eq!(&got, bases, "{source:?}");
    }
    let plan = planned("FROM --platform=$BUILDPLATFORM alpine\n", &[], None);
    assert_eq!(plan.stages[0].platform.as_deref(), Some("linux/arm64/v8"));
}

#[test]
fn stage_graph_skips_and_waves() {
    let source = "\
FROM alpine AS deps
RUN make deps
FROM alpine AS unused
RUN sleep 100
FROM golang AS build
COPY --from=deps /deps /deps
FROM node AS web
RUN --mount=type=bind,from=deps,target=/d npm ci
FROM build AS final
COPY --from=web /dist /dist
COPY --from=busybox:1.36 /bin/busybox /bin/
COPY --from=0 /x /x
";
    let plan = planned(source, &[], None);
    assert_eq!(plan.target, 4);
    let indices: Vec<usize> = plan.stages.iter().map(|s| s.index).collect();
    assert_eq!(indices, [0, 2, 3, 4]);
    assert_eq!(plan.skipped, [1]);
    assert_eq!(plan.stage(2).unwrap().depends_on, [0]);
    assert_eq!(plan.stage(3).unwrap().depends_on, [0]);
    assert_eq!(plan.stage(4).unwrap().depends_on, [0, 2, 3]);
    assert_eq!(plan.stage(4).unwrap().base, Base::Stage(2));
    assert_eq!(plan.stage(4).unwrap().images, ["busybox:1.36"]);
    assert_eq!(plan.waves, vec![vec![0], vec![2, 3], vec![4]]);

    let plan = planned(source, &[], Some("WEB"));
    assert_eq!(plan.target, 3);
    assert_eq!(
        plan.stages.iter().map(|s| s.index).collect::<Vec<_>>(),
        [0, 3]
    );
    assert_eq!(plan.skipped, [1, 2, 4]);
    assert_eq!(plan.waves, vec![vec![0], vec![3]]);

    let plan = planned(source, &[], Some("unused"));
    assert_eq!(plan.waves, vec![vec![1]]);
}

#[test]
fn from_naming_no_stage_is_an_image() {
    let cases = [
        "FROM a AS builder\nFROM b\nCOPY --from=busybox /bin/sh /\n",
        "FROM a AS builder\nFROM b\nCOPY --from=docker.io/library/builder /x /\n",
        "FROM a AS builder\nFROM b\nCOPY --from=builder:1 /x /\n",
        "FROM a AS builder\nFROM b\nCOPY --from=ghcr.io/x/buidler /x /\n",
    ];
    for source in cases {
        let plan = planned(source, &[], None);
        assert_eq!(plan.stages.len(), 1, "{source:?}");
        assert_eq!(plan.stages[0].images.len(), 1, "{source:?}");
    }
}

#[test]
fn unused_build_args() {
    let source = "ARG GLOBAL\nFROM a AS one\nARG ONE\nFROM b AS two\nARG TWO\n";
    let given = [
        ("GLOBAL", "g"),
        ("ONE", "1"),
        ("TWO", "2"),
        ("NOBODY", "x"),
        ("HTTP_PROXY", "http://p"),
        ("no_proxy", "x"),
    ];
    assert_eq!(planned(source, &given, None).unused_args, ["NOBODY", "ONE"]);
    assert_eq!(
        planned(source, &given, Some("one")).unused_args,
        ["NOBODY", "TWO"]
    );
}

/// Runs the ARG/ENV instructions of stage `stage` through an [`ArgScope`]
/// and gives the variables at the end (ENV over ARG, as Docker).
fn scope_after(source: &str, build_args: &[(&str, &str)], stage: usize) -> ScopeResult {
    let df = parse("Dockerfile", source).unwrap();
    let plan = plan(&df, &args(build_args), None, platform()).unwrap();
    let mut scope = ArgScope::new(&plan);
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for instruction in &df.stages[stage].instructions {
        let env_lookup = |name: &str| env.get(name).cloned();
        let expanded = df
            .expand_instruction(instruction, &scope.vars(&env_lookup))
            .unwrap();
        match (expanded, &instruction.kind) {
            (InstructionKind::Env(pairs), _) => env.extend(pairs),
            (_, InstructionKind::Arg(decls)) => {
                for decl in decls {
                    let env_lookup = |name: &str| env.get(name).cloned();
                    scope.declare(decl, df.escape, &env_lookup).unwrap();
                }
            }
            _ => {}
        }
    }
    let mut seen = BTreeMap::new();
    for name in [
        "G",
        "A",
        "B",
        "C",
        "TARGETARCH",
        "BUILDPLATFORM",
        "TARGETVARIANT",
        "HTTP_PROXY",
        "E",
    ] {
        if let Some(v) = env.get(name).cloned().or_else(|| scope.get(name)) {
            seen.insert(name.to_owned(), v);
        }
    }
    (seen, scope.run_env(), scope.cache_args())
}

#[test]
fn arg_scoping() {
    let source = "\
ARG G=global
FROM x
ARG A=a-default
ARG G
ARG B=$A-b
ARG TARGETARCH
ENV E=$G
ARG C
FROM y
ARG A
";
    let (seen, run_env, cache) = scope_after(source, &[], 0);
    let expected = args(&[
        ("G", "global"),
        ("A", "a-default"),
        ("B", "a-default-b"),
        ("TARGETARCH", "arm64"),
        ("E", "global"),
    ]);
    assert_eq!(seen, expected);
    assert!(
        run_env.iter().all(|(k, _)| k != "C"),
        "declared without value: not set"
    );
    assert_eq!(cache.len(), 4);

    // --build-arg overrides a default, and reaches ARG without a default.
    let (seen, _, _) = scope_after(source, &[("A", "given"), ("C", "c"), ("G", "over")], 0);
    assert_eq!(seen.get("A").map(String::as_str), Some("given"));
    assert_eq!(seen.get("B").map(String::as_str), Some("given-b"));
    assert_eq!(seen.get("C").map(String::as_str), Some("c"));
    assert_eq!(seen.get("G").map(String::as_str), Some("over"));

    // A global ARG is not visible in a stage that does not declare it; a
    // platform arg neither, until declared.
    let (seen, _, _) = scope_after(
        "ARG G=global\nFROM x\nENV E=${G:-unset}-${TARGETARCH:-unset}\n",
        &[],
        0,
    );
    assert_eq!(seen.get("E").map(String::as_str), Some("unset-unset"));

    // Stage 1 redeclares A without a default and no global A: unset.
    let (seen, _, _) = scope_after(source, &[], 1);
    assert_eq!(seen.get("A"), None);
}

#[test]
fn proxy_args_are_usable_undeclared_and_kept_out_of_cache_keys() {
    let source = "FROM x\nARG A=1\n";
    let (seen, run_env, cache) = scope_after(source, &[("HTTP_PROXY", "http://proxy:3128")], 0);
    assert_eq!(
        seen.get("HTTP_PROXY").map(String::as_str),
        Some("http://proxy:3128")
    );
    assert!(run_env.contains(&("HTTP_PROXY".to_owned(), "http://proxy:3128".to_owned())));
    assert_eq!(cache, vec![("A".to_owned(), "1".to_owned())]);

    // Declared with ARG, it is an ordinary arg (in history and cache keys).
    let (_, _, cache) = scope_after("FROM x\nARG HTTP_PROXY\n", &[("HTTP_PROXY", "http://p")], 0);
    assert_eq!(
        cache,
        vec![("HTTP_PROXY".to_owned(), "http://p".to_owned())]
    );
}

#[test]
fn global_args_in_the_plan() {
    let plan = planned("ARG A=1\nARG B\nFROM x\n", &[], None);
    assert_eq!(plan.global_args.get("A").map(String::as_str), Some("1"));
    assert_eq!(plan.global_args.get("B"), None);
    assert_eq!(
        plan.global_args.get("TARGETPLATFORM").map(String::as_str),
        Some("linux/arm64/v8")
    );
    assert_eq!(
        plan.global_args.get("BUILDVARIANT").map(String::as_str),
        Some("v8")
    );
}
