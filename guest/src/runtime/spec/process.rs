//! The process of a container or an exec: its command line (Docker's
//! merge of entrypoint and command), environment, user and groups,
//! working folder, terminal size, capabilities, rlimits and
//! `no-new-privileges`.

use std::collections::HashMap;

use bollard_stubs::models::{ContainerCreateBody, HostConfig};
use oci_spec::runtime::ProcessBuilder;

use super::capabilities::capabilities;
use super::security::security;
use super::{SpecInput, bad};
use crate::error::Result;
use crate::runtime::host::HostFacts;
use crate::runtime::{resources, user};

/// `PATH` when neither the image nor the container sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's merge of entrypoint and command: a container entrypoint
/// replaces the image's and drops the image's command (`[""]` clears the
/// entrypoint that way too); without one (or with `[]`, which still clears
/// the image's entrypoint) an empty or missing container command takes the
/// image's.
pub fn command_line(
    config: &ContainerCreateBody,
    image: Option<&oci_spec::image::Config>,
) -> Result<Vec<String>> {
    let image_ep = image
        .and_then(|i| i.entrypoint().clone())
        .unwrap_or_default();
    let image_cmd = image.and_then(|i| i.cmd().clone()).unwrap_or_default();
    let own_cmd = config.cmd.clone().unwrap_or_default();
    let (ep, cmd) = match config.entrypoint.as_deref() {
        Some([only]) if only.is_empty() => (Vec::new(), own_cmd),
        Some(ep) if !ep.is_empty() => (ep.to_vec(), own_cmd),
        own => {
            let ep = if own.is_some() { Vec::new() } else { image_ep };
            let cmd = if own_cmd.is_empty() {
                image_cmd
            } else {
                own_cmd
            };
            (ep, cmd)
        }
    };
    let argv: Vec<String> = ep.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(bad("no command specified"));
    }
    Ok(argv)
}

/// Merges environment lists: later lists win per name; `NAME` without `=`
/// removes the variable.
pub(crate) fn merge_env(lists: &[&[String]]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut values: HashMap<String, Option<String>> = HashMap::new();
    for list in lists {
        for item in *list {
            let (k, v) = match item.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (item.clone(), None),
            };
            if !values.contains_key(&k) {
                order.push(k.clone());
            }
            values.insert(k, v);
        }
    }
    order
        .into_iter()
        .filter_map(|k| {
            let v = values.get(&k).cloned().flatten()?;
            Some(format!("{k}={v}"))
        })
        .collect()
}

fn has_var(env: &[String], name: &str) -> bool {
    env.iter()
        .any(|e| e.split_once('=').is_some_and(|(k, _)| k == name))
}

/// The environment: Docker's `PATH` (default), `HOSTNAME` and, with a
/// terminal, `TERM=xterm`; then the links', the image's, the container's and the
/// exec's variables, each list winning over the ones before; `HOME` from
/// `/etc/passwd` when nothing sets it (as runc does).
pub(super) fn environment(
    input: &SpecInput<'_>,
    hostname: &str,
    home: Option<&str>,
    tty: bool,
    exec_env: &[String],
) -> Vec<String> {
    let mut base = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        base.push("TERM=xterm".to_string());
    }
    let image_env = input
        .image
        .and_then(|i| i.env().clone())
        .unwrap_or_default();
    let own = input.config.env.clone().unwrap_or_default();
    let mut env = merge_env(&[&base, input.links_env, &image_env, &own, exec_env]);
    if !has_var(&env, "HOME") {
        env.push(format!("HOME={}", home.unwrap_or("/")));
    }
    env
}

pub(super) fn user_of(input: &SpecInput<'_>) -> String {
    input
        .config
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| input.image.and_then(|i| i.user().clone()))
        .unwrap_or_default()
}

/// The user from the image's files, plus `group_add`.
pub(super) fn run_as(input: &SpecInput<'_>, hc: &HostConfig, name: &str) -> Result<user::Resolved> {
    let mut resolved = user::resolve(input.rootfs, name)?;
    let extra = user::group_ids(input.rootfs, hc.group_add.as_deref().unwrap_or_default())?;
    resolved.additional.extend(extra);
    resolved.additional.retain(|g| *g != resolved.gid);
    resolved.additional.sort_unstable();
    resolved.additional.dedup();
    Ok(resolved)
}

pub(super) fn workdir_of(input: &SpecInput<'_>) -> Result<String> {
    let wd = input
        .config
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| {
            input
                .image
                .and_then(|i| i.working_dir().clone())
                .filter(|w| !w.is_empty())
        })
        .unwrap_or_else(|| "/".to_string());
    if !wd.starts_with('/') {
        return Err(bad(format!(
            "the working directory {wd:?} is invalid: it needs to be an absolute path"
        )));
    }
    Ok(wd)
}

