//! Changing a container's resources and restart policy (`docker update`).
//! The new limits are checked as at create, applied to a running
//! container's cgroup through the runtime's `update`, then written to its
//! record (so inspect shows them and the next start uses them). A field
//! servin cannot apply is refused by name rather than dropped.

use std::sync::Arc;

use bollard_stubs::models::{HostConfig, RestartPolicy, RestartPolicyNameEnum};
use serde_json::Value;

use super::record::{self, Record};
use super::{Container, Containers};
use crate::error::{ContainerError, Error, Result};
use crate::runtime::host::HostFacts;
use crate::runtime::{OciRuntime, resources};

/// The fields of Docker's update body that servin applies.
const APPLIED: &[&str] = &[
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "NanoCpus",
    "CpuShares",
    "CpuQuota",
    "CpuPeriod",
    "CpusetCpus",
    "CpusetMems",
    "PidsLimit",
    "RestartPolicy",
];

/// Whether a JSON value is the Go zero value the docker CLI sends for a
/// field it leaves alone.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_unset),
    }
}

/// What an update asks, checked: the fields it sets.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Change {
    memory: Option<i64>,
    memory_swap: Option<i64>,
    memory_reservation: Option<i64>,
    nano_cpus: Option<i64>,
    cpu_shares: Option<i64>,
    cpu_quota: Option<i64>,
    cpu_period: Option<i64>,
    cpuset_cpus: Option<String>,
    cpuset_mems: Option<String>,
    pids_limit: Option<i64>,
    restart_policy: Option<RestartPolicy>,
}

fn number(body: &serde_json::Map<String, Value>, key: &str) -> Result<Option<i64>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| {
            ContainerError::InvalidConfig(format!("invalid {key} {v}: want a whole number")).into()
        }),
    }
}

