//! Servin's host side.

pub mod client;
pub mod import;
pub mod project;
