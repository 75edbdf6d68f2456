//! What a petition says, in each of its languages, and to whom it is addressed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::FieldErrors;
use crate::locale::{matching, negotiate};
use crate::{Country, FieldError, Locale, LongText, Text};

const TITLE_MAX: usize = 200;
const TEXT_MAX: usize = 20_000;
/// The short call to action a form shows above its button.
const ASK_MAX: usize = 300;
const TRANSLATIONS_MAX: usize = 200;
const TARGETS_MAX: usize = 100;
const TARGET_NAME_MAX: usize = 200;
const CONTACT_MAX: usize = 300;

pub fn parse_title(s: &str) -> Result<Text, &'static str> {
    Text::parse(s, TITLE_MAX)
}

pub fn parse_text(s: &str) -> Result<LongText, &'static str> {
    LongText::parse(s, TEXT_MAX)
}

pub fn parse_ask(s: &str) -> Result<Text, &'static str> {
    Text::parse(s, ASK_MAX)
}

/// A petition's words in one language, every one checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wording {
    pub title: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<String>,
}

/// A wording as it arrives: `title` and `text` required, `ask` optional.
#[derive(Debug, Clone, Default)]
pub struct WordingInput {
    pub title: Option<String>,
    pub text: Option<String>,
    pub ask: Option<String>,
}

impl Wording {
    pub fn parse(input: WordingInput) -> Result<Self, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let title = errors.check("title", parse_title(input.title.as_deref().unwrap_or("")));
        let text = errors.check("text", parse_text(input.text.as_deref().unwrap_or("")));
        let ask = input
            .ask
            .as_deref()
            .filter(|a| !a.trim().is_empty())
            .and_then(|a| errors.check("ask", parse_ask(a)));
        match (title, text) {
            (Some(title), Some(text)) if errors.0.is_empty() => Ok(Self {
                title: title.into_string(),
                text: text.into_string(),
                ask: ask.map(Text::into_string),
            }),
            _ => Err(errors.0),
        }
    }
}

/// A petition's words in its default locale and in each of its translations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wordings {
    /// The default locale: served when no translation matches the reader.
    pub locale: String,
    pub default: Wording,
    /// Keyed by locale, never the default one.
    pub translations: BTreeMap<String, Wording>,
}

/// Translations to set (a wording) or to remove (`None`), by locale as sent.
pub type TranslationChanges = Vec<(String, Option<WordingInput>)>;

impl Wordings {
    /// Every locale the petition speaks, the default first.
    pub fn locales(&self) -> Vec<&str> {
        std::iter::once(self.locale.as_str())
            .chain(self.translations.keys().map(String::as_str))
            .collect()
    }

    /// The locale and wording that best serve a reader asking for `wanted`
    /// (best first); the default when no translation matches.
    pub fn pick(&self, wanted: &[Locale]) -> (&str, &Wording) {
        let locales = self.locales();
        match negotiate(wanted, &locales).and_then(|l| self.translations.get_key_value(l)) {
            Some((locale, wording)) => (locale, wording),
            None => (&self.locale, &self.default),
        }
    }

    /// The locale and wording that match `wanted`, with no fallback: what an
    /// explicit choice (an export's `locale`) asks for.
    pub fn find(&self, wanted: &Locale) -> Option<(&str, &Wording)> {
        if wanted.as_str() == self.locale {
            return Some((&self.locale, &self.default));
        }
        if let Some((l, w)) = self.translations.get_key_value(wanted.as_str()) {
            return Some((l.as_str(), w));
        }
        let locales = self.locales();
        let found = matching(std::slice::from_ref(wanted), &locales)?;
        if found == self.locale {
            return Some((&self.locale, &self.default));
        }
        self.translations
            .get_key_value(found)
            .map(|(l, w)| (l.as_str(), w))
    }

    /// Applies `changes` to the translations; errors name
    /// `translations.<locale>.<field>`.
    pub fn change_translations(
        &mut self,
        changes: TranslationChanges,
    ) -> Result<(), Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let mut seen = Vec::new();
        for (tag, change) in changes {
            let Ok(locale) = Locale::parse(&tag) else {
                errors
                    .0
                    .push(FieldError::new("translations", "invalid_locale"));
                continue;
            };
            let at = format!("translations.{}", locale.as_str());
            if locale.as_str() == self.locale {
                errors.0.push(FieldError::new(at, "is_the_default_locale"));
                continue;
            }
            if seen.contains(&locale) {
                errors.0.push(FieldError::new(at, "duplicate"));
                continue;
            }
            seen.push(locale.clone());
            match change {
                None => {
                    self.translations.remove(locale.as_str());
                }
                Some(input) => {
                    if let Some(wording) = errors.nested(&at, Wording::parse(input)) {
                        self.translations
                            .insert(locale.as_str().to_owned(), wording);
                    }
                }
            }
        }
        if self.translations.len() > TRANSLATIONS_MAX {
            errors.0.push(FieldError::new("translations", "too_many"));
        }
        if errors.0.is_empty() {
            Ok(())
        } else {
            Err(errors.0)
        }
    }
}

