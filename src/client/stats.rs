//! The calls of `servin stats`, `top`, `pause`, `unpause`, `update` and
//! `system df`, and the figures `docker stats` shows, computed from the
//! engine's stats as the docker CLI computes them (CPU % from the
//! difference to the previous sample, memory without the inactive page
//! cache, network and block I/O summed).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use bollard_stubs::models::{
    ContainerPruneResponse, ContainerTopResponse, ContainerUpdateBody, ContainerUpdateResponse,
};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde::Serialize;
use serde_json::Value;

use super::{Engine, Error, encode, engine_error};

/// Runs every future at once on the current task; their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *slot = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

impl Engine {
    async fn stats_async(&self, id: &str) -> Result<Value, Error> {
        let step = format!("stats of {id}");
        let path = format!("/containers/{}/stats?stream=false", encode(id));
        let resp = self
            .send_async(Method::GET, &path, &[], Bytes::new(), &step)
            .await?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|source| Error::Http {
                addr: self.addr.to_string(),
                step: step.clone(),
                source,
            })?;
        if !status.is_success() {
            return Err(engine_error(&step, status, &body));
        }
        serde_json::from_slice(&body).map_err(|source| Error::Decode { step, source })
    }

    /// `GET /containers/{id}/stats?stream=false` for every container at
    /// once (the engine fills `precpu_stats` from a second sample).
    pub fn stats_once(&self, ids: &[String]) -> Vec<Result<Value, Error>> {
        self.block_on(join_all(
            ids.iter().map(|id| self.stats_async(id)).collect(),
        ))
    }

    /// `GET /containers/{id}/top?ps_args=`.
    pub fn top(&self, id: &str, ps_args: Option<&str>) -> Result<ContainerTopResponse, Error> {
        let q = ps_args
            .map(|a| format!("?ps_args={}", encode(a)))
            .unwrap_or_default();
        self.json(
            Method::GET,
            &format!("/containers/{}/top{q}", encode(id)),
            &format!("top {id}"),
        )
    }

    fn post_empty(&self, path: &str, step: &str) -> Result<StatusCode, Error> {
        let resp = self.send(Method::POST, path, &[], Bytes::new(), step)?;
        let resp = self.check(resp, step)?;
        let status = resp.status();
        self.body(resp, step)?;
        Ok(status)
    }

    /// `POST /containers/prune`: every stopped container.
    pub fn prune_containers(&self) -> Result<ContainerPruneResponse, Error> {
        self.json(Method::POST, "/containers/prune", "prune containers")
    }

    /// `POST /containers/{id}/rename?name=NEW`.
    pub fn rename_container(&self, id: &str, new_name: &str) -> Result<(), Error> {
        let path = format!(
            "/containers/{}/rename?name={}",
            encode(id),
            encode(new_name)
        );
        self.post_empty(&path, &format!("rename {id}")).map(|_| ())
    }

    /// `POST /containers/{id}/pause`.
    pub fn pause_container(&self, id: &str) -> Result<(), Error> {
        let path = format!("/containers/{}/pause", encode(id));
        self.post_empty(&path, &format!("pause {id}")).map(|_| ())
    }

    /// `POST /containers/{id}/unpause`.
    pub fn unpause_container(&self, id: &str) -> Result<(), Error> {
        let path = format!("/containers/{}/unpause", encode(id));
        self.post_empty(&path, &format!("unpause {id}")).map(|_| ())
    }

    /// `POST /containers/{id}/update`; the engine's warnings.
    pub fn update_container(
        &self,
        id: &str,
        body: &ContainerUpdateBody,
    ) -> Result<Vec<String>, Error> {
        let path = format!("/containers/{}/update", encode(id));
        let r: ContainerUpdateResponse = self.post_json(&path, body, &format!("update {id}"))?;
        Ok(r.warnings.unwrap_or_default())
    }

    /// `GET /system/df`.
    pub fn disk_usage(&self) -> Result<Value, Error> {
        self.json(Method::GET, "/system/df", "disk usage")
    }
}

/// One row of `docker stats`, with its keys as `docker stats --format
/// json` writes them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatsRow {
    pub block_i_o: String,
    #[serde(rename = "CPUPerc")]
    pub cpu_perc: String,
    pub container: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub mem_perc: String,
    pub mem_usage: String,
    pub name: String,
    #[serde(rename = "NetIO")]
    pub net_i_o: String,
    #[serde(rename = "PIDs")]
    pub pids: String,
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The CPU percentage as the docker CLI computes it: the container's CPU
/// time over the host's since the previous sample, times the CPUs.
pub fn cpu_percent(s: &Value) -> f64 {
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta =
        num(&cpu["cpu_usage"]["total_usage"]) as f64 - num(&pre["cpu_usage"]["total_usage"]) as f64;
    let system_delta = num(&cpu["system_cpu_usage"]) as f64 - num(&pre["system_cpu_usage"]) as f64;
    let mut cpus = num(&cpu["online_cpus"]) as f64;
    if cpus == 0.0 {
        cpus = cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0.0, |a| a.len() as f64);
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * cpus * 100.0
    } else {
        0.0
    }
}

