//! `healthcheck` → `healthcheck`.

use serde_yaml_ng::Value as Y;
use toml_edit::Value;

use super::Svc;
use crate::import::out::{string, strings, table};
use crate::import::yaml::{boolean, scalar};

impl Svc<'_> {
    pub(super) fn healthcheck(&mut self, at: &str, v: &Y) {
        let Some(m) = self.mapping(at, v) else {
            return;
        };
        let fields = self.fields(m, at);
        if fields
            .iter()
            .any(|(k, v)| k == "disable" && boolean(v) == Some(true))
        {
            self.warn(
                format!("{at}.disable"),
                "servin cannot turn off the image's healthcheck; dropped",
            );
            return;
        }
        let mut cmd = None;
        let mut rest: Vec<(&str, Value)> = Vec::new();
        for (k, v) in fields {
            let kat = format!("{at}.{k}");
            match k.as_str() {
                "test" => match v {
                    Y::Sequence(items)
                        if items.first().and_then(scalar).as_deref() == Some("NONE") =>
                    {
                        self.warn(
                            kat,
                            "servin cannot turn off the image's healthcheck; dropped",
                        );
                        return;
                    }
                    Y::Sequence(_) => cmd = self.string_list(&kat, v).map(|l| strings(&l)),
                    other => cmd = self.string(kat, other).map(|s| string(&s)),
                },
                "interval" | "timeout" | "start_period" => {
                    if let Some(d) = self.duration(kat, v) {
                        rest.push((
                            if k == "interval" {
                                "interval"
                            } else if k == "timeout" {
                                "timeout"
                            } else {
                                "start_period"
                            },
                            string(&d),
                        ));
                    }
                }
                "retries" => {
                    if let Some(n) = self.integer(kat.clone(), v) {
                        if n >= 1 && n <= i64::from(u32::MAX) {
                            rest.push(("retries", Value::from(n)));
                        } else {
                            self.warn(kat, format!("`{n}` retries is not at least 1; dropped"));
                        }
                    }
                }
                "disable" => {}
                _ => self.dropped(kat),
            }
        }
        let Some(cmd) = cmd else {
            self.warn(
                at.to_string(),
                "a healthcheck without a `test` (tuning the image's) is not supported by servin; dropped",
            );
            return;
        };
        let mut entries = vec![("cmd", cmd)];
        entries.extend(rest);
        self.set("healthcheck", table(entries));
    }
}
