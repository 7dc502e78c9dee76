//! The image builder's wire contract (`servin build`).
//!
//! The CLI indexes the build context (paths, modes, owners, sizes, content
//! digests) and sends the engine only what it lacks:
//!
//! 1. `GET /servin/v1/build/contexts/{digest}/missing`: the content digests
//!    of a context index the engine already holds that it has no content
//!    for ([`Missing`]); `404` when it does not hold that index.
//! 2. When it does not: `PUT /servin/v1/build/contexts/{digest}?base={base}`
//!    with [`DELTA_CONTENT_TYPE`], the index as its change from the index
//!    `base` the engine accepted before (`servin_buildctx::Delta`: removed
//!    paths, added or changed entries). The engine applies it to its copy
//!    of `base`, checks the result has `digest`, stores it and answers
//!    [`Missing`] for the whole index. `404` when the engine does not hold
//!    `base` (pruned, reset, another engine): the CLI then sends the index
//!    whole. A malformed delta, or one whose result does not have
//!    `digest`, is a `400` naming it.
//! 3. Or, with no base: `PUT /servin/v1/build/contexts/{digest}` with the
//!    whole index in its binary form (`servin_buildctx::ContextIndex::encode`,
//!    [`INDEX_CONTENT_TYPE`]; JSON is taken too); answers [`Missing`] as
//!    above, `400` when the index is malformed or has another digest.
//! 4. `POST /servin/v1/build/blobs`: a tar of the missing contents, each
//!    entry named by its digest's hex; answers [`Received`].
//! 5. `POST /servin/v1/build`: a [`BuildRequest`]; answers a stream of
//!    [`BuildEvent`]s, one JSON object per line, ending with
//!    [`BuildEvent::Built`] or [`BuildEvent::Failed`].
//!
//! Index bodies are at most 16 MiB (about 150,000 paths whole).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The path that starts a build.
pub const BUILD_PATH: &str = "/servin/v1/build";

/// The path that receives context contents.
pub const BLOBS_PATH: &str = "/servin/v1/build/blobs";

/// The content type of a whole context index in its binary form.
pub const INDEX_CONTENT_TYPE: &str = "application/vnd.servin.context-index";

/// The content type of a context index sent as a delta from a base.
pub const DELTA_CONTENT_TYPE: &str = "application/vnd.servin.context-index-delta";

/// The path that receives the context index `digest` as a delta from the
/// index `base` the engine holds.
pub fn context_delta_path(digest: &str, base: &str) -> String {
    format!("/servin/v1/build/contexts/{digest}?base={base}")
}

/// The path of the context index with `digest` (`sha256:<hex>`).
pub fn context_path(digest: &str) -> String {
    format!("/servin/v1/build/contexts/{digest}")
}

/// The path that lists the contents missing for the context `digest`.
pub fn missing_path(digest: &str) -> String {
    format!("/servin/v1/build/contexts/{digest}/missing")
}

/// Content digests the engine lacks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Missing {
    /// `sha256:<hex>` digests, each once.
    pub missing: Vec<String>,
}

/// What an upload of contents stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Received {
    /// Contents stored.
    pub count: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// A secret given to `RUN --mount=type=secret` steps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuildSecret {
    /// The secret's id, as `--mount=type=secret,id=ID` names it.
    pub id: String,
    /// Its content, base64. Never stored, logged or part of a cache key.
    pub data: String,
}

/// One build.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuildRequest {
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// Its name as the user gave it (for messages), e.g. `Dockerfile`.
    pub dockerfile_name: String,
    /// The digest of the context index sent before.
    pub context: String,
    /// Names to give the result (`NAME[:TAG]`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// `--build-arg` values.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// The stage to build (the last one when absent).
    #[serde(default)]
    pub target: Option<String>,
    /// Build every step again, using no cache.
    #[serde(default)]
    pub no_cache: bool,
    /// Pull base images again even when present.
    #[serde(default)]
    pub pull: bool,
    /// Labels added to the result.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Secrets for `RUN --mount=type=secret`.
    #[serde(default)]
    pub secrets: Vec<BuildSecret>,
    /// Only look: walk the steps through the cache, run nothing, and end
    /// with [`BuildEvent::Built`] when every step is cached (nothing is
    /// tagged) or [`BuildEvent::WouldBuild`] at the first step that is not.
    #[serde(default)]
    pub dry_run: bool,
    /// Images pinned to a digest (a project's `servin.lock`): a `FROM` or
    /// `COPY --from` naming one of these references, as written once build
    /// args are expanded, uses the image this gives (`repository@sha256:...`)
    /// instead.
    #[serde(default)]
    pub pinned: BTreeMap<String, String>,
}

/// Where an event belongs: one step of one stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StepRef {
    /// The stage's name, or its index when it has none.
    pub stage: String,
    /// The step within the stage, from 1 (the `FROM` is step 1).
    pub step: usize,
    /// The stage's step count.
    pub total: usize,
}

impl std::fmt::Display for StepRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} {}/{}]", self.stage, self.step, self.total)
    }
}

/// A Dockerfile error, as the engine found it: the CLI renders it again
/// over its own copy of the file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DockerfileDiagnostic {
    /// What is wrong.
    pub message: String,
    /// A stable code, e.g. `servin::dockerfile::unknown-instruction`.
    pub code: String,
    /// A line of help, when there is one.
    #[serde(default)]
    pub help: Option<String>,
    /// The text under the span, when there is one.
    #[serde(default)]
    pub label: Option<String>,
    /// Byte offset of the span in the Dockerfile.
    pub offset: usize,
    /// Byte length of the span.
    pub length: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// One line of a build's progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BuildEvent {
    /// A step begins.
    Step {
        /// Which step.
        at: StepRef,
        /// The instruction as written.
        instruction: String,
        /// The step's number in the whole build, from 1 (Docker's `Step N/M`).
        number: usize,
        /// The build's step count.
        of: usize,
    },
    /// The step's result came from the cache.
    Cached {
        /// Which step.
        at: StepRef,
        /// The image it gives.
        image: String,
    },
    /// A `RUN` step's container (Docker's `Running in ...`).
    Running {
        /// Which step.
        at: StepRef,
        /// The container's ID.
        container: String,
    },
    /// Why the step is not taken from the cache (said once per step run).
    Reason {
        /// Which step.
        at: StepRef,
        /// E.g. `src/app.js changed`, `build arg VERSION changed`.
        reason: String,
    },
    /// Output of a `RUN` step.
    Output {
        /// Which step.
        at: StepRef,
        /// The text, as printed.
        text: String,
    },
    /// The step ran.
    Done {
        /// Which step.
        at: StepRef,
        /// How long it took, in milliseconds.
        millis: u64,
        /// The image it gives.
        image: String,
    },
    /// Something the user should know that does not stop the build.
    Warning {
        /// The warning.
        message: String,
    },
    /// The build finished.
    Built {
        /// The image ID (`sha256:...`).
        id: String,
        /// The names given to it.
        tags: Vec<String>,
    },
    /// A dry run met a step that is not cached.
    WouldBuild {
        /// The step.
        at: StepRef,
        /// Why it would run.
        reason: String,
    },
    /// The build failed; nothing was tagged.
    Failed {
        /// What failed, naming the step.
        message: String,
        /// The step, when one failed.
        #[serde(default)]
        at: Option<StepRef>,
        /// A `RUN` step's exit code.
        #[serde(default)]
        exit_code: Option<i64>,
        /// A Dockerfile error, to show at its span.
        #[serde(default)]
        diagnostic: Option<DockerfileDiagnostic>,
    },
}
