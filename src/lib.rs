//! Servin's host side.

pub mod project;
