//! What the fuzz targets share: a petition and an event as the service would
//! hold them, so that a target runs the very checks a request meets, without
//! a database. The targets are in `fuzz_targets/`; `deploy/fuzz` runs them.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use undersigned_domain::{
    PetitionStatus, SignerField, SignerRules, WebSettings, Window, Wording, Wordings,
};
use undersigned_store::{Event, NewEvent, Petition};
use uuid::Uuid;

/// The moment every target checks at: inside the event below.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

/// The rules a petition may set, chosen by one byte of the input so that the
/// fuzzer reaches each branch: which fields are required, whether
/// organizations may sign, whether offline signatures may leave out the email.
pub fn rules(choice: u8) -> SignerRules {
    // `ALL` is sorted, so the list stays as `SignerField::parse_required` makes it.
    let required = SignerField::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| choice & (1 << i) != 0)
        .map(|(_, f)| *f)
        .collect();
    SignerRules {
        required,
        organizations_may_sign: choice & 4 != 0,
        email_optional_offline: choice & 8 != 0,
    }
}

/// An open petition with these rules.
pub fn petition(signers: SignerRules) -> Petition {
    Petition {
        id: 1,
        slug: "peace".into(),
        wordings: Wordings {
            locale: "en".into(),
            default: Wording {
                title: "Peace".into(),
                text: "Now.".into(),
                ask: None,
            },
            translations: BTreeMap::new(),
        },
        goal: 1_000_000,
        status: PetitionStatus::Open,
        window: Window::default(),
        targets: Vec::new(),
        signers,
        web: WebSettings::default(),
        sealing: Vec::new(),
        retention_days: None,
        closed_at: None,
        personal_data_erased_at: None,
        milestones: Vec::new(),
        created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    }
}

/// A street event of that petition, running at [`now`].
pub fn event() -> Event {
    Event {
        id: Uuid::from_u128(1),
        details: NewEvent {
            petition_id: 1,
            name: "Flash mob".into(),
            place: Some("Main square".into()),
            country: Some("FR".into()),
            starts_at: Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap(),
            ends_at: Utc.with_ymd_and_hms(2026, 6, 1, 18, 0, 0).unwrap(),
        },
        created_at: Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap(),
    }
}
