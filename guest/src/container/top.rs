//! The processes of a running container (`docker top`), as Docker lists
//! them: the host's `ps` with the caller's arguments (default `-ef`), its
//! rows kept for the PIDs in the container's cgroup.

use std::collections::HashSet;
use std::sync::Arc;

use bollard_stubs::models::ContainerTopResponse;

use super::{Container, Containers, Status};
use crate::error::{ContainerError, Error, Result};
use crate::runtime::cgroup::Cgroup;

/// Keeps the rows of `output` (from `ps`) whose PID column is in `pids`.
pub fn parse_ps(output: &str, pids: &HashSet<i32>) -> Result<ContainerTopResponse> {
    let mut lines = output.lines().filter(|l| !l.trim().is_empty());
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_column = titles.iter().position(|t| t == "PID").ok_or_else(|| {
        Error::from(ContainerError::InvalidConfig(
            "Couldn't find PID field in ps output".to_string(),
        ))
    })?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_column).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last title takes the rest of the line (a command and its
        // arguments).
        let last = titles.len().saturating_sub(1);
        let mut row: Vec<String> = fields.iter().take(last).map(|f| f.to_string()).collect();
        row.push(fields.get(last..).map(|r| r.join(" ")).unwrap_or_default());
        processes.push(row);
    }
    Ok(ContainerTopResponse {
        titles: Some(titles),
        processes: Some(processes),
    })
}

impl Containers {
    /// `ps ps_args` over the processes of running container `c`.
    pub async fn top(
        &self,
        c: &Arc<Container>,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse> {
        let s = c.state();
        if s.status == Status::Restarting {
            return Err(ContainerError::WrongState(format!(
                "Container {} is restarting, wait until the container is running",
                c.id()
            ))
            .into());
        }
        let pid = i32::try_from(s.pid).ok().filter(|p| *p > 0);
        let Some(pid) = pid.filter(|_| s.status == Status::Running) else {
            return Err(
                ContainerError::NotRunning(format!("Container {} is not running", c.id())).into(),
            );
        };
        let pids: HashSet<i32> = tokio::task::spawn_blocking(move || {
            let mut pids: HashSet<i32> = Cgroup::of_pid(pid)
                .map(|cg| cg.pids().into_iter().collect())
                .unwrap_or_default();
            pids.insert(pid);
            pids
        })
        .await
        .map_err(|e| Error::Runtime {
            context: format!("container {}: top", c.name()),
            message: e.to_string(),
        })?;
        let args: Vec<&str> = ps_args.unwrap_or("-ef").split_whitespace().collect();
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| Error::Runtime {
                context: format!("container {}: top", c.name()),
                message: format!("run ps: {e}"),
            })?;
        if !out.status.success() {
            return Err(ContainerError::InvalidConfig(format!(
                "ps {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
            .into());
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keeps_the_containers_rows() {
        let out = "UID   PID  PPID  C STIME TTY  TIME     CMD\n\
                   root    1     0  0 10:00 ?    00:00:01 /sbin/init\n\
                   root  100    90  0 10:01 ?    00:00:00 sleep 300 --x\n";
        let pids = HashSet::from([100]);
        let top = parse_ps(out, &pids).unwrap();
        assert_eq!(top.titles.as_ref().unwrap().len(), 8);
        let rows = top.processes.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][1], "100");
        assert_eq!(rows[0][7], "sleep 300 --x");
        let e = parse_ps("USER COMMAND\nroot x\n", &pids).unwrap_err();
        assert!(e.to_string().contains("PID"), "{e}");
    }
}
