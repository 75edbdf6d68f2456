//! Identity keys: who signed, without saying who.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use unicode_normalization::UnicodeNormalization;

use crate::{Country, Email, Signature, SignerToken};

/// The secret behind identity keys. Without it a leaked key cannot be tested
/// against a list of known addresses.
#[derive(Clone)]
pub struct Pepper(Hmac<Sha256>);

/// HMAC-SHA256(pepper, petition, canonical email): one per signer per petition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKey(pub [u8; 32]);

/// Domain separation, so the pepper can key other hashes later without collisions.
const CONTEXT: &[u8] = b"undersigned/identity/v1\0";
/// The confirmation links' tokens.
const CONFIRMATION_CONTEXT: &[u8] = b"undersigned/confirmation-link/v1\0";
/// The identity of a signer who gave no e-mail address (offline only).
const OFFLINE_CONTEXT: &[u8] = b"undersigned/identity/name-postal-country/v1\0";

impl Pepper {
    /// `None` for a pepper shorter than 16 bytes: too weak to hide a mailbox.
    pub fn new(secret: &[u8]) -> Option<Self> {
        if secret.len() < 16 {
            return None;
        }
        Hmac::<Sha256>::new_from_slice(secret).ok().map(Self)
    }

    /// A key for another purpose, named by `context` (which no other use
    /// shares): HMAC(pepper, context). Whoever holds the pepper can make it
    /// again; nobody else can.
    pub fn subkey(&self, context: &[u8]) -> [u8; 32] {
        let mut mac = self.0.clone();
        mac.update(context);
        mac.finalize().into_bytes().into()
    }

    pub fn identity(&self, petition_id: i64, email: &Email) -> IdentityKey {
        // Cloning the keyed state skips re-deriving the HMAC key for every signature.
        let mut mac = self.0.clone();
        mac.update(CONTEXT);
        mac.update(&petition_id.to_be_bytes());
        mac.update(email.canonical().as_bytes());
        IdentityKey(mac.finalize().into_bytes().into())
    }

    /// The token of the link that confirms signature `id`, made at `micros`
    /// (microseconds since 1970): its time, then the first 128 bits of
    /// HMAC(pepper, id, time). Nobody without the pepper can tell them from
    /// random bits, and the signature path and the mailer make the same
    /// token from what the signature's row holds (its id, and the time in
    /// front of its stored hash), so that the token is stored nowhere, not
    /// even in a queued message (crates/domain/src/token.rs).
    pub fn confirmation_token(&self, id: Uuid, micros: u64) -> SignerToken {
        let mut mac = self.0.clone();
        mac.update(CONFIRMATION_CONTEXT);
        mac.update(id.as_bytes());
        mac.update(&micros.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bits = [0u8; 16];
        bits.copy_from_slice(&digest[..16]);
        SignerToken::ordered(micros, bits)
    }

    /// Who signed: by canonical e-mail address, else (offline signatures a
    /// petition lets go without one) by name, postal code and country.
    pub fn signer(&self, petition_id: i64, signature: &Signature) -> IdentityKey {
        match &signature.email {
            Some(email) => self.identity(petition_id, email),
            None => self.offline_identity(
                petition_id,
                signature.full_name.as_str(),
                signature.postal_code.as_deref().unwrap_or(""),
                signature.country,
            ),
        }
    }

    /// HMAC(pepper, petition, identity name, postal code without spaces or
    /// hyphens, country): the same person typed twice in a hurry, with other
    /// capitals, accents or spacing, is one signer.
    pub fn offline_identity(
        &self,
        petition_id: i64,
        full_name: &str,
        postal_code: &str,
        country: Country,
    ) -> IdentityKey {
        let mut mac = self.0.clone();
        mac.update(OFFLINE_CONTEXT);
        mac.update(&petition_id.to_be_bytes());
        mac.update(identity_name(full_name).as_bytes());
        mac.update(b"\0");
        let postal: String = postal_code
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_uppercase)
            .collect();
        mac.update(postal.as_bytes());
        mac.update(b"\0");
        mac.update(country.as_str().as_bytes());
        IdentityKey(mac.finalize().into_bytes().into())
    }
}

impl IdentityKey {
    /// The receipt of this signer's paper form: the same however often the
    /// form is imported, so an import run again (its report lost) hears
    /// `accepted` again and adds nothing. A hash of the key, so it says
    /// nothing of the key to whoever holds only receipts.
    pub fn paper_receipt(&self) -> Uuid {
        let digest = Sha256::new()
            .chain_update(b"undersigned/paper-receipt/v1\0")
            .chain_update(self.0)
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    }
}

/// A name as it identifies: compatibility-decomposed, accents dropped, lower
/// case, dotless and dotted i alike, anything but letters and digits a single
/// space. Only the combining diacritics of Latin, Greek and Cyrillic go: the
/// vowel signs of Indic and other scripts are letters of the name.
/// "Zoë  O'Brien-Ångström" and "zoe o brien angstrom" are one name; "Işık" and
/// "ISIK" too.
pub fn identity_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.nfkd().filter(|c| !is_diacritic(*c)) {
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            for l in c.to_lowercase() {
                out.push(if l == 'ı' { 'i' } else { l });
            }
        } else {
            gap = true;
        }
    }
    out
}

