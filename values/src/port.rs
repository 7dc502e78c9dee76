//! Published ports (`"127.0.0.1:8080:80/udp"`) and exposed ports
//! (`"9000-9002"`), in Compose's short syntax.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// A transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The lowercase name, as written in a port string.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    fn parse(text: &str) -> Result<Protocol, String> {
        match text.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            _ => Err(format!("unknown protocol \"{text}\"; use tcp, udp or sctp")),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An inclusive range of port numbers; a single port has `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

impl PortRange {
    /// A range holding one port.
    pub fn single(port: u16) -> PortRange {
        PortRange {
            start: port,
            end: port,
        }
    }

    /// How many ports the range holds.
    pub fn len(&self) -> usize {
        usize::from(self.end.saturating_sub(self.start)) + 1
    }

    /// Always false: a range holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The ports of the range, in order.
    pub fn ports(&self) -> impl Iterator<Item = u16> + use<> {
        self.start..=self.end
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// A parsed `ports` entry. Without `published`, the host ports are random.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortSpec {
    pub host_ip: Option<IpAddr>,
    pub published: Option<PortRange>,
    pub target: PortRange,
    pub protocol: Protocol,
}

/// One container port of a [`PortSpec`], see [`PortSpec::expand`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Port {
    pub target: u16,
    pub published: Option<u16>,
    pub host_ip: Option<IpAddr>,
    pub protocol: Protocol,
}

impl PortSpec {
    /// One [`Port`] per port of the target range, paired in order with the
    /// published range when there is one.
    pub fn expand(&self) -> Vec<Port> {
        let mut published = self.published.map(|range| range.ports());
        self.target
            .ports()
            .map(|target| Port {
                target,
                published: published.as_mut().and_then(Iterator::next),
                host_ip: self.host_ip,
                protocol: self.protocol,
            })
            .collect()
    }
}

impl fmt::Display for PortSpec {
    /// The canonical short form, e.g. `[::1]:8080:80/udp` or `80/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V4(ip)) => write!(f, "{ip}:")?,
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            None => {}
        }
        if let Some(published) = self.published {
            write!(f, "{published}:")?;
        } else if self.host_ip.is_some() {
            f.write_str(":")?;
        }
        write!(f, "{}/{}", self.target, self.protocol)
    }
}

/// Parses a `ports` entry in Compose's short syntax:
/// `[[host_ip:]published:]target[/protocol]`, where `published` and `target`
/// are ports (`80`) or ranges (`8000-8002`), an IPv6 host address is written
/// in brackets (`[::1]:8080:80`), and an empty published part with a host
/// address (`127.0.0.1::80`) means a random host port on that address.
pub fn parse_port(input: &str) -> Result<PortSpec, String> {
    if input.trim().is_empty() {
        return Err(
            "empty port; use \"target\", \"published:target\" or \"ip:published:target\""
                .to_string(),
        );
    }
    if input.chars().any(char::is_whitespace) {
        return Err(format!(
            "invalid port \"{input}\": must not contain whitespace"
        ));
    }
    let (addressed, protocol) = split_protocol(input)?;
    let (host_ip, ports) = if let Some(bracketed) = addressed.strip_prefix('[') {
        let Some((ip_text, rest)) = bracketed.split_once(']') else {
            return Err(format!(
                "invalid port \"{input}\": missing \"]\" after IPv6 address"
            ));
        };
        let ip: Ipv6Addr = ip_text
            .parse()
            .map_err(|_| format!("invalid IPv6 address \"{ip_text}\" in port \"{input}\""))?;
        let Some(ports) = rest.strip_prefix(':') else {
            return Err(format!(
                "invalid port \"{input}\": expected \":published:target\" after \"[{ip_text}]\""
            ));
        };
        if !ports.contains(':') {
            return Err(format!(
                "invalid port \"{input}\": expected \"published:target\" after the host address, like \"[{ip_text}]:8080:80\""
            ));
        }
        (Some(IpAddr::V6(ip)), ports)
    } else {
        match addressed.matches(':').count() {
            0 | 1 => (None, addressed),
            2 => {
                let Some((ip_text, ports)) = addressed.split_once(':') else {
                    return Err(format!("invalid port \"{input}\""));
                };
                let ip: IpAddr = ip_text.parse().map_err(|_| {
                    format!("invalid host address \"{ip_text}\" in port \"{input}\"")
                })?;
                (Some(ip), ports)
            }
            _ => {
                return Err(format!(
                    "ambiguous port \"{input}\": write an IPv6 host address in brackets, like \"[::1]:8080:80\""
                ));
            }
        }
    };
    let (published, target) = match ports.split_once(':') {
        Some(("", target)) if host_ip.is_some() => (None, target),
        Some(("", _)) => {
            return Err(format!("invalid port \"{input}\": empty published port"));
        }
        Some((published, target)) => (Some(parse_range(published, input, "published")?), target),
        None => (None, ports),
    };
    let target = parse_range(target, input, "target")?;
    if let Some(published) = published
        && published.len() != target.len()
    {
        return Err(format!(
            "invalid port \"{input}\": published range {published} has {} port{} but target range {target} has {}",
            published.len(),
            plural(published.len()),
            target.len(),
        ));
    }
    Ok(PortSpec {
        host_ip,
        published,
        target,
        protocol,
    })
}

