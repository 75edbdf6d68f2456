//! One typed configuration: defaults that run on a laptop, then an optional TOML
//! file (`UNDERSIGNED_CONFIG` or `--config`), then `UNDERSIGNED_*` variables.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use undersigned_guard::{Limit, LimitParseError, Limits};
use undersigned_http::{
    Captcha, CaptchaConfigError, DEFAULT_VERIFY_URL, ForwardedHeader, HttpConfig, MetricsToken,
    TrustedProxies,
};
use undersigned_ingest::IngestConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// Address of the operators' listener (`/metrics`, `/readyz`, `/healthz`);
    /// when set, `/metrics` leaves the public listener. Empty: none.
    #[serde(deserialize_with = "optional_address")]
    pub operator_listen: Option<SocketAddr>,
    /// A bearer token `/metrics` asks for (16 bytes or more), wherever it is
    /// served; unset: none.
    #[serde(deserialize_with = "text_or_number")]
    pub metrics_token: Option<String>,
    /// PostgreSQL; the database is created when missing.
    pub database_url: String,
    /// Redis; empty for single-node mode without Redis.
    pub redis_url: String,
    /// Prefix of every Redis key and channel, so instances of one campaign share
    /// state and other users of the same Redis stay apart.
    #[serde(deserialize_with = "text")]
    pub redis_prefix: String,
    /// Secret for identity keys (16 bytes or more); generated and stored when unset.
    #[serde(deserialize_with = "text_or_number")]
    pub identity_pepper: Option<String>,
    /// The Ed25519 key that signs export bundles: its 32-byte seed in hex;
    /// generated and stored when unset.
    pub export_signing_key: Option<String>,
    /// Signatures per client address per petition: one limit or several that all
    /// apply (`3/60s,20/1h`: a burst and a sustained rate), or `off`.
    pub ip_limit: String,
    /// Signatures per email domain per petition, like `500/1h`, or `off`.
    pub domain_limit: String,
    /// Email domains the domain limit leaves alone (comma-separated): providers
    /// so large that many genuine signers share them.
    pub domain_limit_exempt: String,
    /// All signatures to one petition, like `20000/1s`, or `off`.
    pub petition_limit: String,
    /// Requests to sign per client address, checked in process before anything
    /// else (a flood shield), like `10/1s`, or `off`.
    pub shield_limit: String,
    /// Signatures per enrolled tablet, like `3000/10m`, or `off`: tablets skip
    /// the captcha and the per-address limits (an event's share one address).
    pub device_limit: String,
    /// hCaptcha's public site key (a UUID), shown to forms.
    pub hcaptcha_sitekey: String,
    /// hCaptcha's secret; when set, web signatures need a solved captcha
    /// (petitions may turn it off).
    #[serde(deserialize_with = "text")]
    pub hcaptcha_secret: String,
    /// Where captchas are verified.
    pub hcaptcha_verify_url: String,
    /// Milliseconds hCaptcha gets to answer before it counts as unreachable.
    pub hcaptcha_timeout_ms: u64,
    /// Proxies (comma-separated CIDRs) whose `Forwarded`/`X-Forwarded-For` are
    /// believed; empty: none, the socket's address is the client's.
    pub trusted_proxies: String,
    /// The header those proxies write: `x-forwarded-for` or `forwarded`; the
    /// other one is ignored.
    pub forwarded_header: String,
    /// Group-commit writers, each on its own connection.
    pub writers: usize,
    /// Most rows in one transaction.
    pub batch_max: usize,
    /// Milliseconds a batch of fewer than 32 rows waits for more before it
    /// is written; 0: never.
    pub batch_linger_ms: u64,
    /// Milliseconds a call to Redis holding fewer than 32 signatures' checks
    /// waits for more; 0: never.
    pub guard_linger_ms: u64,
    /// Signatures waiting for a writer before new ones get 503.
    pub queue_capacity: usize,
    /// Postgres connections (writers included).
    pub pool_size: usize,
    /// Open HTTP connections at most.
    pub max_connections: usize,
    /// Open HTTP connections from one client address (an IPv6 /64) at most;
    /// trusted proxies are held to `max_connections` alone.
    pub max_connections_per_address: usize,
    /// Seconds a client has to send request headers.
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a request body.
    pub body_read_timeout_secs: u64,
    /// Seconds requests in flight get to finish when stopping.
    pub shutdown_grace_secs: u64,
    /// Seconds between refreshes of the suspicion signals' metrics.
    pub signals_refresh_secs: u64,
    /// `text` or `json` log lines.
    pub log_format: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            operator_listen: None,
            metrics_token: None,
            database_url: "postgres://postgres@127.0.0.1:5432/undersigned".into(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: "undersigned".into(),
            identity_pepper: None,
            export_signing_key: None,
            ip_limit: "3/60s,20/1h".into(),
            domain_limit: "500/1h".into(),
            domain_limit_exempt: BIG_PROVIDERS.join(","),
            petition_limit: "off".into(),
            shield_limit: "10/1s".into(),
            device_limit: "3000/10m".into(),
            trusted_proxies: String::new(),
            forwarded_header: "x-forwarded-for".into(),
            hcaptcha_sitekey: String::new(),
            hcaptcha_secret: String::new(),
            hcaptcha_verify_url: DEFAULT_VERIFY_URL.into(),
            hcaptcha_timeout_ms: 3000,
            writers: 2,
            batch_max: 1000,
            batch_linger_ms: 2,
            guard_linger_ms: 1,
            queue_capacity: 50_000,
            pool_size: 16,
            max_connections: 10_000,
            max_connections_per_address: 256,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 10,
            shutdown_grace_secs: 20,
            signals_refresh_secs: 60,
            log_format: "text".into(),
        }
    }
}

