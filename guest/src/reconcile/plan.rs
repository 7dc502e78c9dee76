//! Planning: what exists (the project's containers found by label) and what
//! the project wants, to a [`Plan`] of actions with reasons.
//!
//! For each wanted container (service and replica) the planner picks the
//! existing container with the same `servin.name` and `servin.replica`
//! labels, preferring one with the wanted config hash, then a running one:
//! - none: `create`;
//! - config hash (or the image digest, when the desired state knows it)
//!   differs: `recreate`, naming the fields whose digests differ;
//! - same, stopped: `start`; same, running: `keep`.
//!
//! Every other container of the project is removed: a service no longer in
//! the file, a replica beyond `replicas`, a second container for the same
//! replica (left by an interrupted apply), or one whose labels do not say
//! which service and replica it is.
//!
//! Around the containers, [`plan`] decides the rest of what `up` does, so
//! `servin plan` shows all of it:
//! - a stopped container under a recreate's temporary name (an interrupted
//!   apply never renamed it) is removed as a leftover, first;
//! - each network and volume is created when missing, kept when its config
//!   hash label matches, and otherwise refused with the reason (a changed
//!   one, a network of another project, a missing `external` one); with
//!   `recreate_volumes` a changed one is recreated, and the containers using
//!   it are recreated with it, the reason naming it;
//! - the images that containers to make need and the store lacks are
//!   pulled;
//! - the project's networks the file no longer names are removed.
//!
//! `up SERVICE...` plans only those services and what they depend on
//! ([`select`]), and then leaves orphans alone.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use servin_proto::projection::FieldDigests;
use servin_proto::{
    Action, ActionKind, DesiredContainer, DesiredProject, ObjectKind, Plan, TEMPORARY_SUFFIX,
    labels,
};

use super::observe::{Observation, Observed, ObservedObject, image_of};

/// The projection field named when only the image digest changed.
pub const IMAGE_DIGEST_FIELD: &str = "image-digest";

/// What a plan is limited to, and what it may replace.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these services and what they depend on; orphans are then left
    /// alone. Empty: the whole project.
    pub services: Vec<String>,
    /// Replace a project volume or network whose definition changed (with
    /// the containers using it) instead of refusing; a volume's data is
    /// lost.
    pub recreate_volumes: bool,
}

/// The reason given to the removal of a leftover of an interrupted
/// recreate.
pub const LEFTOVER: &str = "left by an interrupted apply";

/// The refusal of a network whose definition changed.
pub const NETWORK_CHANGED: &str = "its definition changed (subnet, gateway, internal or labels); a network is not replaced under its containers: run `servin up --recreate-volumes` to replace it (its containers are recreated), or `servin down`, then `servin up`";

/// The refusal of a volume whose definition changed.
pub const VOLUME_CHANGED: &str = "its definition changed; up never replaces a volume silently, as its data would be lost: run `servin up --recreate-volumes` to start it afresh (its containers are recreated)";

/// Plans everything `up` does for `desired` against `observed`, limited by
/// `options`. Pure and deterministic: the same inputs give the same plan.
/// The error names a selected service the project does not have.
pub fn plan(
    desired: &DesiredProject,
    observed: &Observation,
    options: &Options,
) -> Result<Plan, String> {
    let selected = select(desired, &options.services)?;
    let whole = options.services.is_empty();
    let (leftovers, present): (Vec<&Observed>, Vec<&Observed>) = observed
        .containers
        .iter()
        .partition(|o| is_leftover(&desired.name, o));
    let present: Vec<Observed> = present.into_iter().cloned().collect();

    let mut resources = Vec::new();
    // What is replaced, as its dependants' reason names it, and the keys
    // (IDs or names) a container uses it by.
    let mut replaced: Vec<(String, Vec<String>)> = Vec::new();
    for n in &desired.networks {
        let a = network_action(desired, n, observed, options.recreate_volumes);
        if a.kind == ActionKind::Recreate {
            let keys = a.id.iter().cloned().chain([a.name.clone()]).collect();
            replaced.push((format!("network {}", a.name), keys));
        }
        resources.push(a);
    }
    for v in &desired.volumes {
        let a = volume_action(v, observed, options.recreate_volumes);
        if a.kind == ActionKind::Recreate {
            replaced.push((format!("volume {}", a.name), vec![a.name.clone()]));
        }
        resources.push(a);
    }

    let mut actions: Vec<Action> = plan_containers(desired, &present)
        .actions
        .into_iter()
        .filter(|a| match &a.service {
            Some(s) if a.kind != ActionKind::Remove || !whole => selected.contains(s),
            _ => whole,
        })
        .collect();
    for a in actions
        .iter_mut()
        .filter(|a| matches!(a.kind, ActionKind::Keep | ActionKind::Start))
    {
        let Some(o) =
            a.id.as_deref()
                .and_then(|id| present.iter().find(|o| o.id == id))
        else {
            continue;
        };
        let uses = |keys: &[String]| {
            o.networks
                .iter()
                .chain(&o.volumes)
                .any(|k| keys.contains(k))
        };
        if let Some((what, _)) = replaced.iter().find(|(_, keys)| uses(keys)) {
            a.kind = ActionKind::Recreate;
            a.reason = format!("{what} is replaced");
        }
    }
    for o in leftovers {
        let (service, replica) = identity(o).map_or((None, None), |(s, r)| (Some(s), Some(r)));
        actions.push(remove(o, service, replica, LEFTOVER.to_string()));
    }

    let mut pulls: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for a in actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Create | ActionKind::Recreate))
    {
        if let Some(c) = desired.containers.iter().find(|c| c.name == a.name) {
            let image = image_of(c);
            // A pending image is the CLI's to build, never pulled.
            if !observed.images.contains(&image) && !desired.pending_images.contains(&c.image) {
                pulls.entry(image).or_default().push(a.name.as_str());
            }
        }
    }
    for (image, users) in pulls {
        resources.push(Action {
            kind: ActionKind::Pull,
            object: ObjectKind::Image,
            name: image,
            service: None,
            replica: None,
            id: None,
            reason: format!("missing, needed by {}", users.join(", ")),
            changed: Vec::new(),
        });
    }

    if whole {
        let named: BTreeSet<&str> = desired
            .networks
            .iter()
            .map(|n| n.create.name.as_str())
            .collect();
        for n in &observed.networks {
            if n.labels.get(labels::PROJECT) == Some(&desired.name)
                && !named.contains(n.name.as_str())
            {
                resources.push(Action {
                    kind: ActionKind::Remove,
                    object: ObjectKind::Network,
                    name: n.name.clone(),
                    service: n.labels.get(labels::NAME).cloned(),
                    replica: None,
                    id: Some(n.id.clone()),
                    reason: "no longer in the project".to_string(),
                    changed: Vec::new(),
                });
            }
        }
    }
    Ok(Plan {
        project: desired.name.clone(),
        actions,
        resources,
    })
}

