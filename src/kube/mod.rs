//! Kubernetes: carrying a project to a cluster and back.
//!
//! - [`generate`]: the normalised project as Kubernetes objects
//!   (`servin kube generate`), with a warning for every key that does not
//!   map.

pub mod generate;
