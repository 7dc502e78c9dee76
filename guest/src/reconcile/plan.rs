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

use std::collections::{BTreeMap, BTreeSet, HashSet};

use servin_proto::projection::FieldDigests;
use servin_proto::{
    Action, ActionKind, DesiredContainer, DesiredProject, ObjectKind, Plan, labels,
};

use super::Observed;

/// The projection field named when only the image digest changed.
pub const IMAGE_DIGEST_FIELD: &str = "image-digest";

/// Plans `desired` against `observed` (the containers labelled with the
/// project). Pure: the same inputs give the same plan.
pub fn plan(desired: &DesiredProject, observed: &[Observed]) -> Plan {
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
        Changed::Nothing { note } => (ActionKind::Start, format!("stopped{note}")),
    };
    action.kind = kind;
    action.reason = reason;
    action
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
    use std::collections::HashMap;

    use serde_json::json;
    use servin_proto::Projection;

    use super::*;
    use crate::reconcile::fixtures::container;

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
}
