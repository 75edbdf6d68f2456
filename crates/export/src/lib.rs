//! Exports for delivery to parliaments and organizations: a petition's
//! signatures as CSV, JSON lines or a printable PDF, or as a signed bundle a
//! recipient can check offline, streamed from one snapshot with memory that
//! does not grow with the number of signatures.

mod bundle;
mod columns;
pub mod merkle;
mod pdf;
mod request;
#[cfg(test)]
mod sample;
mod sealed;
mod unseal;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use undersigned_store::{ExportFilter, ExportMessage, Petition, ReadFrom, Store, StoreError};
use uuid::Uuid;

pub use bundle::{BundleCheck, Proof, check_proof, prove, verify_bundle, verify_bundle_reporting};
pub use columns::{Column, RECEIPT_DIGEST, defuse, receipt_digest};
pub use request::ExportRequest;
pub use unseal::{UnsealError, Unsealing, unseal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    Pdf,
    Bundle,
    /// A sealed petition's rows as sealed, with the wrapped keys that open
    /// them: for `undersigned unseal` on the campaign's own machine.
    Sealed,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "csv" => Some(Self::Csv),
            "jsonl" => Some(Self::Jsonl),
            "pdf" => Some(Self::Pdf),
            "bundle" => Some(Self::Bundle),
            "sealed" => Some(Self::Sealed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Pdf => "pdf",
            Self::Bundle => "bundle",
            Self::Sealed => "sealed",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Jsonl => "application/x-ndjson",
            Self::Pdf => "application/pdf",
            Self::Bundle => "application/zip",
            Self::Sealed => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
            Self::Pdf => "pdf",
            Self::Bundle => "zip",
            Self::Sealed => "sealed.jsonl",
        }
    }
}

/// One export, as asked for and allowed.
pub struct ExportJob<'a> {
    pub id: Uuid,
    pub petition: &'a Petition,
    pub filter: ExportFilter,
    pub columns: Vec<Column>,
    pub format: Format,
    /// The petition's locale whose text a PDF shows (its default unless
    /// asked otherwise).
    pub locale: String,
    pub exported_at: DateTime<Utc>,
    /// Signs bundles.
    pub key: &'a SigningKey,
}

impl ExportJob<'_> {
    /// The locale and wording a PDF shows.
    pub fn wording(&self) -> (&str, &undersigned_domain::Wording) {
        let w = &self.petition.wordings;
        match w.translations.get_key_value(&self.locale) {
            Some((locale, wording)) => (locale, wording),
            None => (&w.locale, &w.default),
        }
    }

    /// The filters as the audit trail and a bundle's manifest record them.
    pub fn filters_json(&self) -> Value {
        let f = &self.filter;
        json!({
            "country": f.countries,
            "since": f.since,
            "until": f.until,
            "channel": f.channel.map(|c| c.as_str()),
            "signer_kind": f.signer_kind.map(|k| k.as_str()),
            "status": f.status.as_str(),
            "consent": f.consented.then_some("updates"),
        })
    }

    pub fn column_names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|c| c.as_str()).collect()
    }

    /// What the audit trail records when the export starts.
    pub fn started(&self) -> Value {
        json!({
            "export_id": self.id,
            "format": self.format.as_str(),
            "locale": self.locale,
            "filters": self.filters_json(),
            "columns": self.column_names(),
        })
    }

    /// What the audit trail records when it ends, whole or cut short.
    pub fn finished(&self, result: &Result<Summary, ExportError>) -> Value {
        match result {
            Ok(s) => json!({
                "export_id": self.id, "complete": true, "rows": s.rows, "sha256": s.sha256,
                "manifest_sha256": s.manifest_sha256, "merkle_root": s.merkle_root,
                "read_from": s.read_from.as_str(),
            }),
            Err(e) => json!({"export_id": self.id, "complete": false, "error": e.to_string()}),
        }
    }
}

/// What was exported.
#[derive(Debug, Clone)]
pub struct Summary {
    pub rows: u64,
    pub by_country: BTreeMap<String, u64>,
    /// The SHA-256 of everything written, lower-case hex.
    pub sha256: String,
    /// Where the snapshot was read: the primary, or the replica caught up.
    pub read_from: ReadFrom,
    /// A bundle's manifest's SHA-256 and Merkle root.
    pub manifest_sha256: Option<String>,
    pub merkle_root: Option<String>,
}

