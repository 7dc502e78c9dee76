//! A container as a Deployment, or a StatefulSet when it owns a volume.

use serde_json::{Map, Value, json};

use super::{
    ANNOTATION_PREFIX, Object, WAIT_IMAGE, Warnings, container_labels, dns_name, is_label_key,
    is_label_value, network_label, selector,
};
use crate::project::normal::{Condition, Container, Healthcheck, MountKind, Project};
use crate::project::values::parse_duration;

/// Docker's `/dev/shm` size: a container with another size gets a memory
/// `emptyDir` there.
const DOCKER_SHM_SIZE: u64 = 64 * 1024 * 1024;

/// The Deployment or StatefulSet of container `name`. `owned` lists the
/// named volumes only this container mounts: it becomes a StatefulSet.
pub(super) fn workload(
    project: &Project,
    name: &str,
    c: &Container,
    image: &str,
    owned: &[String],
    w: &mut Warnings,
) -> Vec<Object> {
    let subject = format!("container {name}");
    let mut labels = container_labels(project, name);
    let mut annotations = Map::new();
    for (k, v) in &c.labels {
        if is_label_key(k) && is_label_value(v) {
            labels.entry(k.clone()).or_insert_with(|| json!(v));
        } else if is_label_key(k) {
            w.push(
                &subject,
                format!(
                    "label {k}: its value is no Kubernetes label value; carried as an annotation"
                ),
            );
            annotations.insert(k.clone(), json!(v));
        } else {
            w.push(
                &subject,
                format!("label {k}: the key is no Kubernetes label key; left out"),
            );
        }
    }
    let mut pod_labels = labels.clone();
    let mut nets: Vec<&String> = c.networks.keys().collect();
    nets.sort();
    for n in nets {
        pod_labels.insert(network_label(n), json!("true"));
    }

    let spec = pod_spec(project, name, c, image, w);
    let kind = if owned.is_empty() {
        "Deployment"
    } else {
        "StatefulSet"
    };
    let mut comment = None;
    if !owned.is_empty() {
        let why = format!(
            "a StatefulSet: it alone mounts volume {} (ReadWriteOnce); a StatefulSet stops its pod before starting the next, so two pods never claim it at once",
            owned.join(", ")
        );
        annotations.insert(format!("{ANNOTATION_PREFIX}/why-statefulset"), json!(why));
        comment = Some(format!("{name}: {why}"));
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    metadata.insert("labels".into(), Value::Object(labels));
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    let template = json!({
        "metadata": { "labels": pod_labels },
        "spec": spec,
    });
    let mut wspec = Map::new();
    wspec.insert("replicas".into(), json!(c.replicas));
    if kind == "StatefulSet" {
        wspec.insert("serviceName".into(), json!(name));
    }
    wspec.insert(
        "selector".into(),
        json!({ "matchLabels": selector(project, name) }),
    );
    wspec.insert("template".into(), template);
    vec![Object {
        kind,
        name: name.to_string(),
        comment,
        body: json!({
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": metadata,
            "spec": wspec,
        }),
    }]
}

fn pod_spec(
    project: &Project,
    name: &str,
    c: &Container,
    image: &str,
    w: &mut Warnings,
) -> Map<String, Value> {
    let subject = format!("container {name}");
    let mut container = Map::new();
    container.insert("name".into(), json!(name));
    container.insert("image".into(), json!(image));
    if let Some(e) = &c.entrypoint {
        container.insert("command".into(), json!(e));
    }
    if let Some(a) = &c.command {
        container.insert("args".into(), json!(a));
    }
    if let Some(d) = &c.workdir {
        container.insert("workingDir".into(), json!(d));
    }
    // Env: through the ConfigMap, but for names a ConfigMap key cannot hold.
    let (_, direct) = super::objects::split_env(c);
    if c.env.len() > direct.len() {
        container.insert(
            "envFrom".into(),
            json!([{ "configMapRef": { "name": super::objects::config_map_name(name) } }]),
        );
    }
    if !direct.is_empty() {
        let env: Vec<Value> = direct
            .iter()
            .map(|(k, v)| json!({ "name": k, "value": v }))
            .collect();
        container.insert("env".into(), Value::Array(env));
    }
    let ports = super::objects::container_ports(c);
    if !ports.is_empty() {
        let list: Vec<Value> = ports
            .iter()
            .map(|(port, proto)| {
                json!({ "containerPort": port, "protocol": proto.as_str().to_ascii_uppercase() })
            })
            .collect();
        container.insert("ports".into(), Value::Array(list));
    }
    if let Some(r) = resources(c, &subject, w) {
        container.insert("resources".into(), r);
    }
    if let Some(h) = &c.healthcheck {
        probes(h, &mut container, &subject, w);
    }
    if let Some(sc) = security_context(c, &subject, w) {
        container.insert("securityContext".into(), Value::Object(sc));
    }
    if c.tty {
        container.insert("tty".into(), json!(true));
    }
    if c.stdin_open == Some(true) {
        container.insert("stdin".into(), json!(true));
    }

    let mut volumes: Vec<Value> = Vec::new();
    let mut mounts: Vec<Value> = Vec::new();
    let mut anon = 0;
    let mut tmp = 0;
    for m in &c.volumes {
        let read_only = m.read_only == Some(true);
        match (m.kind, &m.source) {
            (MountKind::Volume, Some(v)) => {
                let vname = dns_name("volume-", v);
                let claim = v.as_str();
                if !volumes.iter().any(|x| x["name"] == json!(vname)) {
                    volumes.push(
                        json!({ "name": vname, "persistentVolumeClaim": { "claimName": claim } }),
                    );
                }
                mounts.push(mount(&vname, &m.target, read_only, None));
            }
            (MountKind::Volume, None) => {
                let vname = format!("anonymous-{anon}");
                anon += 1;
                w.push(
                    &subject,
                    format!(
                        "anonymous volume at {} becomes an emptyDir: it lives as long as the pod",
                        m.target
                    ),
                );
                volumes.push(json!({ "name": vname, "emptyDir": {} }));
                mounts.push(mount(&vname, &m.target, read_only, None));
            }
            (MountKind::Tmpfs, _) => {
                let vname = format!("tmpfs-{tmp}");
                tmp += 1;
                let mut dir = Map::new();
                dir.insert("medium".into(), json!("Memory"));
                if let Some(size) = m.size {
                    dir.insert("sizeLimit".into(), json!(quantity_bytes(size)));
                }
                if m.mode.is_some() {
                    w.push(
                        &subject,
                        format!(
                            "tmpfs mode at {} is not carried (an emptyDir has no mode); left out",
                            m.target
                        ),
                    );
                }
                volumes.push(json!({ "name": vname, "emptyDir": dir }));
                mounts.push(mount(&vname, &m.target, read_only, None));
            }
            (MountKind::Bind, source) => {
                w.push(
                    &subject,
                    format!(
                        "bind mount {}:{} is not carried (a host folder); left out",
                        source.as_deref().unwrap_or("?"),
                        m.target
                    ),
                );
            }
        }
    }
    for s in &c.secrets {
        let vname = dns_name("secret-", s);
        volumes.push(json!({ "name": vname, "secret": { "secretName": s } }));
        mounts.push(mount(
            &vname,
            &format!("{}/{s}", crate::project::desired::SECRETS_DIR),
            true,
            Some(s),
        ));
    }
    if let Some(size) = c.shm_size
        && size != DOCKER_SHM_SIZE
    {
        volumes.push(
            json!({ "name": "dshm", "emptyDir": { "medium": "Memory", "sizeLimit": quantity_bytes(size) } }),
        );
        mounts.push(mount("dshm", "/dev/shm", false, None));
    }
    if !mounts.is_empty() {
        container.insert("volumeMounts".into(), Value::Array(mounts));
    }

    let mut spec = Map::new();
    let inits = init_containers(project, name, c, w);
    if !inits.is_empty() {
        spec.insert("initContainers".into(), Value::Array(inits));
    }
    spec.insert("containers".into(), json!([container]));
    if !volumes.is_empty() {
        spec.insert("volumes".into(), Value::Array(volumes));
    }
    if let Some(h) = &c.hostname
        && h != name
    {
        spec.insert("hostname".into(), json!(h));
    }
    if !c.extra_hosts.is_empty() {
        let mut by_ip: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (host, ip) in &c.extra_hosts {
            by_ip.entry(ip.as_str()).or_default().push(host.as_str());
        }
        let aliases: Vec<Value> = by_ip
            .into_iter()
            .map(|(ip, hosts)| json!({ "ip": ip, "hostnames": hosts }))
            .collect();
        spec.insert("hostAliases".into(), Value::Array(aliases));
    }
    if !c.sysctls.is_empty() {
        let list: Vec<Value> = c
            .sysctls
            .iter()
            .map(|(k, v)| json!({ "name": k, "value": v }))
            .collect();
        spec.insert("securityContext".into(), json!({ "sysctls": list }));
    }
    if let Some(t) = &c.stop_timeout {
        match stop_seconds(t) {
            Some(s) => {
                spec.insert("terminationGracePeriodSeconds".into(), json!(s));
            }
            None => w.push(
                &subject,
                format!("stop_timeout {t} is no grace period Kubernetes takes; left out"),
            ),
        }
    }
    if let Some(p) = project
        .images
        .get(&c.image)
        .and_then(|i| i.platform.as_deref())
    {
        let mut parts = p.split('/');
        let mut sel = Map::new();
        if let Some(os) = parts.next() {
            sel.insert("kubernetes.io/os".into(), json!(os));
        }
        if let Some(arch) = parts.next() {
            sel.insert("kubernetes.io/arch".into(), json!(arch));
        }
        spec.insert("nodeSelector".into(), Value::Object(sel));
    }
    unmapped(c, &subject, w);
    spec
}

/// Warnings for what has no place in a pod.
fn unmapped(c: &Container, subject: &str, w: &mut Warnings) {
    if let Some(ws) = &c.workspace {
        w.push(
            subject,
            format!(
                "workspace {}:{} is not carried (a host folder kept in sync); left out: bake the files into the image",
                ws.source, ws.target
            ),
        );
    }
    match c.network_mode.as_deref() {
        Some("host") => w.push(
            subject,
            "network_mode host is not carried (host networking); the pod gets its own network",
        ),
        Some("none") => w.push(
            subject,
            "network_mode none is not carried; the pod gets a network",
        ),
        _ => {}
    }
    for (net, cn) in &c.networks {
        if let Some(ip) = &cn.ipv4_address {
            w.push(
                subject,
                format!("networks.{net}.ipv4_address {ip} is not carried (the cluster assigns pod addresses); left out"),
            );
        }
    }
    if let Some(r) = &c.restart
        && r.starts_with("on-failure")
    {
        w.push(
            subject,
            format!("restart {r} is not carried: a Deployment's pods always restart"),
        );
    }
    if let Some(s) = &c.stop_signal
        && s != "SIGTERM"
    {
        w.push(
            subject,
            format!("stop_signal {s} is not carried (Kubernetes 1.30 sends SIGTERM); left out"),
        );
    }
    for name in c.ulimits.keys() {
        w.push(
            subject,
            format!("ulimits.{name} is not carried (no per-pod limit in Kubernetes); left out"),
        );
    }
    if c.resources.pids.is_some() {
        w.push(
            subject,
            "resources.pids is not carried (the kubelet sets pid limits per node); left out",
        );
    }
    if c.resources.memory_swap.is_some() {
        w.push(subject, "resources.memory_swap is not carried; left out");
    }
    for opt in &c.security_opt {
        if opt != "no-new-privileges" && opt != "no-new-privileges:true" {
            w.push(
                subject,
                format!("security_opt {opt} is not carried; left out"),
            );
        }
    }
    if !c.log_options.is_empty() {
        w.push(
            subject,
            "log_options are not carried (the cluster's log rotation applies); left out",
        );
    }
    if c.publish_all == Some(true) {
        w.push(
            subject,
            "publish_all is not carried; exposed ports are reachable through the Service",
        );
    }
}

fn mount(volume: &str, path: &str, read_only: bool, sub_path: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(volume));
    m.insert("mountPath".into(), json!(path));
    if let Some(s) = sub_path {
        m.insert("subPath".into(), json!(s));
    }
    if read_only {
        m.insert("readOnly".into(), json!(true));
    }
    Value::Object(m)
}

