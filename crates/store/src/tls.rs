//! How the service reaches Postgres: `UNDERSIGNED_DATABASE_URL` read as libpq
//! reads it, TLS included, with rustls. tokio-postgres knows three `sslmode`s
//! (`disable`, `prefer`, `require`) and no `sslrootcert`; managed Postgres
//! services ask for the other two, so the URL's TLS parameters are read here
//! and the rest is left to tokio-postgres:
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` | when the server offers it | not checked; with a root certificate, its chain (as libpq) |
//! | `require` | always | the same |
//! | `verify-ca` | always | chained to the root certificate |
//! | `verify-full` | always | chained, and naming the host connected to |
//!
//! The root certificate is `sslrootcert` (a PEM file of one or more
//! certificates; `UNDERSIGNED_DATABASE_CA` sets it), else the system's roots.
//! Without `sslmode`: `verify-full` when a root certificate is given (an
//! operator who names one means it to be checked); otherwise libpq's
//! `prefer`, except for a server on the loopback interface or a Unix
//! socket, which TLS would only slow down.

use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// libpq's `sslmode`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Result<Self, StoreError> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            // libpq's `allow` tries without TLS first: nothing a service wants.
            other => {
                return Err(StoreError::Config(format!(
                    "DATABASE_URL: sslmode {other:?} is not one of disable, prefer, require, \
                     verify-ca, verify-full"
                )));
            }
        })
    }
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// A connection's settings, and the TLS it is made with.
#[derive(Clone)]
pub(crate) struct Connection {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) tls: Tls,
    pub(crate) mode: TlsMode,
}

impl Connection {
    pub(crate) fn parse(database_url: &str) -> Result<Self, StoreError> {
        let (rest, sslmode, root) = take_tls_parameters(database_url)?;
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| StoreError::Config(format!("DATABASE_URL: {e}")))?;
        let mode = match (sslmode, &root) {
            (Some(value), _) => TlsMode::parse(&value)?,
            // A root certificate given is a certificate to check, name too.
            (None, Some(_)) => TlsMode::VerifyFull,
            (None, None) if is_local(&config) => TlsMode::Disable,
            (None, None) => TlsMode::Prefer,
        };
        if mode == TlsMode::VerifyFull
            && !config.get_hosts().iter().any(|h| matches!(h, Host::Tcp(_)))
        {
            return Err(StoreError::Config(
                "DATABASE_URL: verify-full checks the server's name: give it as host".into(),
            ));
        }
        config.ssl_mode(match mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        let tls = Tls(MakeRustlsConnect::new(client_config(
            mode,
            root.as_deref(),
        )?));
        Ok(Self { config, tls, mode })
    }

    /// The same server, another database.
    pub(crate) fn on_database(&self, name: &str) -> Self {
        let mut other = self.clone();
        other.config.dbname(name);
        other
    }
}

/// Whether every server the settings name is this machine: loopback
/// addresses, `localhost` and Unix sockets.
fn is_local(config: &tokio_postgres::Config) -> bool {
    let host_is_local = |host: &Host| match host {
        Host::Tcp(name) => {
            name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    };
    let (hosts, addresses) = (config.get_hosts(), config.get_hostaddrs());
    (!hosts.is_empty() || !addresses.is_empty())
        && hosts.iter().all(host_is_local)
        && addresses.iter().all(IpAddr::is_loopback)
}

/// rustls's connector for tokio-postgres, given a name even where the
/// settings hold none (a Unix socket, a bare `hostaddr`): tokio-postgres asks
/// for a connector before it knows whether TLS will be used, and rustls
/// refuses an empty name. Where no name is given, none is checked
/// (`verify-full` asks for a host).
#[derive(Clone)]
pub(crate) struct Tls(MakeRustlsConnect);

impl<S> MakeTlsConnect<S> for Tls
where
    MakeRustlsConnect: MakeTlsConnect<S>,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, name: &str) -> Result<Self::TlsConnect, Self::Error> {
        let name = if name.is_empty() { "localhost" } else { name };
        MakeTlsConnect::<S>::make_tls_connect(&mut self.0, name)
    }
}

/// One `key=value` of a DATABASE_URL: where it lies, and its key and value
/// as tokio-postgres reads them.
struct Parameter {
    span: Range<usize>,
    key: String,
    value: String,
}

/// The URL without `sslmode` and `sslrootcert`, and their values, from
/// either form libpq takes: `postgres://…?sslmode=…` or `key=value …`. The
/// rest of the string is left byte for byte.
fn take_tls_parameters(
    database_url: &str,
) -> Result<(String, Option<String>, Option<String>), StoreError> {
    let parameters =
        if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            query_parameters(database_url)
        } else {
            keyword_parameters(database_url)?
        };
    let (mut sslmode, mut root, mut cut) = (None, None, Vec::new());
    for parameter in parameters {
        match parameter.key.as_str() {
            "sslmode" => sslmode = Some(parameter.value),
            "sslrootcert" => root = Some(parameter.value),
            _ => continue,
        }
        cut.push(parameter.span);
    }
    let mut rest = String::with_capacity(database_url.len());
    let mut from = 0;
    for span in cut {
        rest.push_str(&database_url[from..span.start]);
        from = span.end;
    }
    rest.push_str(&database_url[from..]);
    // What the cuts left dangling: `?&a=b`, `?a=b&`, a lone `?`.
    let rest = match rest.split_once('?') {
        Some((base, query)) if database_url.contains("://") => {
            let query: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
            if query.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", query.join("&"))
            }
        }
        _ => rest,
    };
    Ok((rest, sslmode, root))
}

