//! Health checks: the container's check command, run through exec on its
//! interval; the status (`starting`, `healthy`, `unhealthy`) shows in `ps`
//! and `inspect`, and changes are events.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bollard_stubs::models::{ExecConfig, HealthStatusEnum, HealthcheckResult};
use tokio::io::AsyncReadExt;

use super::record::{Record, Status};
use super::{Container, Containers};
use crate::timefmt;

/// Docker's defaults.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// How many results `inspect` shows.
const KEPT_RESULTS: usize = 5;
/// How much output of a check is kept.
const KEPT_OUTPUT: usize = 4096;

fn nanos(v: Option<i64>) -> Option<Duration> {
    v.filter(|n| *n > 0)
        .and_then(|n| u64::try_from(n).ok())
        .map(Duration::from_nanos)
}

impl Containers {
    /// Starts the health check loop of a running container that has one.
    pub(super) fn start_health(self: &Arc<Self>, c: &Arc<Container>) {
        let Some(test) = health_test(&c.record) else {
            return;
        };
        let hc = c.record.body.healthcheck.clone().unwrap_or_default();
        let interval = nanos(hc.interval).unwrap_or(DEFAULT_INTERVAL);
        let timeout = nanos(hc.timeout).unwrap_or(DEFAULT_TIMEOUT);
        let start_period = nanos(hc.start_period).unwrap_or(Duration::ZERO);
        let start_interval = nanos(hc.start_interval).unwrap_or(interval);
        let retries = hc.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES);
        let this = Arc::clone(self);
        let c2 = Arc::clone(c);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            loop {
                let in_start_period = started.elapsed() < start_period;
                let healthy_yet = c2
                    .state()
                    .health
                    .and_then(|h| h.status)
                    .is_some_and(|s| s == HealthStatusEnum::HEALTHY);
                let wait = if in_start_period && !healthy_yet {
                    start_interval
                } else {
                    interval
                };
                tokio::time::sleep(wait).await;
                if c2.state().status != Status::Running {
                    return;
                }
                let result = this.check(&c2, &test, timeout).await;
                this.record_check(&c2, result, retries, started.elapsed() < start_period);
            }
        });
        if let Ok(mut h) = c.health.lock()
            && let Some(old) = h.replace(task.abort_handle())
        {
            old.abort();
        }
    }

    /// Runs the check once: exit code and output.
    async fn check(
        &self,
        c: &Arc<Container>,
        test: &[String],
        timeout: Duration,
    ) -> HealthcheckResult {
        let start = timefmt::format_nanos(SystemTime::now());
        let config = ExecConfig {
            cmd: Some(test.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let run = async {
            let mut p = self.run_in(c, &config, "health").await?;
            let io = p.take_io();
            let mut out = Vec::new();
            let mut stdout = io.stdout;
            let mut err_buf = Vec::new();
            let read_out = async {
                let _ = (&mut stdout)
                    .take(KEPT_OUTPUT as u64)
                    .read_to_end(&mut out)
                    .await;
                let mut sink = Vec::new();
                let _ = stdout.read_to_end(&mut sink).await;
            };
            let read_err = async {
                if let Some(mut e) = io.stderr {
                    let _ = (&mut e)
                        .take(KEPT_OUTPUT as u64)
                        .read_to_end(&mut err_buf)
                        .await;
                    let mut sink = Vec::new();
                    let _ = e.read_to_end(&mut sink).await;
                }
            };
            tokio::join!(read_out, read_err);
            let code = p.wait().await?;
            out.extend_from_slice(&err_buf);
            out.truncate(KEPT_OUTPUT);
            Ok::<_, crate::error::Error>((code, String::from_utf8_lossy(&out).into_owned()))
        };
        let (code, output) = match tokio::time::timeout(timeout, run).await {
            Ok(Ok((code, output))) => (i64::from(code), output),
            Ok(Err(e)) => (-1, e.full_message()),
            Err(_) => (
                -1,
                format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64()),
            ),
        };
        HealthcheckResult {
            start: Some(start),
            end: Some(timefmt::format_nanos(SystemTime::now())),
            exit_code: Some(code),
            output: Some(output),
        }
    }

    fn record_check(
        &self,
        c: &Arc<Container>,
        result: HealthcheckResult,
        retries: i64,
        in_start_period: bool,
    ) {
        let ok = result.exit_code == Some(0);
        let mut changed_to = None;
        let res = c.update(|s| {
            let Some(h) = s.health.as_mut() else {
                return;
            };
            let before = h.status;
            let log = h.log.get_or_insert_with(Vec::new);
            log.push(result);
            if log.len() > KEPT_RESULTS {
                let extra = log.len() - KEPT_RESULTS;
                log.drain(..extra);
            }
            if ok {
                h.failing_streak = Some(0);
                h.status = Some(HealthStatusEnum::HEALTHY);
            } else if !in_start_period || before == Some(HealthStatusEnum::HEALTHY) {
                let streak = h.failing_streak.unwrap_or(0) + 1;
                h.failing_streak = Some(streak);
                if streak >= retries {
                    h.status = Some(HealthStatusEnum::UNHEALTHY);
                }
            }
            if h.status != before {
                changed_to = h.status;
            }
        });
        if let Err(e) = res {
            tracing::warn!("record the health of {}: {}", c.name(), e.full_message());
        }
        if let Some(status) = changed_to {
            self.events
                .container(&format!("health_status: {status}"), c.id(), c.attributes());
        }
    }
}

/// The health check command, when the container has one.
pub fn health_test(rec: &Record) -> Option<Vec<String>> {
    let test = rec.body.healthcheck.as_ref().and_then(|h| h.test.clone())?;
    match test.first().map(String::as_str) {
        Some("CMD") => Some(test[1..].to_vec()).filter(|t| !t.is_empty()),
        Some("CMD-SHELL") => test
            .get(1)
            .map(|cmd| vec!["/bin/sh".to_string(), "-c".to_string(), cmd.clone()]),
        _ => None,
    }
}
