//! The kernel fast path of published ports (see [`super::firewall`]):
//! the DNAT entries of each container's published ports, kept in memory
//! per network so that rewriting a network's rules keeps them
//! ([`Networks::publish_kernel`], [`Networks::unpublish_kernel`]), and
//! emptied at engine start ([`Networks::flush_kernel_ports`]): the ports
//! of containers that still run are published again, those of containers
//! that died meanwhile must go.

use std::collections::BTreeMap;
use std::sync::MutexGuard;

use super::firewall::{self, Backend, Dnat};
use super::record::NetworkRecord;
use super::{Networks, link};
use crate::error::{Error, Result};

impl Networks {
    /// Whether published ports get the kernel fast path
    /// (`SERVIN_PORT_FORWARD` is not `userland`).
    pub fn kernel_ports(&self) -> bool {
        self.kernel_ports
    }

    pub(super) fn dnat_lock(
        &self,
    ) -> MutexGuard<'_, BTreeMap<String, BTreeMap<String, Vec<Dnat>>>> {
        self.dnat
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A network's rules with its kernel-forwarded ports as they are now
    /// (call with `ports_lock` held).
    fn rules_of(&self, rec: &NetworkRecord) -> Result<firewall::Rules> {
        let dnat = self
            .dnat_lock()
            .get(&rec.id)
            .map(|by_container| by_container.values().flatten().copied().collect())
            .unwrap_or_default();
        rec.rules(self.kernel_ports, dnat)
    }

    /// Writes a network's rules with its ports, and lets its bridge route
    /// loopback addresses when the kernel path is on.
    pub(super) async fn write_rules(&self, rec: &NetworkRecord, backend: Backend) -> Result<()> {
        if self.kernel_ports {
            firewall::set_route_localnet(&rec.bridge)?;
        }
        let _ports = self.ports_lock.lock().await;
        firewall::apply(backend, &self.rules_of(rec)?).await
    }

    /// Forwards a container's published `ports` in the kernel, to its
    /// address on `network_id` (replacing what it had there). Nothing to
    /// do when the kernel path is off. On a failure nothing of `ports` is
    /// kept (the userland forwarder still serves them).
    /// `still_wanted` is asked with the store locked: when it says no (the
    /// container stopped meanwhile, and [`Networks::unpublish_kernel`] ran
    /// already), nothing is added.
    pub async fn publish_kernel(
        &self,
        network_id: &str,
        container_id: &str,
        ports: Vec<Dnat>,
        still_wanted: impl Fn() -> bool,
    ) -> Result<()> {
        if !self.kernel_ports || ports.is_empty() {
            return Ok(());
        }
        let rec = self.get(network_id)?;
        self.ensure_up(&rec).await?;
        let _ports = self.ports_lock.lock().await;
        if !still_wanted() {
            return Ok(());
        }
        if let Some(ep) = rec.endpoints.get(container_id)
            && let Err(e) = link::set_hairpin(&ep.host_veth)
        {
            tracing::warn!(
                "container {}: its own published ports through the host's address: {}",
                ep.container_name,
                e.full_message()
            );
        }
        let old = self
            .dnat_lock()
            .entry(rec.id.clone())
            .or_default()
            .insert(container_id.to_string(), ports.clone())
            .unwrap_or_default();
        let Err(e) = firewall::update_dnat(rec.firewall, rec.tag(), &ports, &old).await else {
            return Ok(());
        };
        // The maps did not hold what the store says (rewritten behind the
        // engine's back): write the network's rules again from the store.
        tracing::debug!(
            network = %rec.name,
            "add published ports to the kernel: {}; rewriting the rules",
            e.full_message()
        );
        let rewritten = async { firewall::apply(rec.firewall, &self.rules_of(&rec)?).await };
        if let Err(again) = rewritten.await {
            if let Some(by_container) = self.dnat_lock().get_mut(&rec.id) {
                by_container.remove(container_id);
            }
            return Err(Error::Runtime {
                context: format!(
                    "network {}: forward published ports in the kernel",
                    rec.name
                ),
                message: format!("{}; then: {}", e.full_message(), again.full_message()),
            });
        }
        Ok(())
    }

    /// Stops forwarding a container's published ports in the kernel; done
    /// when this returns.
    pub async fn unpublish_kernel(&self, container_id: &str) -> Result<()> {
        let _ports = self.ports_lock.lock().await;
        let taken: Vec<(String, Vec<Dnat>)> = self
            .dnat_lock()
            .iter_mut()
            .filter_map(|(n, by_container)| {
                by_container.remove(container_id).map(|p| (n.clone(), p))
            })
            .collect();
        for (network_id, ports) in taken {
            let Ok(rec) = self.get(&network_id) else {
                continue;
            };
            let Err(e) = firewall::update_dnat(rec.firewall, rec.tag(), &[], &ports).await else {
                continue;
            };
            let up = self
                .up
                .lock()
                .ok()
                .is_some_and(|u| u.contains_key(&network_id));
            if !up {
                continue;
            }
            tracing::debug!(
                network = %rec.name,
                "remove published ports from the kernel: {}; rewriting the rules",
                e.full_message()
            );
            firewall::apply(rec.firewall, &self.rules_of(&rec)?)
                .await
                .map_err(|again| Error::Runtime {
                    context: format!(
                        "network {}: stop forwarding published ports in the kernel",
                        rec.name
                    ),
                    message: format!("{}; then: {}", e.full_message(), again.full_message()),
                })?;
        }
        Ok(())
    }

    /// Empties the kernel's forwarding of published ports on every network
    /// (at engine start, before the ports of containers that still run are
    /// published again: those of containers that died meanwhile must go).
    /// Blocking.
    pub fn flush_kernel_ports(&self) -> Result<()> {
        self.dnat_lock().clear();
        // The VM's init is still loading nftables: the kernel's firewall
        // is empty, as after every boot.
        if super::modules::pending() {
            return Ok(());
        }
        let mut by_backend: BTreeMap<&'static str, (Backend, Vec<String>)> = BTreeMap::new();
        for n in self.lock().values() {
            by_backend
                .entry(n.firewall.as_str())
                .or_insert_with(|| (n.firewall, Vec::new()))
                .1
                .push(n.tag().to_string());
        }
        for (backend, tags) in by_backend.into_values() {
            firewall::flush_dnat(backend, &tags)?;
        }
        Ok(())
    }
}
