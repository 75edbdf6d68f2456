//! One typed configuration: defaults that run on a laptop, then an optional TOML
//! file (`UNDERSIGNED_CONFIG` or `--config`), then `UNDERSIGNED_*` variables.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use undersigned_guard::{Limit, Limits};
use undersigned_http::{
    Captcha, CaptchaConfigError, CaptchaSecret, CaptchaSitekey, DEFAULT_VERIFY_URL,
    ForwardedHeader, HttpConfig, MetricsToken, StreamLimits, TrustedProxies,
};
use undersigned_ingest::{Confirming, IngestConfig};
use undersigned_mail::Letterhead;

/// Every value is read into its type when the configuration is loaded, so a
/// bad one is refused once, at start, naming its variable and the forms it
/// takes; what the service reads from here never fails.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to serve on.
    #[serde(deserialize_with = "address")]
    pub listen: SocketAddr,
    /// Address of the operators' listener (`/metrics`, `/readyz`, `/healthz`);
    /// when set, `/metrics` leaves the public listener. Empty: none.
    #[serde(deserialize_with = "optional_address")]
    pub operator_listen: Option<SocketAddr>,
    /// A bearer token `/metrics` asks for, wherever it is served; unset: none.
    #[serde(with = "parsed_option")]
    pub metrics_token: Option<Secret>,
    /// PostgreSQL; the database is created when missing. Its `sslmode`
    /// (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`) and
    /// `sslrootcert` are read as libpq reads them.
    pub database_url: String,
    /// The root certificate (a PEM file) Postgres's is checked against;
    /// unset: the URL's `sslrootcert`, else the system's roots.
    pub database_ca: Option<PathBuf>,
    /// A streaming replica (hot standby) of the database, which exports read
    /// once it has caught up with the primary; `database_ca` applies to it too.
    pub replica_url: Option<String>,
    /// Redis; empty for single-node mode without Redis. `rediss://` is TLS.
    pub redis_url: String,
    /// The root certificate (a PEM file) a `rediss://` server's is checked
    /// against; unset: the system's roots.
    pub redis_ca: Option<PathBuf>,
    /// Prefix of every Redis key and channel, so instances of one campaign share
    /// state and other users of the same Redis stay apart.
    #[serde(deserialize_with = "text")]
    pub redis_prefix: String,
    /// Secret for identity keys; generated and stored when unset.
    #[serde(with = "parsed_option")]
    pub identity_pepper: Option<Secret>,
    /// The Ed25519 key that signs export bundles; generated and stored when unset.
    #[serde(with = "parsed_option")]
    pub export_signing_key: Option<ExportKey>,
    /// In production: refuse to start unless the pepper and the export key
    /// come from the environment, rather than generating them into the
    /// database they protect (a copy of the database would hold both).
    pub require_secrets: bool,
    /// Signatures per client address per petition: one limit or several that all
    /// apply (`3/60s,20/1h`: a burst and a sustained rate); none when `off`.
    #[serde(with = "limit_list")]
    pub ip_limit: Vec<Limit>,
    /// Signatures per email domain per petition, like `500/1h`; none when `off`.
    #[serde(with = "limit_or_off")]
    pub domain_limit: Option<Limit>,
    /// Email domains the domain limit leaves alone (written comma-separated):
    /// providers so large that many genuine signers share them.
    #[serde(with = "domain_list")]
    pub domain_limit_exempt: BTreeSet<String>,
    /// All signatures to one petition, like `20000/1s`; none when `off`.
    #[serde(with = "limit_or_off")]
    pub petition_limit: Option<Limit>,
    /// Requests to sign per client address, checked in process before anything
    /// else (a flood shield), like `10/1s`; none when `off`.
    #[serde(with = "limit_or_off")]
    pub shield_limit: Option<Limit>,
    /// Signatures per enrolled tablet, like `3000/10m`; none when `off`:
    /// tablets skip the captcha and the per-address limits (an event's share
    /// one address).
    #[serde(with = "limit_or_off")]
    pub device_limit: Option<Limit>,
    /// hCaptcha's public site key (a UUID), shown to forms; required with the
    /// secret.
    #[serde(with = "parsed_or_empty")]
    pub hcaptcha_sitekey: Option<CaptchaSitekey>,
    /// hCaptcha's secret; when set, web signatures need a solved captcha
    /// (petitions may turn it off).
    #[serde(with = "parsed_or_empty")]
    pub hcaptcha_secret: Option<CaptchaSecret>,
    /// Where captchas are verified.
    #[serde(with = "verify_url")]
    pub hcaptcha_verify_url: url::Url,
    /// Milliseconds hCaptcha gets to answer before it counts as unreachable.
    pub hcaptcha_timeout_ms: u64,
    /// Proxies (written as comma-separated CIDRs) whose forwarding header is
    /// believed; empty: none, the socket's address is the client's.
    #[serde(with = "parsed")]
    pub trusted_proxies: TrustedProxies,
    /// The header those proxies write; the other one is ignored.
    #[serde(with = "parsed")]
    pub forwarded_header: ForwardedHeader,
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
    /// Seconds, within the grace, a kept-alive connection idle at a stop is
    /// left for its client (a proxy) to close; longer than the proxy's own
    /// idle timeout for its connections to the service.
    pub shutdown_idle_secs: u64,
    /// Seconds between heartbeats on a live count stream with no change to send.
    pub stream_heartbeat_secs: u64,
    /// Live count streams open at most, each holding a connection; unset:
    /// three quarters of `max_connections`, so that signers always find one.
    pub max_streams: Option<usize>,
    /// Live count streams from one client address at most (behind a
    /// trusted proxy, the client it names); never more than `max_streams`.
    pub max_streams_per_address: usize,
    /// Seconds between refreshes of the suspicion signals' metrics.
    pub signals_refresh_secs: u64,
    /// Seconds between retention sweeps: the personal fields of petitions
    /// past their `retention_days`, and client addresses past theirs.
    pub retention_interval_secs: u64,
    /// Days a signature's client address is kept (for abuse handling).
    pub address_retention_days: u32,
    /// Webhooks may point at private, loopback and link-local addresses,
    /// and over plain `http` (tests, a receiver on the operators' network).
    pub webhook_allow_private: bool,
    /// Milliseconds one webhook delivery may take, connecting included.
    pub webhook_timeout_ms: u64,
    /// Milliseconds before a failed webhook message's first retry; later
    /// retries wait multiples of it (up to 7,200 times, 10 hours).
    pub webhook_first_retry_ms: u64,
    /// Messages one webhook is sent per period at most, by each instance,
    /// like `200/1s`; none when `off`.
    #[serde(with = "limit_or_off")]
    pub webhook_rate: Option<Limit>,
    /// How log lines are written.
    #[serde(with = "parsed")]
    pub log_format: LogFormat,
    /// The SMTP relay messages go through (`smtp://host:port`,
    /// `smtps://user:password@host`, `smtp://host?tls=required`); none: they
    /// are written as files in `mail_dir`.
    #[serde(with = "parsed_or_empty")]
    pub smtp_url: Option<SmtpUrl>,
    /// Where messages are written as `.eml` files when there is no relay.
    pub mail_dir: std::path::PathBuf,
    /// Messages sent per period at most, the relay's quota, like `100/1s`;
    /// none when `off`.
    #[serde(with = "limit_or_off")]
    pub mail_rate: Option<Limit>,
    /// The address links in messages start with (`https://sign.example`);
    /// unset: `http://` and the listen address. Links never come from a
    /// request's `Host`.
    #[serde(with = "parsed_or_empty")]
    pub public_url: Option<PublicUrl>,
    /// Other origins that serve the service's own pages (mirrors, with the
    /// public URL's): they may post signatures to any petition.
    #[serde(with = "origin_list")]
    pub mirror_origins: Vec<String>,
    /// Who messages come from: `Campaign <campaign@sign.example>`.
    #[serde(with = "parsed")]
    pub mail_from: MailFrom,
    /// How long a pending signature waits for its confirmation before it is
    /// erased, like `7d`, `48h`.
    #[serde(with = "parsed")]
    pub confirm_ttl: Lifetime,
}

