//! The wire contract between the servin CLI and its engine for projects.
//!
//! The CLI normalises a project file into a [`DesiredProject`] and sends it
//! as JSON to `POST /servin/v1/projects/{name}/plan` (which answers with a
//! [`Plan`] and changes nothing) or `/apply`. The engine finds what exists by
//! the [`labels`] every project object carries.
//!
//! - [`labels`]: the label names, container names, and the compact label
//!   forms of dependency edges.
//! - [`projection`]: the canonical, versioned projection of a container's
//!   spec and the config hash computed over it.
//! - [`desired`]: the desired state of a project.
//! - [`plan`]: the actions that take the engine from what exists to it.
//! - [`apply`]: the progress lines streamed while applying or taking down.
//! - [`build`]: the image builder's requests and progress events.
//! - [`workspace`]: the workspace sync calls: batches and manifests.
//! - [`reset`]: what `POST /servin/v1/reset` answers (`servin system
//!   reset`).

pub mod apply;
pub mod build;
pub mod desired;
pub mod labels;
pub mod plan;
pub mod projection;
pub mod reset;
pub mod workspace;

pub use desired::{
    Condition, Dependency, DesiredContainer, DesiredNetwork, DesiredProject, DesiredVolume,
};
pub use plan::{Action, ActionKind, ObjectKind, Plan};
pub use projection::{FieldDigests, Projection};

/// The servin API path that plans project `name`.
pub fn plan_path(name: &str) -> String {
    format!("/servin/v1/projects/{name}/plan")
}

/// The servin API path that applies project `name`.
pub fn apply_path(name: &str) -> String {
    format!("/servin/v1/projects/{name}/apply")
}

/// The header of an apply's answer that names the apply when it waits
/// for built images: the `{apply}` of [`built_image_path`].
pub const APPLY_ID_HEADER: &str = "Servin-Apply-Id";

/// The servin API path where the CLI reports an image that apply `apply`
/// of project `name` waits for (see [`apply::BuiltImage`]).
pub fn built_image_path(name: &str, apply: &str) -> String {
    format!("/servin/v1/projects/{name}/applies/{apply}/images")
}

/// The servin API path that takes project `name` down.
pub fn down_path(name: &str) -> String {
    format!("/servin/v1/projects/{name}/down")
}

/// The suffix of the temporary name a recreate gives the new container
/// until the old one is gone (`shop-web-1-servin-new`). A container of a
/// project whose name is not the one its labels call for was left by an
/// interrupted apply; the next apply removes it.
pub const TEMPORARY_SUFFIX: &str = "-servin-new";
