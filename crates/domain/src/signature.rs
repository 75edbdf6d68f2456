//! A signature as a signer sends it, and as it is once parsed.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::FieldErrors;
use crate::{Country, Email, FieldError, Locale, Text};

/// Fields as they arrive from a JSON body or an HTML form, before any checking.
/// Empty strings count as absent: an HTML form sends every input, filled or not.
#[derive(Debug, Clone, Default)]
pub struct SignatureInput {
    pub full_name: Option<String>,
    pub email: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub signer_kind: Option<String>,
    pub organization: Option<String>,
    pub consent_updates: Option<String>,
    pub locale: Option<String>,
    pub id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignerKind {
    Person,
    Organization,
}

impl SignerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Organization => "organization",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "person" => Some(Self::Person),
            "organization" => Some(Self::Organization),
            _ => None,
        }
    }
}

/// A signer field a petition may require beyond name, e-mail and country.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignerField {
    PostalCode,
    City,
}

impl SignerField {
    pub const ALL: [Self; 2] = [Self::PostalCode, Self::City];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PostalCode => "postal_code",
            Self::City => "city",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s.trim())
    }
}

/// What a petition asks of its signers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerRules {
    /// Sorted, each once.
    pub required: Vec<SignerField>,
    /// Whether organizations (`signer_kind: organization`) may sign.
    pub organizations_may_sign: bool,
    /// Whether signatures collected offline (on event tablets, on paper) may
    /// leave out the e-mail address; they then need a postal code.
    pub email_optional_offline: bool,
}

impl Default for SignerRules {
    fn default() -> Self {
        Self {
            required: Vec::new(),
            organizations_may_sign: true,
            email_optional_offline: false,
        }
    }
}

impl SignerRules {
    /// Field names as sent; code `unknown_field` for one that cannot be required.
    pub fn parse_required(names: &[String]) -> Result<Vec<SignerField>, &'static str> {
        let mut fields = names
            .iter()
            .map(|n| SignerField::parse(n).ok_or("unknown_field"))
            .collect::<Result<Vec<_>, _>>()?;
        fields.sort();
        fields.dedup();
        Ok(fields)
    }

    fn requires(&self, field: SignerField) -> bool {
        self.required.contains(&field)
    }
}

/// How a signature reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    Event,
    Paper,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Event => "event",
            Self::Paper => "paper",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "web" => Some(Self::Web),
            "event" => Some(Self::Event),
            "paper" => Some(Self::Paper),
            _ => None,
        }
    }
}

/// A valid signature, every field normalized.
#[derive(Debug, Clone)]
pub struct Signature {
    /// The client's own UUID for safe retries, when it sent one.
    pub client_id: Option<Uuid>,
    pub full_name: Text,
    /// Always present online; offline only when the petition allows leaving it out.
    pub email: Option<Email>,
    pub country: Country,
    pub postal_code: Option<String>,
    pub city: Option<Text>,
    pub kind: SignerKind,
    pub organization: Option<Text>,
    pub consent_updates: bool,
    pub locale: Option<Locale>,
}

const NAME_MAX: usize = 200;
const CITY_MAX: usize = 100;
const POSTAL_MAX: usize = 16;

impl Signature {
    /// Checks every field, and what the petition's `rules` ask, and reports
    /// all that are wrong at once.
    pub fn parse(input: SignatureInput, rules: &SignerRules) -> Result<Self, Vec<FieldError>> {
        Self::parse_with(input, rules, false)
    }

    /// As [`Signature::parse`], for a signature collected offline (an event's
    /// tablet, a paper form): where the petition allows it, the e-mail address
    /// may be left out, and the postal code then becomes required, since the
    /// signer's identity is their name, postal code and country.
    pub fn parse_offline(
        input: SignatureInput,
        rules: &SignerRules,
    ) -> Result<Self, Vec<FieldError>> {
        Self::parse_with(input, rules, rules.email_optional_offline)
    }

