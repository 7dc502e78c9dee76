//! Servin's host side.

pub mod import;
pub mod project;
