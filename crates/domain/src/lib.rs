//! The campaign's values, parsed once at the edge ("parse, don't validate").
//!
//! Nothing here does I/O: every field a signer or an organizer sends becomes a
//! newtype whose `parse` holds its normalization, so storage and transport only
//! ever see values that are already valid and canonical.

mod country;
mod email;
mod error;
mod identity;
mod locale;
mod notices;
mod petition;
mod signature;
mod text;
mod token;
mod web;
mod wording;

pub use country::Country;
pub use email::Email;
pub use error::{FieldError, FieldErrors};
pub use identity::{IdentityKey, Pepper};
pub use locale::{Locale, accepted_locales, matching, negotiate};
pub use notices::{BUILT_IN, Notices, Placeholders, fill, notices, right_to_left};
pub use petition::{
    NewPetition, NewPetitionInput, NotSigning, PetitionStatus, RETENTION_DAYS_DEFAULT, Slug,
    Window, parse_goal, parse_milestones, parse_retention_days, parse_status, parse_time,
};
pub use signature::{Channel, Signature, SignatureInput, SignerField, SignerKind, SignerRules};
pub use text::{LongText, Text};
pub use token::SignerToken;
pub use web::{
    CaptchaPolicy, MailText, MailTextInput, Origin, PageUrl, Verification, WebSettings,
    WebSettingsInput,
};
pub use wording::{
    Target, TargetInput, TranslationChanges, Wording, WordingInput, Wordings, parse_ask,
    parse_text, parse_title,
};