/// Whether `o` is the new container of a recreate that an interrupted
/// apply never renamed: stopped, under the temporary name, not the name
/// its labels call for.
fn is_leftover(project: &str, o: &Observed) -> bool {
    let canonical = o
        .labels
        .get(labels::NAME)
        .zip(o.labels.get(labels::REPLICA))
        .map(|(s, r)| format!("{project}-{s}-{r}"));
    !o.running
        && canonical.as_deref() != Some(o.name.as_str())
        && o.name.ends_with(TEMPORARY_SUFFIX)
}

fn resource(object: ObjectKind, name: &str, logical: &str) -> Action {
    Action {
        kind: ActionKind::Keep,
        object,
        name: name.to_string(),
        service: Some(logical.to_string()),
        replica: None,
        id: None,
        reason: "up to date".to_string(),
        changed: Vec::new(),
    }
}

fn network_action(
    desired: &DesiredProject,
    n: &servin_proto::DesiredNetwork,
    observed: &Observation,
    recreate: bool,
) -> Action {
    let name = n.create.name.as_str();
    let mut a = resource(ObjectKind::Network, name, &n.name);
    let existing = observed.networks.iter().find(|o| o.name == name);
    a.id = existing.map(|o| o.id.clone());
    let (kind, reason) = match existing {
        Some(_) if n.external => (ActionKind::Keep, "external".to_string()),
        None if n.external => (
            ActionKind::Refuse,
            format!(
                "network {name} is external (made outside the project) but does not exist: create it first"
            ),
        ),
        None => (ActionKind::Create, "missing".to_string()),
        Some(o) if o.labels.get(labels::PROJECT) != Some(&desired.name) => (
            ActionKind::Refuse,
            format!(
                "a network named {name} exists but does not belong to project {}",
                desired.name
            ),
        ),
        Some(o) if changed(o, n.create.labels.as_ref()) && recreate => {
            (ActionKind::Recreate, "definition changed".to_string())
        }
        Some(o) if changed(o, n.create.labels.as_ref()) => {
            (ActionKind::Refuse, NETWORK_CHANGED.to_string())
        }
        Some(_) => (ActionKind::Keep, "up to date".to_string()),
    };
    a.kind = kind;
    a.reason = reason;
    a
}

fn volume_action(
    v: &servin_proto::DesiredVolume,
    observed: &Observation,
    recreate: bool,
) -> Action {
    let name = v.create.name.clone().unwrap_or_else(|| v.name.clone());
    let mut a = resource(ObjectKind::Volume, &name, &v.name);
    let existing = observed.volumes.iter().find(|o| o.name == name);
    a.id = existing.map(|o| o.id.clone());
    let (kind, reason) = match existing {
        Some(_) if v.external => (ActionKind::Keep, "external".to_string()),
        None if v.external => (
            ActionKind::Refuse,
            format!(
                "volume {name} is external (made outside the project) but does not exist: create it first"
            ),
        ),
        None => (ActionKind::Create, "missing".to_string()),
        Some(o) if changed(o, v.create.labels.as_ref()) && recreate => {
            (ActionKind::Recreate, "definition changed".to_string())
        }
        Some(o) if changed(o, v.create.labels.as_ref()) => {
            (ActionKind::Refuse, VOLUME_CHANGED.to_string())
        }
        Some(_) => (ActionKind::Keep, "up to date".to_string()),
    };
    a.kind = kind;
    a.reason = reason;
    a
}

