//! Kubernetes YAML: `servin kube play` runs it on servin's engine.

pub mod play;