    fn parse_with(
        input: SignatureInput,
        rules: &SignerRules,
        email_optional: bool,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = FieldErrors::default();
        let present = |v: Option<String>| v.filter(|s| !s.trim().is_empty());

        let full_name = errors.check(
            "full_name",
            Text::parse_name(input.full_name.as_deref().unwrap_or(""), NAME_MAX),
        );
        let email_given = input.email.as_deref().is_some_and(|e| !e.trim().is_empty());
        let email = errors.check(
            "email",
            match input.email.as_deref() {
                _ if !email_given && email_optional => Ok(None),
                given => Email::parse(given.unwrap_or("")).map(Some),
            },
        );
        let country = errors.check(
            "country",
            match present(input.country) {
                None => Err("required"),
                Some(c) => Country::parse(&c).ok_or("unknown_country"),
            },
        );
        let required = |field, value: Option<String>| match value {
            None if rules.requires(field) => Err("required"),
            // Without an e-mail address, the postal code is part of who signed.
            None if field == SignerField::PostalCode && matches!(email, Some(None)) => {
                Err("required_without_email")
            }
            value => Ok(value),
        };
        let postal_code = errors
            .check(
                "postal_code",
                required(SignerField::PostalCode, present(input.postal_code))
                    .and_then(|p| p.map(|p| parse_postal_code(&p)).transpose()),
            )
            .flatten();
        let city = errors
            .check(
                "city",
                required(SignerField::City, present(input.city))
                    .and_then(|c| c.map(|c| Text::parse(&c, CITY_MAX)).transpose()),
            )
            .flatten();
        let kind = errors.check(
            "signer_kind",
            match present(input.signer_kind) {
                None => Ok(SignerKind::Person),
                Some(k) => match SignerKind::parse(k.trim()) {
                    Some(SignerKind::Organization) if !rules.organizations_may_sign => {
                        Err("not_accepted")
                    }
                    Some(kind) => Ok(kind),
                    None => Err("invalid"),
                },
            },
        );
        let organization = errors
            .check(
                "organization",
                match (present(input.organization), kind) {
                    (None, Some(SignerKind::Organization)) => Err("required"),
                    (None, _) => Ok(None),
                    (Some(o), _) => Text::parse_name(&o, NAME_MAX).map(Some),
                },
            )
            .flatten();
        let consent_updates = errors.check(
            "consent_updates",
            parse_bool(input.consent_updates.as_deref().unwrap_or("")),
        );
        let locale = errors
            .check(
                "locale",
                present(input.locale).map(|l| Locale::parse(&l)).transpose(),
            )
            .flatten();
        let client_id = errors
            .check(
                "id",
                present(input.id)
                    .map(|id| Uuid::parse_str(id.trim()).map_err(|_| "invalid"))
                    .transpose(),
            )
            .flatten();

        match (full_name, email, country, kind, consent_updates) {
            (Some(full_name), Some(email), Some(country), Some(kind), Some(consent_updates))
                if errors.0.is_empty() =>
            {
                Ok(Self {
                    client_id,
                    full_name,
                    email,
                    country,
                    postal_code,
                    city,
                    kind,
                    organization,
                    consent_updates,
                    locale,
                })
            }
            _ => Err(errors.0),
        }
    }
}

/// Upper case, single spaces; letters, digits, spaces and hyphens only.
fn parse_postal_code(input: &str) -> Result<String, &'static str> {
    let code = input
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase();
    if code.chars().count() > POSTAL_MAX {
        return Err("too_long");
    }
    if !code
        .chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || c == '-')
    {
        return Err("invalid");
    }
    Ok(code)
}

