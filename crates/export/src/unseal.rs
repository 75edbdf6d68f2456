//! Opening a sealed export (`format=sealed`) on the campaign's own machine,
//! with a recipient's `age` identity, into the CSV, JSON lines, PDF or
//! signed bundle the service writes for a clear petition: the rows opened
//! are fed to the very writers an export from Postgres feeds, a batch at a
//! time, so memory does not grow with the rows (a bundle reads the file
//! twice, as it reads Postgres's snapshot twice).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::SigningKey;
use serde_json::Value;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use undersigned_domain::{PetitionStatus, SignerRules, WebSettings, Window};
use undersigned_seal::{Opener, SealError, epoch_of};
use undersigned_store::{ExportMessage, ExportRow, Petition};
use uuid::Uuid;

use crate::sealed::{EpochLine, FORMAT, Header, RowLine};
use crate::{ExportError, ExportRequest, Format, Progress, Summary, write_messages};

/// Rows opened and handed to the writer at a time.
const BATCH: usize = 2_000;

/// What to open, with what, into what.
pub struct Unsealing<'a> {
    /// The identity file's text (`AGE-SECRET-KEY-1…` lines).
    pub identity: &'a str,
    /// The sealed export, as `format=sealed` wrote it.
    pub input: &'a Path,
    pub format: Format,
    /// Signs a bundle; the other formats need none.
    pub signing_key: Option<&'a SigningKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{path} is not a sealed export ({why})")]
    NotSealed { path: String, why: String },
    #[error("{0}")]
    Seal(#[from] SealError),
    #[error("signature {receipt} cannot be opened: {why}")]
    Epoch { receipt: Uuid, why: String },
    #[error("{0}")]
    Export(#[from] ExportError),
    #[error("a bundle is signed: give the signing key with --signing-key FILE")]
    NoSigningKey,
    #[error("the output format is csv, jsonl, pdf or bundle; the input is already sealed")]
    SealedOutput,
    #[error("opening the rows stopped: {0}")]
    Stopped(String),
    #[error("writing: {0}")]
    Write(#[from] std::io::Error),
}

/// Opens `u.input` and writes it to `out` in `u.format`.
pub async fn unseal<W: AsyncWrite + Unpin + Send>(
    u: Unsealing<'_>,
    out: &mut W,
) -> Result<Summary, UnsealError> {
    if u.format == Format::Sealed {
        return Err(UnsealError::SealedOutput);
    }
    let throwaway;
    let key = match (u.signing_key, u.format) {
        (Some(key), _) => key,
        (None, Format::Bundle) => return Err(UnsealError::NoSigningKey),
        // Unused: only a bundle is signed.
        (None, _) => {
            throwaway = SigningKey::from_bytes(&[0; 32]);
            &throwaway
        }
    };
    let mut opener = Opener::from_identity_file(u.identity)?;
    let (header, refused) = read_head(u.input, &mut opener)?;
    let petition = Petition {
        id: 0,
        slug: header.petition.slug.clone(),
        wordings: header.petition.wordings.clone(),
        goal: header.petition.goal,
        status: PetitionStatus::Closed,
        window: Window::default(),
        targets: header.petition.targets.clone(),
        signers: SignerRules::default(),
        web: WebSettings::default(),
        sealing: Vec::new(),
        retention_days: None,
        closed_at: None,
        personal_data_erased_at: None,
        milestones: Vec::new(),
        created_at: header.petition.created_at,
    };
    let request = request_of(&header, u.format).map_err(|why| UnsealError::NotSealed {
        path: u.input.display().to_string(),
        why,
    })?;
    let job = request.job(header.export_id, header.exported_at, &petition, key);

    let (sender, receiver) = mpsc::channel(2);
    let path = u.input.to_owned();
    let passes = u.format.passes();
    let with_email = request.filter.with_email;
    let totals = ExportMessage::Totals {
        rows: header.row_count,
        by_country: header.by_country.clone(),
        withdrawn: header.withdrawn_skipped,
        epochs: Vec::new(),
    };
    let epochs = header.epochs;
    // Opening is CPU work and file reading: off the async threads.
    let reading = tokio::task::spawn_blocking(move || {
        if sender.blocking_send(totals).is_err() {
            return Ok(());
        }
        for _ in 0..passes {
            let rows = open_rows(&path, epochs, &opener, &refused, with_email)?;
            for batch in rows {
                if sender.blocking_send(ExportMessage::Rows(batch?)).is_err() {
                    return Ok(());
                }
            }
            if sender.blocking_send(ExportMessage::PassEnd).is_err() {
                return Ok(());
            }
        }
        Ok::<_, UnsealError>(())
    });
    let written = write_messages(&job, receiver, out, |_: Progress| {}).await;
    // The reader's error first: a row that does not open cuts the writer
    // short, and is the reason to report.
    match reading.await {
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(UnsealError::Stopped(e.to_string())),
        Ok(Ok(())) => {}
    }
    Ok(written?)
}

fn reader(path: &Path) -> Result<BufReader<File>, UnsealError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| UnsealError::Read(path.display().to_string(), e))
}