/// Whether an existing network's or volume's config hash label differs
/// from the wanted one (both present: objects made by hand have none).
fn changed(existing: &ObservedObject, wanted: Option<&HashMap<String, String>>) -> bool {
    match (
        existing.labels.get(labels::CONFIG_HASH),
        wanted.and_then(|w| w.get(labels::CONFIG_HASH)),
    ) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// Plans the containers of `desired` against `observed` (the containers
/// labelled with the project, leftovers aside). Pure: the same inputs give
/// the same plan.
pub fn plan_containers(desired: &DesiredProject, observed: &[Observed]) -> Plan {
    let mut by_replica: BTreeMap<(&str, u32), Vec<&Observed>> = BTreeMap::new();
    let mut unreadable = Vec::new();
    for o in observed {
        match identity(o) {
            Some(key) => by_replica.entry(key).or_default().push(o),
            None => unreadable.push(o),
        }
    }
    let mut wanted = desired.containers.iter().collect::<Vec<_>>();
    wanted.sort_by(|a, b| (&a.service, a.replica).cmp(&(&b.service, b.replica)));

    let mut actions = Vec::new();
    let mut used: HashSet<&str> = HashSet::new();
    for want in &wanted {
        let candidates = by_replica
            .get(&(want.service.as_str(), want.replica))
            .cloned()
            .unwrap_or_default();
        let chosen = choose(want, &candidates);
        if let Some(c) = chosen {
            used.insert(c.id.as_str());
        }
        actions.push(action_for(want, chosen));
    }

    let replicas: BTreeMap<&str, u32> = wanted.iter().fold(BTreeMap::new(), |mut m, c| {
        let n = m.entry(c.service.as_str()).or_insert(0);
        *n = (*n).max(c.replica);
        m
    });
    for ((service, replica), list) in &by_replica {
        for o in list.iter().filter(|o| !used.contains(o.id.as_str())) {
            let reason = match replicas.get(service) {
                None => format!("orphan: service {service} is no longer in the project"),
                Some(n) if replica > n => {
                    format!("surplus replica {replica} of {service} (replicas = {n})")
                }
                Some(_) => format!("duplicate of {service} replica {replica}"),
            };
            actions.push(remove(o, Some(service), Some(*replica), reason));
        }
    }
    for o in unreadable {
        let reason = format!(
            "orphan: no readable {} and {} labels",
            labels::NAME,
            labels::REPLICA
        );
        actions.push(remove(o, None, None, reason));
    }
    Plan {
        project: desired.name.clone(),
        actions,
        ..Default::default()
    }
}

/// The services to act on: `wanted` and everything they depend on, or
/// every service when `wanted` is empty.
pub fn select(
    desired: &DesiredProject,
    wanted: &[String],
) -> std::result::Result<BTreeSet<String>, String> {
    let graph = super::graph::desired_graph(desired);
    if wanted.is_empty() {
        return Ok(graph.keys().cloned().collect());
    }
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = wanted.to_vec();
    while let Some(s) = todo.pop() {
        let Some(deps) = graph.get(&s) else {
            return Err(format!("no service {s} in project {}", desired.name));
        };
        if out.insert(s.clone()) {
            todo.extend(deps.iter().cloned());
        }
    }
    Ok(out)
}

/// The service and replica an observed container says it is.
fn identity(o: &Observed) -> Option<(&str, u32)> {
    let service = o.labels.get(labels::NAME).filter(|s| !s.is_empty())?;
    let replica = o
        .labels
        .get(labels::REPLICA)?
        .parse::<u32>()
        .ok()
        .filter(|r| *r > 0)?;
    Some((service.as_str(), replica))
}

/// The best existing container for `want`: same hash and running, then
/// same hash, then running, then the oldest.
fn choose<'a>(want: &DesiredContainer, candidates: &[&'a Observed]) -> Option<&'a Observed> {
    let same = |o: &&&'a Observed| up_to_date(want, o);
    candidates
        .iter()
        .filter(same)
        .find(|o| o.running)
        .or_else(|| candidates.iter().find(same))
        .or_else(|| candidates.iter().find(|o| o.running))
        .or_else(|| candidates.first())
        .copied()
}

/// Whether `o` was made from `want`'s configuration: the same config hash
/// and, when the desired state knows the image digest, the same digest.
fn up_to_date(want: &DesiredContainer, o: &Observed) -> bool {
    o.labels.get(labels::CONFIG_HASH) == Some(&want.config_hash) && digest_matches(want, o)
}

fn digest_matches(want: &DesiredContainer, o: &Observed) -> bool {
    match &want.image_digest {
        Some(d) => o.labels.get(labels::IMAGE_DIGEST) == Some(d),
        None => true,
    }
}

