//! Who is asking: the socket's peer, unless that peer is a trusted proxy, in
//! which case the forwarding headers name the client. A client can write any
//! `X-Forwarded-For` it likes, so the headers are read only from proxies named
//! in `UNDERSIGNED_TRUSTED_PROXIES`, and only as far back as the chain of trusted
//! hops goes: the first address (from the right) that is not a trusted proxy is
//! the client. Only the one header the proxies write is read
//! (`UNDERSIGNED_FORWARDED_HEADER`): most proxies append to `X-Forwarded-For`
//! and pass a client's own `Forwarded` through untouched, so believing both
//! would let a client name its address in the other one.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use http::HeaderMap;
use ipnet::IpNet;

/// Which header the trusted proxies write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded`.
    Forwarded,
}

impl ForwardedHeader {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            other => Err(format!("{other:?}: expected x-forwarded-for or forwarded")),
        }
    }
}

impl FromStr for ForwardedHeader {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The written form [`ForwardedHeader::parse`] reads back.
impl fmt::Display for ForwardedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        })
    }
}

/// Proxies whose forwarding header is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// Comma-separated CIDRs (a bare address is a /32 or /128); empty is none.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is not an address or CIDR"))
            })
            .collect::<Result<_, _>>()
            .map(|nets| Self {
                nets,
                header: ForwardedHeader::default(),
            })
    }

    /// Reads `header` (instead of `X-Forwarded-For`) from trusted proxies.
    pub fn reading(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// Whether `ip` is one of the trusted proxies.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for this request.
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer.ip());
        if !self.trusts(peer) {
            return peer;
        }
        // Each hop appends to the right, so walk from the right past trusted proxies.
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
            ForwardedHeader::Forwarded => forwarded(headers),
        };
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            match hop {
                Some(ip) => {
                    client = canonical(ip);
                    if !self.trusts(client) {
                        break;
                    }
                }
                // An obfuscated or unknown hop: nothing further left is believable.
                None => break,
            }
        }
        client
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The comma-separated list [`TrustedProxies::parse`] reads back (the header
/// is configured apart).
impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket's view) as plain IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| parse_node(hop.trim()))
        .collect()
}

/// The `for=` of each element of every `Forwarded` header, in order.
fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, value)| parse_node(value.trim().trim_matches('"')))
        })
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:8080`, `[2001:db8::1]`, `[2001:db8::1]:8080` or a bare
/// IPv6 address; anything else (`unknown`, `_hidden`) is `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.parse::<SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40_000)
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            trusted.client(peer("198.51.100.4"), &h).to_string(),
            "198.51.100.4"
        );
        let none = TrustedProxies::default();
        assert_eq!(none.client(peer("10.1.1.1"), &h).to_string(), "10.1.1.1");
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse("10.0.0.0/8, 2001:db8:ffff::/48").unwrap();
        // The client wrote a fake first hop; the proxies appended the real ones.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.7")]);
        assert_eq!(
            trusted.client(peer("10.0.0.1"), &h).to_string(),
            "203.0.113.9"
        );
        let h = headers(&[
            ("x-forwarded-for", "10.0.0.2"),
            ("x-forwarded-for", "10.0.0.3"),
        ]);
        assert_eq!(trusted.client(peer("10.0.0.1"), &h).to_string(), "10.0.0.2");
        let h = headers(&[("x-forwarded-for", "unknown, 10.0.0.3")]);
        assert_eq!(trusted.client(peer("10.0.0.1"), &h).to_string(), "10.0.0.3");
    }

    #[test]
    fn only_the_configured_header_counts_and_its_forms_parse() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            (
                "forwarded",
                r#"for=192.0.2.60;proto=http, For="[2001:db8:cafe::17]:4711""#,
            ),
        ]);
        // A proxy writing X-Forwarded-For passes the client's own Forwarded on.
        let xff = TrustedProxies::parse("10.0.0.1").unwrap();
        assert_eq!(xff.client(peer("10.0.0.1"), &h).to_string(), "198.51.100.1");
        let trusted = TrustedProxies::parse("10.0.0.1")
            .unwrap()
            .reading(ForwardedHeader::Forwarded);
        assert_eq!(
            trusted.client(peer("10.0.0.1"), &h).to_string(),
            "2001:db8:cafe::17"
        );
        let h = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(trusted.client(peer("10.0.0.1"), &h).to_string(), "10.0.0.1");
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:1".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "192.0.2.5:1234")]);
        assert_eq!(xff.client(mapped, &h).to_string(), "192.0.2.5");
        assert!(ForwardedHeader::parse("X-Real-IP").is_err());
    }

    #[test]
    fn the_written_forms_read_back() {
        for header in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
            assert_eq!(header.to_string().parse::<ForwardedHeader>(), Ok(header));
        }
        let list = TrustedProxies::parse("10.0.0.0/8, 2001:db8::1").unwrap();
        assert_eq!(list.to_string(), "10.0.0.0/8,2001:db8::1/128");
        assert_eq!(
            list.to_string().parse::<TrustedProxies>().unwrap().nets,
            list.nets
        );
    }

    #[test]
    fn config_errors_name_the_entry() {
        assert!(TrustedProxies::parse("").unwrap().nets.is_empty());
        assert!(
            TrustedProxies::parse("10.0.0.0/33")
                .unwrap_err()
                .contains("10.0.0.0/33")
        );
    }
}
