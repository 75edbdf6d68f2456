//! Standard Webhooks' signature, and the secret it is made with.
//!
//! Each message carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature`: `v1,` then the base64 of HMAC-SHA256(secret,
//! `id.timestamp.body`), where the secret is the bytes behind `whsec_`'s
//! base64. A receiver recomputes it with its copy of the secret, compares in
//! constant time, and refuses a timestamp far from its clock (replays).
//!
//! The service must read the secret back to sign, so it cannot keep only a
//! hash of it as it does of tokens: it keeps it sealed (XChaCha20-Poly1305)
//! under a key derived from the identity pepper, with the webhook's id as
//! associated data, so a copy of the database alone does not give it and a
//! sealed secret moved to another webhook does not open.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use undersigned_domain::Pepper;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The prefix of a secret's written form.
const PREFIX: &str = "whsec_";
/// Bytes of a secret this service makes (the specification asks 24 to 64).
const SECRET_BYTES: usize = 32;
/// What the pepper's subkey for sealing secrets is named.
const SEALING_CONTEXT: &[u8] = b"undersigned/webhook-secrets/v1\0";
const NONCE_BYTES: usize = 24;

/// A webhook's signing secret.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0; SECRET_BYTES]);
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Its written form, `whsec_` and base64, shown once to whoever made it.
    pub fn encoded(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&*self.0))
    }

    /// A secret in its written form (with or without `whsec_`).
    pub fn parse(written: &str) -> Option<Self> {
        let b64 = written.strip_prefix(PREFIX).unwrap_or(written);
        let bytes = Zeroizing::new(STANDARD.decode(b64).ok()?);
        (!bytes.is_empty()).then_some(Self(bytes))
    }

    /// `webhook-signature`'s value for this message: `v1,` and the base64 HMAC.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// Whether `header` (a `webhook-signature`: signatures separated by
    /// spaces, each `version,base64`) holds a `v1` signature of this message,
    /// compared in constant time. The receiver's side, for tests and for
    /// anyone who reads this as an example.
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let expected = self.mac(id, timestamp, body);
        header.split(' ').any(|one| {
            one.strip_prefix("v1,")
                .and_then(|b64| STANDARD.decode(b64).ok())
                .is_some_and(|given| given.ct_eq(&expected).into())
        })
    }
}

/// Seals and opens webhooks' secrets for storage.
#[derive(Clone)]
pub struct SecretSeal {
    key: Zeroizing<[u8; 32]>,
}

impl SecretSeal {
    pub fn new(pepper: &Pepper) -> Self {
        Self {
            key: Zeroizing::new(pepper.subkey(SEALING_CONTEXT)),
        }
    }

    /// The nonce, then the sealed secret.
    pub fn seal(&self, webhook: Uuid, secret: &Secret) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&*self.key).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &secret.0,
                    aad: webhook.as_bytes(),
                },
            )
            .expect("sealing a short secret cannot fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// The secret sealed for `webhook`; `None` when it does not open (another
    /// pepper, another webhook's, altered).
    pub fn open(&self, webhook: Uuid, sealed: &[u8]) -> Option<Secret> {
        if sealed.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        let cipher = XChaCha20Poly1305::new((&*self.key).into());
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: webhook.as_bytes(),
                },
            )
            .ok()
            .map(|bytes| Secret(Zeroizing::new(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's README and its
    /// reference libraries' tests: this secret, id, timestamp and payload
    /// sign to this signature.
    #[test]
    fn signs_as_the_specification_example_does() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, &signature));
        assert!(!secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, &signature));
        assert!(secret.verify(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &format!("v1,bm9wZQ== {signature}")
        ));
    }

    /// The message the README shows, with its headers, verifies with the
    /// secret it names: the example stays a true one.
    #[test]
    fn the_readme_example_message_verifies() {
        let readme = include_str!("../../../README.md");
        let at = readme
            .find("webhook-id: ")
            .expect("the README shows a message");
        let mut lines = readme[at..].lines();
        let mut header = |name: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .expect("the headers in order")
                .to_owned()
        };
        let id = header("webhook-id: ");
        let timestamp: i64 = header("webhook-timestamp: ").parse().unwrap();
        let signature = header("webhook-signature: ");
        assert_eq!(header(""), "");
        let body = header("");
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(secret.verify(&id, timestamp, body.as_bytes(), &signature));
        assert!(readme.contains("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    }

    #[test]
    fn a_new_secret_reads_back_and_is_never_printed() {
        let secret = Secret::generate();
        let written = secret.encoded();
        assert!(written.starts_with("whsec_"));
        let again = Secret::parse(&written).unwrap();
        assert_eq!(again.sign("a", 1, b"b"), secret.sign("a", 1, b"b"));
        assert_eq!(format!("{secret:?}"), "Secret(…)");
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_webhook_and_pepper() {
        let pepper = Pepper::new(b"a pepper of some length").unwrap();
        let seal = SecretSeal::new(&pepper);
        let (id, other) = (Uuid::new_v4(), Uuid::new_v4());
        let secret = Secret::generate();
        let sealed = seal.seal(id, &secret);
        assert!(!sealed.windows(SECRET_BYTES).any(|w| w == &secret.0[..]));
        let opened = seal.open(id, &sealed).unwrap();
        assert_eq!(opened.encoded(), secret.encoded());
        assert!(seal.open(other, &sealed).is_none());
        let elsewhere = SecretSeal::new(&Pepper::new(b"another pepper entirely").unwrap());
        assert!(elsewhere.open(id, &sealed).is_none());
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(seal.open(id, &altered).is_none());
    }
}
