//! How a petition meets the web: which campaign sites may post to it from the
//! browser (CORS), where a plain HTML form lands afterwards, and the captcha.

use serde::{Deserialize, Serialize};
use url::Url;

use std::collections::BTreeMap;

use crate::FieldError;
use crate::error::FieldErrors;

/// A web origin, `scheme://host[:port]`, as browsers send it in `Origin`:
/// lower-case, without a default port, path or trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Origin(String);

impl Origin {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let url = Url::parse(input.trim()).map_err(|_| "invalid")?;
        if !matches!(url.scheme(), "https" | "http")
            || url.host_str().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
            || !matches!(url.path(), "" | "/")
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err("invalid");
        }
        // `Url` lower-cases the host, converts it to ASCII and drops a default port.
        Ok(Self(url.origin().ascii_serialization()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute http(s) address to send a browser to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PageUrl(String);

const URL_MAX: usize = 2_000;

impl PageUrl {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let input = input.trim();
        if input.len() > URL_MAX {
            return Err("too_long");
        }
        let url = Url::parse(input).map_err(|_| "invalid")?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err("invalid");
        }
        Ok(Self(url.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This address with `pairs` added to its query.
    pub fn with_query(&self, pairs: &[(&str, &str)]) -> String {
        let mut url = Url::parse(&self.0).expect("parsed when stored");
        url.query_pairs_mut().extend_pairs(pairs);
        url.into()
    }
}

/// Whether signing on the web needs a solved captcha (only ever when an
/// hCaptcha secret is configured, and never for authenticated devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptchaPolicy {
    Required,
    Off,
}

impl CaptchaPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match s.trim() {
            "required" => Ok(Self::Required),
            "off" => Ok(Self::Off),
            _ => Err("invalid"),
        }
    }
}

/// Whether a web signature counts at once or once its signer has followed
/// the link emailed to them. Signatures collected in person (tablets, paper)
/// count at once either way: they were witnessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    Email,
    None,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Result<Self, &'static str> {
        match s.trim() {
            "email" => Ok(Self::Email),
            "none" => Ok(Self::None),
            _ => Err("invalid"),
        }
    }
}

/// A petition's web settings as they arrive; `None` leaves a setting as it is,
/// and an empty text clears an address.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WebSettingsInput {
    pub allowed_origins: Option<Vec<String>>,
    pub thank_you_url: Option<String>,
    pub error_url: Option<String>,
    pub captcha: Option<String>,
    pub captcha_fail_open: Option<bool>,
    pub verification: Option<String>,
    pub confirmed_url: Option<String>,
    /// The confirmation email's words to set per locale (`None` removes a
    /// locale's).
    #[serde(skip)]
    pub confirmation_texts: Vec<(String, Option<MailTextInput>)>,
}

/// A petition's own words for its confirmation email in one locale, with
/// the placeholders `{title}`, `{link}`, `{receipt}`, `{days}`, `{withdraw}`;
/// the body must carry `{link}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailText {
    pub subject: String,
    pub body: String,
}

#[derive(Debug, Clone, Default)]
pub struct MailTextInput {
    pub subject: Option<String>,
    pub body: Option<String>,
}

const SUBJECT_MAX: usize = 200;
const BODY_MAX: usize = 5000;

