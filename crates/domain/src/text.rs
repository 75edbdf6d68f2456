//! Human-entered text: names, cities, organizations, titles and petition bodies.

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

/// A one-line text: Unicode NFC, trimmed, inner white space collapsed to one space,
/// no control or bidirectional-override characters, within a length in characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Text(String);

/// A multi-line text (a petition's body): NFC, trimmed, line breaks kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LongText(String);

/// Characters that can make a name render as something else (RLO and friends);
/// zero-width joiners stay allowed, Persian and Arabic names need them.
fn is_forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl Text {
    /// Errors are codes: `required`, `too_long`, `invalid_characters`.
    pub fn parse(input: &str, max_chars: usize) -> Result<Self, &'static str> {
        let mut out = String::with_capacity(input.len());
        let mut chars = 0usize;
        for word in input.split(char::is_whitespace).filter(|w| !w.is_empty()) {
            if !out.is_empty() {
                out.push(' ');
                chars += 1;
            }
            for c in word.nfc() {
                if is_forbidden(c) {
                    return Err("invalid_characters");
                }
                out.push(c);
                chars += 1;
            }
        }
        match chars {
            0 => Err("required"),
            n if n > max_chars => Err("too_long"),
            _ => Ok(Self(out)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl LongText {
    /// Like [`Text::parse`] but keeps line breaks and tabs.
    pub fn parse(input: &str, max_chars: usize) -> Result<Self, &'static str> {
        let normalized: String = input.trim().replace("\r\n", "\n").nfc().collect();
        if normalized
            .chars()
            .any(|c| c != '\n' && c != '\t' && is_forbidden(c))
        {
            return Err("invalid_characters");
        }
        match normalized.chars().count() {
            0 => Err("required"),
            n if n > max_chars => Err("too_long"),
            _ => Ok(Self(normalized)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_white_space_and_composes() {
        let decomposed = "  Jose\u{301}   Mari\u{301}a\tGo\u{301}mez ";
        assert_eq!(
            Text::parse(decomposed, 200).unwrap().as_str(),
            "José María Gómez"
        );
        assert_eq!(
            Text::parse("Ильхам\u{00A0}Əliyev", 200).unwrap().as_str(),
            "Ильхам Əliyev"
        );
    }

    #[test]
    fn refuses_empty_long_and_control() {
        assert_eq!(Text::parse(" \t ", 200), Err("required"));
        assert_eq!(Text::parse(&"a".repeat(201), 200), Err("too_long"));
        assert!(Text::parse(&"ş".repeat(200), 200).is_ok());
        assert_eq!(Text::parse("a\u{0007}b", 200), Err("invalid_characters"));
        assert_eq!(
            Text::parse("evil\u{202E}gnp", 200),
            Err("invalid_characters")
        );
        assert!(Text::parse("مهرداد\u{200C}ی", 200).is_ok());
    }

    #[test]
    fn long_text_keeps_lines() {
        let t = LongText::parse("First line.\r\n\r\nSecond\tline. ", 100).unwrap();
        assert_eq!(t.as_str(), "First line.\n\nSecond\tline.");
        assert_eq!(LongText::parse("bell\u{7}", 100), Err("invalid_characters"));
    }
}
