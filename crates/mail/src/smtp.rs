//! A relay reached over plain SMTP (`smtp://`, with or without STARTTLS):
//! each mailer keeps one connection to it, whose socket this module opens
//! with `TCP_NODELAY`; lettre speaks SMTP, STARTTLS and AUTH over it.
//!
//! Why not lettre's pooled transport: it writes a message and its closing
//! dot in two writes, and on a socket with Nagle's algorithm the second
//! waits for the server's delayed acknowledgement of the first: up to 40 ms
//! a message, so a connection sent at most about 25 messages a second. A
//! relay behind implicit TLS (`smtps://`) keeps lettre's pooled transport.

use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::TransportError;

/// How long connecting (and the greeting) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection idle this long is checked (NOOP) before it is used again:
/// relays close idle connections.
const CHECK_AFTER: Duration = Duration::from_secs(20);

/// STARTTLS: whether the relay must offer it.
#[derive(Clone)]
struct StartTls {
    parameters: TlsParameters,
    required: bool,
}

/// Where and how to reach the relay.
#[derive(Clone)]
pub struct Relay {
    host: String,
    port: u16,
    starttls: Option<StartTls>,
    credentials: Option<Credentials>,
    hello: ClientId,
}

impl Relay {
    /// The relay an `smtp://` URL names, read as lettre reads it
    /// (`?tls=required|opportunistic`, user and password, a path as the
    /// EHLO name); `None` for another scheme.
    pub fn from_url(text: &str) -> Result<Option<Self>, TransportError> {
        let url = url::Url::parse(text).map_err(|e| TransportError(e.to_string()))?;
        if url.scheme() != "smtp" {
            return Ok(None);
        }
        let host = url
            .host_str()
            .ok_or_else(|| TransportError("no host".into()))?
            .to_owned();
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let starttls = match tls.as_deref() {
            None => None,
            Some(mode @ ("required" | "opportunistic")) => Some(StartTls {
                parameters: TlsParameters::new(host.clone())
                    .map_err(|e| TransportError(e.to_string()))?,
                required: mode == "required",
            }),
            Some(other) => return Err(TransportError(format!("tls={other}"))),
        };
        let port = url
            .port()
            .unwrap_or(if starttls.is_some() { 587 } else { 25 });
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|e| TransportError(e.to_string()))
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None => None,
        };
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        Ok(Some(Self {
            host,
            port,
            starttls,
            credentials,
            hello,
        }))
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let connecting = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(network)?;
            tcp.set_nodelay(true).map_err(network)?;
            let mut connection =
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello).await?;
            if let Some(tls) = &self.starttls {
                if connection.can_starttls() {
                    connection
                        .starttls(tls.parameters.clone(), &self.hello)
                        .await?;
                } else if tls.required {
                    connection.abort().await;
                    return Err(network("the relay does not offer STARTTLS"));
                }
            }
            if let Some(credentials) = &self.credentials {
                connection
                    .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await?;
            }
            Ok(connection)
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| network("connecting timed out"))?
    }
}

/// Why a message did not go: the relay's answer, or no connection to it
/// (temporary, like a 4xx).
#[derive(Debug)]
pub enum SendError {
    Smtp(lettre::transport::smtp::Error),
    Connect(String),
}

impl SendError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Smtp(e) if e.is_permanent())
    }

    /// The relay's reply code, when it gave one.
    pub fn status(&self) -> Option<String> {
        match self {
            Self::Smtp(e) => e.status().map(|c| c.to_string()),
            Self::Connect(_) => None,
        }
    }
}

impl From<lettre::transport::smtp::Error> for SendError {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        Self::Smtp(e)
    }
}

fn network(e: impl std::fmt::Display) -> SendError {
    SendError::Connect(e.to_string())
}

/// One mailer's connection to the relay, opened when first needed and
/// again after it broke.
pub struct Connection {
    relay: Relay,
    open: Mutex<Option<(AsyncSmtpConnection, Instant)>>,
}

impl Connection {
    pub fn new(relay: Relay) -> Self {
        Self {
            relay,
            open: Mutex::new(None),
        }
    }

    /// Sends one message; a connection that turns out closed (the relay
    /// dropped it while idle) is reopened and the message sent once more.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<Response, SendError> {
        let mut open = self.open.lock().await;
        let mut reused = open.is_some();
        loop {
            let (connection, last) = match open.as_mut() {
                Some(held) => held,
                None => open.insert((self.relay.connect().await?, Instant::now())),
            };
            if reused && last.elapsed() > CHECK_AFTER && !connection.test_connected().await {
                *open = None;
                reused = false;
                continue;
            }
            let sent = connection.send(envelope, message).await;
            *last = Instant::now();
            match sent {
                Ok(response) => return Ok(response),
                Err(e) if connection.has_broken() => {
                    *open = None;
                    if reused && !e.is_permanent() {
                        reused = false;
                        continue;
                    }
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Relay;

    #[test]
    fn an_smtp_url_reads_as_lettre_reads_it() {
        let plain = Relay::from_url("smtp://127.0.0.1:2525").unwrap().unwrap();
        assert_eq!((plain.host.as_str(), plain.port), ("127.0.0.1", 2525));
        assert!(plain.starttls.is_none() && plain.credentials.is_none());
        let relay = Relay::from_url("smtp://user%40x:p%2Fss@mail.example?tls=required")
            .unwrap()
            .unwrap();
        assert_eq!(relay.port, 587, "STARTTLS's submission port by default");
        assert!(relay.starttls.as_ref().is_some_and(|t| t.required));
        assert!(relay.credentials.is_some());
        let opportunistic =
            Relay::from_url("smtp://mail.example:25/sign.example?tls=opportunistic")
                .unwrap()
                .unwrap();
        assert!(opportunistic.starttls.as_ref().is_some_and(|t| !t.required));
        assert_eq!(
            Relay::from_url("smtp://mail.example")
                .unwrap()
                .unwrap()
                .port,
            25
        );
        assert!(
            Relay::from_url("smtps://mail.example").unwrap().is_none(),
            "lettre's pool"
        );
        assert!(Relay::from_url("smtp://mail.example?tls=sometimes").is_err());
    }
}