/// Parses an `expose` entry: a port or range with an optional protocol,
/// `"8080"`, `"8080/udp"`, `"9000-9002"`.
pub fn parse_expose(input: &str) -> Result<(PortRange, Protocol), String> {
    if input.trim().is_empty() {
        return Err(
            "empty port; use a port like \"8080\" or a range like \"9000-9002\"".to_string(),
        );
    }
    if input.chars().any(char::is_whitespace) {
        return Err(format!(
            "invalid port \"{input}\": must not contain whitespace"
        ));
    }
    let (ports, protocol) = split_protocol(input)?;
    if ports.contains(':') {
        return Err(format!(
            "invalid exposed port \"{input}\": give only a container port or range, like \"8080\" or \"9000-9002\""
        ));
    }
    Ok((parse_range(ports, input, "target")?, protocol))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn split_protocol(input: &str) -> Result<(&str, Protocol), String> {
    match input.rsplit_once('/') {
        Some((rest, protocol)) => {
            if protocol.is_empty() {
                return Err(format!(
                    "invalid port \"{input}\": missing protocol after \"/\"; use tcp, udp or sctp"
                ));
            }
            Ok((rest, Protocol::parse(protocol)?))
        }
        None => Ok((input, Protocol::Tcp)),
    }
}

fn parse_range(text: &str, input: &str, role: &str) -> Result<PortRange, String> {
    if text.is_empty() {
        return Err(format!("invalid port \"{input}\": missing {role} port"));
    }
    match text.split_once('-') {
        Some((start, end)) => {
            let start = parse_number(start, input, role)?;
            let end = parse_number(end, input, role)?;
            if start > end {
                return Err(format!(
                    "invalid {role} port range \"{text}\" in \"{input}\": start is greater than end"
                ));
            }
            Ok(PortRange { start, end })
        }
        None => Ok(PortRange::single(parse_number(text, input, role)?)),
    }
}

fn parse_number(text: &str, input: &str, role: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid {role} port \"{text}\" in \"{input}\"; use a number from 1 to 65535"
        ));
    }
    match text.parse::<u16>() {
        Ok(port) if port >= 1 => Ok(port),
        _ => Err(format!(
            "{role} port {text} in \"{input}\" is out of range; use a number from 1 to 65535"
        )),
    }
}