/// The `key=value` pairs of a URL's query, values percent-decoded.
fn query_parameters(url: &str) -> Vec<Parameter> {
    let Some(start) = url.find('?').map(|q| q + 1) else {
        return Vec::new();
    };
    let mut parameters = Vec::new();
    let mut at = start;
    for pair in url[start..].split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        parameters.push(Parameter {
            span: at..at + pair.len(),
            key: key.to_owned(),
            value: percent_decode_str(value).decode_utf8_lossy().into_owned(),
        });
        at += pair.len() + 1;
    }
    parameters
}

/// The pairs of libpq's keyword form: `key = value`, a value quoted in
/// `'…'` when it holds spaces, `\` escaping the next character.
fn keyword_parameters(s: &str) -> Result<Vec<Parameter>, StoreError> {
    let bytes = s.as_bytes();
    let skip_spaces = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let malformed = || StoreError::Config("DATABASE_URL: not key=value pairs".into());
    let mut parameters = Vec::new();
    let mut i = skip_spaces(0);
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        let key = s[start..i].to_owned();
        i = skip_spaces(i);
        if bytes.get(i) != Some(&b'=') {
            return Err(malformed());
        }
        i = skip_spaces(i + 1);
        let quoted = bytes.get(i) == Some(&b'\'');
        if quoted {
            i += 1;
        }
        let mut value = Vec::new();
        loop {
            match bytes.get(i) {
                None if quoted => return Err(malformed()),
                None => break,
                Some(b'\'') if quoted => {
                    i += 1;
                    break;
                }
                Some(c) if !quoted && c.is_ascii_whitespace() => break,
                Some(b'\\') => {
                    value.push(*bytes.get(i + 1).ok_or_else(malformed)?);
                    i += 2;
                }
                Some(&c) => {
                    value.push(c);
                    i += 1;
                }
            }
        }
        parameters.push(Parameter {
            span: start..i,
            key,
            value: String::from_utf8(value).map_err(|_| malformed())?,
        });
        i = skip_spaces(i);
    }
    Ok(parameters)
}