/// Decides `a` again for `want`, whose pending image's ID is now known
/// (see [`super::pending`]), as [`plan`] would have decided it had the ID
/// been known: a kept or started container is recreated when it runs
/// another image. A create or a recreate stays what it is.
pub fn with_image_known(a: &Action, want: &DesiredContainer, observed: &[Observed]) -> Action {
    if !matches!(a.kind, ActionKind::Keep | ActionKind::Start) {
        return a.clone();
    }
    match a
        .id
        .as_deref()
        .and_then(|id| observed.iter().find(|o| o.id == id))
    {
        Some(o) => action_for(want, Some(o)),
        None => a.clone(),
    }
}

fn action_for(want: &DesiredContainer, chosen: Option<&Observed>) -> Action {
    let mut action = Action {
        kind: ActionKind::Create,
        object: ObjectKind::Container,
        name: want.name.clone(),
        service: Some(want.service.clone()),
        replica: Some(want.replica),
        id: None,
        reason: "missing".to_string(),
        changed: Vec::new(),
    };
    let Some(o) = chosen else {
        return action;
    };
    action.id = Some(o.id.clone());
    let changed = changed_fields(want, o);
    let (kind, reason) = match changed {
        Changed::Fields(fields) => {
            let reason = if fields == [IMAGE_DIGEST_FIELD] {
                "image digest changed".to_string()
            } else {
                format!("config changed: {}", fields.join(", "))
            };
            action.changed = fields;
            (ActionKind::Recreate, reason)
        }
        Changed::Unknown => (
            ActionKind::Recreate,
            format!(
                "config hash changed ({} label missing or unreadable)",
                labels::FIELDS
            ),
        ),
        Changed::Nothing { note } if o.running => (ActionKind::Keep, format!("up to date{note}")),
        Changed::Nothing { note } if o.completed && runs_once(want) => {
            (ActionKind::Keep, format!("completed{note}"))
        }
        Changed::Nothing { note } => (ActionKind::Start, format!("stopped{note}")),
    };
    action.kind = kind;
    action.reason = reason;
    action
}

/// Whether `want` runs to completion once (see [`labels::RUN_ONCE`]).
fn runs_once(want: &DesiredContainer) -> bool {
    want.body
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::RUN_ONCE))
        .is_some_and(|v| v == "true")
}

/// How an existing container differs from what is wanted.
enum Changed {
    /// Not in anything that matters; `note` explains a hash that differs
    /// only because the projection's version did.
    Nothing { note: String },
    /// These projection fields (or the image digest) differ.
    Fields(Vec<String>),
    /// The hash differs and the stored field digests cannot say where.
    Unknown,
}

fn changed_fields(want: &DesiredContainer, o: &Observed) -> Changed {
    let digest_changed = !digest_matches(want, o);
    if o.labels.get(labels::CONFIG_HASH) == Some(&want.config_hash) {
        return if digest_changed {
            Changed::Fields(vec![IMAGE_DIGEST_FIELD.to_string()])
        } else {
            Changed::Nothing {
                note: String::new(),
            }
        };
    }
    let Some(stored) = o
        .labels
        .get(labels::FIELDS)
        .and_then(|l| FieldDigests::parse_label(l).ok())
    else {
        return Changed::Unknown;
    };
    let wanted = want.projection.field_digests();
    let mut fields = wanted.changed(&stored);
    if digest_changed {
        fields.push(IMAGE_DIGEST_FIELD.to_string());
    }
    if !fields.is_empty() {
        return Changed::Fields(fields);
    }
    if wanted.version != stored.version {
        Changed::Nothing {
            note: format!(
                " (projection v{} -> v{}, no common field changed)",
                stored.version, wanted.version
            ),
        }
    } else {
        // Same fields, same version, yet another hash: the labels were
        // not written by servin; recreate to be sure.
        Changed::Unknown
    }
}

