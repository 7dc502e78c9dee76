//! Servin's host side.

pub mod client;
pub mod dashboard;
pub mod import;
pub mod kube;
pub mod project;
pub mod sync;
pub mod vm;