/// The terminal's first size from Docker's `ConsoleSize` (`[height,
/// width]`), so a program that reads it at once does not see 0x0 before
/// the client's first resize. None without a terminal or a size.
pub(super) fn console_size(tty: bool, size: Option<&[usize]>) -> Option<oci_spec::runtime::Box> {
    let [h, w] = size? else {
        return None;
    };
    if !tty || *h == 0 || *w == 0 {
        return None;
    }
    oci_spec::runtime::BoxBuilder::default()
        .height(u64::try_from(*h).ok()?)
        .width(u64::try_from(*w).ok()?)
        .build()
        .ok()
}

/// The hostname: the container's, else the first 12 digits of its ID.
pub fn hostname_of(config: &ContainerCreateBody, id: &str) -> String {
    config
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| id.chars().take(12).collect())
}

/// The parts of a process the container and its execs share.
pub(super) fn process_builder(
    hc: &HostConfig,
    privileged: bool,
    resolved: &user::Resolved,
    host: &HostFacts,
) -> Result<ProcessBuilder> {
    Ok(ProcessBuilder::default()
        .user(user::oci_user(resolved)?)
        .capabilities(capabilities(hc, privileged, host.capabilities)?)
        .rlimits(resources::rlimits(hc, host.nofile)?)
        .no_new_privileges(security(hc)?.no_new_privileges))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn image(ep: Option<Vec<&str>>, cmd: Option<Vec<&str>>) -> oci_spec::image::Config {
        let mut c = oci_spec::image::Config::default();
        c.set_entrypoint(ep.map(|v| v.into_iter().map(String::from).collect()));
        c.set_cmd(cmd.map(|v| v.into_iter().map(String::from).collect()));
        c.set_env(Some(vec!["PATH=/bin".to_string(), "A=image".to_string()]));
        c
    }

    fn body(ep: Option<Vec<&str>>, cmd: Option<Vec<&str>>) -> ContainerCreateBody {
        ContainerCreateBody {
            entrypoint: ep.map(|v| v.into_iter().map(String::from).collect()),
            cmd: cmd.map(|v| v.into_iter().map(String::from).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn merges_entrypoint_and_command_like_docker() {
        let img = image(Some(vec!["/ep"]), Some(vec!["default"]));
        let line = |b: ContainerCreateBody, i: Option<&oci_spec::image::Config>| {
            command_line(&b, i).map_err(|e| e.to_string())
        };
        assert_eq!(
            line(body(None, None), Some(&img)).unwrap(),
            ["/ep", "default"]
        );
        assert_eq!(
            line(body(None, Some(vec!["x"])), Some(&img)).unwrap(),
            ["/ep", "x"]
        );
        assert_eq!(
            line(body(Some(vec!["/other"]), None), Some(&img)).unwrap(),
            ["/other"],
            "a new entrypoint drops the image's command"
        );
        assert_eq!(
            line(body(Some(vec!["/other"]), Some(vec!["a"])), Some(&img)).unwrap(),
            ["/other", "a"]
        );
        assert_eq!(
            line(body(Some(vec![""]), Some(vec!["sh"])), Some(&img)).unwrap(),
            ["sh"],
            "[\"\"] clears the entrypoint"
        );
        let cmd_only = image(None, Some(vec!["sh", "-c", "x"]));
        assert_eq!(
            line(body(None, None), Some(&cmd_only)).unwrap(),
            ["sh", "-c", "x"]
        );
        assert_eq!(
            line(body(None, Some(vec!["ls"])), Some(&cmd_only)).unwrap(),
            ["ls"]
        );
        assert_eq!(line(body(None, Some(vec!["ls"])), None).unwrap(), ["ls"]);
        assert_eq!(
            line(body(Some(vec![""]), None), Some(&img)).unwrap_err(),
            "no command specified"
        );
        assert_eq!(
            line(body(None, None), None).unwrap_err(),
            "no command specified"
        );
        assert_eq!(
            line(body(None, Some(vec![])), Some(&cmd_only)).unwrap(),
            ["sh", "-c", "x"],
            "an empty command is no command: the image's"
        );
        assert_eq!(
            line(body(Some(vec![]), None), Some(&img)).unwrap(),
            ["default"],
            "[] clears the image's entrypoint but keeps its command"
        );
        assert_eq!(
            line(body(Some(vec![]), Some(vec!["y"])), Some(&img)).unwrap(),
            ["y"]
        );
    }

    #[test]
    fn environment_lists_merge_and_remove() {
        let env = merge_env(&[
            &["A=1".to_string(), "B=2".to_string()],
            &["A=3".to_string(), "B".to_string(), "C=4".to_string()],
        ]);
        assert_eq!(env, ["A=3", "C=4"]);
    }
}