impl MailText {
    /// Checks one locale's words; refusals are named within `at`.
    fn parse(at: &str, input: MailTextInput, errors: &mut FieldErrors) -> Option<Self> {
        let subject = input.subject.as_deref().map(str::trim).unwrap_or("");
        let body = input.body.as_deref().map(str::trim).unwrap_or("");
        let subject_fault = if subject.is_empty() {
            Some("required")
        } else if subject.chars().count() > SUBJECT_MAX {
            Some("too_long")
        } else if subject.chars().any(char::is_control) {
            Some("control_character")
        } else {
            None
        };
        let body_fault = if body.is_empty() {
            Some("required")
        } else if body.chars().count() > BODY_MAX {
            Some("too_long")
        } else if !body.contains("{link}") {
            Some("no_link")
        } else {
            None
        };
        if let Some(code) = subject_fault {
            errors
                .0
                .push(FieldError::new(format!("{at}.subject"), code));
        }
        if let Some(code) = body_fault {
            errors.0.push(FieldError::new(format!("{at}.body"), code));
        }
        (subject_fault.is_none() && body_fault.is_none()).then(|| Self {
            subject: subject.to_owned(),
            body: body.replace("\r\n", "\n"),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebSettings {
    /// Sites whose pages may post signatures from the browser.
    pub allowed_origins: Vec<Origin>,
    /// Where a plain HTML form post lands when it succeeded.
    pub thank_you_url: Option<PageUrl>,
    /// Where a plain HTML form post lands when it failed.
    pub error_url: Option<PageUrl>,
    pub captcha: CaptchaPolicy,
    /// Accept signatures without a verdict while hCaptcha is unreachable
    /// (`false`, the default, refuses them with 503 until it answers again).
    pub captcha_fail_open: bool,
    /// Email confirmation for web signatures: the default for new petitions.
    pub verification: Verification,
    /// Where a signer lands after confirming, instead of the service's page.
    pub confirmed_url: Option<PageUrl>,
    /// The petition's own words for its confirmation email, by locale; the
    /// service's built-in words where it has none.
    pub confirmation_texts: BTreeMap<String, MailText>,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            thank_you_url: None,
            error_url: None,
            captcha: CaptchaPolicy::Required,
            captcha_fail_open: false,
            verification: Verification::Email,
            confirmed_url: None,
            confirmation_texts: BTreeMap::new(),
        }
    }
}

const ORIGINS_MAX: usize = 50;

impl WebSettings {
    /// These settings with `input` applied; every invalid field is reported.
    pub fn apply(&self, input: WebSettingsInput) -> Result<Self, Vec<crate::FieldError>> {
        let mut errors = FieldErrors::default();
        let mut next = self.clone();
        if let Some(origins) = input.allowed_origins {
            if origins.len() > ORIGINS_MAX {
                errors.check::<()>("allowed_origins", Err("too_many"));
            } else if let Some(parsed) = errors.check(
                "allowed_origins",
                origins.iter().map(|o| Origin::parse(o)).collect(),
            ) {
                let mut parsed: Vec<Origin> = parsed;
                parsed.dedup();
                next.allowed_origins = parsed;
            }
        }
        let page =
            |errors: &mut FieldErrors, field, value: Option<String>, slot: &mut Option<PageUrl>| {
                match value.as_deref().map(str::trim) {
                    None => {}
                    Some("") => *slot = None,
                    Some(v) => {
                        if let Some(url) = errors.check(field, PageUrl::parse(v)) {
                            *slot = Some(url);
                        }
                    }
                }
            };
        page(
            &mut errors,
            "thank_you_url",
            input.thank_you_url,
            &mut next.thank_you_url,
        );
        page(
            &mut errors,
            "error_url",
            input.error_url,
            &mut next.error_url,
        );
        if let Some(captcha) = input.captcha
            && let Some(policy) = errors.check("captcha", CaptchaPolicy::parse(&captcha))
        {
            next.captcha = policy;
        }
        if let Some(fail_open) = input.captcha_fail_open {
            next.captcha_fail_open = fail_open;
        }
        if let Some(verification) = input.verification
            && let Some(v) = errors.check("verification", Verification::parse(&verification))
        {
            next.verification = v;
        }
        page(
            &mut errors,
            "confirmed_url",
            input.confirmed_url,
            &mut next.confirmed_url,
        );
        for (tag, change) in input.confirmation_texts {
            let Ok(locale) = crate::Locale::parse(&tag) else {
                errors.check::<()>("confirmation_texts", Err("invalid_locale"));
                continue;
            };
            let locale = locale.as_str().to_owned();
            match change {
                None => {
                    next.confirmation_texts.remove(&locale);
                }
                Some(input) => {
                    let at = format!("confirmation_texts.{locale}");
                    if let Some(text) = MailText::parse(&at, input, &mut errors) {
                        next.confirmation_texts.insert(locale, text);
                    }
                }
            }
        }
        if errors.0.is_empty() {
            Ok(next)
        } else {
            Err(errors.0)
        }
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o.as_str() == origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldError;

    #[test]
    fn origins_are_normalized_as_browsers_send_them() {
        assert_eq!(
            Origin::parse("https://Campaign.Example:443/")
                .unwrap()
                .as_str(),
            "https://campaign.example"
        );
        assert_eq!(
            Origin::parse("http://localhost:8081").unwrap().as_str(),
            "http://localhost:8081"
        );
        for bad in [
            "campaign.example",
            "ftp://x.example",
            "https://x.example/form",
            "https://u:p@x.example",
            "*",
        ] {
            assert_eq!(Origin::parse(bad), Err("invalid"), "{bad}");
        }
    }

    #[test]
    fn settings_apply_partially_and_report_every_bad_field() {
        let start = WebSettings::default();
        let next = start
            .apply(WebSettingsInput {
                allowed_origins: Some(vec![
                    "https://a.example".into(),
                    "https://a.example/".into(),
                ]),
                thank_you_url: Some("https://a.example/thanks?lang=en".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(next.allows("https://a.example") && !next.allows("https://b.example"));
        assert_eq!(next.allowed_origins.len(), 1);
        assert_eq!(next.captcha, CaptchaPolicy::Required);
        assert_eq!(
            next.thank_you_url
                .as_ref()
                .unwrap()
                .with_query(&[("receipt", "r1")]),
            "https://a.example/thanks?lang=en&receipt=r1"
        );
        let cleared = next
            .apply(WebSettingsInput {
                thank_you_url: Some(String::new()),
                captcha: Some("off".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(cleared.thank_you_url, None);
        assert_eq!(cleared.captcha, CaptchaPolicy::Off);
        let errors = start
            .apply(WebSettingsInput {
                allowed_origins: Some(vec!["nope".into()]),
                error_url: Some("javascript:alert(1)".into()),
                captcha: Some("maybe".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(
            errors,
            vec![
                FieldError::new("allowed_origins", "invalid"),
                FieldError::new("error_url", "invalid"),
                FieldError::new("captcha", "invalid"),
            ]
        );
    }

    #[test]
    fn new_petitions_confirm_by_email_unless_told_otherwise() {
        let start = WebSettings::default();
        assert_eq!(start.verification, Verification::Email);
        let none = start
            .apply(WebSettingsInput {
                verification: Some("none".into()),
                confirmed_url: Some("https://a.example/welcome".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(none.verification, Verification::None);
        assert_eq!(
            none.confirmed_url.as_ref().map(PageUrl::as_str),
            Some("https://a.example/welcome")
        );
        let errors = none
            .apply(WebSettingsInput {
                verification: Some("sms".into()),
                confirmed_url: Some("ftp://a.example".into()),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(
            errors,
            vec![
                FieldError::new("verification", "invalid"),
                FieldError::new("confirmed_url", "invalid"),
            ]
        );
    }

    #[test]
    fn a_petitions_confirmation_words_need_a_subject_and_the_link() {
        let words = |subject: &str, body: &str| MailTextInput {
            subject: Some(subject.into()),
            body: Some(body.into()),
        };
        let set = WebSettings::default()
            .apply(WebSettingsInput {
                confirmation_texts: vec![(
                    "fr-fr".into(),
                    Some(words(" Confirmez : {title} ", "Cliquez {link}")),
                )],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            set.confirmation_texts["fr-FR"].subject,
            "Confirmez : {title}"
        );
        let errors = set
            .apply(WebSettingsInput {
                confirmation_texts: vec![
                    ("nl".into(), Some(words("", "Klik hier"))),
                    (
                        "de".into(),
                        Some(words("Zeile\neins", &"x{link}".repeat(1000))),
                    ),
                    ("not a locale".into(), None),
                ],
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(
            errors,
            vec![
                FieldError::new("confirmation_texts.nl.subject", "required"),
                FieldError::new("confirmation_texts.nl.body", "no_link"),
                FieldError::new("confirmation_texts.de.subject", "control_character"),
                FieldError::new("confirmation_texts.de.body", "too_long"),
                FieldError::new("confirmation_texts", "invalid_locale"),
            ]
        );
        let removed = set
            .apply(WebSettingsInput {
                confirmation_texts: vec![("fr-FR".into(), None)],
                ..Default::default()
            })
            .unwrap();
        assert!(removed.confirmation_texts.is_empty());
    }
}
