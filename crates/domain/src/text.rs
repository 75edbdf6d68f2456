//! Human-entered text: names, cities, organizations, titles and petition bodies.

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

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

/// The most combining marks one character of a name may carry. UTS #39
/// (section 5.4) suggests refusing more than four nonspacing marks in a row:
/// real names need at most three (Tibetan stacks, Hebrew dagesh, shin dot and
/// vowel), while hundreds of them draw over every row of a printed list.
const MAX_MARKS: usize = 4;

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
            // ASCII is its own NFC: a word in ASCII skips composing.
            let composed: &mut dyn Iterator<Item = char> = if word.is_ascii() {
                &mut word.chars()
            } else {
                &mut word.nfc()
            };
            for c in composed {
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

    /// A signer's or an organization's name: a [`Text`] that says something
    /// (at least one letter, not only digits, punctuation or invisible
    /// characters) and piles at most [`MAX_MARKS`] combining marks on any one
    /// character. Errors are [`Text::parse`]'s, `no_letter`, `too_many_marks`.
    pub fn parse_name(input: &str, max_chars: usize) -> Result<Self, &'static str> {
        let name = Self::parse(input, max_chars)?;
        // ASCII has no marks, and its letters are A to Z.
        if name.0.is_ascii() {
            return if name.0.bytes().any(|b| b.is_ascii_alphabetic()) {
                Ok(name)
            } else {
                Err("no_letter")
            };
        }
        if !name
            .0
            .chars()
            .any(|c| c.general_category_group() == GeneralCategoryGroup::Letter)
        {
            return Err("no_letter");
        }
        let mut marks = 0;
        for c in name.0.chars() {
            match c.general_category() {
                // Spacing marks take their own room; these draw on their base.
                GeneralCategory::NonspacingMark | GeneralCategory::EnclosingMark => marks += 1,
                // Invisible: marks after a zero-width joiner still land on one base.
                GeneralCategory::Format => {}
                _ => marks = 0,
            }
            if marks > MAX_MARKS {
                return Err("too_many_marks");
            }
        }
        Ok(name)
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

    /// ASCII takes a shorter way (no composing, no category lookups) to the
    /// same answers.
    #[test]
    fn ascii_is_read_as_any_text() {
        assert_eq!(
            Text::parse(" Ana\x0B\x0CLima\r\n ", 200).unwrap().as_str(),
            "Ana Lima"
        );
        for control in ['\0', '\x08', '\x0E', '\x1F', '\x7F'] {
            assert_eq!(
                Text::parse(&format!("a{control}b"), 200),
                Err("invalid_characters"),
                "{control:?}"
            );
        }
        assert_eq!(Text::parse_name("1234 -- !", 200), Err("no_letter"));
        assert_eq!(Text::parse_name("Ana 2", 200).unwrap().as_str(), "Ana 2");
        // Mixed: an ASCII word beside one that composes.
        assert_eq!(
            Text::parse_name("Jose\u{301} Lima", 200).unwrap().as_str(),
            "José Lima"
        );
        assert_eq!(
            Text::parse_name("e\u{301}\u{301}\u{301}\u{301}\u{301}\u{301} x", 200),
            Err("too_many_marks")
        );
    }

    #[test]
    fn names_of_every_script_pass() {
        for name in [
            "Nguye\u{302}\u{303}n Thi\u{323} Minh Khai", // Vietnamese, typed decomposed
            "Nguyễn Thị Hương",
            "مُحَمَّد بْنُ عَبْدِ ٱللَّٰهِ", // Arabic with harakat
            "مهرداد\u{200C}ی",  // Persian, with a zero-width non-joiner
            "שְׁלֹמֹה יִצְחָק",        // Hebrew with niqqud
            "יִשַּׁי",              // shin: its dot, a dagesh and a vowel
            "श्रीनिवास रामानुजन्", // Devanagari: vowel signs, viramas
            "ज़्\u{200D}यादा",    // nukta, virama and a zero-width joiner
            "রবীন্দ্রনাথ ঠাকুর",     // Bengali
            "கிருஷ்ணமூர்த்தி",     // Tamil
            "ภูมิพลอดุลยเดช",      // Thai
            "ที่รัก",              // Thai: a vowel and a tone mark
            "བསྟན་འཛིན་རྒྱ་མཚོ",     // Tibetan stacks
            "སྒྲོལ་མ",
            "အောင်ဆန်းစုကြည်", // Burmese
            "Ильхам Алиев",
            "李小龍",
            "Friends of the Earth",
            "X Æ A-12",
        ] {
            assert!(Text::parse_name(name, 200).is_ok(), "{name}");
        }
    }

    #[test]
    fn names_need_a_letter() {
        for nothing in [
            "\u{200B}",
            "\u{200E}\u{061C}",
            "\u{FEFF}\u{200B}\u{200D}",
            "\u{E0041}\u{E0042}\u{E007F}",
            "\u{301}\u{302}",
            "12345",
            "- . -",
            "\u{1F600}",
        ] {
            assert_eq!(
                Text::parse_name(nothing, 200),
                Err("no_letter"),
                "{nothing:?}"
            );
        }
        assert_eq!(Text::parse_name(" ", 200), Err("required"));
        assert!(Text::parse_name("\u{200B}Ana\u{200B}", 200).is_ok());
    }

    #[test]
    fn names_carry_few_marks_on_one_character() {
        let zalgo = format!("a{}", "\u{301}".repeat(199));
        assert_eq!(Text::parse_name(&zalgo, 200), Err("too_many_marks"));
        let five = "q\u{300}\u{301}\u{302}\u{303}\u{304}";
        assert_eq!(Text::parse_name(five, 200), Err("too_many_marks"));
        assert!(Text::parse_name("q\u{300}\u{301}\u{302}\u{303}", 200).is_ok());
        // Marks are counted once composed: `a` and a grave accent are one `à`.
        assert!(Text::parse_name("a\u{300}\u{301}\u{302}\u{303}\u{304}", 200).is_ok());
        // Enclosing marks draw over their base too.
        assert_eq!(
            Text::parse_name(&format!("a{}", "\u{20DD}".repeat(5)), 200),
            Err("too_many_marks")
        );
        // Invisible characters between the marks do not give them a new base.
        let hidden = format!("q{}", "\u{301}\u{200D}".repeat(5));
        assert_eq!(Text::parse_name(&hidden, 200), Err("too_many_marks"));
        // Four marks on each of many characters is still a name.
        let many = "q\u{300}\u{301}\u{302}\u{303}".repeat(20);
        assert!(Text::parse_name(&many, 200).is_ok());
    }

    #[test]
    fn long_text_keeps_lines() {
        let t = LongText::parse("First line.\r\n\r\nSecond\tline. ", 100).unwrap();
        assert_eq!(t.as_str(), "First line.\n\nSecond\tline.");
        assert_eq!(LongText::parse("bell\u{7}", 100), Err("invalid_characters"));
    }
}