/// A byte count as a Kubernetes quantity: in Gi, Mi or Ki when whole.
pub(super) fn quantity_bytes(bytes: u64) -> String {
    const KI: u64 = 1024;
    for (unit, size) in [("Gi", KI * KI * KI), ("Mi", KI * KI), ("Ki", KI)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

fn resources(c: &Container, subject: &str, w: &mut Warnings) -> Option<Value> {
    let mut limits = Map::new();
    if let Some(m) = c.resources.memory {
        limits.insert("memory".into(), json!(quantity_bytes(m)));
    }
    if let Some(cpus) = c.resources.cpus {
        let milli = (cpus * 1000.0).round();
        if milli >= 1.0 && milli <= i64::MAX as f64 {
            limits.insert("cpu".into(), json!(format!("{}m", milli as i64)));
        } else {
            w.push(
                subject,
                format!("resources.cpus {cpus} is below a millicore; left out"),
            );
        }
    }
    if limits.is_empty() {
        return None;
    }
    // Docker's limits are what the container gets: requests as much, so the
    // scheduler places the pod where it fits.
    Some(json!({ "limits": limits.clone(), "requests": limits }))
}

/// Whole seconds of a duration, at least 1 (Kubernetes counts probes in
/// seconds).
fn seconds(d: &str) -> Option<i64> {
    let d = parse_duration(d).ok()?;
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i64::try_from(s.max(1)).ok()
}

fn stop_seconds(t: &str) -> Option<i64> {
    if let Ok(n) = t.parse::<i64>() {
        return (n >= 0).then_some(n);
    }
    let d = parse_duration(t).ok()?;
    i64::try_from(d.as_secs()).ok()
}

fn probes(h: &Healthcheck, container: &mut Map<String, Value>, subject: &str, w: &mut Warnings) {
    let command: Vec<String> = match h.cmd.split_first() {
        None => return,
        Some((first, _)) if first == "NONE" => return,
        Some((first, rest)) if first == "CMD" => rest.to_vec(),
        Some((first, rest)) if first == "CMD-SHELL" => {
            let mut v = vec!["sh".to_string(), "-c".to_string()];
            v.push(rest.join(" "));
            v
        }
        Some(_) => h.cmd.clone(),
    };
    if command.is_empty() {
        return;
    }
    let period = h.interval.as_deref().and_then(seconds).unwrap_or(30);
    let timeout = h.timeout.as_deref().and_then(seconds).unwrap_or(30);
    let retries = h.retries.unwrap_or(3).max(1);
    if h.interval
        .as_deref()
        .is_some_and(|i| parse_duration(i).is_ok_and(|d| d.subsec_nanos() > 0 || d.as_secs() == 0))
    {
        w.push(
            subject,
            format!("healthcheck.interval is rounded up to {period}s (probes count whole seconds)"),
        );
    }
    let probe = json!({
        "exec": { "command": command },
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": retries,
    });
    container.insert("livenessProbe".into(), probe.clone());
    container.insert("readinessProbe".into(), probe.clone());
    // The start period: failures do not count until the first success,
    // which is what a startup probe does.
    if let Some(start) = h
        .start_period
        .as_deref()
        .and_then(|s| parse_duration(s).ok())
        && !start.is_zero()
    {
        let grace = i64::try_from(start.as_secs().div_ceil(period.max(1) as u64)).unwrap_or(1);
        let mut startup = probe;
        startup["failureThreshold"] = json!(grace + retries);
        container.insert("startupProbe".into(), startup);
    }
}

fn security_context(c: &Container, subject: &str, w: &mut Warnings) -> Option<Map<String, Value>> {
    let mut sc = Map::new();
    if let Some(user) = &c.user {
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        match (u.parse::<i64>(), g.map(str::parse::<i64>)) {
            (Ok(uid), None) => {
                sc.insert("runAsUser".into(), json!(uid));
            }
            (Ok(uid), Some(Ok(gid))) => {
                sc.insert("runAsUser".into(), json!(uid));
                sc.insert("runAsGroup".into(), json!(gid));
            }
            _ => w.push(
                subject,
                format!(
                    "user {user} is not carried: Kubernetes takes numeric ids only (runAsUser/runAsGroup); the image's user applies"
                ),
            ),
        }
    }
    let mut caps = Map::new();
    if !c.cap_add.is_empty() {
        caps.insert("add".into(), json!(capabilities(&c.cap_add)));
    }
    if !c.cap_drop.is_empty() {
        caps.insert("drop".into(), json!(capabilities(&c.cap_drop)));
    }
    if !caps.is_empty() {
        sc.insert("capabilities".into(), Value::Object(caps));
    }
    if c.privileged {
        sc.insert("privileged".into(), json!(true));
        w.push(
            subject,
            "privileged is carried as securityContext.privileged; clusters enforcing the baseline or restricted Pod Security Standard refuse the pod",
        );
    }
    if c.read_only {
        sc.insert("readOnlyRootFilesystem".into(), json!(true));
    }
    if c.security_opt
        .iter()
        .any(|o| o == "no-new-privileges" || o == "no-new-privileges:true")
    {
        sc.insert("allowPrivilegeEscalation".into(), json!(false));
    }
    (!sc.is_empty()).then_some(sc)
}

fn capabilities(list: &[String]) -> Vec<String> {
    list.iter()
        .map(|c| {
            let up = c.to_ascii_uppercase();
            up.strip_prefix("CAP_").map_or(up.clone(), str::to_string)
        })
        .collect()
}

/// An init container per `healthy` dependency, waiting until the
/// dependency's Service answers: its readiness probe is its healthcheck,
/// so the Service has an endpoint only once the dependency is healthy
/// (`nc -z` on its first TCP port, or `nc ... -e true` where a busybox `nc`
/// has no `-z`; a dependency without one has a headless
/// Service, whose name resolves only then: `nslookup`).
fn init_containers(project: &Project, name: &str, c: &Container, w: &mut Warnings) -> Vec<Value> {
    let subject = format!("container {name}");
    let mut out = Vec::new();
    for (dep, cond) in &c.depends_on {
        match cond {
            Condition::Healthy => {
                let ports = project
                    .containers
                    .get(dep)
                    .map(super::objects::container_ports)
                    .unwrap_or_default();
                let tcp = ports
                    .iter()
                    .find(|(_, proto)| *proto == crate::project::normal::Protocol::Tcp);
                let script = match tcp {
                    Some((port, _)) => format!(
                        "until nc -z -w 2 {dep} {port} 2>/dev/null || nc -w 2 {dep} {port} -e true 2>/dev/null; do echo waiting for {dep}; sleep 2; done"
                    ),
                    // No port: its headless Service resolves only once a
                    // pod is ready.
                    None if ports.is_empty() => format!(
                        "until nslookup {dep} >/dev/null 2>&1; do echo waiting for {dep}; sleep 2; done"
                    ),
                    None => {
                        w.push(
                            &subject,
                            format!(
                                "depends_on {dep} (healthy) is not carried: {dep} has no TCP port to wait on, and its Service's name resolves before it is ready; left out"
                            ),
                        );
                        continue;
                    }
                };
                out.push(json!({
                    "name": dns_name("wait-for-", dep),
                    "image": WAIT_IMAGE,
                    "command": ["sh", "-c", script],
                }));
            }
            Condition::Started => w.push(
                &subject,
                format!(
                    "depends_on {dep} (started) is not carried: Kubernetes starts pods in no order; left out (the program must retry until {dep} answers)"
                ),
            ),
            Condition::Completed => w.push(
                &subject,
                format!(
                    "depends_on {dep} (completed) is not carried: a Deployment cannot wait for another to finish; left out (run {dep} as a Job or an init container)"
                ),
            ),
        }
    }
    out
}
