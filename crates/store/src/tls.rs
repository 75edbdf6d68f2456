//! How the service reaches Postgres: `UNDERSIGNED_DATABASE_URL` read as libpq
//! reads it, TLS included, with rustls. tokio-postgres knows three `sslmode`s
//! (`disable`, `prefer`, `require`) and no `sslrootcert`; managed Postgres
//! services ask for the other two, so the URL's TLS parameters are read here
//! and the rest is left to tokio-postgres:
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` | when the server offers it | not checked (as libpq) |
//! | `require` | always | not checked; with a root certificate, its chain (as libpq) |
//! | `verify-ca` | always | chained to the root certificate |
//! | `verify-full` | always | chained, and naming the host connected to |
//!
//! The root certificate is `sslrootcert` (a PEM file of one or more
//! certificates; `UNDERSIGNED_DATABASE_CA` sets it), else the system's roots.
//! Without `sslmode`, libpq's `prefer` applies, except to a server on the
//! loopback interface or a Unix socket, which TLS would only slow down.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::{Host, SslMode};
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
    pub(crate) tls: MakeRustlsConnect,
    pub(crate) mode: TlsMode,
}

impl Connection {
    pub(crate) fn parse(database_url: &str) -> Result<Self, StoreError> {
        let (rest, sslmode, root) = take_tls_parameters(database_url)?;
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| StoreError::Config(format!("DATABASE_URL: {e}")))?;
        let mode = match sslmode {
            Some(value) => TlsMode::parse(&value)?,
            None if config.get_hosts().iter().all(is_local) => TlsMode::Disable,
            None => TlsMode::Prefer,
        };
        config.ssl_mode(match mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        });
        let tls = MakeRustlsConnect::new(client_config(mode, root.as_deref())?);
        Ok(Self { config, tls, mode })
    }

    /// The same server, another database.
    pub(crate) fn on_database(&self, name: &str) -> Self {
        let mut other = self.clone();
        other.config.dbname(name);
        other
    }
}

fn is_local(host: &Host) -> bool {
    match host {
        Host::Tcp(name) => {
            name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    }
}

/// The URL without `sslmode` and `sslrootcert`, and their values, from
/// either form libpq takes: `postgres://…?sslmode=…` or `key=value …`.
fn take_tls_parameters(
    database_url: &str,
) -> Result<(String, Option<String>, Option<String>), StoreError> {
    let (mut sslmode, mut root) = (None, None);
    let mut take = |key: &str, value: &str| match key {
        "sslmode" => {
            sslmode = Some(value.to_owned());
            true
        }
        "sslrootcert" => {
            root = Some(value.to_owned());
            true
        }
        _ => false,
    };
    let rest =
        if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            let mut url = url::Url::parse(database_url)
                .map_err(|e| StoreError::Config(format!("DATABASE_URL: {e}")))?;
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(key, value)| !take(key, value))
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect();
            if kept.is_empty() {
                url.set_query(None);
            } else {
                url.query_pairs_mut().clear().extend_pairs(kept);
            }
            url.to_string()
        } else {
            database_url
                .split_whitespace()
                .filter(|pair| {
                    pair.split_once('=')
                        .is_none_or(|(key, value)| !take(key.trim(), value.trim_matches('\'')))
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
    Ok((rest, sslmode, root))
}

fn client_config(mode: TlsMode, root: Option<&str>) -> Result<ClientConfig, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?;
    let checks_chain = match mode {
        TlsMode::VerifyCa | TlsMode::VerifyFull => true,
        TlsMode::Require => root.is_some(),
        TlsMode::Disable | TlsMode::Prefer => false,
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

/// `verify-ca` (a chain to check, not the name) and `prefer` or `require`
/// without a root (no chain: encrypted against a passive listener, as
/// libpq's are, and any certificate taken). Either way the handshake's
/// signatures are checked against the certificate presented.
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

    fn taken(url: &str) -> (String, Option<String>, Option<String>) {
        take_tls_parameters(url).unwrap()
    }

    #[test]
    fn the_tls_parameters_are_read_from_either_form_and_the_rest_left() {
        assert_eq!(
            taken(
                "postgres://u:p%40ss@db.internal:5432/c?sslmode=verify-full&sslrootcert=%2Fca.pem&application_name=x"
            ),
            (
                "postgres://u:p%40ss@db.internal:5432/c?application_name=x".into(),
                Some("verify-full".into()),
                Some("/ca.pem".into())
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
            taken("host=db.internal user=u sslmode=verify-ca sslrootcert='/etc/ca.pem' dbname=c"),
            (
                "host=db.internal user=u dbname=c".into(),
                Some("verify-ca".into()),
                Some("/etc/ca.pem".into())
            )
        );
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
