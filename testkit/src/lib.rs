//! What the integration tests of `servin` (the host CLI, `tests/`) and
//! `servin-guest` (the engine, `guest/tests/`) share, written once: real
//! components the tests run against, and the guards and clean-up that leave
//! the host as it was even when a test fails.
//!
//! - [`registry`]: a real `docker-registry` on a free loopback port (open,
//!   htpasswd or bearer-token auth), and a fake one for malformed manifests.
//! - [`token`]: the bearer-token server of a registry with token auth.
//! - [`gate`]: a proxy in front of a registry that holds chosen requests, to
//!   make two pulls overlap for certain.
//! - [`image`]: OCI and Docker images built in memory from busybox-static:
//!   layers, configs, manifests, indexes, `docker save` tars, OCI layouts.
//! - [`http`]: a minimal blocking HTTP/1.1 client for the registry and the
//!   engine's socket.
//! - [`cleanup`]: killing an engine root's monitors and runtime containers
//!   and unmounting everything below it.
//! - [`net`]: the bridges, veths, nftables tables and iptables chains an
//!   engine made, found from its log and state, checked and removed.
//! - [`probe`]: a free port, `curl` from the host, a GET from a container.
//! - [`process`]: a command run with something on its stdin.
//! - [`terminal`]: a shell line on a pseudo-terminal of its own (`script`).
//! - [`wait`]: polling for what an engine does in the background.
//! - [`files`]: small file helpers (write with parents, noise, find by name).
//!
//! Running the packages' own binaries stays in each package's
//! `tests/support`: only its tests know the path of its binary.
// A test helper fails by panicking: that is what fails the test, with the
// message saying what went wrong.
#![allow(clippy::unwrap_used)]

pub mod cleanup;
pub mod files;
pub mod gate;
pub mod http;
pub mod image;
pub mod net;
pub mod probe;
pub mod process;
pub mod registry;
pub mod terminal;
pub mod token;
pub mod wait;