/// Memory in use without the inactive page cache (cgroup v1:
/// `total_inactive_file`; v2: `inactive_file`), as the docker CLI shows it.
pub fn memory_used(s: &Value) -> u64 {
    let m = &s["memory_stats"];
    let usage = num(&m["usage"]);
    let stats = &m["stats"];
    let inactive = if stats.get("total_inactive_file").is_some() {
        num(&stats["total_inactive_file"])
    } else {
        num(&stats["inactive_file"])
    };
    if inactive < usage {
        usage - inactive
    } else {
        usage
    }
}

/// Bytes received and sent over every interface.
pub fn network_io(s: &Value) -> (u64, u64) {
    s["networks"].as_object().map_or((0, 0), |nets| {
        nets.values().fold((0, 0), |(rx, tx), n| {
            (rx + num(&n["rx_bytes"]), tx + num(&n["tx_bytes"]))
        })
    })
}

/// Bytes read and written on block devices.
pub fn block_io(s: &Value) -> (u64, u64) {
    s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .map_or((0, 0), |entries| {
            entries.iter().fold((0, 0), |(r, w), e| {
                match e["op"].as_str().and_then(|o| o.chars().next()) {
                    Some('r' | 'R') => (r + num(&e["value"]), w),
                    Some('w' | 'W') => (r, w + num(&e["value"])),
                    _ => (r, w),
                }
            })
        })
}

/// Go's `%.Ng`: `precision` significant digits, trailing zeros dropped.
fn significant(v: f64, precision: i32) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (precision - 1 - magnitude).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn scaled(v: f64, base: f64, units: &[&str], precision: i32) -> String {
    let mut v = v;
    let mut i = 0;
    while v >= base && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    format!("{}{}", significant(v, precision), units[i])
}

/// Binary sizes as the docker CLI writes memory: `1.5MiB`, `256MiB`.
pub fn bytes_size(n: u64) -> String {
    scaled(
        n as f64,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB"],
        4,
    )
}

/// Decimal sizes as the docker CLI writes I/O: `1.2kB`, `3MB`.
pub fn human_size(n: u64) -> String {
    scaled(n as f64, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], 3)
}

/// Decimal sizes as `docker system df` writes them: `1.234MB`.
pub fn disk_size(n: u64) -> String {
    scaled(n as f64, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], 4)
}

/// The row `docker stats` shows for one sample (zeroed figures for a
/// container that is not running).
pub fn row(s: &Value) -> StatsRow {
    let id = s["id"].as_str().unwrap_or_default();
    let name = s["name"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('/');
    let used = memory_used(s);
    let limit = num(&s["memory_stats"]["limit"]);
    let mem_perc = if limit > 0 {
        used as f64 / limit as f64 * 100.0
    } else {
        0.0
    };
    let (rx, tx) = network_io(s);
    let (read, write) = block_io(s);
    StatsRow {
        block_i_o: format!("{} / {}", human_size(read), human_size(write)),
        cpu_perc: format!("{:.2}%", cpu_percent(s)),
        container: id.chars().take(12).collect(),
        id: id.to_string(),
        mem_perc: format!("{mem_perc:.2}%"),
        mem_usage: format!("{} / {}", bytes_size(used), bytes_size(limit)),
        name: name.to_string(),
        net_i_o: format!("{} / {}", human_size(rx), human_size(tx)),
        pids: num(&s["pids_stats"]["current"]).to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn sizes_as_the_docker_cli_writes_them() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(256 << 20), "256MiB");
        assert_eq!(bytes_size(1536 * 1024), "1.5MiB");
        assert_eq!(bytes_size(52_428_800 + 123_456), "50.12MiB");
        assert_eq!(human_size(1234), "1.23kB");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(3_000_000), "3MB");
    }

    #[test]
    fn a_row_from_a_sample() {
        let s = json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 3 << 20, "limit": 8 << 20, "stats": {"total_inactive_file": 1 << 20}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 500}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 4096},
                {"major": 8, "minor": 0, "op": "Write", "value": 8192},
                {"major": 8, "minor": 0, "op": "Total", "value": 12288}
            ]},
            "pids_stats": {"current": 3}
        });
        let r = row(&s);
        assert_eq!(r.cpu_perc, "40.00%");
        assert_eq!(r.mem_usage, "2MiB / 8MiB");
        assert_eq!(r.mem_perc, "25.00%");
        assert_eq!(r.net_i_o, "2kB / 500B");
        assert_eq!(r.block_i_o, "4.1kB / 8.19kB");
        assert_eq!(r.pids, "3");
        assert_eq!(r.name, "web");
        assert_eq!(r.container, "0123456789ab");
        let v = serde_json::to_value(&r).unwrap();
        for key in [
            "BlockIO",
            "CPUPerc",
            "Container",
            "ID",
            "MemPerc",
            "MemUsage",
            "Name",
            "NetIO",
            "PIDs",
        ] {
            assert!(v.get(key).is_some(), "{key}: {v}");
        }
    }

    #[test]
    fn a_stopped_container_shows_zeros() {
        let r = row(&json!({"id": "abc", "name": "/x", "memory_stats": {}}));
        assert_eq!(r.cpu_perc, "0.00%");
        assert_eq!(r.mem_usage, "0B / 0B");
        assert_eq!(r.pids, "0");
    }
}
