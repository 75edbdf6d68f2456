//! The tokens emailed to signers (to confirm a signature, later to withdraw
//! it): 128 random bits, written as 22 URL-safe base64 characters. Only their
//! SHA-256 is ever stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

#[derive(Clone, PartialEq, Eq)]
pub struct SignerToken([u8; 16]);

impl SignerToken {
    /// A token from 16 random bytes (the caller draws them from a CSPRNG).
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// A token as written in a link; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 22 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// As written in a link.
    pub fn encoded(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// What is stored in its place.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0).into()
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
        assert_ne!(token.hash(), SignerToken::from_random([8; 16]).hash());
        for bad in [
            "",
            "short",
            &format!("{written}A"),
            "!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert_eq!(SignerToken::parse(bad), None, "{bad}");
        }
        assert_eq!(format!("{token:?}"), "SignerToken(…)");
    }
}