/// The public address of the service: `http` or `https`, a host, perhaps a
/// port and a path prefix; no query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl FromStr for PublicUrl {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORMS: &str = "expected an http:// or https:// address, like https://sign.example";
        let url = url::Url::parse(s.trim()).map_err(|_| FORMS)?;
        let plain = url.query().is_none() && url.fragment().is_none() && url.username().is_empty();
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !plain {
            return Err(FORMS);
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }
}

impl PublicUrl {
    /// Whether the links point at this machine (a development set-up) rather
    /// than at a public address.
    pub fn is_local(&self) -> bool {
        match url::Url::parse(&self.0)
            .ok()
            .and_then(|u| u.host().map(|h| h.to_owned()))
        {
            Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            None => true,
        }
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A sender: an address, with a name or without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom(pub undersigned_mail::Mailbox);

impl FromStr for MailFrom {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse()
            .map(Self)
            .map_err(|_| "expected an address, like campaign@sign.example or Campaign <campaign@sign.example>")
    }
}

impl fmt::Display for MailFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A length of time written with its unit: `90s`, `30m`, `48h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime(pub Duration);

impl FromStr for Lifetime {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORMS: &str = "expected a time like 7d, 48h, 30m or 90s";
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or(FORMS)?;
        let (amount, unit) = s.split_at(split);
        let amount: u64 = amount.parse().map_err(|_| FORMS)?;
        let unit = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(FORMS),
        };
        match amount.checked_mul(unit) {
            Some(seconds) if seconds > 0 => Ok(Self(Duration::from_secs(seconds))),
            _ => Err(FORMS),
        }
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.0.as_secs();
        match seconds {
            s if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            s if s % 60 == 0 => write!(f, "{}m", s / 60),
            s => write!(f, "{s}s"),
        }
    }
}

/// An SMTP relay's URL: `smtp://` or `smtps://`, read as lettre reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(url::Url);

impl SmtpUrl {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl FromStr for SmtpUrl {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORMS: &str = "expected smtp://host:port or smtps://user:password@host";
        let url = url::Url::parse(s.trim()).map_err(|_| FORMS)?;
        if !matches!(url.scheme(), "smtp" | "smtps") || url.host_str().is_none() {
            return Err(FORMS);
        }
        undersigned_mail::Transport::check_smtp_url(url.as_str()).map_err(|_| FORMS)?;
        Ok(Self(url))
    }
}

impl fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Never shows a password in a debug print of the configuration.
impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.0.host_str().unwrap_or("");
        write!(
            f,
            "SmtpUrl({}://{host}:{:?})",
            self.0.scheme(),
            self.0.port()
        )
    }
}

