//! Who may talk to the dashboard. The engine API behind it is root, so
//! every request passes these checks before anything else, in this order:
//!
//! 1. `Host` is `127.0.0.1:PORT` or `localhost:PORT`: a page whose own
//!    name resolves to 127.0.0.1 (DNS rebinding) sends its own name.
//! 2. `Sec-Fetch-Site`, when the browser sends it, is `same-origin` or
//!    `none` (typed in, or the login's redirect), and
//!    `Origin`, when present, is the dashboard's own; a websocket upgrade
//!    must name an origin, and the dashboard's (browsers do not apply the
//!    same-origin policy to websockets, so this is the only fence there).
//! 3. The request carries the secret: once, as `?secret=` on `/` (the
//!    address `servin dashboard` prints), answered with a cookie and a
//!    redirect to the clean address; from then on, as that cookie
//!    (`HttpOnly`, so no script reads it; `SameSite=Strict`, so no other
//!    site's request carries it).
//!
//! Refusals are 403 for a request that names the wrong party (Host,
//! Origin, a wrong secret) and 401 for one without the secret.

use hyper::header::{COOKIE, HOST, ORIGIN, UPGRADE};
use hyper::{HeaderMap, StatusCode, Uri};

/// The dashboard's identity: its port and its per-start secret.
#[derive(Debug, Clone)]
pub struct Guard {
    port: u16,
    secret: String,
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Allow,
    /// The secret in the address was right: set the cookie and redirect
    /// to the clean address.
    Login,
    /// Refuse it with this status and reason.
    Refuse(StatusCode, String),
}

impl Guard {
    pub fn new(port: u16, secret: String) -> Self {
        Self { port, secret }
    }

    /// The cookie's name: one per port, so that two dashboards (and the
    /// cookie of an earlier one) do not overwrite each other, as cookies
    /// are shared between the ports of a host.
    pub fn cookie_name(&self) -> String {
        format!("servin_dashboard_{}", self.port)
    }

    /// The `Set-Cookie` value of a login.
    pub fn set_cookie(&self) -> String {
        format!(
            "{}={}; HttpOnly; SameSite=Strict; Path=/",
            self.cookie_name(),
            self.secret
        )
    }

    /// The address that logs in: the only place the secret is shown.
    pub fn login_url(&self) -> String {
        format!("http://127.0.0.1:{}/?secret={}", self.port, self.secret)
    }

    fn own_origins(&self) -> [String; 2] {
        [
            format!("http://127.0.0.1:{}", self.port),
            format!("http://localhost:{}", self.port),
        ]
    }

    /// Checks one request.
    pub fn check(&self, uri: &Uri, headers: &HeaderMap) -> Verdict {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let refuse = |status, why: String| Verdict::Refuse(status, why);

        let hosts = [
            format!("127.0.0.1:{}", self.port),
            format!("localhost:{}", self.port),
        ];
        match header(HOST.as_str()) {
            Some(h) if hosts.iter().any(|o| o == h) => {}
            Some(h) => {
                return refuse(
                    StatusCode::FORBIDDEN,
                    format!(
                        "refused: the Host header `{h}` is not this dashboard's ({})",
                        hosts.join(" or ")
                    ),
                );
            }
            None => {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "refused: the request has no Host header".to_string(),
                );
            }
        }

        // `same-site` too: another port of 127.0.0.1 is the same site
        // (ports do not count), and no friend of the dashboard.
        if let Some(site @ ("cross-site" | "same-site")) = header("sec-fetch-site") {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("refused: a request from another site (Sec-Fetch-Site: {site})"),
            );
        }
        let websocket =
            header(UPGRADE.as_str()).is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        match header(ORIGIN.as_str()) {
            Some(o) if self.own_origins().iter().any(|own| own == o) => {}
            Some(o) => {
                return refuse(
                    StatusCode::FORBIDDEN,
                    format!("refused: the Origin `{o}` is not this dashboard's"),
                );
            }
            None if websocket => {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "refused: a websocket upgrade without an Origin".to_string(),
                );
            }
            None => {}
        }

        if let Some(given) = query_value(uri.query().unwrap_or(""), "secret") {
            return if uri.path() == "/" && same(given.as_bytes(), self.secret.as_bytes()) {
                Verdict::Login
            } else {
                refuse(
                    StatusCode::FORBIDDEN,
                    "refused: the secret in the address is not this dashboard's; \
                     open the address `servin dashboard` printed"
                        .to_string(),
                )
            };
        }
        let name = self.cookie_name();
        let has_cookie = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .any(|(k, v)| k == name && same(v.as_bytes(), self.secret.as_bytes()));
        if has_cookie {
            Verdict::Allow
        } else {
            refuse(
                StatusCode::UNAUTHORIZED,
                "this dashboard needs its secret: open the address `servin dashboard` printed"
                    .to_string(),
            )
        }
    }
}

