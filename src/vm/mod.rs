//! VM mode: the engine in a small Linux VM that servin runs by itself.

pub mod boot;
pub mod error;
pub mod qemu;

pub use error::VmError;