/// How log lines are written: for a person reading a terminal (`text`), or
/// for a log collector (`json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!("{s:?}: expected text or json")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        let limit = |s: &str| Some(s.parse().expect("a default limit is valid"));
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            operator_listen: None,
            metrics_token: None,
            database_url: "postgres://postgres@127.0.0.1:5432/undersigned".into(),
            database_ca: None,
            replica_url: None,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_ca: None,
            redis_prefix: "undersigned".into(),
            identity_pepper: None,
            export_signing_key: None,
            require_secrets: false,
            ip_limit: Limit::parse_list("3/60s,20/1h").expect("the default limits are valid"),
            domain_limit: limit("500/1h"),
            domain_limit_exempt: BIG_PROVIDERS.iter().map(|d| d.to_string()).collect(),
            petition_limit: None,
            shield_limit: limit("10/1s"),
            device_limit: limit("3000/10m"),
            trusted_proxies: TrustedProxies::default(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            hcaptcha_sitekey: None,
            hcaptcha_secret: None,
            hcaptcha_verify_url: DEFAULT_VERIFY_URL.parse().expect("hCaptcha's URL is valid"),
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
            stream_heartbeat_secs: 15,
            max_streams: None,
            max_streams_per_address: 16,
            body_read_timeout_secs: 10,
            shutdown_grace_secs: 20,
            shutdown_idle_secs: 5,
            signals_refresh_secs: 60,
            retention_interval_secs: 3600,
            address_retention_days: 30,
            webhook_allow_private: false,
            webhook_timeout_ms: 10_000,
            webhook_first_retry_ms: 5_000,
            webhook_rate: limit("200/1s"),
            log_format: LogFormat::Text,
            smtp_url: None,
            mail_dir: "mail".into(),
            mail_rate: limit("100/1s"),
            public_url: None,
            mirror_origins: Vec::new(),
            mail_from: "undersigned <undersigned@localhost>"
                .parse()
                .expect("the default sender is valid"),
            confirm_ttl: Lifetime(Duration::from_secs(7 * 86_400)),
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

/// What is wrong with a configuration. Each message names the variable at
/// fault and says what it takes, and is the whole of what is printed.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{}", describe(.0))]
    Load(#[from] Box<figment::Error>),
    #[error(transparent)]
    Captcha(#[from] CaptchaConfigError),
    #[error("UNDERSIGNED_HCAPTCHA_SITEKEY is required with UNDERSIGNED_HCAPTCHA_SECRET")]
    MissingSitekey,
    #[error("UNDERSIGNED_IDENTITY_PEPPER must be at least 16 bytes")]
    WeakPepper,
    #[error("the stored export signing key is not {EXPORT_KEY_FORM}")]
    StoredExportKey,
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
    #[error(
        "UNDERSIGNED_MAX_STREAMS must be between 1 and UNDERSIGNED_MAX_CONNECTIONS ({0}): \
         each stream holds a connection"
    )]
    Streams(usize),
    #[error("UNDERSIGNED_MAX_STREAMS_PER_ADDRESS must be at least 1")]
    NoStreamsPerAddress,
    #[error("UNDERSIGNED_{0} must be at least 1")]
    AtLeastOne(&'static str),
    #[error(
        "UNDERSIGNED_DATABASE_CA must be a path in UTF-8 (without spaces in a key=value \
         DATABASE_URL), and UNDERSIGNED_DATABASE_URL must not name an sslrootcert too"
    )]
    DatabaseCa,
    #[error("UNDERSIGNED_REDIS_CA is for TLS: UNDERSIGNED_REDIS_URL must be rediss://")]
    RedisCaWithoutTls,
    #[error("UNDERSIGNED_REDIS_CA {0}: {1}")]
    RedisCa(String, String),
    #[error(
        "UNDERSIGNED_IDENTITY_PEPPER differs from the pepper this database generated and \
         stored: with the wrong one, every signer's identity key changes and each could sign \
         again. If the signatures were taken with the stored one, set the variable to it \
         (SELECT value FROM settings WHERE name = 'identity_pepper'); if with the one set now, \
         delete that row (DELETE FROM settings WHERE name = 'identity_pepper')"
    )]
    PepperDiffers,
    #[error(
        "UNDERSIGNED_REQUIRE_SECRETS is set but {0} is not: set it, rather than have the \
         service generate it into the database it protects"
    )]
    SecretsRequired(String),
    #[error("UNDERSIGNED_OPERATOR_LISTEN must differ from UNDERSIGNED_LISTEN")]
    OperatorListenIsPublic,
}

/// Each of figment's errors led by what is at fault: the variable
/// (`UNDERSIGNED_LISTEN`), the file, or the file's key.
fn describe(error: &figment::Error) -> String {
    let one = |e: figment::Error| {
        let key = e.path.join(".");
        let file = e.metadata.as_ref().and_then(|m| m.source.as_ref());
        // Some kinds end with a line break of their own.
        let what = e.kind.to_string();
        let what = what.trim_end();
        match (file, key.is_empty()) {
            (Some(file), true) => format!("{file}: {what}"),
            (Some(file), false) => format!("{file}, key {key}: {what}"),
            // Only the environment gives values without a source (the
            // defaults are valid).
            (None, false) => format!("UNDERSIGNED_{}: {what}", key.to_ascii_uppercase()),
            (None, true) => what.to_owned(),
        }
    };
    error
        .clone()
        .into_iter()
        .map(one)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The database URL with `sslrootcert` set to `ca`, in the URL's own form.
fn with_root_certificate(database_url: &str, ca: &Path) -> Result<String, ConfigError> {
    let ca = ca.to_str().ok_or(ConfigError::DatabaseCa)?;
    if database_url.contains("sslrootcert=") {
        return Err(ConfigError::DatabaseCa);
    }
    if let Ok(mut url) = url::Url::parse(database_url)
        && matches!(url.scheme(), "postgres" | "postgresql")
    {
        url.query_pairs_mut().append_pair("sslrootcert", ca);
        return Ok(url.to_string());
    }
    if ca.contains(char::is_whitespace) {
        return Err(ConfigError::DatabaseCa);
    }
    Ok(format!("{database_url} sslrootcert={ca}"))
}

/// The longest a small batch may wait for more.
const MAX_LINGER_MS: u64 = 1000;

const EXPORT_KEY_FORM: &str = "64 hex digits (a 32-byte Ed25519 seed)";

/// The Ed25519 key that signs export bundles, written as its seed in hex.
#[derive(Clone)]
pub struct ExportKey(ed25519_dalek::SigningKey);

impl ExportKey {
    pub fn into_signing_key(self) -> ed25519_dalek::SigningKey {
        self.0
    }

    /// A seed kept in the database (generated when none was configured).
    pub fn from_stored(seed: &str) -> Result<Self, ConfigError> {
        seed.parse().map_err(|_| ConfigError::StoredExportKey)
    }
}

impl FromStr for ExportKey {
    type Err = String;

    fn from_str(seed: &str) -> Result<Self, Self::Err> {
        let refuse = || format!("expected {EXPORT_KEY_FORM}");
        let seed: [u8; 32] = hex::decode(seed.trim())
            .map_err(|_| refuse())?
            .try_into()
            .map_err(|_| refuse())?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }
}

impl fmt::Display for ExportKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0.to_bytes()))
    }
}

/// Never shows the key in a debug print of the configuration.
impl fmt::Debug for ExportKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExportKey(..)")
    }
}