/// The value of `key` in a query string (not decoded: the secret is hex).
pub fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new secret: 32 bytes from the kernel's random source, as hex.
pub fn new_secret() -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn guard() -> Guard {
        Guard::new(4000, "ab12".to_string())
    }

    fn check(uri: &str, headers: &[(&str, &str)]) -> Verdict {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        guard().check(&uri.parse().unwrap(), &map)
    }

    fn status(v: Verdict) -> u16 {
        match v {
            Verdict::Refuse(s, _) => s.as_u16(),
            Verdict::Allow => 200,
            Verdict::Login => 303,
        }
    }

    const COOKIE_OK: (&str, &str) = ("cookie", "a=b; servin_dashboard_4000=ab12");

    #[test]
    fn the_secret_logs_in_once_then_the_cookie_lets_in() {
        assert_eq!(
            check("/?secret=ab12", &[("host", "127.0.0.1:4000")]),
            Verdict::Login
        );
        assert_eq!(
            check("/api/containers", &[("host", "localhost:4000"), COOKIE_OK]),
            Verdict::Allow
        );
        assert_eq!(
            guard().set_cookie(),
            "servin_dashboard_4000=ab12; HttpOnly; SameSite=Strict; Path=/"
        );
    }

    #[test]
    fn without_the_secret_nothing_is_served() {
        assert_eq!(status(check("/", &[("host", "127.0.0.1:4000")])), 401);
        assert_eq!(
            status(check(
                "/",
                &[
                    ("host", "127.0.0.1:4000"),
                    ("cookie", "servin_dashboard_4000=ab13")
                ]
            )),
            401
        );
        // Another dashboard's cookie, the right value under another name.
        assert_eq!(
            status(check(
                "/",
                &[
                    ("host", "127.0.0.1:4000"),
                    ("cookie", "servin_dashboard_4001=ab12")
                ]
            )),
            401
        );
        assert_eq!(
            status(check("/?secret=ab1", &[("host", "127.0.0.1:4000")])),
            403
        );
        // The secret logs in on `/` only.
        assert_eq!(
            status(check(
                "/api/containers?secret=ab12",
                &[("host", "127.0.0.1:4000")]
            )),
            403
        );
    }

    #[test]
    fn a_foreign_host_is_refused_even_with_the_cookie() {
        for host in [
            "evil.example:4000",
            "127.0.0.1:4001",
            "127.0.0.1",
            "0.0.0.0:4000",
        ] {
            let v = check("/", &[("host", host), COOKIE_OK]);
            assert_eq!(status(v), 403, "{host}");
        }
        assert_eq!(status(check("/", &[COOKIE_OK])), 403);
    }

    #[test]
    fn a_foreign_origin_is_refused_and_websockets_must_name_theirs() {
        let host = ("host", "127.0.0.1:4000");
        for origin in ["http://evil.example", "http://127.0.0.1:4001", "null"] {
            let v = check("/api/containers", &[host, COOKIE_OK, ("origin", origin)]);
            assert!(
                matches!(&v, Verdict::Refuse(s, why) if s.as_u16() == 403 && why.contains(origin)),
                "{v:?}"
            );
        }
        assert_eq!(
            check(
                "/api/containers",
                &[host, COOKIE_OK, ("origin", "http://localhost:4000")]
            ),
            Verdict::Allow
        );
        let ws = ("upgrade", "websocket");
        assert_eq!(
            status(check("/api/x/terminal", &[host, COOKIE_OK, ws])),
            403
        );
        assert_eq!(
            check(
                "/api/x/terminal",
                &[host, COOKIE_OK, ws, ("origin", "http://127.0.0.1:4000")]
            ),
            Verdict::Allow
        );
        for site in ["cross-site", "same-site"] {
            assert_eq!(
                status(check("/", &[host, COOKIE_OK, ("sec-fetch-site", site)])),
                403,
                "{site}"
            );
        }
        for site in ["same-origin", "none"] {
            assert_eq!(
                check("/", &[host, COOKIE_OK, ("sec-fetch-site", site)]),
                Verdict::Allow,
                "{site}"
            );
        }
    }

    #[test]
    fn secrets_are_long_and_new_each_time() {
        let a = new_secret().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_secret().unwrap());
    }
}
