//! Petitions as organizers create them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::FieldErrors;
use crate::wording::{Target, TargetInput, TranslationChanges, Wording, WordingInput, Wordings};
use crate::{FieldError, Locale, SignerRules, WebSettings, WebSettingsInput};

/// A petition's address in URLs: lower-case letters, digits and hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let s = input.trim();
        Self::check(s).map(|()| Self(s.to_owned()))
    }

    /// Whether `s`, as it is (untrimmed), is a slug: what [`Slug::parse`]
    /// checks, without making one. For a path's segment on every request.
    pub fn is_valid(s: &str) -> bool {
        Self::check(s).is_ok()
    }

    fn check(s: &str) -> Result<(), &'static str> {
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
        if ok { Ok(()) } else { Err("invalid") }
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

/// When a petition takes signatures: from `opens_at`, until `closes_at`
/// (either open-ended), and only while its status is `open`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Window {
    pub opens_at: Option<DateTime<Utc>>,
    pub closes_at: Option<DateTime<Utc>>,
}

/// Why a petition does not take a signature now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSigning {
    /// Its status is not `open`.
    NotOpen,
    /// Before its opening time.
    NotYet,
    /// At or after its closing time.
    Closed,
}

impl Window {
    /// Checks the order of the two times; `field` names the one reported.
    pub fn new(
        opens_at: Option<DateTime<Utc>>,
        closes_at: Option<DateTime<Utc>>,
    ) -> Result<Self, &'static str> {
        match (opens_at, closes_at) {
            (Some(o), Some(c)) if o >= c => Err("before_opening"),
            _ => Ok(Self {
                opens_at,
                closes_at,
            }),
        }
    }

    pub fn check(&self, status: PetitionStatus, now: DateTime<Utc>) -> Result<(), NotSigning> {
        if status != PetitionStatus::Open {
            return Err(NotSigning::NotOpen);
        }
        if self.opens_at.is_some_and(|o| now < o) {
            return Err(NotSigning::NotYet);
        }
        if self.closes_at.is_some_and(|c| now >= c) {
            return Err(NotSigning::Closed);
        }
        Ok(())
    }
}

/// An RFC 3339 time, for a field, to the microsecond (as Postgres keeps it).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, &'static str> {
    use chrono::SubsecRound;
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
        .map_err(|_| "invalid")
}

/// The create request as it arrives.
#[derive(Debug, Clone, Default)]
pub struct NewPetitionInput {
    pub slug: Option<String>,
    /// The wording in the default locale.
    pub wording: WordingInput,
    pub locale: Option<String>,
    pub translations: TranslationChanges,
    pub goal: Option<i64>,
    pub status: Option<String>,
    pub opens_at: Option<String>,
    pub closes_at: Option<String>,
    pub targets: Vec<TargetInput>,
    pub required_fields: Vec<String>,
    pub organizations_may_sign: Option<bool>,
    pub email_optional_offline: Option<bool>,
    pub web: WebSettingsInput,
    /// `sealing_key`: `age` recipients, when the petition is sealed.
    pub sealing: Option<Vec<String>>,
    /// `retention_days`: absent (`None`) for the default, `null` (`Some(None)`)
    /// to keep signers' data for as long as the petition is kept.
    pub retention_days: Option<Option<i64>>,
    /// `milestones`: counts announced to webhooks once each when reached.
    pub milestones: Option<Vec<i64>>,
}

pub fn parse_goal(goal: i64) -> Result<i64, &'static str> {
    if (1..=GOAL_MAX).contains(&goal) {
        Ok(goal)
    } else {
        Err("out_of_range")
    }
}

pub fn parse_status(s: &str) -> Result<PetitionStatus, &'static str> {
    PetitionStatus::parse(s.trim()).ok_or("invalid")
}