/// A secret written as text (the identity pepper, the metrics token), of 16
/// bytes or more so it cannot be guessed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().len() < 16 {
            return Err("expected a secret of 16 bytes or more");
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Never shows the secret in a debug print of the configuration.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Config {
    /// Defaults, then the TOML file if any, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let from_env = std::env::var_os("UNDERSIGNED_CONFIG").map(std::path::PathBuf::from);
        if let Some(path) = file.map(Path::to_path_buf).or(from_env) {
            figment = figment.merge(Toml::file_exact(path));
        }
        let mut config: Config = figment
            .merge(Env::prefixed("UNDERSIGNED_").ignore(&["config"]))
            .extract()
            .map_err(Box::new)?;
        config.check()?;
        // Empty, as every other setting, is unset.
        for ca in [&mut config.database_ca, &mut config.redis_ca] {
            *ca = ca.take().filter(|ca| !ca.as_os_str().is_empty());
        }
        let scheme = config
            .redis_url
            .trim()
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        if config.redis_ca.is_some() && !matches!(scheme.as_deref(), Some("rediss" | "valkeys")) {
            return Err(ConfigError::RedisCaWithoutTls);
        }
        config.replica_url = config
            .replica_url
            .take()
            .filter(|url| !url.trim().is_empty());
        if let Some(ca) = &config.database_ca {
            config.database_url = with_root_certificate(&config.database_url, ca)?;
            if let Some(replica) = &mut config.replica_url {
                *replica = with_root_certificate(replica, ca)?;
            }
        }
        Ok(config)
    }

    /// What no single value's type can say: how values fit together.
    fn check(&self) -> Result<(), ConfigError> {
        if self.hcaptcha_secret.is_some() && self.hcaptcha_sitekey.is_none() {
            return Err(ConfigError::MissingSitekey);
        }
        if self.require_secrets {
            let missing: Vec<&str> = [
                (
                    "UNDERSIGNED_IDENTITY_PEPPER",
                    self.identity_pepper.is_none(),
                ),
                (
                    "UNDERSIGNED_EXPORT_SIGNING_KEY",
                    self.export_signing_key.is_none(),
                ),
            ]
            .into_iter()
            .filter_map(|(name, missing)| missing.then_some(name))
            .collect();
            if !missing.is_empty() {
                return Err(ConfigError::SecretsRequired(missing.join(" and ")));
            }
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
        if self
            .max_streams
            .is_some_and(|n| !(1..=self.max_connections).contains(&n))
        {
            return Err(ConfigError::Streams(self.max_connections));
        }
        if self.max_streams_per_address == 0 {
            return Err(ConfigError::NoStreamsPerAddress);
        }
        if self.retention_interval_secs == 0 {
            return Err(ConfigError::AtLeastOne("RETENTION_INTERVAL_SECS"));
        }
        if self.address_retention_days == 0 {
            return Err(ConfigError::AtLeastOne("ADDRESS_RETENTION_DAYS"));
        }
        if self.webhook_timeout_ms == 0 {
            return Err(ConfigError::AtLeastOne("WEBHOOK_TIMEOUT_MS"));
        }
        if self.webhook_first_retry_ms == 0 {
            return Err(ConfigError::AtLeastOne("WEBHOOK_FIRST_RETRY_MS"));
        }
        if self.operator_listen == Some(self.listen) && self.listen.port() != 0 {
            return Err(ConfigError::OperatorListenIsPublic);
        }
        Ok(())
    }

    /// The limits shared by all instances through Redis.
    pub fn limits(&self) -> Limits {
        Limits {
            address: self.ip_limit.clone(),
            email_domain: self.domain_limit,
            exempt_domains: self
                .domain_limit_exempt
                .iter()
                .cloned()
                .collect::<HashSet<_>>(),
            petition: self.petition_limit,
        }
    }

    /// How webhooks are delivered.
    pub fn webhooks(&self) -> undersigned_webhooks::Settings {
        undersigned_webhooks::Settings {
            allow_private: self.webhook_allow_private,
            timeout: Duration::from_millis(self.webhook_timeout_ms),
            first_retry: Duration::from_millis(self.webhook_first_retry_ms),
            rate: self.webhook_rate.and_then(|limit| {
                let burst = std::num::NonZeroU32::new(limit.count)?;
                undersigned_webhooks::Quota::with_period(limit.interval())
                    .map(|q| q.allow_burst(burst))
            }),
        }
    }

    /// hCaptcha, `None` without a secret. Builds the one shared client.
    pub fn captcha(&self) -> Result<Option<Captcha>, ConfigError> {
        let (Some(secret), Some(sitekey)) = (&self.hcaptcha_secret, &self.hcaptcha_sitekey) else {
            return Ok(None);
        };
        Ok(Some(Captcha::new(
            secret,
            sitekey,
            &self.hcaptcha_verify_url,
            Duration::from_millis(self.hcaptcha_timeout_ms.max(1)),
        )?))
    }

    /// The root certificate `UNDERSIGNED_REDIS_CA` names, read: PEM holding
    /// at least one certificate (else every connection would fail, silently).
    pub fn redis_root_certificate(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let Some(path) = &self.redis_ca else {
            return Ok(None);
        };
        let refused = |why: String| ConfigError::RedisCa(path.display().to_string(), why);
        let pem = std::fs::read(path).map_err(|e| refused(e.to_string()))?;
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| refused(e.to_string()))?;
        if certificates.is_empty() {
            return Err(refused("holds no PEM certificate".into()));
        }
        Ok(Some(pem))
    }

    pub fn redis_url(&self) -> Option<&str> {
        Some(self.redis_url.trim()).filter(|u| !u.is_empty())
    }

    /// The signature path's settings; confirmation links start with the
    /// public URL, or `http://` and `served_on`.
    pub fn ingest(&self, served_on: SocketAddr) -> IngestConfig {
        IngestConfig {
            confirming: self.confirming(served_on),
            writers: self.writers,
            batch_max: self.batch_max,
            batch_linger: Duration::from_millis(self.batch_linger_ms),
            queue_capacity: self.queue_capacity,
        }
    }

    /// How signatures awaiting confirmation are asked for it. Links start
    /// with the public URL, or `http://` and the address served on.
    fn confirming(&self, served_on: SocketAddr) -> Confirming {
        let public_url = self.public_base(served_on);
        let days = self.confirm_ttl.0.as_secs().div_ceil(86_400);
        Confirming {
            letterhead: Letterhead::new(self.mail_from.0.clone(), &public_url, days),
            ttl: self.confirm_ttl.0,
            mail_queued: Default::default(),
        }
    }

    /// Where the service's own links start (in messages, and a tablet's
    /// enrollment link): the public URL, or `http://` and the address served on.
    pub fn public_base(&self, served_on: SocketAddr) -> String {
        self.public_url
            .as_ref()
            .map_or_else(|| format!("http://{served_on}"), ToString::to_string)
    }

    /// How many live count streams this instance keeps open.
    pub fn streams(&self) -> StreamLimits {
        let total = self
            .max_streams
            .unwrap_or(self.max_connections * 3 / 4)
            .max(1);
        StreamLimits {
            total,
            per_address: self.max_streams_per_address.min(total),
        }
    }

    pub fn http(&self) -> HttpConfig {
        HttpConfig {
            trusted_proxies: self.trusted_proxies.clone().reading(self.forwarded_header),
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            body_read_timeout: Duration::from_secs(self.body_read_timeout_secs),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            shutdown_idle: Duration::from_secs(self.shutdown_idle_secs),
            stream_heartbeat: Duration::from_secs(self.stream_heartbeat_secs.max(1)),
            own_origins: self.public_url.as_ref().map(|url| {
                let mut own: Vec<String> = url::Url::parse(&url.to_string())
                    .map(|u| u.origin().ascii_serialization())
                    .into_iter()
                    .collect();
                own.extend(self.mirror_origins.iter().cloned());
                own
            }),
            metrics_token: self
                .metrics_token
                .as_ref()
                .map(|t| MetricsToken::new(t.expose())),
        }
    }
}

