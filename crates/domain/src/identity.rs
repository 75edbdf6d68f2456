//! Identity keys: who signed, without saying who.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Email;

/// The secret behind identity keys. Without it a leaked key cannot be tested
/// against a list of known addresses.
#[derive(Clone)]
pub struct Pepper(Hmac<Sha256>);

/// HMAC-SHA256(pepper, petition, canonical email): one per signer per petition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKey(pub [u8; 32]);

/// Domain separation, so the pepper can key other hashes later without collisions.
const CONTEXT: &[u8] = b"undersigned/identity/v1\0";

impl Pepper {
    /// `None` for a pepper shorter than 16 bytes: too weak to hide a mailbox.
    pub fn new(secret: &[u8]) -> Option<Self> {
        if secret.len() < 16 {
            return None;
        }
        Hmac::<Sha256>::new_from_slice(secret).ok().map(Self)
    }

    pub fn identity(&self, petition_id: i64, email: &Email) -> IdentityKey {
        // Cloning the keyed state skips re-deriving the HMAC key for every signature.
        let mut mac = self.0.clone();
        mac.update(CONTEXT);
        mac.update(&petition_id.to_be_bytes());
        mac.update(email.canonical().as_bytes());
        IdentityKey(mac.finalize().into_bytes().into())
    }
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
    fn refuses_short_peppers() {
        assert!(Pepper::new(b"short").is_none());
    }
}
