//! Petitions as organizers create them.

use serde::{Deserialize, Serialize};

use crate::error::FieldErrors;
use crate::{FieldError, Locale, LongText, Text, WebSettings, WebSettingsInput};

/// A petition's address in URLs: lower-case letters, digits and hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let s = input.trim();
        if s.is_empty() {
            return Err("required");
        }
        if s.len() > 64 {
            return Err("too_long");
        }
        let ok = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err("invalid")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PetitionStatus {
    Draft,
    Open,
    Closed,
}

impl PetitionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "draft" => Some(Self::Draft),
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// The create request as it arrives.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewPetitionInput {
    pub slug: Option<String>,
    pub title: Option<String>,
    pub text: Option<String>,
    pub goal: Option<i64>,
    pub locale: Option<String>,
    pub web: WebSettingsInput,
}

/// Checks a changed title, text or goal the way creation does.
pub fn parse_title(s: &str) -> Result<Text, &'static str> {
    Text::parse(s, TITLE_MAX)
}

pub fn parse_text(s: &str) -> Result<LongText, &'static str> {
    LongText::parse(s, TEXT_MAX)
}

pub fn parse_goal(goal: i64) -> Result<i64, &'static str> {
    if (1..=GOAL_MAX).contains(&goal) {
        Ok(goal)
    } else {
        Err("out_of_range")
    }
}

/// A valid petition to create; it opens for signing at once.
#[derive(Debug, Clone)]
pub struct NewPetition {
    pub slug: Slug,
    pub title: Text,
    pub text: LongText,
    pub goal: i64,
    pub locale: Locale,
    pub web: WebSettings,
}

const TITLE_MAX: usize = 200;
const TEXT_MAX: usize = 20_000;
const GOAL_MAX: i64 = 1_000_000_000;

impl NewPetition {
    pub fn parse(input: NewPetitionInput) -> Result<Self, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let slug = errors.check("slug", Slug::parse(input.slug.as_deref().unwrap_or("")));
        let title = errors.check("title", parse_title(input.title.as_deref().unwrap_or("")));
        let text = errors.check("text", parse_text(input.text.as_deref().unwrap_or("")));
        let goal = errors.check("goal", input.goal.ok_or("required").and_then(parse_goal));
        let web = match WebSettings::default().apply(input.web) {
            Ok(web) => Some(web),
            Err(e) => {
                errors.0.extend(e);
                None
            }
        };
        let locale = errors.check(
            "locale",
            Locale::parse(
                input
                    .locale
                    .as_deref()
                    .filter(|l| !l.trim().is_empty())
                    .unwrap_or("en"),
            ),
        );
        match (slug, title, text, goal, locale, web) {
            (Some(slug), Some(title), Some(text), Some(goal), Some(locale), Some(web)) => {
                Ok(Self {
                    slug,
                    title,
                    text,
                    goal,
                    locale,
                    web,
                })
            }
            _ => Err(errors.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(Slug::parse("declaration-2026").is_ok());
        assert_eq!(Slug::parse("Declaration"), Err("invalid"));
        assert_eq!(Slug::parse("-x"), Err("invalid"));
        assert_eq!(Slug::parse("a/b"), Err("invalid"));
    }

    #[test]
    fn petition_defaults_to_english_and_checks_goal() {
        let p = NewPetition::parse(NewPetitionInput {
            slug: Some("x".into()),
            title: Some("T".into()),
            text: Some("Body".into()),
            goal: Some(1_000_000),
            locale: None,
            web: WebSettingsInput::default(),
        })
        .unwrap();
        assert_eq!(p.locale.as_str(), "en");
        let errors = NewPetition::parse(NewPetitionInput {
            goal: Some(0),
            ..Default::default()
        })
        .unwrap_err();
        assert!(errors.contains(&FieldError::new("goal", "out_of_range")));
        assert!(errors.contains(&FieldError::new("slug", "required")));
    }
}
