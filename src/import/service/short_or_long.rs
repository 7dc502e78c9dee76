//! Compose's short-or-long syntax: a list whose items are each a string,
//! the short form (`"8080:80"`), or a mapping, the long form
//! (`{target: 80, published: 8080}`), as `ports`, `volumes` and `secrets`
//! are written.

use serde_yaml_ng::{Mapping, Value as Y};

use super::Svc;

impl<'a> Svc<'a> {
    /// The items of a short-or-long list, each read by `short` (from its
    /// string) or `long`, with its key (`services.web.ports.0`); items
    /// either drops are left out. `None` when it is not a list (reported,
    /// unless it is empty).
    pub(super) fn short_or_long<T>(
        &mut self,
        at: &str,
        v: &Y,
        mut short: impl FnMut(&mut Svc<'a>, &str, String) -> Option<T>,
        mut long: impl FnMut(&mut Svc<'a>, &str, &Mapping) -> Option<T>,
    ) -> Option<Vec<(String, T)>> {
        let Y::Sequence(items) = v else {
            if !matches!(v, Y::Null) {
                self.expected(at.to_string(), "a list", v);
            }
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let iat = format!("{at}.{i}");
            let read = match item {
                Y::Mapping(m) => long(self, &iat, m),
                other => match self.string(iat.clone(), other) {
                    Some(s) => short(self, &iat, s),
                    None => None,
                },
            };
            if let Some(t) = read {
                out.push((iat, t));
            }
        }
        Some(out)
    }
}
