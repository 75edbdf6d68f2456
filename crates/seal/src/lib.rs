//! Signer data sealed to a campaign's keys, so that a database that leaks or
//! is seized holds no name, email or address anyone but the campaign can read
//! — the running service included, once an epoch has ended.
//!
//! # The construction
//!
//! A petition names its **recipients**: `age` X25519 public keys (`age1…`),
//! the campaign's and perhaps a coordinator's. Sealing a row with `age`
//! itself would cost an X25519 key agreement per recipient per signature;
//! instead each service instance draws, per petition, a random 256-bit
//! **epoch key**, wraps it once to all the recipients with `age` (the
//! wrapped key is stored, in `seal_epochs`, before any row under it), and
//! seals each row under it with XChaCha20-Poly1305:
//!
//! ```text
//! sealed = 0x01 ‖ epoch id (16 bytes) ‖ nonce (24 random bytes) ‖ AEAD(key, nonce, fields, ad)
//! ad     = 0x01 ‖ epoch id ‖ receipt (16 bytes)
//! ```
//!
//! The fields are the signer's personal data as JSON ([`Personal`]). The
//! receipt in the associated data ties a sealed value to its row: moved to
//! another row, or altered by a single bit, it no longer opens, and the error
//! names the receipt. A 192-bit random nonce never repeats in practice, so
//! instances need not coordinate. The wrapped key holds the epoch's id beside
//! the key, so a wrapped key swapped between epochs is refused.
//!
//! An epoch ends after [`EPOCH_LENGTH`] or [`EPOCH_ROWS`] rows, whichever
//! comes first, or when the recipients change; its key lives only in the
//! instance's memory, is zeroed when dropped, and nothing can rebuild it but
//! a recipient's identity. Once it ends, the rows it sealed are beyond the
//! service's own reach.
//!
//! # Limits
//!
//! - While an epoch is open, its key is in memory: whoever takes over a
//!   running instance reads what it seals from then on and the rows of the
//!   current epoch (at most an hour's), not older ones.
//! - The service sees every signature in clear while handling it (it must, to
//!   deduplicate and to send a confirmation email); sealing protects data at
//!   rest, not a compromised service.
//! - Lengths are not hidden: a sealed value is as long as its fields plus 57
//!   bytes.
//! - What must stay in clear for counts, filters, deduplication and abuse
//!   handling is not sealed (the README's "What undersigned stores" says
//!   what and why).
//! - Losing every recipient's identity loses the sealed data: there is no
//!   recovery, by design.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

/// How long one epoch key seals rows.
pub const EPOCH_LENGTH: Duration = Duration::from_secs(3600);
/// How many rows one epoch key seals at most.
pub const EPOCH_ROWS: u64 = 100_000;
/// Recipients a petition may name.
pub const MAX_RECIPIENTS: usize = 16;

const VERSION: u8 = 1;
const KEY: usize = 32;
const NONCE: usize = 24;
const HEAD: usize = 1 + 16 + NONCE;

/// A signer's personal fields, as sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Personal {
    pub full_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("`{0}` is not an age X25519 recipient (age1…)")]
    NotARecipient(String),
    #[error("wrapping the epoch key: {0}")]
    Wrap(String),
    #[error("the identity file holds no age identity: {0}")]
    Identity(String),
    #[error(
        "epoch {0}: none of the given identities is one of its recipients ({1}); \
         this is not the key the data was sealed to"
    )]
    NotOurs(Uuid, String),
    #[error("epoch {0}: its wrapped key is damaged ({1})")]
    DamagedEpoch(Uuid, String),
    #[error("sealing a signature failed")]
    Seal,
    #[error(
        "signature {receipt}: its sealed data does not open ({why}): it was altered, or \
         moved from another signature"
    )]
    DamagedRow { receipt: Uuid, why: &'static str },
}

