//! The shape of Docker's `GET /containers/{id}/json`: every field the Docker
//! daemon fills in, with its default, whatever the client sent at create.
//!
//! Clients read fields, not only their values: docker-py's foreground
//! `containers.run` reads `HostConfig.LogConfig.Type`, Compose compares
//! `Config.Entrypoint` and `HostConfig.RestartPolicy`, and a missing key is
//! a `KeyError` where Docker has `null`. The API models serialise an unset
//! field by leaving it out, so the answer built from them is completed here:
//! a key Docker always fills gets its default when it is missing or null;
//! a key Docker shows as `null` is added as `null`.

use serde_json::{Map, Value, json};

use crate::runtime::spec::mounts::DEFAULT_SHM;

/// Completes an inspect answer in place; `runtime` names the OCI runtime
/// that runs the container.
pub fn complete(inspect: &mut Value, runtime: &str) {
    let Some(top) = inspect.as_object_mut() else {
        return;
    };
    nulls(top, &["ExecIDs", "Node"]);
    defaults(top, &[("Mounts", json!([])), ("RestartCount", json!(0))]);
    if let Some(hc) = object(top, "HostConfig") {
        host_config(hc, runtime);
    }
    if let Some(config) = object(top, "Config") {
        defaults(
            config,
            &[
                ("Hostname", json!("")),
                ("Domainname", json!("")),
                ("User", json!("")),
                ("AttachStdin", json!(false)),
                ("AttachStdout", json!(false)),
                ("AttachStderr", json!(false)),
                ("Tty", json!(false)),
                ("OpenStdin", json!(false)),
                ("StdinOnce", json!(false)),
                ("Env", json!([])),
                ("WorkingDir", json!("")),
                ("Labels", json!({})),
            ],
        );
        nulls(
            config,
            &["Cmd", "Image", "Volumes", "Entrypoint", "OnBuild"],
        );
    }
    if let Some(state) = object(top, "State") {
        defaults(
            state,
            &[
                ("Paused", json!(false)),
                ("OOMKilled", json!(false)),
                ("Error", json!("")),
            ],
        );
    }
}

fn host_config(hc: &mut Map<String, Value>, runtime: &str) {
    // A log config without a driver is the default driver's.
    if let Some(log) = object_or_insert(hc, "LogConfig") {
        if log
            .get("Type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            log.insert("Type".into(), json!("json-file"));
        }
        defaults(log, &[("Config", json!({}))]);
    }
    if let Some(restart) = object_or_insert(hc, "RestartPolicy") {
        if restart
            .get("Name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            restart.insert("Name".into(), json!("no"));
        }
        defaults(restart, &[("MaximumRetryCount", json!(0))]);
    }
    if hc
        .get("NetworkMode")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        hc.insert("NetworkMode".into(), json!("default"));
    }
    if hc
        .get("Runtime")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        hc.insert("Runtime".into(), json!(runtime));
    }
    if hc
        .get("ShmSize")
        .and_then(Value::as_i64)
        .is_none_or(|s| s == 0)
    {
        hc.insert("ShmSize".into(), json!(DEFAULT_SHM));
    }
    defaults(
        hc,
        &[
            ("ContainerIDFile", json!("")),
            ("PortBindings", json!({})),
            ("AutoRemove", json!(false)),
            ("VolumeDriver", json!("")),
            ("ConsoleSize", json!([0, 0])),
            ("Dns", json!([])),
            ("DnsOptions", json!([])),
            ("DnsSearch", json!([])),
            ("IpcMode", json!("private")),
            ("Cgroup", json!("")),
            ("OomScoreAdj", json!(0)),
            ("PidMode", json!("")),
            ("Privileged", json!(false)),
            ("PublishAllPorts", json!(false)),
            ("ReadonlyRootfs", json!(false)),
            ("UTSMode", json!("")),
            ("UsernsMode", json!("")),
            ("Isolation", json!("")),
            ("CpuShares", json!(0)),
            ("Memory", json!(0)),
            ("NanoCpus", json!(0)),
            ("CgroupParent", json!("")),
            ("BlkioWeight", json!(0)),
            ("CpuPeriod", json!(0)),
            ("CpuQuota", json!(0)),
            ("CpuRealtimePeriod", json!(0)),
            ("CpuRealtimeRuntime", json!(0)),
            ("CpusetCpus", json!("")),
            ("CpusetMems", json!("")),
            ("Devices", json!([])),
            ("MemoryReservation", json!(0)),
            ("MemorySwap", json!(0)),
            ("CpuCount", json!(0)),
            ("CpuPercent", json!(0)),
            ("IOMaximumIOps", json!(0)),
            ("IOMaximumBandwidth", json!(0)),
        ],
    );
    nulls(
        hc,
        &[
            "Binds",
            "VolumesFrom",
            "CapAdd",
            "CapDrop",
            "ExtraHosts",
            "GroupAdd",
            "Links",
            "SecurityOpt",
            "BlkioWeightDevice",
            "BlkioDeviceReadBps",
            "BlkioDeviceWriteBps",
            "BlkioDeviceReadIOps",
            "BlkioDeviceWriteIOps",
            "DeviceCgroupRules",
            "DeviceRequests",
            "MemorySwappiness",
            "OomKillDisable",
            "PidsLimit",
            "Ulimits",
        ],
    );
}

