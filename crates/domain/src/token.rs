//! The tokens emailed to signers (to confirm a signature, later to withdraw
//! it): 128 bits nobody can guess, never stored; only a hash of each is.
//!
//! A withdrawal token is the 128 bits alone, written as 22 URL-safe base64
//! characters, and stored as their SHA-256. A confirmation token, made on
//! the signature path thousands of times a second, starts with the time it
//! was made (8 bytes, microseconds since 1970, big-endian) before its 128
//! random bits: 32 characters. It is stored as that time followed by the
//! SHA-256 of the whole, so that the index of stored tokens grows at its
//! right edge, as the signatures' own do, rather than at a random page for
//! every signature (random inserts into that index cost the signature path
//! about a tenth of its rate, benches/BENCHMARKS.md). The time tells whoever
//! holds the link when it was sent, which its message already says.
//! Confirmation tokens sent before (22 characters) still read back, and
//! their hashes are found in the same index.
//!
//! A withdrawal token's bits are drawn at random. A confirmation token's are
//! the pepper's HMAC of its signature and time ([`crate::Pepper::confirmation_token`]),
//! so that the mailer makes the link again from the signature's row when it
//! sends it: the signature path queues no message and no token (the outbox
//! row per signature cost the path most of what confirming by email cost
//! it, benches/BENCHMARKS.md), and the token waits nowhere in clear.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

#[derive(Clone, PartialEq, Eq)]
pub struct SignerToken {
    /// When it was made, for a confirmation token; none for a withdrawal
    /// token (or a confirmation token of the first form).
    made: Option<[u8; 8]>,
    random: [u8; 16],
}

impl SignerToken {
    /// A token from 16 random bytes (the caller draws them from a CSPRNG).
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self {
            made: None,
            random: bytes,
        }
    }

    /// A confirmation token made at `micros` (microseconds since 1970) from
    /// 16 random bytes.
    pub fn ordered(micros: u64, bytes: [u8; 16]) -> Self {
        Self {
            made: Some(micros.to_be_bytes()),
            random: bytes,
        }
    }

    /// A token as written in a link; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 22 && text.len() != 32 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        match bytes.len() {
            16 => Some(Self::from_random(bytes.try_into().ok()?)),
            24 => Some(Self {
                made: Some(bytes[..8].try_into().ok()?),
                random: bytes[8..].try_into().ok()?,
            }),
            _ => None,
        }
    }

    /// When the confirmation token stored as `hash` was made (microseconds
    /// since 1970); `None` for a hash of a token without its time.
    pub fn hashed_at(hash: &[u8]) -> Option<u64> {
        if hash.len() != 40 {
            return None;
        }
        Some(u64::from_be_bytes(hash[..8].try_into().ok()?))
    }

    /// As written in a link.
    pub fn encoded(&self) -> String {
        match &self.made {
            None => URL_SAFE_NO_PAD.encode(self.random),
            Some(made) => URL_SAFE_NO_PAD.encode([&made[..], &self.random[..]].concat()),
        }
    }

    /// What is stored in its place: 32 bytes, or 40 for a token with its
    /// time in front.
    pub fn hash(&self) -> Vec<u8> {
        match &self.made {
            None => Sha256::digest(self.random).to_vec(),
            Some(made) => {
                let digest = Sha256::new()
                    .chain_update(made)
                    .chain_update(self.random)
                    .finalize();
                [&made[..], &digest[..]].concat()
            }
        }
    }
}

/// Never shows the token itself.
impl std::fmt::Debug for SignerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignerToken(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::SignerToken;

    #[test]
    fn a_token_reads_back_from_its_link_and_nothing_else_does() {
        let token = SignerToken::from_random([7; 16]);
        let written = token.encoded();
        assert_eq!(written.len(), 22);
        assert_eq!(SignerToken::parse(&written), Some(token.clone()));
        assert_eq!(token.hash().len(), 32);
        assert_ne!(token.hash(), SignerToken::from_random([8; 16]).hash());
        for bad in [
            "",
            "short",
            &format!("{written}A"),
            "!!!!!!!!!!!!!!!!!!!!!!",
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert_eq!(SignerToken::parse(bad), None, "{bad}");
        }
        assert_eq!(format!("{token:?}"), "SignerToken(…)");
    }

    #[test]
    fn a_confirmation_token_keeps_its_time_in_front_of_its_hash() {
        let early = SignerToken::ordered(1_000_000, [7; 16]);
        let late = SignerToken::ordered(2_000_000, [1; 16]);
        let written = early.encoded();
        assert_eq!(written.len(), 32);
        assert_eq!(SignerToken::parse(&written), Some(early.clone()));
        let (a, b) = (early.hash(), late.hash());
        assert_eq!(a.len(), 40);
        assert_eq!(a[..8], 1_000_000u64.to_be_bytes());
        // Stored in the order they were made, whatever their random part.
        assert!(a < b);
        // The hash covers the time: another time, another hash.
        assert_ne!(a[8..], SignerToken::ordered(1_000_001, [7; 16]).hash()[8..]);
        assert_ne!(a, SignerToken::from_random([7; 16]).hash());
    }
}