/// A limit as it is written: like `500/1h`, or `off`.
pub fn written_limit(limit: Option<Limit>) -> String {
    limit.map_or_else(|| "off".into(), |l| l.to_string())
}

/// Limits as they are written: `off`, or comma-separated like `3/60s,20/1h`.
pub fn written_limits(limits: &[Limit]) -> String {
    if limits.is_empty() {
        return "off".into();
    }
    limits
        .iter()
        .map(Limit::to_string)
        .collect::<Vec<_>>()
        .join(",")
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

/// A value written as text and read by its type's `FromStr`, whose error says
/// what forms it takes.
mod parsed {
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<T: Display, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr<Err: Display>,
        D: serde::Deserializer<'de>,
    {
        super::text(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Like [`parsed`], for a value that may be unset. Set empty, it is read
/// (and a secret or a key refuses it): an empty secret is a mistake, not a
/// wish for none.
mod parsed_option {
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<T: Display, S: serde::Serializer>(
        value: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => s.collect_str(value),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr<Err: Display>,
        D: serde::Deserializer<'de>,
    {
        super::text_or_number(d)?
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Like [`parsed_option`], where empty also means none (hCaptcha off).
mod parsed_or_empty {
    use std::fmt::Display;
    use std::str::FromStr;

    pub use super::parsed_option::serialize;

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr<Err: Display>,
        D: serde::Deserializer<'de>,
    {
        super::text_or_number(d)?
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// One limit like `500/1h`, or `off`.
mod limit_or_off {
    use undersigned_guard::Limit;

    pub fn serialize<S: serde::Serializer>(limit: &Option<Limit>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::written_limit(*limit))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Limit>, D::Error> {
        Limit::parse_optional(&super::text(d)?).map_err(serde::de::Error::custom)
    }
}

/// Limits that all apply, like `3/60s,20/1h`, or `off`.
mod limit_list {
    use undersigned_guard::Limit;

    pub fn serialize<S: serde::Serializer>(limits: &[Limit], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::written_limits(limits))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Limit>, D::Error> {
        Limit::parse_list(&super::text(d)?).map_err(serde::de::Error::custom)
    }
}

/// Email domains, comma-separated; kept lowercase, as signers' domains are
/// compared once canonical.
mod domain_list {
    use std::collections::BTreeSet;

    pub fn serialize<S: serde::Serializer>(
        domains: &BTreeSet<String>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&domains.iter().cloned().collect::<Vec<_>>().join(","))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeSet<String>, D::Error> {
        let written = super::text(d)?;
        let mut domains = BTreeSet::new();
        for domain in written.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            if domain.contains(|c: char| c.is_whitespace() || c == '@' || c == '/') {
                return Err(serde::de::Error::custom(format!(
                    "{domain:?} is not a domain: expected domains separated by commas, like gmail.com,web.de"
                )));
            }
            domains.insert(domain.to_ascii_lowercase());
        }
        Ok(domains)
    }
}

/// Origins, as a petition's `allowed_origins` takes them, separated by commas.
mod origin_list {
    pub fn serialize<S: serde::Serializer>(origins: &[String], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&origins.join(","))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let written = super::text(d)?;
        written
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                undersigned_domain::Origin::parse(o)
                    .map(|o| o.as_str().to_owned())
                    .map_err(|_| {
                        serde::de::Error::custom(format!(
                            "{o:?} is not an origin: expected origins separated by commas, like https://mirror.example"
                        ))
                    })
            })
            .collect()
    }
}

/// Where captchas are verified: a URL.
mod verify_url {
    use undersigned_http::DEFAULT_VERIFY_URL;

    pub fn serialize<S: serde::Serializer>(url: &url::Url, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(url.as_str())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
        let written = super::text(d)?;
        written.trim().parse().map_err(|e| {
            serde::de::Error::custom(format!(
                "{written:?} ({e}): expected a URL like {DEFAULT_VERIFY_URL}"
            ))
        })
    }
}

/// An address and port to listen on.
fn address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    optional_address(d)?.ok_or_else(|| serde::de::Error::custom(ADDRESS_FORM))
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
                .map_err(|_| serde::de::Error::custom(format!("{s:?}: {ADDRESS_FORM}")))
        })
        .transpose()
}

const ADDRESS_FORM: &str = "expected an address and port, like 127.0.0.1:8080 or [::]:8080";

#[cfg(test)]
// figment::Jail's closures return figment::Error, which is large by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn a_public_url_on_this_machine_is_local() {
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost:8080/campaign",
            "http://[::1]:8080",
            "http://sign.localhost",
        ] {
            assert!(local.parse::<PublicUrl>().unwrap().is_local(), "{local}");
        }
        for public in [
            "https://sign.example",
            "https://203.0.113.7",
            "https://localhost.example.org",
        ] {
            assert!(!public.parse::<PublicUrl>().unwrap().is_local(), "{public}");
        }
    }

    const SECRET: &str = "0x0000000000000000000000000000000000000000";
    const SITEKEY: &str = "10000000-ffff-ffff-ffff-000000000001";

    /// One variable: values it accepts, values it refuses with what the
    /// message must say (the accepted form), and other variables it needs set.
    struct Row {
        name: &'static str,
        good: &'static [&'static str],
        bad: &'static [(&'static str, &'static str)],
        with: &'static [(&'static str, &'static str)],
    }

    const fn row(
        name: &'static str,
        good: &'static [&'static str],
        bad: &'static [(&'static str, &'static str)],
    ) -> Row {
        Row {
            name,
            good,
            bad,
            with: &[],
        }
    }

    const UNSIGNED: &str = "expected u64";
    const COUNT: &str = "expected usize";

    /// Every variable of [`Config`]; a field without a row fails the test below.
    const TABLE: &[Row] = &[
        row(
            "LISTEN",
            &["127.0.0.1:9999", "[::1]:0"],
            &[("nowhere", "like 127.0.0.1:8080"), ("", "address and port")],
        ),
        row(
            "OPERATOR_LISTEN",
            &["127.0.0.1:9180", ""],
            &[
                ("metrics.internal", "like 127.0.0.1:8080"),
                ("127.0.0.1:8080", "must differ from UNDERSIGNED_LISTEN"),
            ],
        ),
        row(
            "METRICS_TOKEN",
            &["1234567890123456", "the scraper's own token"],
            &[("short", "16 bytes or more"), ("", "16 bytes or more")],
        ),
        // Reached only when used: a bad URL fails at connection, naming it.
        row(
            "DATABASE_URL",
            &["postgres://u@db.internal:5432/campaign"],
            &[],
        ),
        row("DATABASE_CA", &["/etc/ssl/postgres-ca.pem", ""], &[]),
        row(
            "REPLICA_URL",
            &["postgres://postgres@replica.internal:5432/undersigned", ""],
            &[],
        ),
        row(
            "REDIS_URL",
            &[
                "redis://cache.internal:6379",
                "rediss://cache.internal:6380",
                "",
            ],
            &[],
        ),
        row(
            "REDIS_CA",
            &[""],
            &[("/etc/ssl/redis-ca.pem", "must be rediss://")],
        ),
        row("REDIS_PREFIX", &["campaign-2027", "2027"], &[]),
        row(
            "IDENTITY_PEPPER",
            &["12345678901234567890123", "a long enough pepper"],
            &[("short", "16 bytes or more"), ("", "16 bytes or more")],
        ),
        row(
            "EXPORT_SIGNING_KEY",
            &["000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"],
            &[("abc", "64 hex digits"), ("", "64 hex digits")],
        ),
        row(
            "IP_LIMIT",
            &["off", "5/300s", "3/60s,20/1h"],
            &[
                ("lots", "like 5/300s, 10/1m or 100/1h, or is off"),
                ("1/60s,", "or is off"),
            ],
        ),
        row(
            "DOMAIN_LIMIT",
            &["off", "500/1h"],
            &[("1/1d", "like 5/300s")],
        ),
        row(
            "DOMAIN_LIMIT_EXEMPT",
            &["gmail.com, Web.de", ""],
            &[("gmail com", "separated by commas")],
        ),
        row(
            "PETITION_LIMIT",
            &["20000/1s", "off"],
            &[("many", "like 5/300s")],
        ),
        row("SHIELD_LIMIT", &["10/1s", "none"], &[("10", "like 5/300s")]),
        row(
            "DEVICE_LIMIT",
            &["3000/10m", "off"],
            &[("0/1m", "like 5/300s")],
        ),
        Row {
            name: "HCAPTCHA_SITEKEY",
            good: &[SITEKEY],
            bad: &[("not-a-uuid", "expected a UUID"), ("", "is required with")],
            with: &[("HCAPTCHA_SECRET", SECRET)],
        },
        Row {
            name: "HCAPTCHA_SECRET",
            good: &[SECRET, "ES_00000000000000000000000000000000", ""],
            // A one-character secret once panicked inside the hCaptcha crate.
            bad: &[("x", "expected 0x and 40 hex digits")],
            with: &[("HCAPTCHA_SITEKEY", SITEKEY)],
        },
        row(
            "HCAPTCHA_VERIFY_URL",
            &["http://127.0.0.1:9/siteverify"],
            &[("not a url", "expected a URL like https://")],
        ),
        row("HCAPTCHA_TIMEOUT_MS", &["300"], &[("soon", UNSIGNED)]),
        row(
            "TRUSTED_PROXIES",
            &["10.0.0.0/8, ::1", ""],
            &[("10.0.0.0/8,lan", "not an address or CIDR")],
        ),
        row(
            "FORWARDED_HEADER",
            &["forwarded", "X-Forwarded-For"],
            &[("x-real-ip", "expected x-forwarded-for or forwarded")],
        ),
        row(
            "WRITERS",
            &["1", "4"],
            &[("16", "must exceed UNDERSIGNED_WRITERS"), ("two", COUNT)],
        ),
        row("BATCH_MAX", &["250"], &[("x", COUNT)]),
        row(
            "BATCH_LINGER_MS",
            &["0", "1000"],
            &[("5000", "at most 1000")],
        ),
        row("GUARD_LINGER_MS", &["0", "2"], &[("1001", "at most 1000")]),
        row("QUEUE_CAPACITY", &["10"], &[("-1", COUNT)]),
        row(
            "POOL_SIZE",
            &["3", "64"],
            &[("2", "must exceed UNDERSIGNED_WRITERS")],
        ),
        row(
            "MAX_CONNECTIONS",
            &["300", "10000"],
            &[
                ("0", "at least 1"),
                ("100", "between 1 and UNDERSIGNED_MAX_CONNECTIONS"),
            ],
        ),
        row(
            "MAX_CONNECTIONS_PER_ADDRESS",
            &["1", "10000"],
            &[
                ("0", "between 1 and"),
                ("10001", "(10000)"),
                ("many", COUNT),
            ],
        ),
        row("HEADER_READ_TIMEOUT_SECS", &["5"], &[("soon", UNSIGNED)]),
        row("BODY_READ_TIMEOUT_SECS", &["5"], &[("soon", UNSIGNED)]),
        row("SHUTDOWN_GRACE_SECS", &["0", "60"], &[("-5", UNSIGNED)]),
        row("SHUTDOWN_IDLE_SECS", &["0", "5"], &[("soon", UNSIGNED)]),
        row(
            "MIRROR_ORIGINS",
            &["https://mirror.example,http://127.0.0.1:8081", ""],
            &[("mirror.example", "is not an origin")],
        ),
        row(
            "STREAM_HEARTBEAT_SECS",
            &["1", "55"],
            &[("often", UNSIGNED)],
        ),
        row(
            "MAX_STREAMS",
            &["1", "10000"],
            &[("0", "between 1 and"), ("10001", "(10000)")],
        ),
        row(
            "MAX_STREAMS_PER_ADDRESS",
            &["1", "100000"],
            &[("0", "at least 1"), ("some", COUNT)],
        ),
        // Without the secrets: `production_refuses_to_start_without_its_secrets`.
        Row {
            name: "REQUIRE_SECRETS",
            good: &["true", "false"],
            bad: &[("sometimes", "bool")],
            with: &[
                ("IDENTITY_PEPPER", "12345678901234567890123"),
                (
                    "EXPORT_SIGNING_KEY",
                    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                ),
            ],
        },
        row("SIGNALS_REFRESH_SECS", &["1"], &[("hourly", UNSIGNED)]),
        row(
            "RETENTION_INTERVAL_SECS",
            &["1", "86400"],
            &[("0", "at least 1"), ("hourly", UNSIGNED)],
        ),
        row(
            "ADDRESS_RETENTION_DAYS",
            &["1", "365"],
            &[("0", "at least 1"), ("a month", "expected u32")],
        ),
        row(
            "WEBHOOK_ALLOW_PRIVATE",
            &["true", "false"],
            &[("sometimes", "bool")],
        ),
        row(
            "WEBHOOK_TIMEOUT_MS",
            &["1", "30000"],
            &[("0", "at least 1"), ("soon", UNSIGNED)],
        ),
        row(
            "WEBHOOK_FIRST_RETRY_MS",
            &["1", "60000"],
            &[("0", "at least 1"), ("soon", UNSIGNED)],
        ),
        row(
            "WEBHOOK_RATE",
            &["200/1s", "off"],
            &[("fast", "like 5/300s")],
        ),
        row(
            "LOG_FORMAT",
            &["json", "text"],
            &[("xml", "expected text or json")],
        ),
        row(
            "SMTP_URL",
            &[
                "smtp://127.0.0.1:2525",
                "smtps://user:pass@mail.example",
                "",
            ],
            &[
                ("mail.example:25", "expected smtp://host:port"),
                ("http://mail.example", "expected smtp://host:port"),
            ],
        ),
        row("MAIL_DIR", &["/var/spool/undersigned", "mail"], &[]),
        row("MAIL_RATE", &["100/1s", "off"], &[("fast", "like 5/300s")]),
        row(
            "PUBLIC_URL",
            &["https://sign.example", "http://127.0.0.1:8080/", ""],
            &[
                ("sign.example", "expected an http:// or https://"),
                (
                    "https://sign.example/?a=b",
                    "expected an http:// or https://",
                ),
            ],
        ),
        row(
            "MAIL_FROM",
            &["campaign@sign.example", "Campaign <campaign@sign.example>"],
            &[("nobody", "expected an address")],
        ),
        row(
            "CONFIRM_TTL",
            &["7d", "48h", "30m", "90s"],
            &[
                ("7", "expected a time like 7d"),
                ("0d", "expected a time"),
                ("1w", "expected a time"),
            ],
        ),
    ];

    /// Each variable as `UNDERSIGNED_*`, from the fields of the default
    /// configuration as it is serialized.
    fn variables() -> Vec<String> {
        let serde_json::Value::Object(fields) =
            serde_json::to_value(Config::default()).expect("the defaults serialize")
        else {
            panic!("a configuration serializes as a map");
        };
        fields
            .keys()
            .map(|k| format!("UNDERSIGNED_{}", k.to_ascii_uppercase()))
            .collect()
    }

    #[test]
    fn production_refuses_to_start_without_its_secrets() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("UNDERSIGNED_REQUIRE_SECRETS", "true");
            let refused = Config::load(None).err().map(|e| e.to_string());
            assert!(
                refused.as_deref().is_some_and(|e| e.contains(
                    "UNDERSIGNED_IDENTITY_PEPPER and UNDERSIGNED_EXPORT_SIGNING_KEY is not"
                )),
                "{refused:?}"
            );
            jail.set_env("UNDERSIGNED_IDENTITY_PEPPER", "12345678901234567890123");
            let refused = Config::load(None).err().map(|e| e.to_string());
            assert!(
                refused
                    .as_deref()
                    .is_some_and(|e| e.contains("but UNDERSIGNED_EXPORT_SIGNING_KEY is not")),
                "{refused:?}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_config_table_has_one_row_per_variable() {
        let mut fields = variables();
        let mut rows: Vec<String> = TABLE
            .iter()
            .map(|r| format!("UNDERSIGNED_{}", r.name))
            .collect();
        fields.sort();
        rows.sort();
        assert_eq!(rows, fields, "a row for each field of Config, and no other");
    }

    #[test]
    fn config_accepts_each_good_form_and_refuses_each_bad_one_by_name() {
        figment::Jail::expect_with(|jail| {
            for row in TABLE {
                let var = format!("UNDERSIGNED_{}", row.name);
                for (other, value) in row.with {
                    jail.set_env(format!("UNDERSIGNED_{other}"), value);
                }
                for good in row.good {
                    jail.set_env(&var, good);
                    if let Err(e) = Config::load(None) {
                        panic!("{var}={good:?} is refused: {e}");
                    }
                }
                for (bad, form) in row.bad {
                    jail.set_env(&var, bad);
                    let e = match Config::load(None) {
                        Ok(_) => panic!("{var}={bad:?} is accepted"),
                        Err(e) => e.to_string(),
                    };
                    assert!(e.contains(&var), "{var}={bad:?}: {e}");
                    assert!(e.contains(form), "{var}={bad:?} must say {form:?}: {e}");
                    assert!(!e.contains('\n'), "one line: {e}");
                    assert!(!e.starts_with("configuration"), "{e}");
                }
                // Back to the defaults, so the next row fails alone.
                jail.clear_env();
            }
            Ok(())
        });
    }

    /// The default of `name` as written in the environment; none when unset.
    fn default_of(name: &str) -> Option<String> {
        let serde_json::Value::Object(fields) =
            serde_json::to_value(Config::default()).expect("the defaults serialize")
        else {
            panic!("a configuration serializes as a map");
        };
        match &fields[&name.to_ascii_lowercase()] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The rows of README.md's `## Configuration` table: each variable and
    /// its default as written.
    fn readme_rows() -> Vec<(String, String)> {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with("Configuration\n"))
            .expect("README.md has a ## Configuration section");
        section
            .lines()
            .filter(|l| l.starts_with("| `UNDERSIGNED_"))
            .map(|l| {
                let cells: Vec<&str> = l.split(" | ").collect();
                let variable = cells[0].trim_start_matches("| ").trim_matches('`');
                (variable.to_owned(), cells[1].trim().to_owned())
            })
            .collect()
    }

    #[test]
    fn the_database_ca_joins_the_url_in_its_own_form() {
        let ca = Path::new("/etc/ssl/postgres ca.pem");
        assert_eq!(
            with_root_certificate("postgres://u@db.internal/c?sslmode=verify-full", ca).unwrap(),
            "postgres://u@db.internal/c?sslmode=verify-full&sslrootcert=%2Fetc%2Fssl%2Fpostgres+ca.pem"
        );
        let ca = Path::new("/etc/ssl/ca.pem");
        assert_eq!(
            with_root_certificate("host=db.internal sslmode=verify-ca", ca).unwrap(),
            "host=db.internal sslmode=verify-ca sslrootcert=/etc/ssl/ca.pem"
        );
        assert!(with_root_certificate("postgres://u@h/c?sslrootcert=/a.pem", ca).is_err());
    }

    #[test]
    fn the_readme_configuration_table_lists_each_variable_once() {
        let rows = readme_rows();
        let mut listed: Vec<String> = rows.iter().map(|(v, _)| v.clone()).collect();
        listed.sort();
        let mut once = listed.clone();
        once.dedup();
        assert_eq!(listed, once, "a variable listed twice in README.md");
        let mut fields = variables();
        fields.sort();
        assert_eq!(
            listed, fields,
            "README.md lists exactly the variables of Config"
        );
    }

    #[test]
    fn the_readme_configuration_table_shows_the_defaults_of_the_code() {
        let defaults = serde_json::to_value(Config::default()).unwrap();
        for (variable, shown) in readme_rows() {
            let key = variable
                .trim_start_matches("UNDERSIGNED_")
                .to_ascii_lowercase();
            let default = &defaults[&key];
            match shown.strip_prefix('`').and_then(|s| s.strip_suffix('`')) {
                // Read as the environment would give it, so that `3/60s`
                // matches a default written `3/1m`.
                Some(literal) => {
                    let value: figment::value::Value = literal.parse().expect("infallible");
                    let read: Config = Figment::from(Serialized::defaults(Config::default()))
                        .merge(Serialized::default(&key, value))
                        .extract()
                        .unwrap_or_else(|e| panic!("README.md's {variable} default: {e}"));
                    let read = serde_json::to_value(read).unwrap();
                    assert_eq!(&read[&key], default, "README.md's {variable} default");
                }
                None if shown == "none" => assert!(
                    default.is_null() || default.as_str() == Some(""),
                    "{variable} has a default, {default}, README.md says none"
                ),
                None => {}
            }
        }
    }

    #[test]
    fn config_values_are_read_into_their_types() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("UNDERSIGNED_LISTEN", "127.0.0.1:9999");
            jail.set_env("UNDERSIGNED_IDENTITY_PEPPER", "12345678901234567890123");
            jail.set_env("UNDERSIGNED_REDIS_URL", "");
            jail.set_env("UNDERSIGNED_IP_LIMIT", "off");
            jail.set_env("UNDERSIGNED_DOMAIN_LIMIT", "500/1h");
            jail.set_env("UNDERSIGNED_DOMAIN_LIMIT_EXEMPT", "Gmail.com, web.de");
            jail.set_env("UNDERSIGNED_TRUSTED_PROXIES", "10.0.0.0/8");
            jail.set_env("UNDERSIGNED_FORWARDED_HEADER", "forwarded");
            jail.set_env("UNDERSIGNED_LOG_FORMAT", "json");
            jail.set_env("UNDERSIGNED_BATCH_MAX", "250");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 9999);
            assert_eq!(
                c.identity_pepper.as_ref().map(Secret::expose),
                Some("12345678901234567890123")
            );
            assert_eq!(c.redis_url(), None);
            let limits = c.limits();
            assert!(limits.address.is_empty());
            assert_eq!(limits.email_domain, Some("500/1h".parse().unwrap()));
            assert_eq!(
                limits.exempt_domains,
                HashSet::from(["gmail.com".to_owned(), "web.de".to_owned()])
            );
            assert_eq!(c.trusted_proxies.to_string(), "10.0.0.0/8");
            assert_eq!(c.forwarded_header, ForwardedHeader::Forwarded);
            assert_eq!(c.log_format, LogFormat::Json);
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
            assert_eq!(c.forwarded_header, ForwardedHeader::XForwardedFor);
            assert_eq!(c.limits().address.len(), 2);
            assert_eq!(c.log_format, LogFormat::Json);
            Ok(())
        });
    }

    #[test]
    fn a_file_is_overridden_by_the_environment_and_named_when_wrong() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("u.toml", "ip_limit = \"3/60s\"\nwriters = 3\n")?;
            jail.set_env("UNDERSIGNED_CONFIG", "u.toml");
            jail.set_env("UNDERSIGNED_WRITERS", "4");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(written_limits(&c.ip_limit), "3/1m");
            assert_eq!(c.writers, 4);
            jail.create_file("u.toml", "log_format = \"xml\"\n")?;
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.contains("u.toml, key log_format"), "{e}");
            assert!(e.contains("expected text or json"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn the_http_settings_come_from_the_typed_values() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("UNDERSIGNED_METRICS_TOKEN", "1234567890123456");
            jail.set_env("UNDERSIGNED_MAX_CONNECTIONS_PER_ADDRESS", "12");
            let http = Config::load(None).map_err(|e| e.to_string())?.http();
            assert!(http.metrics_token.is_some());
            assert_eq!(http.max_connections_per_address, 12);
            Ok(())
        });
    }

    #[test]
    fn secrets_stay_out_of_debug_prints() {
        let config = Config {
            identity_pepper: Some("a pepper nobody may read".parse().unwrap()),
            export_signing_key: Some(
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                    .parse()
                    .unwrap(),
            ),
            ..Config::default()
        };
        let printed = format!("{config:?}");
        assert!(!printed.contains("nobody"), "{printed}");
        assert!(!printed.contains("0001020304"), "{printed}");
    }

    #[test]
    fn every_default_reads_back_as_itself() {
        figment::Jail::expect_with(|jail| {
            for var in variables() {
                let name = var.trim_start_matches("UNDERSIGNED_");
                if let Some(default) = default_of(name) {
                    jail.set_env(&var, default);
                }
            }
            let loaded = serde_json::to_value(Config::load(None).map_err(|e| e.to_string())?)
                .expect("serializes");
            assert_eq!(loaded, serde_json::to_value(Config::default()).unwrap());
            Ok(())
        });
    }
}