/// The combining diacritical marks (and their supplements and extensions).
/// Arabic harakat and Hebrew niqqud too: vowel marks most writers leave out.
fn is_diacritic(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}'
        | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0591}'..='\u{05C7}')
}

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmation_token_is_made_again_from_its_signature_and_time_alone() {
        let pepper = Pepper::new(b"0123456789abcdef0123").unwrap();
        let id = Uuid::from_u128(7);
        let token = pepper.confirmation_token(id, 1_000_000);
        assert_eq!(token, pepper.confirmation_token(id, 1_000_000));
        let hash = token.hash();
        assert_eq!(SignerToken::hashed_at(&hash), Some(1_000_000));
        // The mailer, from the row: the same link.
        let again = pepper.confirmation_token(id, SignerToken::hashed_at(&hash).unwrap());
        assert_eq!(again.encoded(), token.encoded());
        for other in [
            pepper.confirmation_token(Uuid::from_u128(8), 1_000_000),
            pepper.confirmation_token(id, 1_000_001),
            Pepper::new(b"another pepper, just as long")
                .unwrap()
                .confirmation_token(id, 1_000_000),
        ] {
            assert_ne!(other.encoded()[11..], token.encoded()[11..]);
        }
    }

    #[test]
    fn same_mailbox_same_key_per_petition() {
        let pepper = Pepper::new(b"0123456789abcdef0123").unwrap();
        let a = Email::parse("Ada.Love+x@gmail.com").unwrap();
        let b = Email::parse("adalove@googlemail.com").unwrap();
        assert_eq!(pepper.identity(1, &a), pepper.identity(1, &b));
        assert_ne!(pepper.identity(1, &a), pepper.identity(2, &a));
        let other = Pepper::new(b"another pepper, just as long").unwrap();
        assert_ne!(pepper.identity(1, &a), other.identity(1, &a));
    }

    #[test]
    fn look_alike_addresses_are_one_signer() {
        let pepper = Pepper::new(b"0123456789abcdef0123").unwrap();
        let key = |address: &str| pepper.identity(1, &Email::parse(address).unwrap());
        let ascii = key("admin@example.org");
        assert_eq!(key("\u{FF41}dmin@example.org"), ascii, "fullwidth a");
        assert_eq!(key("\u{430}dmin@example.org"), ascii, "Cyrillic a");
        assert_ne!(key("борис@example.ru"), key("boris@example.ru"));
    }

    #[test]
    fn ascii_addresses_keep_the_keys_already_stored() {
        // HMAC-SHA256 as version 1 computed it; a stored key must still match.
        let pepper = Pepper::new(b"0123456789abcdef0123").unwrap();
        let key = pepper.identity(1, &Email::parse("Ada.Lovelace+x@Example.org").unwrap());
        let hex: String = key.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "8753c6e2b61db18ec25dbac7819e12d6eeb773934e0779d075435f1f9ae80b51"
        );
    }

    #[test]
    fn vowel_signs_are_part_of_a_name() {
        // Devanagari: राम (Ram) and रम (Ram without its long vowel) differ.
        assert_ne!(identity_name("राम"), identity_name("रम"));
        assert_eq!(identity_name("Ångström"), "angstrom");
        // Arabic with and without its short vowels is one name: مُحَمَّد, محمد.
        assert_eq!(identity_name("مُحَمَّد"), identity_name("محمد"));
    }

    #[test]
    fn names_identify_whatever_their_spelling() {
        assert_eq!(
            identity_name("Zoë  O'Brien-Ångström"),
            "zoe o brien angstrom"
        );
        assert_eq!(identity_name("Işık"), identity_name("ISIK"));
        assert_eq!(identity_name("İlkay"), "ilkay");
        assert_eq!(identity_name("Мария Иванова"), "мария иванова");
        assert_eq!(identity_name("Leyla Məmmədova"), "leyla məmmədova");
        let pepper = Pepper::new(b"0123456789abcdef0123").unwrap();
        let nl = Country::parse("NL").unwrap();
        let a = pepper.offline_identity(1, "Zoë Ångström", "1012 ab", nl);
        assert_eq!(a, pepper.offline_identity(1, "ZOE angstrom", "1012AB", nl));
        assert_ne!(a, pepper.offline_identity(1, "Zoë Ångström", "1013 AB", nl));
        assert_ne!(
            a,
            pepper.offline_identity(1, "Zoë Ångström", "1012 AB", Country::parse("BE").unwrap())
        );
        assert_ne!(a, pepper.offline_identity(2, "Zoë Ångström", "1012 AB", nl));
    }

    #[test]
    fn refuses_short_peppers() {
        assert!(Pepper::new(b"short").is_none());
    }
}
