//! Checks across containers: dependency cycles, host-port conflicts, and
//! `healthy` conditions on containers without a healthcheck.

use std::collections::BTreeMap;

use super::super::model::Condition;
use super::super::normal::Container;
use super::super::tree::{Path, Span};
use super::Cx;
use crate::project::diagnostic::Code;

impl Cx<'_> {
    /// The span of the `depends_on` entry of `from` that names `to`.
    fn edge_span(&self, from: &str, to: &str) -> Span {
        let at = Path::of(&["containers", from, "depends_on"]);
        if let Some(node) = self.inputs.root.at(&at.0)
            && let Some(items) = match &node.value {
                super::super::tree::Value::Array(items) => Some(items),
                _ => None,
            }
            && let Some(item) = items.iter().find(|n| n.as_str() == Some(to))
        {
            return item.span;
        }
        self.key_span(&at.key(to))
    }

    /// Reports each `depends_on` cycle once, naming all of it.
    pub(super) fn dependency_cycles(&mut self, containers: &BTreeMap<String, Container>) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut marks: BTreeMap<&str, Mark> =
            containers.keys().map(|k| (k.as_str(), Mark::New)).collect();
        let mut cycles: Vec<Vec<String>> = Vec::new();

        // Iterative depth-first search; `stack` holds the open path.
        for start in containers.keys() {
            if marks.get(start.as_str()) != Some(&Mark::New) {
                continue;
            }
            let mut stack: Vec<(&str, Vec<&str>)> = Vec::new();
            let deps = |n: &str| -> Vec<&str> {
                containers
                    .get(n)
                    .map(|c| c.depends_on.keys().map(String::as_str).collect())
                    .unwrap_or_default()
            };
            marks.insert(start, Mark::Open);
            stack.push((start, deps(start)));
            while let Some((node, pending)) = stack.last_mut() {
                let node = *node;
                match pending.pop() {
                    Some(next) => match marks.get(next).copied() {
                        Some(Mark::New) => {
                            marks.insert(next, Mark::Open);
                            let d = deps(next);
                            stack.push((next, d));
                        }
                        Some(Mark::Open) => {
                            let pos = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                            let cycle: Vec<String> =
                                stack[pos..].iter().map(|(n, _)| n.to_string()).collect();
                            cycles.push(cycle);
                        }
                        _ => {}
                    },
                    None => {
                        marks.insert(node, Mark::Done);
                        stack.pop();
                    }
                }
            }
        }

        for mut cycle in cycles {
            // Start the story at the container that comes first in the file.
            if let Some(first) = (0..cycle.len())
                .min_by_key(|i| self.key_span(&Path::of(&["containers", &cycle[*i]])).start)
            {
                cycle.rotate_left(first);
            }
            let mut names = cycle.clone();
            names.push(cycle[0].clone());
            let chain = names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(" → ");
            let first = self.edge_span(&cycle[0], &cycle[1 % cycle.len()]);
            let mut p = self
                .error(Code::DependencyCycle, format!("dependency cycle: {chain}"))
                .at(first, format!("`{}` waits for `{}`", cycle[0], cycle[1 % cycle.len()]))
                .help("containers start in `depends_on` order, so a cycle can never start; remove one of these dependencies");
            for i in 1..cycle.len() {
                let from = &cycle[i];
                let to = &cycle[(i + 1) % cycle.len()];
                p = p.note(
                    self.edge_span(from, to),
                    format!("`{from}` waits for `{to}`"),
                );
            }
            self.push(p);
        }
    }

    /// Two containers (or two replicas of one) cannot bind the same host port.
    pub(super) fn port_conflicts(&mut self, containers: &BTreeMap<String, Container>) {
        struct Bound<'c> {
            container: &'c str,
            port: u16,
            ip: Option<&'c str>,
            proto: String,
            index: usize,
        }
        let mut bound: Vec<Bound<'_>> = Vec::new();
        for (name, c) in containers {
            for (index, p) in c.ports.iter().enumerate() {
                let Some(port) = p.published else { continue };
                bound.push(Bound {
                    container: name,
                    port,
                    ip: p.host_ip.as_deref(),
                    proto: p.protocol.to_string(),
                    index,
                });
            }
        }
        // In file order, so "first" means first in the file.
        bound.sort_by_key(|b| (self.port_span(b.container, b.port).start, b.index));
        let mut reported = std::collections::BTreeSet::new();
        for (i, a) in bound.iter().enumerate() {
            let replicas = containers.get(a.container).map_or(1, |c| c.replicas);
            if replicas > 1 && reported.insert((a.container, a.port)) {
                let span = self.port_span(a.container, a.port);
                let p = self
                    .error(
                        Code::PortConflict,
                        format!(
                            "container `{}` has {replicas} replicas, but they cannot all publish host port {}",
                            a.container, a.port
                        ),
                    )
                    .at(span, format!("host port {} can be bound once", a.port))
                    .help("publish the container port alone (e.g. `\"80\"`) to get a free host port for each replica");
                self.push(p);
            }
            for b in &bound[..i] {
                let same_ip = a.ip.is_none() || b.ip.is_none() || a.ip == b.ip;
                let same_place = a.container == b.container && a.index == b.index;
                if a.port == b.port && a.proto == b.proto && same_ip && !same_place {
                    let first = self.port_span(b.container, b.port);
                    let second = self.port_span(a.container, a.port);
                    let p = self
                        .error(
                            Code::PortConflict,
                            format!(
                                "host port {}/{} is published by both `{}` and `{}`",
                                a.port, a.proto, b.container, a.container
                            ),
                        )
                        .at(
                            second,
                            format!("`{}` publishes {} here", a.container, a.port),
                        )
                        .note(first, format!("`{}` publishes it first", b.container))
                        .help("give one of them another host port, e.g. `\"8081:80\"`");
                    self.push(p);
                }
            }
        }
    }

    /// The span of the `ports` entry of `container` that publishes `port`.
    fn port_span(&self, container: &str, port: u16) -> Span {
        let at = Path::of(&["containers", container, "ports"]);
        let Some(node) = self.inputs.root.at(&at.0) else {
            return self.span(&Path::of(&["containers", container]));
        };
        if let super::super::tree::Value::Array(items) = &node.value {
            for item in items {
                let publishes = match &item.value {
                    super::super::tree::Value::String(s) => super::super::values::parse_port(s)
                        .is_ok_and(|spec| spec.expand().iter().any(|p| p.published == Some(port))),
                    super::super::tree::Value::Table(_) => {
                        item.entry("published").is_some_and(|e| {
                            e.node.value == super::super::tree::Value::Int(i64::from(port))
                        })
                    }
                    _ => false,
                };
                if publishes {
                    return item.span;
                }
            }
        }
        node.span
    }

    /// `healthy` needs a healthcheck to ever be true.
    pub(super) fn healthy_dependencies(&mut self, containers: &BTreeMap<String, Container>) {
        for (name, c) in containers {
            for (dep, cond) in &c.depends_on {
                let Some(target) = containers.get(dep) else {
                    continue;
                };
                if *cond == Condition::Healthy && target.healthcheck.is_none() {
                    let span = self.key_span(&Path::of(&["containers", name, "depends_on", dep]));
                    let p = self
                        .error(
                            Code::InvalidValue,
                            format!("`{name}` waits for `{dep}` to be healthy, but `{dep}` has no healthcheck"),
                        )
                        .at(span, "can never become healthy")
                        .help(format!("add a `healthcheck` to `{dep}`, or wait for `\"started\"`"));
                    self.push(p);
                }
            }
        }
    }
}