/// Checks a petition's recipients: each an `age1…` key, at least one, at most
/// [`MAX_RECIPIENTS`]; the same key given twice counts once. Returns them
/// as written by `age` (trimmed), in the order given.
pub fn parse_recipients(given: &[String]) -> Result<Vec<String>, &'static str> {
    let mut keys: Vec<String> = Vec::with_capacity(given.len());
    for g in given {
        let recipient =
            age::x25519::Recipient::from_str(g.trim()).map_err(|_| "not_an_age_recipient")?;
        let written = recipient.to_string();
        if !keys.contains(&written) {
            keys.push(written);
        }
    }
    match keys.len() {
        0 => Err("empty"),
        n if n > MAX_RECIPIENTS => Err("too_many"),
        _ => Ok(keys),
    }
}

/// A new identity as `age-keygen` writes it (a comment with its public key,
/// then the secret), and its public recipient.
pub fn generate(created: &str) -> (Zeroizing<String>, String) {
    use age::secrecy::ExposeSecret;
    let identity = age::x25519::Identity::generate();
    let public = identity.to_public().to_string();
    let secret = Zeroizing::new(format!(
        "# created: {created}\n# public key: {public}\n{}\n",
        identity.to_string().expose_secret()
    ));
    (secret, public)
}

/// A data key, on the heap so that moving it around leaves no copy behind,
/// and zeroed when dropped.
type Key = Box<Zeroizing<[u8; KEY]>>;

fn new_key() -> Key {
    Box::new(Zeroizing::new([0u8; KEY]))
}

/// One epoch's key, in the memory of the instance that drew it.
pub struct Epoch {
    id: Uuid,
    key: Key,
    recipients: Vec<String>,
    opened: Instant,
    sealed: AtomicU64,
}