/// Webmail providers with millions of users each: a domain limit on them would
/// turn genuine signers away in a spike.
const BIG_PROVIDERS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "yandex.ru",
    "mail.ru",
    "qq.com",
    "163.com",
    "naver.com",
];

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}", describe(.0))]
    Load(#[from] Box<figment::Error>),
    #[error("UNDERSIGNED_{name}: {error}")]
    Limit {
        name: &'static str,
        error: LimitParseError,
    },
    #[error("{0}")]
    TrustedProxies(String),
    #[error(transparent)]
    Captcha(#[from] CaptchaConfigError),
    #[error("UNDERSIGNED_IDENTITY_PEPPER must be at least 16 bytes")]
    WeakPepper,
    #[error("UNDERSIGNED_EXPORT_SIGNING_KEY must be 64 hex digits (a 32-byte Ed25519 seed)")]
    ExportKey,
    #[error("UNDERSIGNED_POOL_SIZE must exceed UNDERSIGNED_WRITERS, which hold a connection each")]
    PoolTooSmall,
    #[error(
        "UNDERSIGNED_{0} must be at most {MAX_LINGER_MS}: every signer of a small batch waits it"
    )]
    LingerTooLong(&'static str),
    #[error("UNDERSIGNED_MAX_CONNECTIONS must be at least 1")]
    NoConnections,
    #[error(
        "UNDERSIGNED_MAX_CONNECTIONS_PER_ADDRESS must be between 1 and UNDERSIGNED_MAX_CONNECTIONS \
         ({0}): one address must not take every connection"
    )]
    ConnectionsPerAddress(usize),
    #[error("UNDERSIGNED_METRICS_TOKEN must be at least 16 bytes")]
    WeakMetricsToken,
    #[error("UNDERSIGNED_OPERATOR_LISTEN must differ from UNDERSIGNED_LISTEN")]
    OperatorListenIsPublic,
}

