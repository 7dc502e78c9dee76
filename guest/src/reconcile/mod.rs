//! The reconciler: making what exists match what a project wants.
//!
//! The CLI sends a project's desired state ([`servin_proto::DesiredProject`]);
//! the engine
//! 1. checks it ([`validate`]),
//! 2. finds what exists of the project by its labels ([`observe`]),
//! 3. decides what to do ([`plan::plan`]): pure and deterministic, it
//!    reads the desired and the observed state and changes nothing, so
//!    `servin plan` shows exactly what `up` would do;
//! 4. does it ([`apply`]), in dependency order.
//!
//! Apply may be interrupted at any step (the engine killed, the client
//! gone) and run again: every step leaves labelled objects the next
//! observation finds (a recreate's new container under a temporary name
//! is removed as a leftover), so a rerun converges.
//!
//! - [`observe`]: the project's containers as the planner sees them.
//! - [`validate`]: the desired state's contract.
//! - [`error`]: [`error::ProjectError`], a desired state refused.
//! - [`graph`]: the `depends_on` graph in topological levels.
//! - [`plan`]: desired and observed state to a plan of actions with reasons,
//!   and the services `up SERVICE...` acts on.
//! - [`apply`]: running a plan as a dependency graph.
//! - [`pending`]: the images an apply waits for while the CLI builds them.
//! - [`down`]: taking a project down from its labels alone.
//! - [`world`]: every side effect of apply and down, behind one trait the
//!   engine implements (and a recording fake, in the unit tests).

pub mod apply;
pub mod down;
pub mod error;
pub mod graph;
pub mod observe;
pub mod pending;
pub mod plan;
pub mod validate;
pub mod world;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use observe::{Observed, observe};
pub use validate::validate;

/// Desired containers for the tests of the reconciler's modules.
#[cfg(test)]
pub(crate) mod fixtures {
    use servin_proto::{Condition, Dependency, DesiredContainer, Projection, labels};

    /// A desired container of project `shop` depending (`started`) on `deps`.
    pub(crate) fn container(service: &str, deps: &[&str]) -> DesiredContainer {
        let p = Projection::new(1);
        DesiredContainer {
            service: service.into(),
            replica: 1,
            name: labels::container_name("shop", service, 1),
            image: "busybox".into(),
            image_digest: None,
            depends_on: deps
                .iter()
                .map(|d| Dependency {
                    service: d.to_string(),
                    condition: Condition::Started,
                })
                .collect(),
            config_hash: p.hash(),
            projection: p,
            body: Default::default(),
        }
    }
}