impl Epoch {
    /// Draws a key for `recipients` (as [`parse_recipients`] returns them)
    /// and wraps it to them: the epoch and what to store before using it.
    pub fn open(recipients: &[String]) -> Result<(Self, Vec<u8>), SealError> {
        let parsed = recipients
            .iter()
            .map(|r| {
                age::x25519::Recipient::from_str(r).map_err(|_| SealError::NotARecipient(r.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let id = Uuid::now_v7();
        let mut key = new_key();
        OsRng.fill_bytes(&mut key[..]);
        let mut inner = Zeroizing::new(Vec::with_capacity(16 + KEY));
        inner.extend_from_slice(id.as_bytes());
        inner.extend_from_slice(&key[..]);
        let wrap = || -> Result<Vec<u8>, Box<dyn std::error::Error>> {
            let encryptor =
                age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))?;
            let mut wrapped = Vec::with_capacity(256 * parsed.len());
            let mut writer = encryptor.wrap_output(&mut wrapped)?;
            writer.write_all(&inner)?;
            writer.finish()?;
            Ok(wrapped)
        };
        let wrapped = wrap().map_err(|e| SealError::Wrap(e.to_string()))?;
        let epoch = Self {
            id,
            key,
            recipients: recipients.to_vec(),
            opened: Instant::now(),
            sealed: AtomicU64::new(0),
        };
        Ok((epoch, wrapped))
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Whether it may seal more: young enough, not full, and for these recipients.
    pub fn serves(&self, recipients: &[String]) -> bool {
        self.recipients == recipients && !self.ended()
    }

    /// Whether its time or its rows ran out.
    pub fn ended(&self) -> bool {
        self.opened.elapsed() >= EPOCH_LENGTH || self.sealed.load(Ordering::Relaxed) >= EPOCH_ROWS
    }

    /// Seals one signature's fields, bound to its receipt.
    pub fn seal(&self, receipt: Uuid, personal: &Personal) -> Result<Vec<u8>, SealError> {
        self.sealed.fetch_add(1, Ordering::Relaxed);
        // Room for any signer's fields, so that the clear text is never
        // reallocated, leaving a copy behind.
        let mut plain = Zeroizing::new(Vec::with_capacity(4096));
        serde_json::to_writer(&mut *plain, personal).map_err(|_| SealError::Seal)?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let cipher = XChaCha20Poly1305::new((&**self.key).into());
        let ad = associated(self.id, receipt);
        let payload = Payload {
            msg: &plain,
            aad: &ad,
        };
        let sealed = cipher
            .encrypt(&nonce, payload)
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(HEAD + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}

fn associated(epoch: Uuid, receipt: Uuid) -> [u8; 33] {
    let mut ad = [0u8; 33];
    ad[0] = VERSION;
    ad[1..17].copy_from_slice(epoch.as_bytes());
    ad[17..].copy_from_slice(receipt.as_bytes());
    ad
}

/// The epoch a sealed value was sealed under, if it is one.
pub fn epoch_of(sealed: &[u8]) -> Option<Uuid> {
    (sealed.len() > HEAD && sealed[0] == VERSION)
        .then(|| Uuid::from_slice(&sealed[1..17]).ok())
        .flatten()
}

/// Opens sealed rows with a recipient's identity, on the campaign's machine.
pub struct Opener {
    identities: Vec<age::x25519::Identity>,
    keys: HashMap<Uuid, Key>,
}

impl Opener {
    /// From an identity file as `seal-key generate` or `age-keygen` write
    /// it: `AGE-SECRET-KEY-1…` lines, `#` comments and blank lines.
    pub fn from_identity_file(text: &str) -> Result<Self, SealError> {
        let identities = text
            .lines()
            .map(str::trim)
            .enumerate()
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            .map(|(i, line)| {
                age::x25519::Identity::from_str(line).map_err(|_| {
                    SealError::Identity(format!("line {} is not an AGE-SECRET-KEY-1… line", i + 1))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if identities.is_empty() {
            return Err(SealError::Identity("no AGE-SECRET-KEY line".into()));
        }
        Ok(Self {
            identities,
            keys: HashMap::new(),
        })
    }

    /// Unwraps one epoch's key; `recipients` only names them in the error.
    pub fn unwrap_epoch(
        &mut self,
        id: Uuid,
        wrapped: &[u8],
        recipients: &[String],
    ) -> Result<(), SealError> {
        let damaged = |e: &dyn std::fmt::Display| SealError::DamagedEpoch(id, e.to_string());
        let decryptor = age::Decryptor::new_buffered(wrapped).map_err(|e| damaged(&e))?;
        let mut reader =
            match decryptor.decrypt(self.identities.iter().map(|i| i as &dyn age::Identity)) {
                Ok(reader) => reader,
                Err(age::DecryptError::NoMatchingKeys) => {
                    return Err(SealError::NotOurs(id, recipients.join(", ")));
                }
                Err(e) => return Err(damaged(&e)),
            };
        let mut inner = Zeroizing::new(Vec::with_capacity(16 + KEY));
        reader.read_to_end(&mut inner).map_err(|e| damaged(&e))?;
        if inner.len() != 16 + KEY || &inner[..16] != id.as_bytes() {
            return Err(damaged(&"it names another epoch"));
        }
        let mut key = new_key();
        key.copy_from_slice(&inner[16..]);
        self.keys.insert(id, key);
        Ok(())
    }

    /// Opens one signature's sealed fields.
    pub fn open(&self, receipt: Uuid, sealed: &[u8]) -> Result<Personal, SealError> {
        let damaged = |why| SealError::DamagedRow { receipt, why };
        let epoch = epoch_of(sealed).ok_or(damaged("not sealed data of this version"))?;
        let key = self
            .keys
            .get(&epoch)
            .ok_or(damaged("its epoch is not in the export"))?;
        let cipher = XChaCha20Poly1305::new((&***key).into());
        let nonce = XNonce::from_slice(&sealed[17..HEAD]);
        let ad = associated(epoch, receipt);
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    nonce,
                    Payload {
                        msg: &sealed[HEAD..],
                        aad: &ad,
                    },
                )
                .map_err(|_| damaged("authentication failed"))?,
        );
        serde_json::from_slice(&plain).map_err(|_| damaged("its fields do not parse"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn personal() -> Personal {
        Personal {
            full_name: "Ada Lovelace".into(),
            email: Some("ada@example.org".into()),
            city: Some("London".into()),
            client_address: Some("192.0.2.7".into()),
            ..Default::default()
        }
    }

    fn keypair() -> (Zeroizing<String>, String) {
        generate("2026-12-06T00:00:00Z")
    }

    #[test]
    fn a_row_sealed_to_two_recipients_opens_with_either_and_not_with_a_third() {
        let (first, first_public) = keypair();
        let (second, second_public) = keypair();
        let (third, _) = keypair();
        let recipients = parse_recipients(&[first_public, second_public]).unwrap();
        let (epoch, wrapped) = Epoch::open(&recipients).unwrap();
        let receipt = Uuid::now_v7();
        let sealed = epoch.seal(receipt, &personal()).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("Ada"));
        for identity in [&first, &second] {
            let mut opener = Opener::from_identity_file(identity).unwrap();
            opener
                .unwrap_epoch(epoch.id(), &wrapped, &recipients)
                .unwrap();
            assert_eq!(opener.open(receipt, &sealed).unwrap(), personal());
        }
        let mut stranger = Opener::from_identity_file(&third).unwrap();
        let refused = stranger.unwrap_epoch(epoch.id(), &wrapped, &recipients);
        assert!(
            matches!(refused, Err(SealError::NotOurs(id, _)) if id == epoch.id()),
            "{refused:?}"
        );
    }

    #[test]
    fn an_altered_or_moved_row_names_its_receipt() {
        let (identity, public) = keypair();
        let recipients = parse_recipients(&[public]).unwrap();
        let (epoch, wrapped) = Epoch::open(&recipients).unwrap();
        let mut opener = Opener::from_identity_file(&identity).unwrap();
        opener
            .unwrap_epoch(epoch.id(), &wrapped, &recipients)
            .unwrap();
        let receipt = Uuid::now_v7();
        let mut sealed = epoch.seal(receipt, &personal()).unwrap();
        let other = Uuid::now_v7();
        let moved = opener.open(other, &sealed).unwrap_err();
        assert!(moved.to_string().contains(&other.to_string()), "{moved}");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        let altered = opener.open(receipt, &sealed).unwrap_err();
        assert!(
            altered.to_string().contains(&receipt.to_string()),
            "{altered}"
        );
    }

    #[test]
    fn a_wrapped_key_swapped_between_epochs_is_refused() {
        let (identity, public) = keypair();
        let recipients = parse_recipients(&[public]).unwrap();
        let (one, _) = Epoch::open(&recipients).unwrap();
        let (_, other_wrapped) = Epoch::open(&recipients).unwrap();
        let mut opener = Opener::from_identity_file(&identity).unwrap();
        let swapped = opener.unwrap_epoch(one.id(), &other_wrapped, &recipients);
        assert!(
            matches!(swapped, Err(SealError::DamagedEpoch(..))),
            "{swapped:?}"
        );
    }

    #[test]
    fn recipients_are_age_keys_at_least_one_and_each_once() {
        let (_, public) = keypair();
        assert_eq!(
            parse_recipients(&[format!(" {public} "), public.clone()]).unwrap(),
            [public]
        );
        assert_eq!(parse_recipients(&[]), Err("empty"));
        assert_eq!(
            parse_recipients(&["ssh-ed25519 AAAA".into()]),
            Err("not_an_age_recipient")
        );
        let many: Vec<String> = (0..=MAX_RECIPIENTS).map(|_| keypair().1).collect();
        assert_eq!(parse_recipients(&many), Err("too_many"));
    }

    #[test]
    fn an_epoch_ends_with_other_recipients() {
        let (_, a) = keypair();
        let (_, b) = keypair();
        let (epoch, _) = Epoch::open(std::slice::from_ref(&a)).unwrap();
        assert!(epoch.serves(std::slice::from_ref(&a)));
        assert!(!epoch.serves(&[b]));
    }
}