impl Change {
    /// Reads Docker's update body; a field servin does not apply, set to
    /// anything but its zero value, is refused by name.
    pub fn parse(body: &Value) -> Result<Self> {
        let Some(map) = body.as_object() else {
            return Err(ContainerError::InvalidConfig(
                "the update body must be a JSON object".to_string(),
            )
            .into());
        };
        let mut refused: Vec<&str> = map
            .iter()
            .filter(|(k, v)| !APPLIED.contains(&k.as_str()) && !is_unset(v))
            .map(|(k, _)| k.as_str())
            .collect();
        if !refused.is_empty() {
            refused.sort_unstable();
            return Err(ContainerError::CannotUpdate(format!(
                "servin cannot update {}: the fields it updates are {}",
                refused.join(", "),
                APPLIED.join(", ")
            ))
            .into());
        }
        let nonzero = |v: Option<i64>| v.filter(|n| *n != 0);
        let text = |key: &str| {
            map.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let restart_policy = match map.get("RestartPolicy") {
            Some(v) if !is_unset(v) => Some(
                serde_json::from_value::<RestartPolicy>(v.clone()).map_err(|e| {
                    ContainerError::InvalidConfig(format!("invalid RestartPolicy: {e}"))
                })?,
            ),
            _ => None,
        };
        Ok(Self {
            memory: nonzero(number(map, "Memory")?),
            memory_swap: nonzero(number(map, "MemorySwap")?),
            memory_reservation: nonzero(number(map, "MemoryReservation")?),
            nano_cpus: nonzero(number(map, "NanoCpus")?),
            cpu_shares: nonzero(number(map, "CpuShares")?),
            cpu_quota: nonzero(number(map, "CpuQuota")?),
            cpu_period: nonzero(number(map, "CpuPeriod")?),
            cpuset_cpus: text("CpusetCpus").map(str::to_string),
            cpuset_mems: text("CpusetMems").map(str::to_string),
            // 0 and -1 both mean no limit; only null leaves it alone.
            pids_limit: number(map, "PidsLimit")?,
            restart_policy,
        })
    }

    /// Whether it changes a cgroup limit (rather than only the policy).
    fn touches_resources(&self) -> bool {
        let Self { restart_policy, .. } = self;
        let without = Self {
            restart_policy: restart_policy.clone(),
            ..Self::default()
        };
        *self != without
    }

    /// `hc` with the change made, checked as Docker checks an update.
    pub fn apply_to(&self, hc: &HostConfig) -> Result<HostConfig> {
        let refuse = |m: &str| Error::from(ContainerError::InvalidConfig(m.to_string()));
        let mut hc = hc.clone();
        if let Some(m) = self.memory {
            let swap = hc.memory_swap.unwrap_or(0);
            if self.memory_swap.is_none() && swap > 0 && m > swap {
                return Err(refuse(
                    "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
                ));
            }
            hc.memory = Some(m);
        }
        if let Some(s) = self.memory_swap {
            hc.memory_swap = Some(s);
        }
        if let Some(r) = self.memory_reservation {
            hc.memory_reservation = Some(r);
        }
        if self.nano_cpus.is_some() && hc.cpu_quota.unwrap_or(0) > 0 && self.cpu_quota.is_none() {
            return Err(refuse(
                "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set",
            ));
        }
        if self.cpu_quota.is_some() && hc.nano_cpus.unwrap_or(0) > 0 && self.nano_cpus.is_none() {
            return Err(refuse(
                "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
            ));
        }
        if let Some(n) = self.nano_cpus {
            hc.nano_cpus = Some(n);
        }
        if let Some(q) = self.cpu_quota {
            hc.cpu_quota = Some(q);
        }
        if let Some(p) = self.cpu_period {
            hc.cpu_period = Some(p);
        }
        if let Some(s) = self.cpu_shares {
            hc.cpu_shares = Some(s);
        }
        if let Some(c) = &self.cpuset_cpus {
            hc.cpuset_cpus = Some(c.clone());
        }
        if let Some(m) = &self.cpuset_mems {
            hc.cpuset_mems = Some(m.clone());
        }
        if let Some(p) = self.pids_limit {
            hc.pids_limit = Some(p);
        }
        if let Some(policy) = &self.restart_policy {
            if hc.auto_remove.unwrap_or(false)
                && !matches!(
                    policy.name,
                    None | Some(RestartPolicyNameEnum::EMPTY | RestartPolicyNameEnum::NO)
                )
            {
                return Err(refuse(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container",
                ));
            }
            if policy.maximum_retry_count.unwrap_or(0) != 0
                && policy.name != Some(RestartPolicyNameEnum::ON_FAILURE)
            {
                return Err(refuse(&format!(
                    "invalid restart policy: maximum retry count can only be used with 'on-failure' (not {:?})",
                    policy.name.map(|n| n.to_string()).unwrap_or_default()
                )));
            }
            if policy.maximum_retry_count.unwrap_or(0) < 0 {
                return Err(refuse(
                    "invalid restart policy: maximum retry count cannot be negative",
                ));
            }
            hc.restart_policy = Some(policy.clone());
        }
        Ok(hc)
    }

    /// The cgroup resources to hand the runtime for `hc` (already
    /// changed), as the runtime's `update --resources` reads them.
    pub fn runtime_resources(&self, hc: &HostConfig, host: &HostFacts) -> Result<Vec<u8>> {
        let mut v = serde_json::json!({
            "memory": resources::memory(hc, host)?,
            "cpu": resources::cpu(hc)?,
        });
        // An explicit "no limit" where the builders leave the field out.
        if self.pids_limit.is_some() {
            let limit = hc.pids_limit.filter(|p| *p > 0).unwrap_or(-1);
            v["pids"] = serde_json::json!({ "limit": limit });
        }
        if self.cpu_quota == Some(-1) {
            v["cpu"]["quota"] = serde_json::json!(-1);
        }
        serde_json::to_vec(&v).map_err(Error::json("the update's resources"))
    }
}

impl Containers {
    /// Applies `change` to `c`: its cgroup when it runs, then its record.
    pub async fn update_resources(&self, c: &Arc<Container>, change: &Change) -> Result<()> {
        let _op = c.op.lock().await;
        let (current, nofile, owned) = (c.host_config(), self.host_nofile, change.clone());
        // Reading the host and checking CPU counts read files.
        let (hc, res) = tokio::task::spawn_blocking(move || {
            let hc = owned.apply_to(&current)?;
            let host = HostFacts::read(nofile, false);
            let res = owned.runtime_resources(&hc, &host)?;
            Ok::<_, Error>((hc, res))
        })
        .await
        .map_err(|e| Error::Runtime {
            context: format!("container {}: update", c.name()),
            message: e.to_string(),
        })??;
        let s = c.state();
        if change.touches_resources() && s.status.is_running() {
            self.runtime()?.update(c.id(), &res).await?;
        }
        let record = Record {
            body: bollard_stubs::models::ContainerCreateBody {
                host_config: Some(hc.clone()),
                ..c.record.body.clone()
            },
            ..c.record.clone()
        };
        let dir = c.paths.dir.clone();
        tokio::task::spawn_blocking(move || {
            crate::state::write_json_atomic(&dir, record::RECORD_FILE, &record)
        })
        .await
        .map_err(|e| Error::Runtime {
            context: format!("container {}: update", c.name()),
            message: e.to_string(),
        })??;
        *c.host_config
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = hc;
        self.events.container("update", c.id(), c.attributes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    /// What `docker update --memory 64m` sends: every field, zero ones too.
    fn docker_cli_body() -> Value {
        json!({
            "BlkioWeight": 0, "BlkioWeightDevice": null, "CgroupParent": "",
            "CpuShares": 0, "Memory": 67108864, "MemorySwap": 0, "NanoCpus": 0,
            "CpuPeriod": 0, "CpuQuota": 0, "CpusetCpus": "", "Devices": null,
            "KernelMemory": 0, "OomKillDisable": null, "PidsLimit": null,
            "Ulimits": null, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0}
        })
    }

    #[test]
    fn the_docker_clis_zero_fields_are_left_alone() {
        let c = Change::parse(&docker_cli_body()).unwrap();
        assert_eq!(c.memory, Some(64 << 20));
        assert!(c.restart_policy.is_none() && c.pids_limit.is_none());
        assert!(c.touches_resources());
        let hc = c.apply_to(&HostConfig::default()).unwrap();
        assert_eq!(hc.memory, Some(64 << 20));
    }

    #[test]
    fn a_field_it_cannot_apply_is_named() {
        let mut body = docker_cli_body();
        body["BlkioWeight"] = json!(300);
        body["KernelMemory"] = json!(1);
        let e = Change::parse(&body).unwrap_err();
        assert!(matches!(
            e,
            Error::Container(ContainerError::CannotUpdate(_))
        ));
        let msg = e.to_string();
        assert!(msg.contains("BlkioWeight, KernelMemory"), "{msg}");
    }

    #[test]
    fn checks_as_docker_does() {
        let limited = HostConfig {
            memory: Some(64 << 20),
            memory_swap: Some(128 << 20),
            nano_cpus: Some(1_000_000_000),
            ..Default::default()
        };
        let more_memory = Change {
            memory: Some(256 << 20),
            ..Default::default()
        };
        assert!(
            more_memory
                .apply_to(&limited)
                .unwrap_err()
                .to_string()
                .contains("memoryswap")
        );
        let quota = Change {
            cpu_quota: Some(50_000),
            ..Default::default()
        };
        assert!(
            quota
                .apply_to(&limited)
                .unwrap_err()
                .to_string()
                .contains("NanoCPUs")
        );
        let policy = Change::parse(&json!({"RestartPolicy": {"Name": "always"}})).unwrap();
        assert!(!policy.touches_resources());
        let hc = policy.apply_to(&limited).unwrap();
        assert_eq!(
            hc.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::ALWAYS)
        );
        let bad =
            Change::parse(&json!({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}))
                .unwrap();
        assert!(bad.apply_to(&limited).is_err());
        assert!(Change::parse(&json!({"RestartPolicy": {"Name": "sometimes"}})).is_err());
    }

    #[test]
    fn unlimited_pids_are_sent_as_minus_one() {
        let c = Change::parse(&json!({"PidsLimit": 0})).unwrap();
        let hc = c.apply_to(&HostConfig::default()).unwrap();
        let host = HostFacts::read(1024, false);
        let v: Value = serde_json::from_slice(&c.runtime_resources(&hc, &host).unwrap()).unwrap();
        assert_eq!(v["pids"]["limit"], -1);
    }
}