/// Sets each key that is missing or null to its default.
fn defaults(map: &mut Map<String, Value>, pairs: &[(&str, Value)]) {
    for (key, value) in pairs {
        match map.get(*key) {
            None | Some(Value::Null) => {
                map.insert((*key).to_string(), value.clone());
            }
            Some(_) => {}
        }
    }
}

/// Adds each missing key as `null`.
fn nulls(map: &mut Map<String, Value>, keys: &[&str]) {
    for key in keys {
        map.entry(*key).or_insert(Value::Null);
    }
}

fn object<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    map.get_mut(key).and_then(Value::as_object_mut)
}

/// The object at `key`, made empty when it is missing or not an object.
fn object_or_insert<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    if !map.get(key).is_some_and(Value::is_object) {
        map.insert(key.to_string(), Value::Object(Map::new()));
    }
    object(map, key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bare_create_gets_dockers_defaults() {
        // What docker-py's create leaves: only the network mode.
        let mut v = json!({
            "Id": "abc",
            "HostConfig": {"NetworkMode": "default"},
            "Config": {"Image": "box", "Cmd": ["true"]},
            "State": {"Status": "created", "Running": false},
        });
        complete(&mut v, "runc");
        let hc = &v["HostConfig"];
        assert_eq!(hc["LogConfig"], json!({"Type": "json-file", "Config": {}}));
        assert_eq!(
            hc["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
        assert_eq!(hc["NetworkMode"], "default");
        assert_eq!(hc["Runtime"], "runc");
        assert_eq!(hc["ShmSize"], DEFAULT_SHM);
        assert_eq!(hc["PortBindings"], json!({}));
        assert!(hc.as_object().unwrap().contains_key("Binds"));
        assert_eq!(hc["Binds"], Value::Null);
        let config = &v["Config"];
        assert_eq!(config["Tty"], false);
        assert!(config.as_object().unwrap().contains_key("Entrypoint"));
        assert_eq!(config["Entrypoint"], Value::Null);
        assert_eq!(config["Cmd"], json!(["true"]));
        assert_eq!(config["Labels"], json!({}));
        assert_eq!(v["Mounts"], json!([]));
        assert_eq!(v["State"]["OOMKilled"], false);
    }

    #[test]
    fn what_the_client_set_stays() {
        let mut v = json!({
            "HostConfig": {
                "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m"}},
                "RestartPolicy": {"Name": "always"},
                "NetworkMode": "mynet",
                "ShmSize": 1024,
                "Binds": ["/a:/b"],
            },
            "Config": {"Tty": true, "Entrypoint": ["/ep"]},
        });
        complete(&mut v, "runc");
        let hc = &v["HostConfig"];
        assert_eq!(hc["LogConfig"]["Config"]["max-size"], "1m");
        assert_eq!(
            hc["RestartPolicy"],
            json!({"Name": "always", "MaximumRetryCount": 0})
        );
        assert_eq!(hc["NetworkMode"], "mynet");
        assert_eq!(hc["ShmSize"], 1024);
        assert_eq!(hc["Binds"], json!(["/a:/b"]));
        assert_eq!(v["Config"]["Tty"], true);
        assert_eq!(v["Config"]["Entrypoint"], json!(["/ep"]));
    }
}
