//! What can go wrong with a project's desired state before anything runs.

/// A desired state the reconciler refuses.
#[derive(Debug, thiserror::Error)]
#[error("project {project}: {why}")]
pub struct ProjectError {
    /// The project's name.
    pub project: String,
    /// What is wrong with its desired state.
    pub why: String,
}
