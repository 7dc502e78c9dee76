//! The build plan: build arguments resolved as Docker scopes them, each
//! stage's base, the stages a target needs with their dependencies, and the
//! build arguments nobody consumed. Pure: the executor runs the plan.
//!
//! Docker's `ARG` scoping: an `ARG` before the first `FROM` (global) is
//! visible only to `FROM` lines, unless a stage declares it again (without
//! a value, to take the global value). A stage sees only the `ARG`s it
//! declares, from the declaration on; `--build-arg` overrides a default.
//! The proxy arguments are usable without a declaration and are kept out of
//! history and cache keys; the platform arguments (`TARGETOS`, ...) are
//! global and, in a stage, visible once declared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::error::{DockerfileError, ErrorCode};
use crate::instruction::{ArgDecl, Dockerfile, InstructionKind, RunMount};
use crate::shell::{ExpandError, expand};

/// The proxy arguments Docker predefines: usable without `ARG`, never in
/// history or cache keys.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A platform, `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, ...
    pub arch: String,
    /// `v8`, `v7`, ... if any.
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform (Linux, with the machine's architecture in
    /// OCI's words), the one an engine here builds for.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "arm" => "arm",
            other => other,
        };
        Self {
            os: "linux".to_string(),
            arch: arch.to_string(),
            variant: None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`: an empty filesystem.
    Scratch,
    /// An image reference (global args expanded).
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// A stage the target needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedStage {
    /// Its index in [`Dockerfile::stages`].
    pub index: usize,
    /// Its name, if any.
    pub name: Option<String>,
    /// What it starts from.
    pub base: Base,
    /// `FROM --platform`, expanded.
    pub platform: Option<String>,
    /// Earlier stages it needs finished first (base, `COPY --from`,
    /// `RUN --mount=from=`), ascending.
    pub depends_on: Vec<usize>,
    /// Images it reads from besides its base (`COPY --from=image`,
    /// `RUN --mount=from=image`).
    pub images: Vec<String>,
    /// Its wave: 0 for stages needing no other stage, else one more than
    /// the highest wave it depends on. Stages of one wave can run together.
    pub wave: usize,
}

/// What to build, in which order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// The index of the stage whose result is the image.
    pub target: usize,
    /// The stages the target needs, in a valid order (ascending index).
    pub stages: Vec<PlannedStage>,
    /// Stages the target does not need.
    pub skipped: Vec<usize>,
    /// Stage indices grouped by wave, waves in order.
    pub waves: Vec<Vec<usize>>,
    /// `--build-arg`s no `ARG` consumed (Docker warns about them).
    pub unused_args: Vec<String>,
    /// The `--build-arg`s given.
    pub build_args: BTreeMap<String, String>,
    /// The global scope: global `ARG`s with a value, and the platform args.
    pub global_args: BTreeMap<String, String>,
}

impl BuildPlan {
    /// The planned stage of index `index`, if the target needs it.
    pub fn stage(&self, index: usize) -> Option<&PlannedStage> {
        self.stages.iter().find(|s| s.index == index)
    }
}

/// Plans the build of `target` (the last stage if `None`) of `df`.
pub fn plan(
    df: &Dockerfile,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
    platform: Platform,
) -> Result<BuildPlan, DockerfileError> {
    let error = |code, message: String, span: std::ops::Range<usize>| {
        DockerfileError::new(code, message, &df.name, &df.source, span)
    };
    // The global scope: platform args, then global ARGs in order.
    let mut global: BTreeMap<String, Option<String>> = platform_args(&platform)
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    for decl in &df.global_args {
        let value = match build_args.get(&decl.name) {
            Some(value) => Some(value.clone()),
            None => match &decl.default {
                Some(default) => {
                    let lookup = |name: &str| global.get(name).cloned().flatten();
                    Some(expand(default, df.escape, &lookup).map_err(|e| {
                        let span = df
                            .stages
                            .first()
                            .map_or(0..0, |s| s.from.span.start..s.from.span.start);
                        error(
                            ErrorCode::BadExpansion,
                            format!("global ARG {}: {e}", decl.name),
                            span,
                        )
                    })?)
                }
                None => None,
            },
        };
        global.insert(decl.name.clone(), value);
    }
    let global_lookup = |name: &str| global.get(name).cloned().flatten();

    let mut planned: Vec<PlannedStage> = Vec::new();
    for stage in &df.stages {
        let bad = |e: ExpandError, span| {
            error(ErrorCode::BadExpansion, e.to_string(), span)
                .with_help("FROM sees only the ARGs declared before the first FROM")
        };
        let image = expand(&stage.from.image, df.escape, &global_lookup)
            .map_err(|e| bad(e, stage.from.image_span.clone()))?;
        if image.is_empty() {
            return Err(error(
                ErrorCode::BadArgument,
                format!("base name `{}` should not be blank", stage.from.image),
                stage.from.image_span.clone(),
            )
            .with_label("expands to nothing")
            .with_help("declare the ARG before the first FROM, with a default or a --build-arg"));
        }
        let from_platform = stage
            .from
            .platform
            .as_deref()
            .map(|p| expand(p, df.escape, &global_lookup))
            .transpose()
            .map_err(|e| bad(e, stage.from.span.clone()))?;
        let lower = image.to_ascii_lowercase();
        let base = if lower == "scratch" {
            Base::Scratch
        } else if let Some(earlier) = df.stages[..stage.index]
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            Base::Stage(earlier.index)
        } else {
            Base::Image(image)
        };
        let mut depends_on = BTreeSet::new();
        if let Base::Stage(i) = base {
            depends_on.insert(i);
        }
        let mut images = Vec::new();
        for instruction in &stage.instructions {
            let mut refs: Vec<(String, std::ops::Range<usize>)> = Vec::new();
            match &instruction.kind {
                InstructionKind::Copy(copy) => {
                    if let Some(from) = &copy.from {
                        refs.push((
                            from.clone(),
                            copy.from_span.clone().unwrap_or(instruction.span.clone()),
                        ));
                    }
                }
                InstructionKind::Run { mounts, .. } => {
                    for mount in mounts {
                        if let RunMount::Bind {
                            from: Some(from), ..
                        }
                        | RunMount::Cache {
                            from: Some(from), ..
                        } = mount
                        {
                            refs.push((from.clone(), instruction.span.clone()));
                        }
                    }
                }
                _ => {}
            }
            for (word, span) in refs {
                // `--from` is resolved before the stage runs, with the global args.
                let value =
                    expand(&word, df.escape, &global_lookup).map_err(|e| bad(e, span.clone()))?;
                match resolve_from(df, stage.index, &value) {
                    Ok(Some(i)) => {
                        depends_on.insert(i);
                    }
                    Ok(None) => images.push(value),
                    Err((message, help)) => {
                        return Err(error(ErrorCode::UnknownStage, message, span)
                            .with_label("unknown stage")
                            .with_help(help));
                    }
                }
            }
        }
        let depends_on: Vec<usize> = depends_on.into_iter().collect();
        let wave = depends_on
            .iter()
            .filter_map(|d| planned.get(*d).map(|p| p.wave + 1))
            .max()
            .unwrap_or(0);
        planned.push(PlannedStage {
            index: stage.index,
            name: stage.name.clone(),
            base,
            platform: from_platform,
            depends_on,
            images,
            wave,
        });
    }

    let target_index = match target {
        None => df.stages.len().saturating_sub(1),
        Some(name) => {
            let lower = name.to_ascii_lowercase();
            match df
                .stages
                .iter()
                .find(|s| s.name.as_deref() == Some(lower.as_str()))
            {
                Some(stage) => stage.index,
                None => {
                    let names: Vec<String> = df
                        .stages
                        .iter()
                        .filter_map(|s| s.name.as_ref().map(|n| format!("`{n}`")))
                        .collect();
                    let help = if names.is_empty() {
                        "this Dockerfile has no named stages (name one with `FROM image AS name`)"
                            .to_owned()
                    } else {
                        format!("the stages are {}", names.join(", "))
                    };
                    return Err(error(
                        ErrorCode::UnknownTarget,
                        format!("target stage `{name}` could not be found"),
                        0..0,
                    )
                    .with_help(help));
                }
            }
        }
    };

    // The stages the target needs: everything it reaches through dependencies.
    let mut needed = BTreeSet::new();
    let mut pending = vec![target_index];
    while let Some(i) = pending.pop() {
        if needed.insert(i)
            && let Some(stage) = planned.get(i)
        {
            pending.extend(stage.depends_on.iter().copied());
        }
    }
    // Waves count only needed stages, which all dependencies of a needed stage are.
    let stages: Vec<PlannedStage> = planned
        .into_iter()
        .filter(|s| needed.contains(&s.index))
        .collect();
    let skipped: Vec<usize> = (0..df.stages.len())
        .filter(|i| !needed.contains(i))
        .collect();
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for stage in &stages {
        if waves.len() <= stage.wave {
            waves.resize(stage.wave + 1, Vec::new());
        }
        waves[stage.wave].push(stage.index);
    }

    // Consumed: declared as a global ARG or by an ARG of a needed stage.
    let mut consumed: BTreeSet<&str> = df.global_args.iter().map(|d| d.name.as_str()).collect();
    for stage in df.stages.iter().filter(|s| needed.contains(&s.index)) {
        for instruction in &stage.instructions {
            if let InstructionKind::Arg(decls) = &instruction.kind {
                consumed.extend(decls.iter().map(|d| d.name.as_str()));
            }
        }
    }
    let unused_args = build_args
        .keys()
        .filter(|k| !consumed.contains(k.as_str()) && !PROXY_ARGS.contains(&k.as_str()))
        .cloned()
        .collect();

    Ok(BuildPlan {
        target: target_index,
        stages,
        skipped,
        waves,
        unused_args,
        build_args: build_args.clone(),
        global_args: global
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect(),
    })
}

/// The platform args for building on and for `platform` (servin builds for
/// the platform it runs on, so build and target platform are the same).
fn platform_args(platform: &Platform) -> Vec<(String, String)> {
    let variant = platform.variant.clone().unwrap_or_default();
    let mut args = Vec::new();
    for prefix in ["TARGET", "BUILD"] {
        args.push((format!("{prefix}PLATFORM"), platform.to_string()));
        args.push((format!("{prefix}OS"), platform.os.clone()));
        args.push((format!("{prefix}ARCH"), platform.arch.clone()));
        args.push((format!("{prefix}VARIANT"), variant.clone()));
    }
    args
}

/// `--from=value` in stage `current`: `Some(stage)`, `None` for an image
/// reference, or an error (message, help).
fn resolve_from(
    df: &Dockerfile,
    current: usize,
    value: &str,
) -> Result<Option<usize>, (String, String)> {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) {
        return match value.parse::<usize>() {
            Ok(i) if i < current => Ok(Some(i)),
            _ => Err((
                format!("stage index {value} is not an earlier stage"),
                format!("stage indexes count from 0; this is stage {current}"),
            )),
        };
    }
    let lower = value.to_ascii_lowercase();
    if let Some(stage) = df
        .stages
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        if stage.index < current {
            return Ok(Some(stage.index));
        }
        return Err((
            format!("stage `{value}` is not defined before this stage"),
            format!("move stage `{value}` above the stage that copies from it"),
        ));
    }
    if !value.contains(['/', ':', '@']) {
        let closest = df
            .stages
            .iter()
            .filter_map(|s| s.name.as_deref())
            .map(|name| (strsim::osa_distance(name, &lower), name))
            .min();
        if let Some((distance, name)) = closest
            && distance <= 2
        {
            return Err((
                format!("unknown stage `{value}`"),
                format!("did you mean `{name}`?"),
            ));
        }
    }
    Ok(None)
}

/// The build arguments a stage sees, driven by the executor one `ARG` at a
/// time (an `ARG` default may use the `ENV`s before it, which only the
/// executor knows once the base image's config is read).
#[derive(Debug, Clone)]
pub struct ArgScope<'p> {
    plan: &'p BuildPlan,
    declared: BTreeMap<String, Option<String>>,
}

impl<'p> ArgScope<'p> {
    /// The scope at the start of a stage: no declared args.
    pub fn new(plan: &'p BuildPlan) -> Self {
        Self {
            plan,
            declared: BTreeMap::new(),
        }
    }

    /// Runs one `ARG` declaration: the `--build-arg` wins; else the default,
    /// expanded with the stage's `env` (its `ENV` variables) over the args
    /// declared before; else, for `ARG NAME`, the global value. A platform
    /// arg always takes its automatic value. Pass the declaration as
    /// written (from [`InstructionKind::Arg`] of the parsed instruction),
    /// not an expanded one: the default is expanded here.
    pub fn declare(
        &mut self,
        decl: &ArgDecl,
        escape: char,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ExpandError> {
        let is_platform = ["TARGET", "BUILD"].iter().any(|p| {
            ["PLATFORM", "OS", "ARCH", "VARIANT"]
                .iter()
                .any(|s| decl.name == format!("{p}{s}"))
        });
        let value = if is_platform {
            self.plan.global_args.get(&decl.name).cloned()
        } else if let Some(given) = self.plan.build_args.get(&decl.name) {
            Some(given.clone())
        } else if let Some(default) = &decl.default {
            Some(expand(default, escape, &self.vars(env))?)
        } else {
            self.plan.global_args.get(&decl.name).cloned()
        };
        self.declared.insert(decl.name.clone(), value);
        Ok(())
    }

    /// The variables for expanding an instruction of the stage: `env` (the
    /// stage's `ENV` variables) over this scope's args, as Docker gives
    /// `ENV` precedence over `ARG`.
    pub fn vars<'a>(
        &'a self,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| env(name).or_else(|| self.get(name))
    }

    /// The value of `name` in this scope: a declared arg with a value, or a
    /// proxy arg given with `--build-arg`.
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(value) = self.declared.get(name) {
            return value.clone();
        }
        if PROXY_ARGS.contains(&name) {
            return self.plan.build_args.get(name).cloned();
        }
        None
    }

    /// The args for the environment of `RUN`: declared args with a value,
    /// and the proxy args given.
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut env: BTreeMap<String, String> = self
            .declared
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        for proxy in PROXY_ARGS {
            if let Some(value) = self.plan.build_args.get(proxy) {
                env.entry(proxy.to_owned()).or_insert_with(|| value.clone());
            }
        }
        env.into_iter().collect()
    }

    /// The args that go into history and cache keys: [`Self::run_env`]
    /// without the proxy args that were not declared with `ARG` (as Docker
    /// keeps them out of history).
    pub fn cache_args(&self) -> Vec<(String, String)> {
        self.declared
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect()
    }
}