/// JSON booleans arrive as "true"/"false"; an HTML checkbox sends "on" or nothing.
fn parse_bool(input: &str) -> Result<bool, &'static str> {
    match input.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "off" | "no" => Ok(false),
        "true" | "1" | "on" | "yes" => Ok(true),
        _ => Err("invalid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SignatureInput {
        SignatureInput {
            full_name: Some("Leyla Məmmədova".into()),
            email: Some("leyla@example.az".into()),
            country: Some("az".into()),
            ..Default::default()
        }
    }

    #[test]
    fn parses_a_minimal_signature() {
        let s = Signature::parse(input(), &SignerRules::default()).unwrap();
        assert_eq!(s.country.as_str(), "AZ");
        assert_eq!(s.kind, SignerKind::Person);
        assert!(!s.consent_updates);
        assert!(s.client_id.is_none());
    }

    #[test]
    fn reports_every_bad_field() {
        let errors = Signature::parse(
            SignatureInput {
                full_name: Some("".into()),
                email: Some("nope".into()),
                country: Some("ZZ".into()),
                signer_kind: Some("organization".into()),
                consent_updates: Some("maybe".into()),
                id: Some("not-a-uuid".into()),
                postal_code: Some("12$45".into()),
                ..Default::default()
            },
            &SignerRules::default(),
        )
        .unwrap_err();
        let got: Vec<_> = errors.iter().map(|e| (e.field.as_ref(), e.code)).collect();
        assert_eq!(
            got,
            vec![
                ("full_name", "required"),
                ("email", "invalid"),
                ("country", "unknown_country"),
                ("postal_code", "invalid"),
                ("organization", "required"),
                ("consent_updates", "invalid"),
                ("id", "invalid"),
            ]
        );
    }

    #[test]
    fn names_that_say_nothing_or_deface_are_refused_on_every_channel() {
        let rules = SignerRules {
            email_optional_offline: true,
            ..SignerRules::default()
        };
        let bad = || SignatureInput {
            full_name: Some("\u{200B}\u{FEFF}\u{E0041}".into()),
            signer_kind: Some("organization".into()),
            organization: Some(format!("a{}", "\u{301}".repeat(199))),
            ..input()
        };
        for errors in [
            Signature::parse(bad(), &rules).unwrap_err(),
            Signature::parse_offline(bad(), &rules).unwrap_err(),
        ] {
            let got: Vec<_> = errors.iter().map(|e| (e.field.as_ref(), e.code)).collect();
            assert_eq!(
                got,
                [
                    ("full_name", "no_letter"),
                    ("organization", "too_many_marks")
                ]
            );
        }
    }

    #[test]
    fn organizations_name_themselves() {
        let s = Signature::parse(
            SignatureInput {
                signer_kind: Some("organization".into()),
                organization: Some("  Friends   of the Earth ".into()),
                consent_updates: Some("on".into()),
                postal_code: Some(" 1012  ab ".into()),
                ..input()
            },
            &SignerRules::default(),
        )
        .unwrap();
        assert_eq!(s.kind, SignerKind::Organization);
        assert_eq!(s.organization.unwrap().as_str(), "Friends of the Earth");
        assert!(s.consent_updates);
        assert_eq!(s.postal_code.as_deref(), Some("1012 AB"));
    }

    #[test]
    fn empty_optional_fields_are_absent() {
        let s = Signature::parse(
            SignatureInput {
                city: Some("".into()),
                postal_code: Some(" ".into()),
                locale: Some("".into()),
                id: Some("".into()),
                ..input()
            },
            &SignerRules::default(),
        )
        .unwrap();
        assert!(s.city.is_none() && s.postal_code.is_none() && s.locale.is_none());
    }

    #[test]
    fn a_petition_may_require_fields_and_refuse_organizations() {
        let rules = SignerRules {
            required: SignerRules::parse_required(&[
                "city".into(),
                "postal_code".into(),
                "city".into(),
            ])
            .unwrap(),
            organizations_may_sign: false,
            email_optional_offline: false,
        };
        assert_eq!(rules.required, [SignerField::PostalCode, SignerField::City]);
        let errors = Signature::parse(
            SignatureInput {
                city: Some("  ".into()),
                signer_kind: Some("organization".into()),
                organization: Some("Greenpeace".into()),
                ..input()
            },
            &rules,
        )
        .unwrap_err();
        let got: Vec<_> = errors.iter().map(|e| (e.field.as_ref(), e.code)).collect();
        assert_eq!(
            got,
            [
                ("postal_code", "required"),
                ("city", "required"),
                ("signer_kind", "not_accepted")
            ]
        );
        let s = Signature::parse(
            SignatureInput {
                city: Some("Bakı".into()),
                postal_code: Some("az1000".into()),
                ..input()
            },
            &rules,
        )
        .unwrap();
        assert_eq!(s.postal_code.as_deref(), Some("AZ1000"));
        assert_eq!(
            SignerRules::parse_required(&["email".into()]),
            Err("unknown_field")
        );
    }

    #[test]
    fn offline_signatures_may_leave_out_the_email_where_the_petition_allows() {
        let without_email = || SignatureInput {
            email: None,
            ..input()
        };
        let strict = SignerRules::default();
        let errors = Signature::parse_offline(without_email(), &strict).unwrap_err();
        assert_eq!(errors[0].field.as_ref(), "email");
        let lenient = SignerRules {
            email_optional_offline: true,
            ..SignerRules::default()
        };
        // Online, the address is always needed.
        assert!(Signature::parse(without_email(), &lenient).is_err());
        let errors = Signature::parse_offline(without_email(), &lenient).unwrap_err();
        let got: Vec<_> = errors.iter().map(|e| (e.field.as_ref(), e.code)).collect();
        assert_eq!(got, [("postal_code", "required_without_email")]);
        let s = Signature::parse_offline(
            SignatureInput {
                postal_code: Some("az 1000".into()),
                ..without_email()
            },
            &lenient,
        )
        .unwrap();
        assert!(s.email.is_none());
        // An address given must still be a valid one.
        let errors = Signature::parse_offline(
            SignatureInput {
                email: Some("nope".into()),
                postal_code: Some("1000".into()),
                ..input()
            },
            &lenient,
        )
        .unwrap_err();
        assert_eq!(errors[0].field.as_ref(), "email");
    }
}
