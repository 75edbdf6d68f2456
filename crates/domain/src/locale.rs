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

/// The locales a reader asks for in an `Accept-Language` header, best first
/// (RFC 9110 §12.5.4): by weight, in the header's order among equal weights;
/// a weight of 0 means "not this one"; `*` and malformed entries add nothing,
/// since the petition's default locale is the fallback anyway.
pub fn accepted_locales(header: &str) -> Vec<Locale> {
    let mut ranked: Vec<(u16, Locale)> = header
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let tag = Locale::parse(parts.next()?).ok()?;
            let weight = parts
                .find_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .map_or(Some(1000), weight)?;
            (weight > 0).then_some((weight, tag))
        })
        .collect();
    ranked.sort_by_key(|(weight, _)| std::cmp::Reverse(*weight));
    ranked.into_iter().map(|(_, tag)| tag).collect()
}

/// A weight `0` to `1` with up to three decimals, in thousandths.
fn weight(q: &str) -> Option<u16> {
    let q = q.trim();
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Which of `available` (a petition's locales, its default first) serves a
/// reader who asks for `wanted`, best first: the first wanted locale that one
/// of them matches (exactly; or `pt` for `pt-BR` and back; or another region
/// of the same language), and the default when none does.
pub fn negotiate<'a>(wanted: &[Locale], available: &[&'a str]) -> Option<&'a str> {
    let default = *available.first()?;
    Some(matching(wanted, available).unwrap_or(default))
}

/// The locale of `available` that best serves a reader asking for `wanted`,
/// as [`negotiate`] matches, or `None` when none matches.
pub fn matching<'a>(wanted: &[Locale], available: &[&'a str]) -> Option<&'a str> {
    use fluent_langneg::{LanguageIdentifier, NegotiationStrategy, negotiate_languages};
    // Tags the negotiator cannot read (`de-abc`) are never matched, but keep
    // their places: each identifier stays paired with its own tag.
    let offered: Vec<(&'a str, LanguageIdentifier)> = available
        .iter()
        .filter_map(|t| Some((*t, t.parse().ok()?)))
        .collect();
    let ids: Vec<LanguageIdentifier> = offered.iter().map(|(_, id)| id.clone()).collect();
    let requested: Vec<LanguageIdentifier> = wanted
        .iter()
        .filter_map(|l| l.as_str().parse().ok())
        .collect();
    let chosen = negotiate_languages(&requested, &ids, None, NegotiationStrategy::Lookup);
    chosen
        .first()
        .and_then(|c| offered.iter().find(|(_, id)| id == *c))
        .map(|(tag, _)| *tag)
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

    #[test]
    fn reads_accept_language_by_weight() {
        let tags = |h: &str| -> Vec<String> {
            accepted_locales(h)
                .iter()
                .map(|l| l.as_str().to_owned())
                .collect()
        };
        assert_eq!(
            tags("fr;q=0.5, az-latn , ru;q=0.8, de;q=0, *;q=0.1, ???, en;q=1.5"),
            ["az-Latn", "ru", "fr"]
        );
        assert_eq!(tags("tr, en;q=0.9"), ["tr", "en"]);
        assert!(tags("").is_empty());
    }

    #[test]
    fn negotiates_with_the_default_as_fallback() {
        let wanted = |tags: &[&str]| -> Vec<Locale> {
            tags.iter().map(|t| Locale::parse(t).unwrap()).collect()
        };
        let offered = ["en", "pt-BR", "az-Latn", "fr"];
        let pick = |tags: &[&str]| negotiate(&wanted(tags), &offered);
        assert_eq!(pick(&["fr"]), Some("fr"));
        assert_eq!(pick(&["fr-CA"]), Some("fr"));
        assert_eq!(pick(&["pt"]), Some("pt-BR"));
        assert_eq!(pick(&["pt-PT"]), Some("pt-BR"));
        assert_eq!(pick(&["az-Latn-AZ"]), Some("az-Latn"));
        assert_eq!(pick(&["de", "fr"]), Some("fr"));
        assert_eq!(pick(&["de"]), Some("en"));
        assert_eq!(pick(&[]), Some("en"));
        assert_eq!(negotiate(&wanted(&["fr"]), &[]), None);
        // A tag the negotiator cannot read neither matches nor shifts the others.
        assert_eq!(
            negotiate(&wanted(&["fr"]), &["en", "de-abc", "fr"]),
            Some("fr")
        );
        assert_eq!(
            negotiate(&wanted(&["de"]), &["en-abc1", "fr"]),
            Some("en-abc1")
        );
    }
}
