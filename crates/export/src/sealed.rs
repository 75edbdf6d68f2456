//! `format=sealed`: a sealed petition's export as the service holds it. The
//! service cannot open it; `undersigned unseal` (see `unseal`) does, with a
//! recipient's identity, on the campaign's own machine.
//!
//! JSON lines, in order: a header (the petition's texts and the export's
//! filters, columns and totals, as the other formats would show them), one
//! line per epoch (its id, its recipients, its key as wrapped with `age`, in
//! base64), then one line per signature, in signing order: its receipt, the
//! fields kept in clear and its sealed fields (base64).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWrite;
use undersigned_domain::{Target, Wordings};
use uuid::Uuid;

use crate::{ExportError, ExportJob, Hashing, Rows, Summary};

pub const FORMAT: &str = "undersigned-sealed/1";

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Header {
    pub format: String,
    pub export_id: Uuid,
    pub exported_at: DateTime<Utc>,
    pub petition: SealedPetition,
    pub filters: Value,
    pub columns: Vec<String>,
    pub locale: String,
    pub row_count: u64,
    pub by_country: BTreeMap<String, u64>,
    pub withdrawn_skipped: u64,
    /// How many epoch lines follow.
    pub epochs: usize,
}

/// What the CSV, PDF and bundle written from the rows show of the petition.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SealedPetition {
    pub slug: String,
    pub goal: i64,
    pub wordings: Wordings,
    pub targets: Vec<Target>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EpochLine {
    pub epoch: Uuid,
    pub recipients: Vec<String>,
    pub wrapped: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RowLine {
    pub receipt: Uuid,
    pub country: String,
    pub signer_kind: String,
    pub channel: String,
    pub signed_at: DateTime<Utc>,
    // Absent from sealed exports made before these columns existed.
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub consent_updates: bool,
    #[serde(default)]
    pub consented_at: Option<DateTime<Utc>>,
    /// `None` for a row with nothing sealed (nothing personal left to seal).
    pub sealed: Option<String>,
}

fn line(value: &impl Serialize) -> Result<Vec<u8>, ExportError> {
    let mut bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

pub(crate) async fn write<W: AsyncWrite + Unpin>(
    job: &ExportJob<'_>,
    rows: &mut Rows,
    out: &mut Hashing<'_, W>,
) -> Result<Summary, ExportError> {
    let (total, by_country) = rows.totals().await?;
    let epochs = std::mem::take(&mut rows.epochs);
    let p = job.petition;
    let header = Header {
        format: FORMAT.into(),
        export_id: job.id,
        exported_at: job.exported_at,
        petition: SealedPetition {
            slug: p.slug.clone(),
            goal: p.goal,
            wordings: p.wordings.clone(),
            targets: p.targets.clone(),
            created_at: p.created_at,
        },
        filters: job.filters_json(),
        columns: job.column_names().into_iter().map(str::to_owned).collect(),
        locale: job.locale.clone(),
        row_count: total,
        by_country: by_country.clone(),
        withdrawn_skipped: rows.withdrawn,
        epochs: epochs.len(),
    };
    let mut head = line(&header)?;
    for epoch in &epochs {
        head.extend(line(&EpochLine {
            epoch: epoch.id,
            recipients: epoch.recipients.clone(),
            wrapped: BASE64.encode(&epoch.wrapped),
        })?);
    }
    out.write(&head).await?;
    let mut written = 0;
    while let Some(batch) = rows.batch().await? {
        let mut chunk = Vec::with_capacity(batch.len() * 256);
        for row in &batch {
            chunk.extend(line(&RowLine {
                receipt: row.id,
                country: row.country.clone(),
                signer_kind: row.signer_kind.clone(),
                channel: row.channel.clone(),
                signed_at: row.signed_at,
                locale: row.locale.clone(),
                consent_updates: row.consent_updates,
                consented_at: Some(row.consented_at),
                sealed: row.sealed.as_ref().map(|s| BASE64.encode(s)),
            })?);
        }
        written += batch.len() as u64;
        out.write(&chunk).await?;
    }
    if written != total {
        return Err(ExportError::Incomplete);
    }
    Ok(Summary::of(written, by_country))
}