/// Each of figment's errors led by what is at fault: the variable
/// (`UNDERSIGNED_LISTEN`), the file, or the file's key.
fn describe(error: &figment::Error) -> String {
    let one = |e: figment::Error| {
        let key = e.path.join(".");
        let file = e.metadata.as_ref().and_then(|m| m.source.as_ref());
        let place = match (file, key.is_empty()) {
            (Some(file), true) => file.to_string(),
            (Some(file), false) => format!("{file}, key {key}"),
            // Only the environment gives values without a source (the
            // defaults are valid).
            (None, false) => format!("UNDERSIGNED_{}", key.to_ascii_uppercase()),
            (None, true) => "configuration".into(),
        };
        // Some kinds end with a line break of their own.
        format!("{place}: {}", e.kind.to_string().trim_end())
    };
    error
        .clone()
        .into_iter()
        .map(one)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The longest a small batch may wait for more.
const MAX_LINGER_MS: u64 = 1000;

/// An Ed25519 signing key from its seed in hex.
pub fn export_key(seed: &str) -> Result<ed25519_dalek::SigningKey, ConfigError> {
    let seed = hex::decode(seed.trim()).map_err(|_| ConfigError::ExportKey)?;
    let seed: [u8; 32] = seed.try_into().map_err(|_| ConfigError::ExportKey)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

impl Config {
    /// Defaults, then the TOML file if any, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let from_env = std::env::var_os("UNDERSIGNED_CONFIG").map(std::path::PathBuf::from);
        if let Some(path) = file.map(Path::to_path_buf).or(from_env) {
            figment = figment.merge(Toml::file_exact(path));
        }
        let config: Config = figment
            .merge(Env::prefixed("UNDERSIGNED_").ignore(&["config"]))
            .extract()
            .map_err(Box::new)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.limits()?;
        self.shield_limit()?;
        self.device_limit()?;
        self.trusted_proxies()?;
        self.captcha()?;
        if let Some(seed) = &self.export_signing_key {
            export_key(seed)?;
        }
        if self.identity_pepper.as_ref().is_some_and(|p| p.len() < 16) {
            return Err(ConfigError::WeakPepper);
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.trim().len() < 16)
        {
            return Err(ConfigError::WeakMetricsToken);
        }
        if self.pool_size <= self.writers {
            return Err(ConfigError::PoolTooSmall);
        }
        if self.batch_linger_ms > MAX_LINGER_MS {
            return Err(ConfigError::LingerTooLong("BATCH_LINGER_MS"));
        }
        if self.guard_linger_ms > MAX_LINGER_MS {
            return Err(ConfigError::LingerTooLong("GUARD_LINGER_MS"));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::NoConnections);
        }
        if !(1..=self.max_connections).contains(&self.max_connections_per_address) {
            return Err(ConfigError::ConnectionsPerAddress(self.max_connections));
        }
        if self.operator_listen == Some(self.listen) && self.listen.port() != 0 {
            return Err(ConfigError::OperatorListenIsPublic);
        }
        Ok(())
    }

    /// The limits shared by all instances through Redis.
    pub fn limits(&self) -> Result<Limits, ConfigError> {
        let named = |name| move |error| ConfigError::Limit { name, error };
        Ok(Limits {
            address: Limit::parse_list(&self.ip_limit).map_err(named("IP_LIMIT"))?,
            email_domain: Limit::parse_optional(&self.domain_limit)
                .map_err(named("DOMAIN_LIMIT"))?,
            exempt_domains: self
                .domain_limit_exempt
                .split(',')
                .map(|d| d.trim().to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
            petition: Limit::parse_optional(&self.petition_limit)
                .map_err(named("PETITION_LIMIT"))?,
        })
    }

    pub fn shield_limit(&self) -> Result<Option<Limit>, ConfigError> {
        Limit::parse_optional(&self.shield_limit).map_err(|error| ConfigError::Limit {
            name: "SHIELD_LIMIT",
            error,
        })
    }

    pub fn device_limit(&self) -> Result<Option<Limit>, ConfigError> {
        Limit::parse_optional(&self.device_limit).map_err(|error| ConfigError::Limit {
            name: "DEVICE_LIMIT",
            error,
        })
    }

    /// hCaptcha, `None` without a secret. Builds the one shared client.
    pub fn captcha(&self) -> Result<Option<Captcha>, ConfigError> {
        Ok(Captcha::new(
            &self.hcaptcha_secret,
            &self.hcaptcha_sitekey,
            &self.hcaptcha_verify_url,
            Duration::from_millis(self.hcaptcha_timeout_ms.max(1)),
        )?)
    }

    pub fn trusted_proxies(&self) -> Result<TrustedProxies, ConfigError> {
        let header = ForwardedHeader::parse(&self.forwarded_header).map_err(|e| {
            ConfigError::TrustedProxies(format!("UNDERSIGNED_FORWARDED_HEADER: {e}"))
        })?;
        TrustedProxies::parse(&self.trusted_proxies)
            .map(|t| t.reading(header))
            .map_err(|e| ConfigError::TrustedProxies(format!("UNDERSIGNED_TRUSTED_PROXIES: {e}")))
    }

    pub fn redis_url(&self) -> Option<&str> {
        Some(self.redis_url.trim()).filter(|u| !u.is_empty())
    }

    pub fn ingest(&self) -> IngestConfig {
        IngestConfig {
            writers: self.writers,
            batch_max: self.batch_max,
            batch_linger: Duration::from_millis(self.batch_linger_ms),
            queue_capacity: self.queue_capacity,
        }
    }

    /// Checked at load: [`Config::load`] refuses an invalid list.
    pub fn http(&self) -> HttpConfig {
        HttpConfig {
            trusted_proxies: self.trusted_proxies().unwrap_or_default(),
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(self.body_read_timeout_secs),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            metrics_token: self.metrics_token.as_deref().map(MetricsToken::new),
        }
    }
}

/// Figment reads `UNDERSIGNED_IDENTITY_PEPPER=1234…` as a number; a secret is text
/// whatever characters it happens to be made of.
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Unsigned(u128),
        Signed(i128),
        Float(f64),
        Bool(bool),
    }
    Ok(Option::<Scalar>::deserialize(d)?.map(|s| match s {
        Scalar::Text(s) => s,
        Scalar::Unsigned(n) => n.to_string(),
        Scalar::Signed(n) => n.to_string(),
        Scalar::Float(n) => n.to_string(),
        Scalar::Bool(b) => b.to_string(),
    }))
}

fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    text_or_number(d).map(Option::unwrap_or_default)
}

/// An address, or none when absent or empty (`UNDERSIGNED_OPERATOR_LISTEN=`).
fn optional_address<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an address:port")))
        })
        .transpose()
}

#[cfg(test)]
// figment::Jail's closures return figment::Error, which is large by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_environment_over_the_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("UNDERSIGNED_LISTEN", "127.0.0.1:9999");
            jail.set_env("UNDERSIGNED_IDENTITY_PEPPER", "12345678901234567890123");
            jail.set_env("UNDERSIGNED_REDIS_URL", "");
            jail.set_env("UNDERSIGNED_IP_LIMIT", "off");
            jail.set_env("UNDERSIGNED_BATCH_MAX", "250");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 9999);
            assert_eq!(
                c.identity_pepper.as_deref(),
                Some("12345678901234567890123")
            );
            assert_eq!(c.redis_url(), None);
            assert!(c.limits().map_err(|e| e.to_string())?.address.is_empty());
            assert_eq!(c.batch_max, 250);
            Ok(())
        });
    }

    #[test]
    fn the_example_configuration_is_valid() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "example.toml",
                include_str!("../../../deploy/undersigned.example.toml"),
            )?;
            jail.set_env("UNDERSIGNED_CONFIG", "example.toml");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.forwarded_header, "x-forwarded-for");
            assert_eq!(c.limits().map_err(|e| e.to_string())?.address.len(), 2);
            Ok(())
        });
    }

    #[test]
    fn a_file_is_overridden_by_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("u.toml", "ip_limit = \"3/60s\"\nwriters = 3\n")?;
            jail.set_env("UNDERSIGNED_CONFIG", "u.toml");
            jail.set_env("UNDERSIGNED_WRITERS", "4");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.ip_limit, "3/60s");
            assert_eq!(c.writers, 4);
            Ok(())
        });
    }

    #[test]
    fn refuses_bad_values_with_their_name() {
        figment::Jail::expect_with(|jail| {
            // Each bad value, then a good one, so the next case fails alone;
            // the message names the variable and what in it is wrong.
            let named = [
                ("IP_LIMIT", "lots", "off", "lots"),
                ("DOMAIN_LIMIT", "1/1d", "off", "1/1d"),
                ("TRUSTED_PROXIES", "10.0.0.0/8,lan", "10.0.0.0/8", "lan"),
                // A one-character secret once panicked inside the hCaptcha crate.
                ("HCAPTCHA_SECRET", "x", "", ""),
                ("BATCH_LINGER_MS", "5000", "2", "1000"),
                ("GUARD_LINGER_MS", "1001", "1", "1000"),
            ];
            for (name, bad, good, said) in named {
                let var = format!("UNDERSIGNED_{name}");
                jail.set_env(&var, bad);
                let e = Config::load(None).unwrap_err().to_string();
                assert!(e.contains(&var) && e.contains(said), "{e}");
                jail.set_env(&var, good);
            }
            jail.set_env("UNDERSIGNED_IDENTITY_PEPPER", "short");
            assert!(matches!(Config::load(None), Err(ConfigError::WeakPepper)));
            jail.set_env("UNDERSIGNED_IDENTITY_PEPPER", "long enough pepper!!");
            jail.set_env("UNDERSIGNED_LISTEN", "nowhere");
            assert!(matches!(Config::load(None), Err(ConfigError::Load(_))));
            Ok(())
        });
    }

    #[test]
    fn connections_per_address_must_fit_under_the_cap() {
        figment::Jail::expect_with(|jail| {
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.max_connections_per_address, 256);
            assert_eq!(c.http().max_connections_per_address, 256);
            jail.set_env("UNDERSIGNED_MAX_CONNECTIONS", "300");
            for good in ["1", "300"] {
                jail.set_env("UNDERSIGNED_MAX_CONNECTIONS_PER_ADDRESS", good);
                let c = Config::load(None).map_err(|e| e.to_string())?;
                assert_eq!(c.max_connections_per_address.to_string(), good);
            }
            for bad in ["0", "301"] {
                jail.set_env("UNDERSIGNED_MAX_CONNECTIONS_PER_ADDRESS", bad);
                let e = Config::load(None).unwrap_err().to_string();
                assert!(e.contains("UNDERSIGNED_MAX_CONNECTIONS_PER_ADDRESS"), "{e}");
                assert!(e.contains("300"), "{e}");
            }
            jail.set_env("UNDERSIGNED_MAX_CONNECTIONS_PER_ADDRESS", "many");
            assert!(matches!(Config::load(None), Err(ConfigError::Load(_))));
            jail.set_env("UNDERSIGNED_MAX_CONNECTIONS_PER_ADDRESS", "256");
            jail.set_env("UNDERSIGNED_MAX_CONNECTIONS", "0");
            assert!(matches!(
                Config::load(None),
                Err(ConfigError::NoConnections)
            ));
            Ok(())
        });
    }

    #[test]
    fn a_metrics_token_must_be_long_enough() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("UNDERSIGNED_METRICS_TOKEN", "short");
            assert!(matches!(
                Config::load(None),
                Err(ConfigError::WeakMetricsToken)
            ));
            jail.set_env("UNDERSIGNED_METRICS_TOKEN", "1234567890123456");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert!(c.http().metrics_token.is_some());
            Ok(())
        });
    }

    #[test]
    fn the_operator_listener_is_an_address_or_none() {
        figment::Jail::expect_with(|jail| {
            assert_eq!(
                Config::load(None)
                    .map_err(|e| e.to_string())?
                    .operator_listen,
                None
            );
            jail.set_env("UNDERSIGNED_OPERATOR_LISTEN", "");
            assert_eq!(
                Config::load(None)
                    .map_err(|e| e.to_string())?
                    .operator_listen,
                None
            );
            jail.set_env("UNDERSIGNED_OPERATOR_LISTEN", "127.0.0.1:9180");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(
                c.operator_listen,
                Some(SocketAddr::from(([127, 0, 0, 1], 9180)))
            );
            jail.set_env("UNDERSIGNED_OPERATOR_LISTEN", "metrics.internal");
            let e = Config::load(None).unwrap_err().to_string();
            assert!(
                e.contains("OPERATOR_LISTEN") && e.contains("metrics.internal"),
                "{e}"
            );
            jail.set_env("UNDERSIGNED_OPERATOR_LISTEN", "127.0.0.1:8080");
            assert!(matches!(
                Config::load(None),
                Err(ConfigError::OperatorListenIsPublic)
            ));
            Ok(())
        });
    }
}
