//! Locales as simple BCP 47 tags (`en`, `pt-BR`, `az-Latn`).

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Locale(String);

impl Locale {
    /// Normalizes case the BCP 47 way: language lower, script title, region upper.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let input = input.trim();
        if input.is_empty() {
            return Err("required");
        }
        if input.len() > 35 {
            return Err("too_long");
        }
        let mut parts = input.split(['-', '_']);
        let language = parts.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err("invalid");
        }
        let mut tag = language.to_ascii_lowercase();
        for sub in parts {
            if !(2..=8).contains(&sub.len()) || !sub.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err("invalid");
            }
            tag.push('-');
            match sub.len() {
                2 => tag.push_str(&sub.to_ascii_uppercase()),
                4 => {
                    tag.push_str(&sub[..1].to_ascii_uppercase());
                    tag.push_str(&sub[1..].to_ascii_lowercase());
                }
                _ => tag.push_str(&sub.to_ascii_lowercase()),
            }
        }
        Ok(Self(tag))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case() {
        assert_eq!(Locale::parse("PT_br").unwrap().as_str(), "pt-BR");
        assert_eq!(Locale::parse("az-latn").unwrap().as_str(), "az-Latn");
        assert_eq!(Locale::parse("x"), Err("invalid"));
        assert_eq!(Locale::parse("en-"), Err("invalid"));
    }
}