/// A valid petition to create.
#[derive(Debug, Clone)]
pub struct NewPetition {
    pub slug: Slug,
    pub wordings: Wordings,
    pub goal: i64,
    pub status: PetitionStatus,
    pub window: Window,
    pub targets: Vec<Target>,
    pub signers: SignerRules,
    pub web: WebSettings,
    /// The `age` recipients signers' personal fields are sealed to; empty:
    /// kept in clear.
    pub sealing: Vec<String>,
    /// Days its signers' personal fields are kept after it closes; `None`:
    /// kept as long as the petition.
    pub retention_days: Option<i32>,
    /// Counts announced once each when the count reaches them, ascending.
    pub milestones: Vec<i64>,
}

/// Milestones one petition may have.
pub const MILESTONES_MAX: usize = 32;

/// Milestones as a petition keeps them: each a count a petition may reach
/// (1 to a billion), at most 32 given (as the API's schema says, repeats
/// included), kept ascending, each once.
pub fn parse_milestones(counts: &[i64]) -> Result<Vec<i64>, &'static str> {
    if counts.len() > MILESTONES_MAX {
        return Err("too_many");
    }
    if counts.iter().any(|c| !(1..=GOAL_MAX).contains(c)) {
        return Err("out_of_range");
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    Ok(sorted)
}

/// Days a petition keeps its signers' personal fields after it closes,
/// unless it says otherwise.
pub const RETENTION_DAYS_DEFAULT: i32 = 180;
/// A hundred years: longer is "forever", which `null` says.
const RETENTION_DAYS_MAX: i64 = 36_500;

pub fn parse_retention_days(days: i64) -> Result<i32, &'static str> {
    match i32::try_from(days) {
        Ok(days) if (0..=RETENTION_DAYS_MAX).contains(&i64::from(days)) => Ok(days),
        _ => Err("out_of_range"),
    }
}

const GOAL_MAX: i64 = 1_000_000_000;

