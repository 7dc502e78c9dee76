//! Kubernetes: carrying a project to a cluster and back.
//!
//! - [`generate`]: the normalised project as Kubernetes objects
//!   (`servin kube generate`), with a warning for every key that does not
//!   map.
//! - [`play`]: Kubernetes YAML run on servin's engine (`servin kube play`),
//!   through the same reconciler as `servin up`.

pub mod generate;
pub mod play;