fn not_sealed(path: &Path, why: impl std::fmt::Display) -> UnsealError {
    UnsealError::NotSealed {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// The header, with every epoch's key unwrapped that `opener` can: the
/// others are kept with their error, reported by the first row that needs
/// one. When none opens, the key is not a recipient at all: said at once.
fn read_head(
    path: &Path,
    opener: &mut Opener,
) -> Result<(Header, HashMap<Uuid, SealError>), UnsealError> {
    let mut lines = reader(path)?.lines();
    let mut next = |what: &str| -> Result<String, UnsealError> {
        match lines.next() {
            Some(Ok(line)) => Ok(line),
            Some(Err(e)) => Err(UnsealError::Read(path.display().to_string(), e)),
            None => Err(not_sealed(path, format!("it ends before its {what}"))),
        }
    };
    let header: Header = serde_json::from_str(&next("header")?)
        .map_err(|e| not_sealed(path, format!("its first line: {e}")))?;
    if header.format != FORMAT {
        return Err(not_sealed(
            path,
            format!("its format is {:?}", header.format),
        ));
    }
    let mut refused = HashMap::new();
    for i in 0..header.epochs {
        let epoch: EpochLine = serde_json::from_str(&next("epochs")?)
            .map_err(|e| not_sealed(path, format!("epoch line {}: {e}", i + 1)))?;
        let wrapped = BASE64
            .decode(&epoch.wrapped)
            .map_err(|e| not_sealed(path, format!("epoch {}: {e}", epoch.epoch)))?;
        if let Err(e) = opener.unwrap_epoch(epoch.epoch, &wrapped, &epoch.recipients) {
            refused.insert(epoch.epoch, e);
        }
    }
    if header.epochs > 0 && refused.len() == header.epochs {
        let any = refused.into_values().next();
        return Err(any.map_or_else(|| not_sealed(path, "no epoch"), UnsealError::Seal));
    }
    Ok((header, refused))
}

/// The export's rows, opened, a batch at a time.
fn open_rows<'a>(
    path: &Path,
    epochs: usize,
    opener: &'a Opener,
    refused: &'a HashMap<Uuid, SealError>,
    with_email: bool,
) -> Result<impl Iterator<Item = Result<Vec<ExportRow>, UnsealError>> + 'a, UnsealError> {
    let display = path.display().to_string();
    let mut lines = reader(path)?.lines().enumerate().skip(1 + epochs);
    Ok(std::iter::from_fn(move || {
        let mut batch = Vec::with_capacity(BATCH);
        for (n, line) in lines.by_ref() {
            let opened = line
                .map_err(|e| UnsealError::Read(display.clone(), e))
                .and_then(|line| open_row(&line, n + 1, &display, opener, refused, with_email));
            match opened {
                Ok(row) => batch.push(row),
                Err(e) => return Some(Err(e)),
            }
            if batch.len() == BATCH {
                break;
            }
        }
        (!batch.is_empty()).then_some(Ok(batch))
    }))
}

fn open_row(
    line: &str,
    number: usize,
    path: &str,
    opener: &Opener,
    refused: &HashMap<Uuid, SealError>,
    with_email: bool,
) -> Result<ExportRow, UnsealError> {
    let bad = |why: String| UnsealError::NotSealed {
        path: path.to_owned(),
        why: format!("line {number}: {why}"),
    };
    let row: RowLine = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    let personal = match &row.sealed {
        None => Default::default(),
        Some(text) => {
            let sealed = BASE64.decode(text).map_err(|e| bad(e.to_string()))?;
            // Its epoch did not open: that is the reason, not the row.
            if let Some(why) = epoch_of(&sealed).and_then(|e| refused.get(&e)) {
                return Err(UnsealError::Epoch {
                    receipt: row.receipt,
                    why: why.to_string(),
                });
            }
            opener.open(row.receipt, &sealed)?
        }
    };
    Ok(ExportRow {
        id: row.receipt,
        full_name: personal.full_name,
        organization: personal.organization,
        signer_kind: row.signer_kind,
        city: personal.city,
        postal_code: personal.postal_code,
        country: row.country,
        signed_at: row.signed_at,
        channel: row.channel,
        email: personal.email.filter(|_| with_email),
        sealed: None,
        locale: row.locale,
        consent_updates: row.consent_updates,
        consented_at: row.consented_at.unwrap_or(row.signed_at),
    })
}

/// The export request the sealed export was made from, written `format`.
fn request_of(header: &Header, format: Format) -> Result<ExportRequest, String> {
    let f = &header.filters;
    let text = |name: &str| f.get(name).and_then(Value::as_str).map(str::to_owned);
    let mut pairs: Vec<(&str, String)> = vec![
        ("format", format.as_str().to_owned()),
        ("columns", header.columns.join(",")),
        ("locale", header.locale.clone()),
    ];
    if let Some(countries) = f.get("country").and_then(Value::as_array) {
        let list: Vec<&str> = countries.iter().filter_map(Value::as_str).collect();
        pairs.push(("country", list.join(",")));
    }
    if f.get("consent").and_then(Value::as_str).is_some() {
        pairs.push(("consent", "updates".to_owned()));
    }
    for name in ["since", "until", "channel", "signer_kind", "status"] {
        if let Some(value) = text(name) {
            pairs.push((name, value));
        }
    }
    ExportRequest::parse(pairs.iter().map(|(n, v)| (*n, v.as_str()))).map_err(|errors| {
        let fields: Vec<String> = errors
            .iter()
            .map(|e| format!("{} {}", e.field, e.code))
            .collect();
        format!("its header's export request: {}", fields.join(", "))
    })
}