impl NewPetition {
    pub fn parse(input: NewPetitionInput) -> Result<Self, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let slug = errors.check("slug", Slug::parse(input.slug.as_deref().unwrap_or("")));
        let wording = errors.nested_here(Wording::parse(input.wording));
        let goal = errors.check("goal", input.goal.ok_or("required").and_then(parse_goal));
        let status = errors.check(
            "status",
            input
                .status
                .as_deref()
                .map_or(Ok(PetitionStatus::Open), parse_status),
        );
        let opens_at = input
            .opens_at
            .as_deref()
            .and_then(|t| errors.check("opens_at", parse_time(t)));
        let closes_at = input
            .closes_at
            .as_deref()
            .and_then(|t| errors.check("closes_at", parse_time(t)));
        let window = errors.check("closes_at", Window::new(opens_at, closes_at));
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
        let targets = errors.nested_here(Target::parse_list(input.targets));
        let required = errors.check(
            "required_fields",
            SignerRules::parse_required(&input.required_fields),
        );
        let retention_days = match input.retention_days {
            None => Some(Some(RETENTION_DAYS_DEFAULT)),
            Some(None) => Some(None),
            Some(Some(days)) => errors
                .check("retention_days", parse_retention_days(days))
                .map(Some),
        };
        let milestones = match &input.milestones {
            None => Some(Vec::new()),
            Some(counts) => errors.check("milestones", parse_milestones(counts)),
        };
        let sealing = match &input.sealing {
            None => Some(Vec::new()),
            Some(keys) => errors.check("sealing_key", undersigned_seal::parse_recipients(keys)),
        };
        let wordings = match (locale, wording) {
            (Some(locale), Some(default)) => {
                let mut wordings = Wordings {
                    locale: locale.as_str().to_owned(),
                    default,
                    translations: Default::default(),
                };
                errors
                    .nested_here(wordings.change_translations(input.translations))
                    .map(|()| wordings)
            }
            _ => None,
        };
        match (slug, wordings, goal, status, window, targets, required, web) {
            (
                Some(slug),
                Some(wordings),
                Some(goal),
                Some(status),
                Some(window),
                Some(targets),
                Some(required),
                Some(web),
            ) if errors.0.is_empty()
                && sealing.is_some()
                && retention_days.is_some()
                && milestones.is_some() =>
            {
                Ok(Self {
                    slug,
                    wordings,
                    goal,
                    status,
                    window,
                    targets,
                    signers: SignerRules {
                        required,
                        organizations_may_sign: input.organizations_may_sign.unwrap_or(true),
                        email_optional_offline: input.email_optional_offline.unwrap_or(false),
                    },
                    web,
                    sealing: sealing.unwrap_or_default(),
                    retention_days: retention_days.flatten(),
                    milestones: milestones.unwrap_or_default(),
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
    fn milestones_are_kept_ascending_once_each_and_within_bounds() {
        assert_eq!(
            parse_milestones(&[100_000, 10_000, 100_000]),
            Ok(vec![10_000, 100_000])
        );
        assert_eq!(parse_milestones(&[0]), Err("out_of_range"));
        assert_eq!(parse_milestones(&[GOAL_MAX + 1]), Err("out_of_range"));
        let many: Vec<i64> = (1..=33).collect();
        assert_eq!(parse_milestones(&many), Err("too_many"));
        assert_eq!(parse_milestones(&[5; 33]), Err("too_many"));
    }

    #[test]
    fn slugs() {
        assert!(Slug::parse("declaration-2026").is_ok());
        assert_eq!(Slug::parse("Declaration"), Err("invalid"));
        assert_eq!(Slug::parse("-x"), Err("invalid"));
        assert_eq!(Slug::parse("a/b"), Err("invalid"));
        // A path's segment is taken as it is: no trimming, unlike a field.
        assert!(Slug::parse(" declaration ").is_ok());
        assert!(!Slug::is_valid(" declaration "));
        assert!(Slug::is_valid("declaration-2026"));
        assert!(!Slug::is_valid(""));
        assert!(!Slug::is_valid(&"a".repeat(65)));
    }

    #[test]
    fn petition_defaults_to_english_and_checks_goal() {
        let p = NewPetition::parse(NewPetitionInput {
            slug: Some("x".into()),
            wording: WordingInput {
                title: Some("T".into()),
                text: Some("Body".into()),
                ask: None,
            },
            goal: Some(1_000_000),
            locale: None,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.wordings.locale, "en");
        assert_eq!(p.status, PetitionStatus::Open);
        assert!(p.signers.organizations_may_sign);
        let errors = NewPetition::parse(NewPetitionInput {
            goal: Some(0),
            ..Default::default()
        })
        .unwrap_err();
        assert!(errors.contains(&FieldError::new("goal", "out_of_range")));
        assert!(errors.contains(&FieldError::new("slug", "required")));
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    #[test]
    fn a_window_opens_and_closes() {
        let t = |s: &str| parse_time(s).unwrap();
        let w = Window::new(
            Some(t("2026-01-01T00:00:00Z")),
            Some(t("2026-02-01T00:00:00Z")),
        )
        .unwrap();
        let open = PetitionStatus::Open;
        assert_eq!(
            w.check(open, t("2025-12-31T23:59:59Z")),
            Err(NotSigning::NotYet)
        );
        assert_eq!(w.check(open, t("2026-01-15T00:00:00Z")), Ok(()));
        assert_eq!(
            w.check(open, t("2026-02-01T00:00:00Z")),
            Err(NotSigning::Closed)
        );
        assert_eq!(
            w.check(PetitionStatus::Draft, t("2026-01-15T00:00:00Z")),
            Err(NotSigning::NotOpen)
        );
        assert_eq!(
            Window::new(
                Some(t("2026-02-01T00:00:00Z")),
                Some(t("2026-01-01T00:00:00Z"))
            ),
            Err("before_opening")
        );
        assert_eq!(
            Window::default().check(open, t("2030-01-01T00:00:00Z")),
            Ok(())
        );
    }
}
