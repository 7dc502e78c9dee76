//! What a build can fail with.

use servin_proto::build::{DockerfileDiagnostic, StepRef};

/// A build refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile is wrong; nothing was built.
    #[error("{file}:{}:{}: {}", .diagnostic.line, .diagnostic.column, .diagnostic.message)]
    Dockerfile {
        /// The Dockerfile's name.
        file: String,
        /// Where and what.
        diagnostic: Box<DockerfileDiagnostic>,
    },
    /// The build's input is wrong (context, args, secrets, target).
    #[error("{0}")]
    Invalid(String),
    /// The context index the request names was never sent.
    #[error("build context {0} is unknown to the engine: send it first")]
    UnknownContext(String),
    /// A `RUN` command exited with a non-zero code.
    #[error("{at} {instruction}: the command exited with code {code}")]
    RunFailed {
        /// The step.
        at: StepRef,
        /// The instruction.
        instruction: String,
        /// Its exit code.
        code: i64,
    },
    /// A step failed for another reason.
    #[error("{at} {instruction}: {message}")]
    Step {
        /// The step.
        at: StepRef,
        /// The instruction.
        instruction: String,
        /// What went wrong.
        message: String,
    },
    /// A dry run met a step that is not cached (not a failure).
    #[error("{at} would run: {reason}")]
    WouldBuild {
        /// The step.
        at: StepRef,
        /// Why.
        reason: String,
    },
    /// The client went away or asked to stop.
    #[error("the build was cancelled")]
    Cancelled,
}