impl Summary {
    /// Of `rows` written from the primary, before its hash is known.
    pub(crate) fn of(rows: u64, by_country: BTreeMap<String, u64>) -> Self {
        Self {
            rows,
            by_country,
            sha256: String::new(),
            read_from: ReadFrom::Primary,
            manifest_sha256: None,
            merkle_root: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading signatures: {0}")]
    Store(#[from] StoreError),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("formatting CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing the bundle: {0}")]
    Zip(#[from] rawzip::Error),
    #[error("writing the PDF: {0}")]
    Pdf(String),
    #[error("the snapshot ended before its last row")]
    Incomplete,
}

/// Writes the export to `out` as the rows arrive from Postgres.
pub async fn write_export<W: AsyncWrite + Unpin + Send>(
    store: &Store,
    job: &ExportJob<'_>,
    out: &mut W,
) -> Result<Summary, ExportError> {
    write_export_reporting(store, job, out, |_| {}).await
}

/// How far an export has come, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Rows written in this pass over the snapshot.
    pub rows: u64,
    /// The rows the snapshot holds.
    pub total: u64,
    /// This pass, from 1, of `passes`: a bundle reads the snapshot twice, for
    /// its CSV and then for its PDF.
    pub pass: u8,
    pub passes: u8,
}

/// As [`write_export`], telling `report` how far it has come: once the
/// snapshot's totals are known, then each time the writer has written a
/// batch and asks for the next.
pub async fn write_export_reporting<W: AsyncWrite + Unpin + Send>(
    store: &Store,
    job: &ExportJob<'_>,
    out: &mut W,
    report: impl FnMut(Progress) + Send + 'static,
) -> Result<Summary, ExportError> {
    // Two batches in flight at most: Postgres waits for a slow reader.
    let (sender, receiver) = mpsc::channel(2);
    let reading = store.export_snapshot(&job.filter, job.format.passes(), sender);
    let writing = write_messages(job, receiver, out, report);
    let (read, written) = tokio::join!(reading, writing);
    let mut summary = written?;
    (_, summary.read_from) = read?;
    Ok(summary)
}

impl Format {
    /// How often its writer reads the rows: a bundle twice, for its CSV and
    /// then for its PDF; the others once.
    pub(crate) fn passes(self) -> usize {
        if self == Format::Bundle { 2 } else { 1 }
    }
}

/// Writes the export of `job` from a snapshot's messages, whoever reads it:
/// Postgres for the service, a sealed export opened by `unseal` for a
/// campaign. The same writers, so the same files.
pub(crate) async fn write_messages<W: AsyncWrite + Unpin + Send>(
    job: &ExportJob<'_>,
    receiver: mpsc::Receiver<ExportMessage>,
    out: &mut W,
    report: impl FnMut(Progress) + Send + 'static,
) -> Result<Summary, ExportError> {
    let mut out = Hashing::new(out);
    let mut rows = Rows::new(receiver, job.format.passes() as u8, Box::new(report));
    let mut summary = match job.format {
        Format::Csv | Format::Jsonl => plain(job, &mut rows, &mut out).await?,
        Format::Pdf => printable(job, &mut rows, &mut out).await?,
        Format::Bundle => bundle::write(job, &mut rows, &mut out).await?,
        Format::Sealed => sealed::write(job, &mut rows, &mut out).await?,
    };
    out.inner.flush().await?;
    summary.sha256 = hex::encode(out.hasher.finalize());
    Ok(summary)
}

/// The snapshot's messages, checked for order, and the progress they make.
pub(crate) struct Rows {
    receiver: mpsc::Receiver<ExportMessage>,
    progress: Progress,
    /// Whether `progress` moved since it was last reported.
    moved: bool,
    report: Box<dyn FnMut(Progress) + Send>,
    /// Withdrawn signatures the filters left out (known with the totals).
    withdrawn: u64,
    /// A sealed export's epochs (known with the totals).
    epochs: Vec<undersigned_store::SealEpoch>,
}

impl Rows {
    pub(crate) fn new(
        receiver: mpsc::Receiver<ExportMessage>,
        passes: u8,
        report: Box<dyn FnMut(Progress) + Send>,
    ) -> Self {
        Self {
            receiver,
            progress: Progress {
                rows: 0,
                total: 0,
                pass: 1,
                passes,
            },
            moved: false,
            report,
            withdrawn: 0,
            epochs: Vec::new(),
        }
    }

    async fn totals(&mut self) -> Result<(u64, BTreeMap<String, u64>), ExportError> {
        match self.receiver.recv().await {
            Some(ExportMessage::Totals {
                rows,
                by_country,
                withdrawn,
                epochs,
            }) => {
                self.progress.total = rows;
                self.withdrawn = withdrawn;
                self.epochs = epochs;
                (self.report)(self.progress);
                Ok((rows, by_country))
            }
            _ => Err(ExportError::Incomplete),
        }
    }

    /// The next batch; `None` at the end of the pass. Every writer asks for
    /// the next batch once it has written the last one, so the rows taken so
    /// far are the rows written.
    async fn batch(&mut self) -> Result<Option<Vec<undersigned_store::ExportRow>>, ExportError> {
        if std::mem::take(&mut self.moved) {
            (self.report)(self.progress);
        }
        match self.receiver.recv().await {
            Some(ExportMessage::Rows(rows)) => {
                self.progress.rows += rows.len() as u64;
                self.moved = true;
                Ok(Some(rows))
            }
            Some(ExportMessage::PassEnd) => {
                if self.progress.pass < self.progress.passes {
                    self.progress.pass += 1;
                    self.progress.rows = 0;
                    self.moved = true;
                }
                Ok(None)
            }
            _ => Err(ExportError::Incomplete),
        }
    }
}

/// An output that hashes what goes through it.
pub(crate) struct Hashing<'a, W> {
    inner: &'a mut W,
    hasher: Sha256,
}

impl<'a, W: AsyncWrite + Unpin> Hashing<'a, W> {
    fn new(inner: &'a mut W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// A reader that takes nothing for this long is gone: the export stops and
    /// frees its slot, its connection and its snapshot.
    const STALLED: std::time::Duration = std::time::Duration::from_secs(60);

    pub(crate) async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        tokio::time::timeout(Self::STALLED, self.inner.write_all(bytes))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the reader stalled"))?
    }
}

async fn printable<W: AsyncWrite + Unpin>(
    job: &ExportJob<'_>,
    rows: &mut Rows,
    out: &mut Hashing<'_, W>,
) -> Result<Summary, ExportError> {
    let (total, by_country) = rows.totals().await?;
    let cover = pdf::Cover {
        total,
        by_country: &by_country,
        merkle_root: None,
    };
    let mut printer = pdf::Printer::new(job, cover);
    while let Some(bytes) = printer.next(rows).await? {
        out.write(&bytes).await?;
    }
    if printer.listed() != total {
        return Err(ExportError::Incomplete);
    }
    Ok(Summary::of(total, by_country))
}

async fn plain<W: AsyncWrite + Unpin>(
    job: &ExportJob<'_>,
    rows: &mut Rows,
    out: &mut Hashing<'_, W>,
) -> Result<Summary, ExportError> {
    let (total, by_country) = rows.totals().await?;
    let mut table = columns::CsvTable::new(job.columns.clone(), false);
    if job.format == Format::Csv {
        let mut head = columns::BOM.to_vec();
        head.extend(table.header()?);
        out.write(&head).await?;
    }
    let mut written = 0;
    while let Some(batch) = rows.batch().await? {
        let mut chunk = Vec::with_capacity(batch.len() * 96);
        for row in &batch {
            match job.format {
                Format::Csv => chunk.extend(table.record(row)?),
                _ => chunk.extend(columns::json_line(&job.columns, row)),
            }
        }
        written += batch.len() as u64;
        out.write(&chunk).await?;
    }
    if written != total {
        return Err(ExportError::Incomplete);
    }
    Ok(Summary::of(written, by_country))
}
