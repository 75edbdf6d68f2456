//! Where a webhook may point. A URL given by an organizer is a request the
//! service makes on their behalf from inside its network; left unchecked it
//! reaches the cloud's metadata endpoint, Postgres's neighbours or the
//! operators' listener (server-side request forgery). So a target must be
//! `https`, and its host must be a public address, both when it is created
//! and at every delivery: a name is resolved again each time a connection
//! opens ([`PublicOnly`]), so a name that pointed outside at creation and
//! inside later (DNS rebinding) is refused then. Both rules are lifted by
//! `UNDERSIGNED_WEBHOOK_ALLOW_PRIVATE=true`, for tests and for a receiver
//! on the operators' own network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest_tls::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why a target is refused, as the API's error code says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not an absolute http or https URL")]
    Invalid,
    #[error("must be https")]
    HttpsRequired,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("{0} is not a public address")]
    PrivateAddress(IpAddr),
    #[error("the name does not resolve to public addresses only")]
    NotPublic,
}

impl Refusal {
    /// The code an API error gives for it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::HttpsRequired => "https_required",
            Self::Credentials => "credentials_not_allowed",
            Self::PrivateAddress(_) => "private_address",
            Self::NotPublic => "not_public",
        }
    }
}

/// Longest URL a webhook may have.
const URL_MAX: usize = 2048;

/// The rules targets are held to.
#[derive(Debug, Clone, Copy)]
pub struct Targets {
    pub allow_private: bool,
}

impl Targets {
    /// Whether `raw` may be a target as written: an absolute `https` URL
    /// (`http` too when private targets are allowed) with no credentials,
    /// whose host, when an address, is public.
    pub fn check_url(&self, raw: &str) -> Result<Url, Refusal> {
        if raw.len() > URL_MAX {
            return Err(Refusal::Invalid);
        }
        let url = Url::parse(raw.trim()).map_err(|_| Refusal::Invalid)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            "http" => return Err(Refusal::HttpsRequired),
            _ => return Err(Refusal::Invalid),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Credentials);
        }
        match url.host() {
            None => return Err(Refusal::Invalid),
            Some(Host::Ipv4(ip)) => self.check_address(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => self.check_address(IpAddr::V6(ip))?,
            Some(Host::Domain(_)) => {}
        }
        Ok(url)
    }

    /// Whether the service may connect to `ip`.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_private || is_public(ip) {
            Ok(())
        } else {
            Err(Refusal::PrivateAddress(ip))
        }
    }

    /// Resolves the URL's host now and refuses it when it has no address or
    /// any of its addresses is not public: checked when a webhook is
    /// created, to tell its creator at once. Both are one refusal, so that
    /// creating webhooks cannot tell which names the service's own network
    /// knows.
    pub async fn check_resolved(&self, url: &Url) -> Result<(), Refusal> {
        let Some(Host::Domain(name)) = url.host() else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| Refusal::NotPublic)?
            .collect();
        if addresses.is_empty()
            || addresses
                .iter()
                .any(|a| self.check_address(a.ip()).is_err())
        {
            return Err(Refusal::NotPublic);
        }
        Ok(())
    }

    /// The resolver deliveries connect through.
    pub fn resolver(&self) -> Arc<PublicOnly> {
        Arc::new(PublicOnly { rules: *self })
    }
}

/// A resolver that gives only the addresses [`Targets`] allows: a name with
/// none left fails to connect, at every delivery.
#[derive(Debug)]
pub struct PublicOnly {
    rules: Targets,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules;
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found
                .filter(|a| rules.check_address(a.ip()).is_ok())
                .collect();
            if allowed.is_empty() {
                return Err(format!("{} has no public address", name.as_str()).into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Whether `ip` is a public unicast address: not loopback, private,
/// shared (carrier-grade NAT), link-local (where clouds answer metadata
/// requests, 169.254.169.254), unique-local, documentation, benchmarking,
/// multicast, reserved or unspecified; an IPv6 address that embeds an IPv4
/// one (mapped, NAT64, 6to4) is judged by the IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        // Shared address space (RFC 6598), as clouds' metadata also use.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking (RFC 2544).
        || (a == 198 && (b == 18 || b == 19)))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let last_32 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // NAT64 (64:ff9b::/96), SIIT (::ffff:0:a.b.c.d) and 6to4 (2002::/16)
    // reach an IPv4 address.
    if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0])
        || (s[0..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0)
    {
        return is_public_v4(last_32());
    }
    // Local-use NAT64 (64:ff9b:1::/48) and Teredo (2001::/32) reach
    // addresses this check cannot see.
    if (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) || (s[0] == 0x2001 && s[1] == 0) {
        return false;
    }
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // Site-local (deprecated, still routed inside some networks).
        || (s[0] & 0xffc0) == 0xfec0
        // Documentation.
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // IPv4-compatible (deprecated) and other ::/96 forms.
        || s[0..6] == [0, 0, 0, 0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Targets = Targets {
        allow_private: false,
    };
    const LAX: Targets = Targets {
        allow_private: true,
    };

    #[test]
    fn public_addresses_pass_and_inner_ones_do_not() {
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for inner in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
            "::ffff:0:a00:1",
            "64:ff9b:1::a00:1",
            "2001:0:4136:e378::1",
        ] {
            assert!(!is_public(inner.parse().unwrap()), "{inner}");
        }
    }

    #[test]
    fn urls_must_be_https_without_credentials_to_public_hosts() {
        assert!(STRICT.check_url("https://crm.example.org/hooks").is_ok());
        assert_eq!(
            STRICT.check_url("http://crm.example.org/hooks"),
            Err(Refusal::HttpsRequired)
        );
        assert_eq!(
            STRICT.check_url("https://user:pw@crm.example.org/"),
            Err(Refusal::Credentials)
        );
        assert_eq!(
            STRICT.check_url("ftp://crm.example.org/"),
            Err(Refusal::Invalid)
        );
        assert_eq!(STRICT.check_url("/hooks"), Err(Refusal::Invalid));
        for inner in [
            "https://127.0.0.1/",
            "https://10.0.0.8:8443/x",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://2130706433/",
        ] {
            assert!(
                matches!(STRICT.check_url(inner), Err(Refusal::PrivateAddress(_))),
                "{inner}"
            );
        }
        assert!(LAX.check_url("http://127.0.0.1:9/").is_ok());
    }

    #[tokio::test]
    async fn a_name_that_resolves_inside_is_refused_unless_allowed() {
        let url = STRICT.check_url("https://localhost/hooks").unwrap();
        assert_eq!(STRICT.check_resolved(&url).await, Err(Refusal::NotPublic));
        let nowhere = STRICT.check_url("https://nowhere.invalid/").unwrap();
        assert_eq!(
            STRICT.check_resolved(&nowhere).await,
            Err(Refusal::NotPublic)
        );
        assert!(LAX.check_resolved(&url).await.is_ok());
        let resolved = STRICT
            .resolver()
            .resolve("localhost".parse().unwrap())
            .await;
        assert!(resolved.is_err());
        let resolved = LAX.resolver().resolve("localhost".parse().unwrap()).await;
        assert!(resolved.unwrap().next().is_some());
    }
}
