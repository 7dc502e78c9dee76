//! `secrets` (short names or long mappings) → `secrets`, naming the
//! top-level secrets that servin can provide.

use serde_yaml_ng::{Mapping, Value as Y};

use super::Svc;
use crate::import::out::strings;

impl Svc<'_> {
    pub(super) fn secrets(&mut self, at: &str, v: &Y) {
        let Some(items) = self.short_or_long(
            at,
            v,
            |svc, iat, name| svc.declared_secret(iat, &name),
            |svc, iat, m| {
                let name = svc.long_secret(iat, m)?;
                svc.declared_secret(iat, &name)
            },
        ) else {
            return;
        };
        let mut out: Vec<String> = Vec::new();
        for (_, k) in items {
            if !out.contains(&k) {
                out.push(k);
            }
        }
        if !out.is_empty() {
            self.set("secrets", strings(&out));
        }
    }

    /// The source of a long secret entry; its other keys are reported.
    fn long_secret(&mut self, iat: &str, m: &Mapping) -> Option<String> {
        let mut source = None;
        let mut target = None;
        for (k, v) in self.fields(m, iat) {
            let kat = format!("{iat}.{k}");
            match k.as_str() {
                "source" => source = self.string(kat, v),
                "target" => target = self.string(kat.clone(), v).map(|t| (t, kat)),
                _ => self.dropped(kat),
            }
        }
        if let (Some(s), Some((t, kat))) = (&source, target)
            && &t != s
        {
            self.warn(
                kat,
                format!(
                    "servin mounts secrets at `/run/secrets/NAME`; the target `{t}` is dropped"
                ),
            );
        }
        if source.is_none() {
            self.warn(iat.to_string(), "a secret without a `source`; dropped");
        }
        source
    }

    /// The servin name of the top-level secret `name`, when servin can
    /// provide it.
    fn declared_secret(&mut self, iat: &str, name: &str) -> Option<String> {
        let known = self.names.secrets.get(name).map(str::to_string);
        if known.is_none() {
            self.warn(
                iat.to_string(),
                format!("the secret `{name}` is not declared in the top-level `secrets` with a file or a variable; dropped"),
            );
        }
        known
    }
}
