//! Petitions, signatures and snapshots for the crate's tests.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use tokio::sync::mpsc;
use undersigned_domain::{PetitionStatus, SignerRules, WebSettings, Window, Wording, Wordings};
use undersigned_store::{ExportMessage, ExportRow, Petition};
use uuid::Uuid;

use crate::{Column, ExportJob, Format, Rows};

pub(crate) fn petition() -> Petition {
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
        goal: 100,
        status: PetitionStatus::Open,
        window: Window::default(),
        targets: Vec::new(),
        signers: SignerRules::default(),
        web: WebSettings::default(),
        sealing: Vec::new(),
        retention_days: None,
        closed_at: None,
        personal_data_erased_at: None,
        milestones: Vec::new(),
        created_at: Utc::now(),
    }
}

/// An export of `petition`'s delivery columns, done now.
pub(crate) fn job<'a>(
    petition: &'a Petition,
    key: &'a ed25519_dalek::SigningKey,
    format: Format,
) -> ExportJob<'a> {
    ExportJob {
        id: Uuid::nil(),
        petition,
        filter: undersigned_store::ExportFilter::default(),
        columns: Column::DELIVERY.to_vec(),
        format,
        locale: "en".into(),
        exported_at: Utc::now(),
        key,
    }
}

/// The `i`th signature: names in several scripts, one a formula.
pub(crate) fn row(i: u32) -> ExportRow {
    ExportRow {
        id: Uuid::from_u128(i as u128 + 1),
        full_name: ["Ана Петрова", "محمد علي", "Leyla Məmmədova", "=cmd|calc"][i as usize % 4]
            .into(),
        organization: None,
        signer_kind: "person".into(),
        city: Some("Bakı".into()),
        postal_code: None,
        country: ["AZ", "RU", "EG"][i as usize % 3].into(),
        signed_at: Utc.timestamp_opt(1_800_000_000 + i as i64, 0).unwrap(),
        channel: "web".into(),
        email: None,
        sealed: None,
        locale: None,
        consent_updates: false,
        consented_at: Utc.timestamp_opt(1_800_000_000 + i as i64, 0).unwrap(),
    }
}

/// A snapshot of `rows` as the snapshot reader sends it: the totals, then
/// the rows `passes` times.
pub(crate) fn snapshot(rows: Vec<ExportRow>, passes: usize) -> Rows {
    reported_snapshot(rows, passes, |_| {})
}

/// As [`snapshot`], telling `report` how far the writer has come.
pub(crate) fn reported_snapshot(
    rows: Vec<ExportRow>,
    passes: usize,
    report: impl FnMut(crate::Progress) + Send + 'static,
) -> Rows {
    let (send, receive) = mpsc::channel(4);
    let mut by_country = BTreeMap::new();
    for row in &rows {
        *by_country.entry(row.country.clone()).or_insert(0) += 1;
    }
    tokio::spawn(async move {
        let _ = send
            .send(ExportMessage::Totals {
                rows: rows.len() as u64,
                by_country,
                withdrawn: 0,
                epochs: Vec::new(),
            })
            .await;
        for _ in 0..passes {
            for chunk in rows.chunks(7) {
                let _ = send.send(ExportMessage::Rows(chunk.to_vec())).await;
            }
            let _ = send.send(ExportMessage::PassEnd).await;
        }
    });
    Rows::new(receive, passes as u8, Box::new(report))
}