/// Parses a `--publish` value. Besides the project syntax
/// ([`parse_port`]) it takes Docker's host range for one container
/// port (`8000-8010:80`: the first free host port of the range), returned
/// as the range's text.
pub fn parse_publish(spec: &str) -> Result<(PortSpec, Option<PortRange>), String> {
    let first = match parse_port(spec) {
        Ok(p) => return Ok((p, None)),
        Err(e) => e,
    };
    let (ports, proto) = match spec.rsplit_once('/') {
        Some((ports, proto)) => (ports, format!("/{proto}")),
        None => (spec, String::new()),
    };
    let Some((front, target)) = ports.rsplit_once(':') else {
        return Err(first);
    };
    let (ip, host) = match front.rsplit_once(':') {
        Some((ip, host)) => (format!("{ip}:"), host),
        None => (String::new(), front),
    };
    let Some((low, high)) = host.split_once('-') else {
        return Err(first);
    };
    let (Ok(low), Ok(high)) = (low.parse::<u16>(), high.parse::<u16>()) else {
        return Err(first);
    };
    match parse_port(&format!("{ip}{low}:{target}{proto}")) {
        Ok(p) if p.target.len() == 1 && low > 0 && low <= high => Ok((
            p,
            Some(PortRange {
                start: low,
                end: high,
            }),
        )),
        _ => Err(first),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn publish_takes_a_host_range_for_one_port() {
        let (spec, range) = parse_publish("127.0.0.1:7000-7010:70/udp").unwrap();
        assert_eq!(
            range,
            Some(PortRange {
                start: 7000,
                end: 7010
            })
        );
        assert_eq!(spec.target, PortRange::single(70));
        assert_eq!(spec.published, Some(PortRange::single(7000)));
        assert_eq!(spec.protocol, Protocol::Udp);
        assert_eq!(spec.host_ip, Some(IpAddr::from([127, 0, 0, 1])));
        let (spec, range) = parse_publish("9000-9001:90-91").unwrap();
        assert_eq!(
            (spec.published, range),
            (
                Some(PortRange {
                    start: 9000,
                    end: 9001
                }),
                None
            )
        );
        assert_eq!(parse_publish("443").unwrap().0, parse_port("443").unwrap());
        for bad in ["9000-9002:90-91", "x:80", "7010-7000:70", "0-5:70", ""] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_publish("x:80").unwrap_err(),
            parse_port("x:80").unwrap_err()
        );
    }

    fn range(start: u16, end: u16) -> PortRange {
        PortRange { start, end }
    }

    fn spec(
        host_ip: Option<&str>,
        published: Option<PortRange>,
        target: PortRange,
        protocol: Protocol,
    ) -> PortSpec {
        PortSpec {
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
            published,
            target,
            protocol,
        }
    }

    #[test]
    fn parses_valid_forms() {
        use Protocol::*;
        let one = PortRange::single;
        let cases: Vec<(&str, PortSpec, &str)> = vec![
            ("80", spec(None, None, one(80), Tcp), "80/tcp"),
            (
                "8080:80",
                spec(None, Some(one(8080)), one(80), Tcp),
                "8080:80/tcp",
            ),
            (
                "127.0.0.1:8080:80",
                spec(Some("127.0.0.1"), Some(one(8080)), one(80), Tcp),
                "127.0.0.1:8080:80/tcp",
            ),
            (
                "127.0.0.1::80",
                spec(Some("127.0.0.1"), None, one(80), Tcp),
                "127.0.0.1::80/tcp",
            ),
            (
                "[::1]:8080:80",
                spec(Some("::1"), Some(one(8080)), one(80), Tcp),
                "[::1]:8080:80/tcp",
            ),
            (
                "[::1]::80/udp",
                spec(Some("::1"), None, one(80), Udp),
                "[::1]::80/udp",
            ),
            (
                "8080:80/udp",
                spec(None, Some(one(8080)), one(80), Udp),
                "8080:80/udp",
            ),
            ("53/UDP", spec(None, None, one(53), Udp), "53/udp"),
            ("9/sctp", spec(None, None, one(9), Sctp), "9/sctp"),
            (
                "8000-8002:8000-8002",
                spec(None, Some(range(8000, 8002)), range(8000, 8002), Tcp),
                "8000-8002:8000-8002/tcp",
            ),
            (
                "8000-8002",
                spec(None, None, range(8000, 8002), Tcp),
                "8000-8002/tcp",
            ),
            ("80-80", spec(None, None, one(80), Tcp), "80/tcp"),
            (
                "9090-9091:8080-8081/tcp",
                spec(None, Some(range(9090, 9091)), range(8080, 8081), Tcp),
                "9090-9091:8080-8081/tcp",
            ),
            (
                "0.0.0.0:80:80",
                spec(Some("0.0.0.0"), Some(one(80)), one(80), Tcp),
                "0.0.0.0:80:80/tcp",
            ),
            (
                "65535:1",
                spec(None, Some(one(65535)), one(1), Tcp),
                "65535:1/tcp",
            ),
            ("080", spec(None, None, one(80), Tcp), "80/tcp"),
        ];
        for (input, expected, canonical) in cases {
            let parsed = parse_port(input).unwrap();
            assert_eq!(parsed, expected, "{input}");
            assert_eq!(parsed.to_string(), canonical, "{input}");
            assert_eq!(parse_port(canonical), Ok(parsed), "{canonical}");
        }
    }

    #[test]
    fn rejects_invalid_forms() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "empty port; use \"target\", \"published:target\" or \"ip:published:target\"",
            ),
            (
                " ",
                "empty port; use \"target\", \"published:target\" or \"ip:published:target\"",
            ),
            (
                "80 :80",
                "invalid port \"80 :80\": must not contain whitespace",
            ),
            (
                "::1:8080:80",
                "ambiguous port \"::1:8080:80\": write an IPv6 host address in brackets, like \"[::1]:8080:80\"",
            ),
            (
                "1:2:3:4",
                "ambiguous port \"1:2:3:4\": write an IPv6 host address in brackets, like \"[::1]:8080:80\"",
            ),
            ("80/icmp", "unknown protocol \"icmp\"; use tcp, udp or sctp"),
            (
                "80/",
                "invalid port \"80/\": missing protocol after \"/\"; use tcp, udp or sctp",
            ),
            (
                "0",
                "target port 0 in \"0\" is out of range; use a number from 1 to 65535",
            ),
            (
                "0:80",
                "published port 0 in \"0:80\" is out of range; use a number from 1 to 65535",
            ),
            (
                "65536",
                "target port 65536 in \"65536\" is out of range; use a number from 1 to 65535",
            ),
            (
                "99999999999999999999",
                "target port 99999999999999999999 in \"99999999999999999999\" is out of range; use a number from 1 to 65535",
            ),
            (
                "http",
                "invalid target port \"http\" in \"http\"; use a number from 1 to 65535",
            ),
            (
                "-80",
                "invalid target port \"\" in \"-80\"; use a number from 1 to 65535",
            ),
            (
                "80-",
                "invalid target port \"\" in \"80-\"; use a number from 1 to 65535",
            ),
            (
                "1-2-3",
                "invalid target port \"2-3\" in \"1-2-3\"; use a number from 1 to 65535",
            ),
            (
                "+80",
                "invalid target port \"+80\" in \"+80\"; use a number from 1 to 65535",
            ),
            (
                "8002-8000",
                "invalid target port range \"8002-8000\" in \"8002-8000\": start is greater than end",
            ),
            (
                "8000-8002:80",
                "invalid port \"8000-8002:80\": published range 8000-8002 has 3 ports but target range 80 has 1",
            ),
            (
                "80:8000-8001",
                "invalid port \"80:8000-8001\": published range 80 has 1 port but target range 8000-8001 has 2",
            ),
            (":80", "invalid port \":80\": empty published port"),
            ("80:", "invalid port \"80:\": missing target port"),
            (
                "1.2.3.4:80:",
                "invalid port \"1.2.3.4:80:\": missing target port",
            ),
            ("/tcp", "invalid port \"/tcp\": missing target port"),
            (
                "localhost:80:80",
                "invalid host address \"localhost\" in port \"localhost:80:80\"",
            ),
            (
                "1.2.3:80:80",
                "invalid host address \"1.2.3\" in port \"1.2.3:80:80\"",
            ),
            (
                "[::1:80:80",
                "invalid port \"[::1:80:80\": missing \"]\" after IPv6 address",
            ),
            (
                "[1.2.3.4]:80:80",
                "invalid IPv6 address \"1.2.3.4\" in port \"[1.2.3.4]:80:80\"",
            ),
            (
                "[::1]80:80",
                "invalid port \"[::1]80:80\": expected \":published:target\" after \"[::1]\"",
            ),
            (
                "[::1]:80",
                "invalid port \"[::1]:80\": expected \"published:target\" after the host address, like \"[::1]:8080:80\"",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(parse_port(input), Err(message.to_string()), "{input}");
        }
    }

    #[test]
    fn expands_ranges() {
        let spec = parse_port("127.0.0.1:9090-9091:8080-8081/udp").unwrap();
        let ip: Option<IpAddr> = Some("127.0.0.1".parse().unwrap());
        assert_eq!(
            spec.expand(),
            vec![
                Port {
                    target: 8080,
                    published: Some(9090),
                    host_ip: ip,
                    protocol: Protocol::Udp
                },
                Port {
                    target: 8081,
                    published: Some(9091),
                    host_ip: ip,
                    protocol: Protocol::Udp
                },
            ]
        );
        let spec = parse_port("8000-8002").unwrap();
        let expanded = spec.expand();
        assert_eq!(expanded.len(), 3);
        assert!(expanded.iter().all(|p| p.published.is_none()));
        assert_eq!(
            expanded.iter().map(|p| p.target).collect::<Vec<_>>(),
            [8000, 8001, 8002]
        );
        assert_eq!(parse_port("1-65535").unwrap().expand().len(), 65535);
        assert_eq!(parse_port("80").unwrap().expand().len(), 1);
    }

    #[test]
    fn parses_expose() {
        assert_eq!(
            parse_expose("8080"),
            Ok((PortRange::single(8080), Protocol::Tcp))
        );
        assert_eq!(
            parse_expose("8080/udp"),
            Ok((PortRange::single(8080), Protocol::Udp))
        );
        assert_eq!(
            parse_expose("9000-9002"),
            Ok((range(9000, 9002), Protocol::Tcp))
        );
        assert_eq!(
            parse_expose(""),
            Err("empty port; use a port like \"8080\" or a range like \"9000-9002\"".to_string())
        );
        assert_eq!(
            parse_expose("80 "),
            Err("invalid port \"80 \": must not contain whitespace".to_string())
        );
        assert_eq!(
            parse_expose("8080:80"),
            Err("invalid exposed port \"8080:80\": give only a container port or range, like \"8080\" or \"9000-9002\"".to_string())
        );
        assert_eq!(
            parse_expose("80/xyz"),
            Err("unknown protocol \"xyz\"; use tcp, udp or sctp".to_string())
        );
        assert_eq!(
            parse_expose("0"),
            Err("target port 0 in \"0\" is out of range; use a number from 1 to 65535".to_string())
        );
    }

    #[test]
    fn ranges_and_protocols() {
        assert_eq!(range(1, 3).len(), 3);
        assert_eq!(PortRange::single(7).len(), 1);
        assert!(!PortRange::single(7).is_empty());
        assert_eq!(range(1, 3).to_string(), "1-3");
        assert_eq!(Protocol::Sctp.to_string(), "sctp");
        assert_eq!(Protocol::default(), Protocol::Tcp);
    }

    #[test]
    fn serialises() {
        assert_eq!(serde_json::to_string(&Protocol::Udp).unwrap(), "\"udp\"");
        let port = &parse_port("[::1]:81:80/sctp").unwrap().expand()[0];
        let json = serde_json::to_string(port).unwrap();
        assert_eq!(
            json,
            r#"{"target":80,"published":81,"host_ip":"::1","protocol":"sctp"}"#
        );
        assert_eq!(serde_json::from_str::<Port>(&json).unwrap(), *port);
        let spec = parse_port("8000-8001").unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<PortSpec>(&json).unwrap(), spec);
    }
}