fn remove(o: &Observed, service: Option<&str>, replica: Option<u32>, reason: String) -> Action {
    Action {
        kind: ActionKind::Remove,
        object: ObjectKind::Container,
        name: o.name.clone(),
        service: service.map(String::from),
        replica,
        id: Some(o.id.clone()),
        reason,
        changed: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;
    use servin_proto::Projection;

    use super::*;
    use crate::reconcile::fixtures::container;

    /// The whole plan of a world of containers only (every image present).
    fn plan(desired: &DesiredProject, observed: &[Observed]) -> Plan {
        let observation = Observation {
            containers: observed.to_vec(),
            images: desired.containers.iter().map(image_of).collect(),
            ..Default::default()
        };
        super::plan(desired, &observation, &Options::default()).unwrap()
    }

    fn projection(env: &str, tty: bool) -> Projection {
        let mut p = Projection::new(1);
        p.set("image", json!("docker.io/library/busybox:latest"));
        p.set("env", json!({ "A": env }));
        p.set("tty", json!(tty));
        p
    }

    fn want(service: &str, replica: u32, p: Projection) -> DesiredContainer {
        DesiredContainer {
            service: service.into(),
            replica,
            name: labels::container_name("shop", service, replica),
            image: "busybox".into(),
            image_digest: None,
            depends_on: Vec::new(),
            config_hash: p.hash(),
            projection: p,
            body: Default::default(),
        }
    }

    fn project(containers: Vec<DesiredContainer>) -> DesiredProject {
        DesiredProject {
            name: "shop".into(),
            containers,
            ..Default::default()
        }
    }

    /// A container made from `p` for `service` replica `replica`.
    fn made(id: &str, service: &str, replica: u32, p: &Projection, running: bool) -> Observed {
        let mut l = HashMap::new();
        l.insert(labels::PROJECT.to_string(), "shop".to_string());
        l.insert(labels::NAME.to_string(), service.to_string());
        l.insert(labels::REPLICA.to_string(), replica.to_string());
        l.insert(labels::CONFIG_HASH.to_string(), p.hash());
        l.insert(labels::FIELDS.to_string(), p.field_digests().to_label());
        Observed {
            id: id.into(),
            name: labels::container_name("shop", service, replica),
            labels: l,
            running,
            completed: false,
            networks: Vec::new(),
            volumes: Vec::new(),
        }
    }

    fn summary(plan: &Plan) -> Vec<(ActionKind, String, String)> {
        plan.actions
            .iter()
            .map(|a| (a.kind, a.name.clone(), a.reason.clone()))
            .collect()
    }

    #[test]
    fn nothing_exists_so_everything_is_created() {
        let p = projection("1", false);
        let plan = plan(
            &project(vec![want("web", 1, p.clone()), want("db", 1, p)]),
            &[],
        );
        assert_eq!(
            summary(&plan),
            vec![
                (ActionKind::Create, "shop-db-1".into(), "missing".into()),
                (ActionKind::Create, "shop-web-1".into(), "missing".into()),
            ]
        );
        assert!(plan.actions.iter().all(|a| a.id.is_none()));
        assert!(!plan.is_noop());
    }

    #[test]
    fn unchanged_running_containers_are_kept_and_stopped_ones_started() {
        let p = projection("1", false);
        let plan = plan(
            &project(vec![want("web", 1, p.clone()), want("db", 1, p.clone())]),
            &[
                made("a1", "web", 1, &p, true),
                made("b1", "db", 1, &p, false),
            ],
        );
        assert_eq!(
            summary(&plan),
            vec![
                (ActionKind::Start, "shop-db-1".into(), "stopped".into()),
                (ActionKind::Keep, "shop-web-1".into(), "up to date".into()),
            ]
        );
        assert_eq!(plan.actions[0].id.as_deref(), Some("b1"));
    }

    #[test]
    fn a_moved_project_file_changes_nothing() {
        let p = projection("1", false);
        let mut web = want("web", 1, p.clone());
        let file = |f: &str| HashMap::from([(labels::PROJECT_FILE.to_string(), f.to_string())]);
        web.body.labels = Some(file("/new/servin.toml"));
        let mut old = made("a1", "web", 1, &p, true);
        old.labels.extend(file("/old/servin.toml"));
        let plan = plan(&project(vec![web]), &[old]);
        assert_eq!(
            summary(&plan),
            vec![(ActionKind::Keep, "shop-web-1".into(), "up to date".into())]
        );
    }

    #[test]
    fn a_completed_run_once_container_is_kept_and_a_plain_one_started() {
        let p = projection("1", false);
        let mut init = want("init", 1, p.clone());
        init.body
            .labels
            .get_or_insert_with(Default::default)
            .insert(labels::RUN_ONCE.into(), "true".into());
        let mut done = made("a1", "init", 1, &p, false);
        done.completed = true;
        let mut job = made("b1", "job", 1, &p, false);
        job.completed = true;
        let first = plan(
            &project(vec![init.clone(), want("job", 1, p.clone())]),
            &[done.clone(), job],
        );
        assert_eq!(
            summary(&first),
            vec![
                (ActionKind::Keep, "shop-init-1".into(), "completed".into()),
                (ActionKind::Start, "shop-job-1".into(), "stopped".into()),
            ]
        );
        // One that failed runs again.
        done.completed = false;
        let again = plan(&project(vec![init]), &[done]);
        assert_eq!(again.actions[0].kind, ActionKind::Start);
    }

    #[test]
    fn a_second_plan_of_the_same_world_is_a_noop() {
        let p = projection("1", false);
        let plan = plan(
            &project(vec![want("web", 1, p.clone())]),
            &[made("a1", "web", 1, &p, true)],
        );
        assert!(plan.is_noop());
    }

    #[test]
    fn a_changed_field_recreates_and_is_named() {
        let old = projection("1", false);
        let new = projection("2", true);
        let plan = plan(
            &project(vec![want("web", 1, new)]),
            &[made("a1", "web", 1, &old, true)],
        );
        let a = &plan.actions[0];
        assert_eq!(a.kind, ActionKind::Recreate);
        assert_eq!(a.changed, vec!["env", "tty"]);
        assert_eq!(a.reason, "config changed: env, tty");
        assert_eq!(a.id.as_deref(), Some("a1"));
    }

    #[test]
    fn a_changed_image_digest_recreates() {
        let p = projection("1", false);
        let mut w = want("web", 1, p.clone());
        w.image_digest = Some("sha256:bbbb".into());
        let mut o = made("a1", "web", 1, &p, true);
        o.labels
            .insert(labels::IMAGE_DIGEST.into(), "sha256:aaaa".into());
        let plan1 = plan(&project(vec![w.clone()]), &[o.clone()]);
        assert_eq!(plan1.actions[0].kind, ActionKind::Recreate);
        assert_eq!(plan1.actions[0].changed, vec![IMAGE_DIGEST_FIELD]);
        assert_eq!(plan1.actions[0].reason, "image digest changed");
        // An unknown digest on the desired side compares nothing.
        w.image_digest = None;
        assert_eq!(
            plan(&project(vec![w]), &[o]).actions[0].kind,
            ActionKind::Keep
        );
    }

    #[test]
    fn a_hash_change_without_field_digests_still_recreates() {
        let old = projection("1", false);
        let mut o = made("a1", "web", 1, &old, true);
        o.labels.remove(labels::FIELDS);
        let plan = plan(&project(vec![want("web", 1, projection("2", false))]), &[o]);
        assert_eq!(plan.actions[0].kind, ActionKind::Recreate);
        assert!(plan.actions[0].changed.is_empty());
        assert!(plan.actions[0].reason.contains(labels::FIELDS));
    }

    #[test]
    fn a_newer_projection_version_alone_does_not_recreate() {
        let old = projection("1", false);
        let mut new = old.clone();
        new.version = 2;
        new.set("stop_grace", json!("10s"));
        let plan = plan(
            &project(vec![want("web", 1, new)]),
            &[made("a1", "web", 1, &old, false)],
        );
        assert_eq!(plan.actions[0].kind, ActionKind::Start);
        assert!(
            plan.actions[0].reason.contains("v1 -> v2"),
            "{:?}",
            plan.actions[0]
        );
    }

    #[test]
    fn orphans_and_surplus_replicas_are_removed() {
        let p = projection("1", false);
        let plan = plan(
            &project(vec![want("web", 1, p.clone()), want("web", 2, p.clone())]),
            &[
                made("w1", "web", 1, &p, true),
                made("w2", "web", 2, &p, true),
                made("w3", "web", 3, &p, true),
                made("o1", "old", 1, &p, false),
            ],
        );
        assert_eq!(
            summary(&plan),
            vec![
                (ActionKind::Keep, "shop-web-1".into(), "up to date".into()),
                (ActionKind::Keep, "shop-web-2".into(), "up to date".into()),
                (
                    ActionKind::Remove,
                    "shop-old-1".into(),
                    "orphan: service old is no longer in the project".into()
                ),
                (
                    ActionKind::Remove,
                    "shop-web-3".into(),
                    "surplus replica 3 of web (replicas = 2)".into()
                ),
            ]
        );
    }

    #[test]
    fn more_replicas_create_the_missing_ones() {
        let p = projection("1", false);
        let plan = plan(
            &project((1..=3).map(|r| want("web", r, p.clone())).collect()),
            &[made("w1", "web", 1, &p, true)],
        );
        let kinds: Vec<_> = plan.actions.iter().map(|a| (a.kind, a.replica)).collect();
        assert_eq!(
            kinds,
            vec![
                (ActionKind::Keep, Some(1)),
                (ActionKind::Create, Some(2)),
                (ActionKind::Create, Some(3)),
            ]
        );
    }

    #[test]
    fn duplicates_keep_the_up_to_date_running_one() {
        let old = projection("1", false);
        let new = projection("2", false);
        let plan = plan(
            &project(vec![want("web", 1, new.clone())]),
            &[
                made("stale", "web", 1, &old, true),
                made("fresh-stopped", "web", 1, &new, false),
                made("fresh", "web", 1, &new, true),
            ],
        );
        let got: Vec<_> = plan
            .actions
            .iter()
            .map(|a| (a.kind, a.id.clone().unwrap(), a.reason.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (ActionKind::Keep, "fresh".into(), "up to date".into()),
                (
                    ActionKind::Remove,
                    "stale".into(),
                    "duplicate of web replica 1".into()
                ),
                (
                    ActionKind::Remove,
                    "fresh-stopped".into(),
                    "duplicate of web replica 1".into()
                ),
            ]
        );
    }

    #[test]
    fn containers_without_identity_labels_are_removed() {
        let p = projection("1", false);
        let mut o = made("x", "web", 1, &p, true);
        o.labels.insert(labels::REPLICA.into(), "zero".into());
        let plan = plan(&project(vec![]), &[o]);
        assert_eq!(plan.actions[0].kind, ActionKind::Remove);
        assert_eq!(plan.actions[0].service, None);
        assert!(plan.actions[0].reason.starts_with("orphan: no readable"));
    }

    #[test]
    fn the_plan_is_deterministic() {
        let p = projection("1", false);
        let d = project(vec![
            want("b", 1, p.clone()),
            want("a", 1, projection("2", false)),
        ]);
        let o = [made("1", "a", 1, &p, true), made("2", "z", 1, &p, true)];
        assert_eq!(plan(&d, &o), plan(&d, &o));
    }

    #[test]
    fn selecting_services_takes_what_they_depend_on() {
        let d = DesiredProject {
            name: "shop".into(),
            containers: vec![
                container("web", &["api"]),
                container("api", &["db"]),
                container("db", &[]),
                container("tool", &[]),
            ],
            ..Default::default()
        };
        let all: Vec<String> = select(&d, &[]).unwrap().into_iter().collect();
        assert_eq!(all, vec!["api", "db", "tool", "web"]);
        let web: Vec<String> = select(&d, &["web".into()]).unwrap().into_iter().collect();
        assert_eq!(web, vec!["api", "db", "web"]);
        assert_eq!(
            select(&d, &["nope".into()]).unwrap_err(),
            "no service nope in project shop"
        );
    }

    fn hashed(hash: &str) -> HashMap<String, String> {
        let mut l = HashMap::new();
        l.insert(labels::PROJECT.to_string(), "shop".to_string());
        l.insert(labels::CONFIG_HASH.to_string(), hash.to_string());
        l
    }

    /// Project `shop` wanting network `shop_back` and volume `data` (both
    /// with config hash `hash`) and `web` using them.
    fn with_resources(hash: &str, p: &Projection) -> DesiredProject {
        let mut d = project(vec![want("web", 1, p.clone())]);
        d.networks.push(servin_proto::DesiredNetwork {
            name: "back".into(),
            external: false,
            create: bollard_stubs::models::NetworkCreateRequest {
                name: "shop_back".into(),
                labels: Some(hashed(hash)),
                ..Default::default()
            },
        });
        d.volumes.push(servin_proto::DesiredVolume {
            name: "data".into(),
            external: false,
            create: bollard_stubs::models::VolumeCreateRequest {
                name: Some("shop_data".into()),
                labels: Some(hashed(hash)),
                ..Default::default()
            },
        });
        d
    }

    fn world(hash: &str, web: Observed) -> Observation {
        Observation {
            containers: vec![web],
            networks: vec![ObservedObject {
                id: "n1".into(),
                name: "shop_back".into(),
                labels: hashed(hash),
            }],
            volumes: vec![ObservedObject {
                id: "shop_data".into(),
                name: "shop_data".into(),
                labels: hashed(hash),
            }],
            images: ["busybox".to_string()].into(),
        }
    }

    fn kinds(actions: &[Action]) -> Vec<(ActionKind, ObjectKind, &str, &str)> {
        actions
            .iter()
            .map(|a| (a.kind, a.object, a.name.as_str(), a.reason.as_str()))
            .collect()
    }

    #[test]
    fn missing_networks_volumes_and_images_are_planned() {
        let p = projection("1", false);
        let d = with_resources("h1", &p);
        let plan = super::plan(&d, &Observation::default(), &Options::default()).unwrap();
        assert_eq!(
            kinds(&plan.resources),
            vec![
                (
                    ActionKind::Create,
                    ObjectKind::Network,
                    "shop_back",
                    "missing"
                ),
                (
                    ActionKind::Create,
                    ObjectKind::Volume,
                    "shop_data",
                    "missing"
                ),
                (
                    ActionKind::Pull,
                    ObjectKind::Image,
                    "busybox",
                    "missing, needed by shop-web-1"
                ),
            ]
        );
        assert_eq!(plan.refusals().count(), 0);
    }

    #[test]
    fn a_pending_image_is_never_pulled() {
        let p = projection("1", false);
        let mut d = with_resources("h1", &p);
        d.pending_images = vec!["busybox".into()];
        let plan = super::plan(&d, &Observation::default(), &Options::default()).unwrap();
        assert!(
            !plan.resources.iter().any(|a| a.kind == ActionKind::Pull),
            "{:?}",
            plan.resources
        );
    }

    #[test]
    fn a_kept_container_is_decided_again_once_its_image_is_known() {
        let p = projection("1", false);
        let mut o = made("c1", "web", 1, &p, true);
        o.labels
            .insert(labels::IMAGE_DIGEST.into(), "sha256:aaaa".into());
        let w = want("web", 1, p);
        let planned = plan(&project(vec![w.clone()]), std::slice::from_ref(&o));
        assert_eq!(planned.actions[0].kind, ActionKind::Keep);
        let mut same = w.clone();
        same.image_digest = Some("sha256:aaaa".into());
        let a = with_image_known(&planned.actions[0], &same, std::slice::from_ref(&o));
        assert_eq!(a.kind, ActionKind::Keep);
        let mut other = w;
        other.image_digest = Some("sha256:bbbb".into());
        let a = with_image_known(&planned.actions[0], &other, &[o]);
        assert_eq!(
            (a.kind, a.reason.as_str(), a.changed.as_slice()),
            (
                ActionKind::Recreate,
                "image digest changed",
                [IMAGE_DIGEST_FIELD.to_string()].as_slice()
            )
        );
    }

    #[test]
    fn an_unchanged_world_is_a_noop_with_its_resources() {
        let p = projection("1", false);
        let d = with_resources("h1", &p);
        let o = world("h1", made("w1", "web", 1, &p, true));
        let plan = super::plan(&d, &o, &Options::default()).unwrap();
        assert!(plan.is_noop(), "{plan:?}");
    }

    #[test]
    fn a_changed_network_or_volume_is_refused_without_recreate_volumes() {
        let p = projection("1", false);
        let d = with_resources("h2", &p);
        let mut web = made("w1", "web", 1, &p, true);
        web.networks = vec!["n1".into()];
        let plan = super::plan(&d, &world("h1", web), &Options::default()).unwrap();
        let refused: Vec<_> = plan
            .refusals()
            .map(|a| (a.name.as_str(), a.reason.as_str()))
            .collect();
        assert_eq!(
            refused,
            vec![
                ("shop_back", NETWORK_CHANGED),
                ("shop_data", VOLUME_CHANGED)
            ]
        );
        // The containers are planned as they are: a refusal touches nothing.
        assert_eq!(plan.actions[0].kind, ActionKind::Keep);
    }

    #[test]
    fn a_replaced_network_recreates_its_containers_and_names_it() {
        let p = projection("1", false);
        let mut d = with_resources("h2", &p);
        d.volumes.clear();
        let mut web = made("w1", "web", 1, &p, true);
        web.networks = vec!["n1".into()];
        let options = Options {
            recreate_volumes: true,
            ..Default::default()
        };
        let plan = super::plan(&d, &world("h1", web), &options).unwrap();
        assert_eq!(
            kinds(&plan.resources),
            vec![(
                ActionKind::Recreate,
                ObjectKind::Network,
                "shop_back",
                "definition changed"
            )]
        );
        assert_eq!(plan.resources[0].id.as_deref(), Some("n1"));
        assert_eq!(
            kinds(&plan.actions),
            vec![(
                ActionKind::Recreate,
                ObjectKind::Container,
                "shop-web-1",
                "network shop_back is replaced"
            )]
        );
    }

    #[test]
    fn a_replaced_volume_recreates_the_containers_mounting_it() {
        let p = projection("1", false);
        let mut d = with_resources("h2", &p);
        d.networks.clear();
        let mut web = made("w1", "web", 1, &p, false);
        web.volumes = vec!["shop_data".into()];
        let options = Options {
            recreate_volumes: true,
            ..Default::default()
        };
        let plan = super::plan(&d, &world("h1", web), &options).unwrap();
        assert_eq!(plan.resources[0].kind, ActionKind::Recreate);
        assert_eq!(plan.actions[0].kind, ActionKind::Recreate);
        assert_eq!(plan.actions[0].reason, "volume shop_data is replaced");
    }

    #[test]
    fn foreign_and_missing_external_networks_are_refused() {
        let p = projection("1", false);
        let mut d = with_resources("h1", &p);
        d.volumes[0].external = true;
        let mut o = world("h1", made("w1", "web", 1, &p, true));
        o.networks[0]
            .labels
            .insert(labels::PROJECT.into(), "other".into());
        o.volumes.clear();
        let plan = super::plan(&d, &o, &Options::default()).unwrap();
        let refused: Vec<_> = plan.refusals().map(|a| a.reason.as_str()).collect();
        assert_eq!(
            refused,
            vec![
                "a network named shop_back exists but does not belong to project shop",
                "volume shop_data is external (made outside the project) but does not exist: create it first",
            ]
        );
    }

    #[test]
    fn leftovers_are_removed_and_never_chosen() {
        let p = projection("1", false);
        let mut left = made("tmp", "web", 1, &p, false);
        left.name = format!("shop-web-1{TEMPORARY_SUFFIX}");
        let d = project(vec![want("web", 1, p.clone())]);
        let o = Observation {
            containers: vec![left],
            images: ["busybox".to_string()].into(),
            ..Default::default()
        };
        // Only the temporary copy exists (the old one went): it is removed
        // and the container made afresh, with or without a selection.
        for services in [vec![], vec!["web".to_string()]] {
            let options = Options {
                services,
                ..Default::default()
            };
            let plan = super::plan(&d, &o, &options).unwrap();
            let got: Vec<_> = plan
                .actions
                .iter()
                .map(|a| (a.kind, a.id.as_deref(), a.reason.as_str()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (ActionKind::Create, None, "missing"),
                    (ActionKind::Remove, Some("tmp"), LEFTOVER),
                ]
            );
        }
    }

    #[test]
    fn orphan_networks_are_removed_only_for_the_whole_project() {
        let p = projection("1", false);
        let d = project(vec![want("web", 1, p.clone())]);
        let mut o = world("h1", made("w1", "web", 1, &p, true));
        o.volumes.clear();
        let plan = super::plan(&d, &o, &Options::default()).unwrap();
        assert_eq!(
            kinds(&plan.resources),
            vec![(
                ActionKind::Remove,
                ObjectKind::Network,
                "shop_back",
                "no longer in the project"
            )]
        );
        let only_web = Options {
            services: vec!["web".into()],
            ..Default::default()
        };
        assert!(super::plan(&d, &o, &only_web).unwrap().resources.is_empty());
        assert_eq!(
            super::plan(
                &d,
                &o,
                &Options {
                    services: vec!["nope".into()],
                    ..Default::default()
                }
            )
            .unwrap_err(),
            "no service nope in project shop"
        );
    }
}