fn client_config(mode: TlsMode, root: Option<&str>) -> Result<ClientConfig, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?;
    // As libpq: a root certificate given is checked in every mode with TLS.
    let checks_chain = match mode {
        TlsMode::VerifyCa | TlsMode::VerifyFull => true,
        TlsMode::Prefer | TlsMode::Require => root.is_some(),
        TlsMode::Disable => false,
    };
    let chain = if checks_chain {
        let roots = Arc::new(roots(root)?);
        Some(
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| StoreError::Config(format!("TLS: {e}")))?,
        )
    } else {
        None
    };
    let verifier: Arc<dyn ServerCertVerifier> = match chain {
        Some(chain) if mode == TlsMode::VerifyFull => chain,
        chain => Arc::new(Lenient {
            chain,
            algorithms: provider.signature_verification_algorithms,
        }),
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The certificates of `sslrootcert`, else the system's.
fn roots(root: Option<&str>) -> Result<RootCertStore, StoreError> {
    let mut store = RootCertStore::empty();
    match root {
        Some(path) => {
            let unreadable =
                |e: &dyn std::fmt::Display| StoreError::Config(format!("sslrootcert {path}: {e}"));
            for cert in
                CertificateDer::pem_file_iter(Path::new(path)).map_err(|e| unreadable(&e))?
            {
                store
                    .add(cert.map_err(|e| unreadable(&e))?)
                    .map_err(|e| unreadable(&e))?;
            }
            if store.is_empty() {
                return Err(unreadable(&"holds no certificate"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(StoreError::Config(
                    "verifying Postgres's certificate needs roots: the system has none; \
                     set UNDERSIGNED_DATABASE_CA"
                        .into(),
                ));
            }
        }
    }
    Ok(store)
}

/// Every mode but `verify-full`: with a root certificate, its chain is
/// checked and the name is not (`verify-ca`, as libpq's `prefer` and
/// `require` with a root); without one (`prefer`, `require`), any
/// certificate is taken: encrypted against a passive listener, as libpq's.
/// Either way the handshake's signatures are checked against the
/// certificate presented.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rest (spaces a cut left folded), sslmode, sslrootcert.
    fn taken(url: &str) -> (String, Option<String>, Option<String>) {
        let (rest, mode, root) = take_tls_parameters(url).unwrap();
        (
            rest.split_whitespace().collect::<Vec<_>>().join(" "),
            mode,
            root,
        )
    }

    #[test]
    fn the_tls_parameters_are_read_from_either_form_and_the_rest_left_as_it_was() {
        assert_eq!(
            taken(
                "postgres://u:p%40ss@db.internal:5432/c?sslmode=verify-full&sslrootcert=%2Fca%20dir%2Fca.pem&options=-c%20statement_timeout%3D5s"
            ),
            (
                "postgres://u:p%40ss@db.internal:5432/c?options=-c%20statement_timeout%3D5s".into(),
                Some("verify-full".into()),
                Some("/ca dir/ca.pem".into())
            )
        );
        assert_eq!(
            taken("postgres://u@h1:5432,h2:5433/c?application_name=x&sslmode=require"),
            (
                "postgres://u@h1:5432,h2:5433/c?application_name=x".into(),
                Some("require".into()),
                None
            )
        );
        assert_eq!(
            taken("postgres://u@127.0.0.1/c?sslmode=require"),
            (
                "postgres://u@127.0.0.1/c".into(),
                Some("require".into()),
                None
            )
        );
        assert_eq!(
            taken(
                "host=db.internal user=u sslmode = verify-ca sslrootcert='/etc/my ca.pem' dbname=c options='-c a=b'"
            ),
            (
                "host=db.internal user=u dbname=c options='-c a=b'".into(),
                Some("verify-ca".into()),
                Some("/etc/my ca.pem".into())
            )
        );
        assert!(take_tls_parameters("host=h sslmode='require").is_err());
    }

    #[test]
    fn without_sslmode_a_local_server_is_reached_in_the_clear_and_others_by_preference() {
        let mode = |url: &str| Connection::parse(url).unwrap().mode;
        assert_eq!(
            mode("postgres://postgres@127.0.0.1:5432/u"),
            TlsMode::Disable
        );
        assert_eq!(mode("postgres://postgres@localhost/u"), TlsMode::Disable);
        assert_eq!(mode("host=/run/postgresql user=postgres"), TlsMode::Disable);
        assert_eq!(mode("postgres://u@db.internal/u"), TlsMode::Prefer);
        assert_eq!(mode("hostaddr=10.0.0.5 user=u"), TlsMode::Prefer);
        assert_eq!(mode("hostaddr=127.0.0.1 user=u"), TlsMode::Disable);
        // A root certificate named is one to check.
        assert_eq!(
            mode("postgres://u@db.internal/u?sslrootcert=/etc/ssl/certs/ca-certificates.crt"),
            TlsMode::VerifyFull
        );
        assert!(matches!(
            Connection::parse("host=/run/postgresql user=u sslmode=verify-full"),
            Err(StoreError::Config(e)) if e.contains("name")
        ));
        assert_eq!(
            mode("postgres://u@127.0.0.1/u?sslmode=verify-full"),
            TlsMode::VerifyFull
        );
        assert!(matches!(
            Connection::parse("postgres://u@127.0.0.1/u?sslmode=allow"),
            Err(StoreError::Config(e)) if e.contains("allow")
        ));
        assert!(matches!(
            Connection::parse("postgres://u@127.0.0.1/u?sslmode=verify-ca&sslrootcert=/nowhere.pem"),
            Err(StoreError::Config(e)) if e.contains("/nowhere.pem")
        ));
    }
}