/// Whom a petition is addressed to: a parliament, a ministry, an international
/// organization (which has no country).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    #[serde(default)]
    pub country: Option<String>,
    /// How to reach it: an office's address, e-mail or web page.
    #[serde(default)]
    pub contact: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct TargetInput {
    pub name: Option<String>,
    pub country: Option<String>,
    pub contact: Option<String>,
}

impl Target {
    pub fn parse(input: TargetInput) -> Result<Self, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let present = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let name = errors.check(
            "name",
            Text::parse(input.name.as_deref().unwrap_or(""), TARGET_NAME_MAX),
        );
        let country = present(input.country)
            .and_then(|c| errors.check("country", Country::parse(&c).ok_or("unknown_country")));
        let contact = present(input.contact)
            .and_then(|c| errors.check("contact", Text::parse(&c, CONTACT_MAX)));
        match name {
            Some(name) if errors.0.is_empty() => Ok(Self {
                name: name.into_string(),
                country: country.map(|c| c.as_str().to_owned()),
                contact: contact.map(Text::into_string),
            }),
            _ => Err(errors.0),
        }
    }

    /// A whole list, in order; errors name `targets[<index>].<field>`.
    pub fn parse_list(inputs: Vec<TargetInput>) -> Result<Vec<Self>, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        if inputs.len() > TARGETS_MAX {
            return Err(vec![FieldError::new("targets", "too_many")]);
        }
        let targets: Vec<Self> = inputs
            .into_iter()
            .enumerate()
            .filter_map(|(i, t)| errors.nested(&format!("targets[{i}]"), Target::parse(t)))
            .collect();
        if errors.0.is_empty() {
            Ok(targets)
        } else {
            Err(errors.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wording(title: &str) -> WordingInput {
        WordingInput {
            title: Some(title.into()),
            text: Some(format!("{title}: the text")),
            ask: None,
        }
    }

    fn english() -> Wordings {
        Wordings {
            locale: "en".into(),
            default: Wording::parse(wording("Peace")).unwrap(),
            translations: BTreeMap::new(),
        }
    }

    #[test]
    fn translations_are_set_removed_and_checked() {
        let mut w = english();
        w.change_translations(vec![
            ("FR".into(), Some(wording("Paix"))),
            ("az-latn".into(), Some(wording("Sülh"))),
        ])
        .unwrap();
        assert_eq!(w.locales(), ["en", "az-Latn", "fr"]);
        w.change_translations(vec![("fr".into(), None)]).unwrap();
        assert_eq!(w.locales(), ["en", "az-Latn"]);

        let errors = w
            .change_translations(vec![
                ("en".into(), Some(wording("Again"))),
                ("ru".into(), Some(WordingInput::default())),
                ("de".into(), Some(wording("Frieden"))),
                ("DE".into(), Some(wording("Frieden"))),
                ("not a locale".into(), Some(wording("x"))),
            ])
            .unwrap_err();
        let got: Vec<_> = errors.iter().map(|e| (e.field.as_ref(), e.code)).collect();
        assert_eq!(
            got,
            [
                ("translations.en", "is_the_default_locale"),
                ("translations.ru.title", "required"),
                ("translations.ru.text", "required"),
                ("translations.de", "duplicate"),
                ("translations", "invalid_locale"),
            ]
        );
    }

    #[test]
    fn picks_the_best_translation_or_the_default() {
        let mut w = english();
        w.change_translations(vec![("ru".into(), Some(wording("Мир")))])
            .unwrap();
        let ru = [Locale::parse("ru-RU").unwrap()];
        assert_eq!(w.pick(&ru).0, "ru");
        assert_eq!(w.pick(&ru).1.title, "Мир");
        assert_eq!(w.pick(&[Locale::parse("ar").unwrap()]).0, "en");
        assert_eq!(w.pick(&[]).1.title, "Peace");
        // An explicit choice finds a match or nothing, never the default.
        let find = |tag: &str| w.find(&Locale::parse(tag).unwrap()).map(|(l, _)| l);
        assert_eq!(find("ru-RU"), Some("ru"));
        assert_eq!(find("en-GB"), Some("en"));
        assert_eq!(find("ar"), None);
    }

    #[test]
    fn targets_name_themselves_and_may_have_no_country() {
        let targets = Target::parse_list(vec![
            TargetInput {
                name: Some(" Tweede  Kamer ".into()),
                country: Some("nl".into()),
                contact: Some("Postbus 20018, 2500 EA Den Haag".into()),
            },
            TargetInput {
                name: Some("United Nations".into()),
                ..Default::default()
            },
        ])
        .unwrap();
        assert_eq!(targets[0].name, "Tweede Kamer");
        assert_eq!(targets[0].country.as_deref(), Some("NL"));
        assert_eq!(targets[1].country, None);
        let errors = Target::parse_list(vec![
            TargetInput {
                name: Some("ok".into()),
                ..Default::default()
            },
            TargetInput {
                country: Some("XX".into()),
                ..Default::default()
            },
        ])
        .unwrap_err();
        let got: Vec<_> = errors.iter().map(|e| (e.field.as_ref(), e.code)).collect();
        assert_eq!(
            got,
            [
                ("targets[1].name", "required"),
                ("targets[1].country", "unknown_country")
            ]
        );
    }
}
