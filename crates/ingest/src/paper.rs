//! Paper forms typed in later: a CSV of signatures, checked line by line, then
//! taken like a tablet's batch (channel `paper`), or only checked (a dry run).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use thiserror::Error;
use undersigned_domain::{
    FieldError, IdentityKey, PetitionStatus, Signature, SignatureInput, parse_time,
};
use undersigned_store::Petition;

use crate::{Collected, Filed, Ingest, Provenance, SignError};

/// The columns a paper form's CSV may have, in any order; `full_name` and
/// `country` it must have, and `email` unless the petition lets offline
/// signatures go without one. `signed_at` is the date on the form (now when absent).
pub const PAPER_COLUMNS: [&str; 10] = [
    "full_name",
    "email",
    "country",
    "postal_code",
    "city",
    "signer_kind",
    "organization",
    "consent_updates",
    "locale",
    "signed_at",
];

/// Lines in one import, at most: a day's typing, checked in one go.
pub const PAPER_MAX_LINES: usize = 10_000;

/// Why a whole file is refused (nothing of it is taken).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PaperError {
    #[error("the file has no header line")]
    Empty,
    /// By position (from 1): the header's text is not repeated, in case a
    /// file without one put a signer's name there.
    #[error("column {0} of the header is not one of {cols}", cols = PAPER_COLUMNS.join(", "))]
    UnknownColumn(usize),
    #[error("the header names {0:?} twice")]
    RepeatedColumn(&'static str),
    #[error("the header lacks the column {0:?}")]
    MissingColumn(&'static str),
    #[error("more than {PAPER_MAX_LINES} lines")]
    TooManyLines,
    #[error("not UTF-8 CSV: {0}")]
    Unreadable(String),
}

impl PaperError {
    /// As a field error: the column, or the file.
    pub fn field_error(&self) -> FieldError {
        match self {
            Self::UnknownColumn(n) => FieldError::new(format!("columns[{n}]"), "unknown_column"),
            Self::RepeatedColumn(c) => FieldError::new(*c, "repeated_column"),
            Self::MissingColumn(c) => FieldError::new(*c, "missing_column"),
            Self::Empty => FieldError::new("file", "empty"),
            Self::TooManyLines => FieldError::new("file", "too_many_lines"),
            Self::Unreadable(_) => FieldError::new("file", "not_utf8_csv"),
        }
    }
}

/// One line of the file, checked.
#[derive(Debug)]
pub struct PaperLine {
    /// As an editor numbers it: the header is line 1.
    pub line: u64,
    pub checked: Result<Collected, Vec<FieldError>>,
}

/// What became (or, in a dry run, would become) of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    Accepted,
    Duplicate,
    Invalid(Vec<FieldError>),
}

#[derive(Debug)]
pub struct ImportReport {
    pub dry_run: bool,
    pub lines: Vec<(u64, LineOutcome)>,
}

impl ImportReport {
    /// Lines accepted, duplicate and invalid.
    pub fn tally(&self) -> [usize; 3] {
        let mut t = [0; 3];
        for (_, o) in &self.lines {
            t[match o {
                LineOutcome::Accepted => 0,
                LineOutcome::Duplicate => 1,
                LineOutcome::Invalid(_) => 2,
            }] += 1;
        }
        t
    }
}

/// Reads and checks every line of a paper-form CSV (UTF-8, a header line,
/// comma-separated, RFC 4180 quoting; a byte-order mark is allowed).
pub fn read_paper_forms(
    file: &[u8],
    petition: &Petition,
    now: DateTime<Utc>,
) -> Result<Vec<PaperLine>, PaperError> {
    read_paper_forms_reporting(file, petition, now, |_| {})
}

/// As [`read_paper_forms`], telling `checked` how many lines have been
/// checked after each.
pub fn read_paper_forms_reporting(
    file: &[u8],
    petition: &Petition,
    now: DateTime<Utc>,
    mut checked: impl FnMut(usize),
) -> Result<Vec<PaperLine>, PaperError> {
    let file = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(file);
    let mut records = reader.records();
    let header = match records.next() {
        None => return Err(PaperError::Empty),
        Some(r) => r.map_err(|e| PaperError::Unreadable(e.to_string()))?,
    };
    let mut columns: Vec<&'static str> = Vec::with_capacity(header.len());
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        let known = *PAPER_COLUMNS
            .iter()
            .find(|c| **c == name)
            .ok_or(PaperError::UnknownColumn(i + 1))?;
        if columns.contains(&known) {
            return Err(PaperError::RepeatedColumn(known));
        }
        columns.push(known);
    }
    let mut needed = vec!["full_name", "country"];
    if !petition.signers.email_optional_offline {
        needed.push("email");
    }
    if let Some(missing) = needed.into_iter().find(|c| !columns.contains(c)) {
        return Err(PaperError::MissingColumn(missing));
    }
    let mut lines = Vec::new();
    // Line numbers as an editor shows them, counted here: the reader's own
    // count lags a line behind in files that end lines with CRLF.
    let (mut counted_to, mut newlines) = (0usize, 0u64);
    for record in records {
        let record = record.map_err(|e| PaperError::Unreadable(e.to_string()))?;
        let mut start = record
            .position()
            .map_or(0, |p| p.byte())
            .try_into()
            .unwrap_or(0);
        while matches!(file.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        newlines += file[counted_to.min(start)..start]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        counted_to = counted_to.max(start);
        let line = newlines + 1;
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        if lines.len() == PAPER_MAX_LINES {
            return Err(PaperError::TooManyLines);
        }
        let outcome = if record.len() != columns.len() {
            Err(vec![FieldError::new("line", "wrong_number_of_cells")])
        } else {
            let cell = |name: &str| {
                columns
                    .iter()
                    .position(|c| *c == name)
                    .map(|i| record[i].to_owned())
            };
            check_line(&cell, petition, now)
        };
        lines.push(PaperLine {
            line,
            checked: outcome,
        });
        checked(lines.len());
    }
    Ok(lines)
}

fn check_line(
    cell: &dyn Fn(&str) -> Option<String>,
    petition: &Petition,
    now: DateTime<Utc>,
) -> Result<Collected, Vec<FieldError>> {
    let input = SignatureInput {
        full_name: cell("full_name"),
        email: cell("email"),
        country: cell("country"),
        postal_code: cell("postal_code"),
        city: cell("city"),
        signer_kind: cell("signer_kind"),
        organization: cell("organization"),
        consent_updates: cell("consent_updates"),
        locale: cell("locale"),
        id: None,
    };
    let signed_at = match cell("signed_at").filter(|t| !t.trim().is_empty()) {
        // Undated, it is signed now: the petition must be taking signatures.
        None => petition
            .window
            .check(PetitionStatus::Open, now)
            .map(|()| None)
            .map_err(|_| FieldError::new("signed_at", "petition_not_open")),
        Some(t) => signed_at(&t, petition, now).map(Some),
    };
    match (
        Signature::parse_offline(input, &petition.signers),
        signed_at,
    ) {
        (Ok(signature), Ok(signed_at)) => Ok(Collected {
            signature,
            signed_at,
        }),
        (Ok(_), Err(e)) => Err(vec![e]),
        (Err(mut errors), time) => {
            errors.extend(time.err());
            Err(errors)
        }
    }
}

/// The date on the form: an RFC 3339 time, or a day (`2026-11-28`, taken at
/// noon UTC so it stays that day everywhere), within the petition's window.
fn signed_at(
    text: &str,
    petition: &Petition,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, FieldError> {
    let bad = |code| FieldError::new("signed_at", code);
    let t = parse_time(text)
        .or_else(|code| {
            chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .map(|d| d.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc())
                .map_err(|_| code)
        })
        .map_err(bad)?;
    if t > now + chrono::Duration::days(1) {
        return Err(bad("in_the_future"));
    }
    petition
        .window
        .check(PetitionStatus::Open, t)
        .map_err(|_| bad("petition_not_open"))?;
    Ok(t)
}

impl Ingest {
    /// Takes the valid lines (or, in a dry run, says what would become of
    /// them). A signer already stored, or a second time in the file, is a
    /// duplicate; each line's receipt comes from its signer, so a file
    /// imported again hears `accepted` for what it brought before, and adds
    /// nothing.
    pub async fn import(
        &self,
        petition: &Petition,
        lines: Vec<PaperLine>,
        dry_run: bool,
    ) -> Result<ImportReport, SignError> {
        let mut report = Vec::with_capacity(lines.len());
        let mut first = Vec::new();
        let mut seen = HashSet::new();
        for line in lines {
            let outcome = match line.checked {
                Err(errors) => Some(LineOutcome::Invalid(errors)),
                Ok(mut collected) => {
                    let key = self.pepper.signer(petition.id, &collected.signature);
                    if seen.insert(key) {
                        collected.signature.client_id = Some(key.paper_receipt());
                        first.push((collected, key));
                        None
                    } else {
                        Some(LineOutcome::Duplicate)
                    }
                }
            };
            report.push((line.line, outcome));
        }
        let outcomes = if dry_run {
            self.foresee(petition, &first).await?
        } else {
            let from = Provenance {
                channel: undersigned_domain::Channel::Paper,
                event_id: None,
                device_id: None,
            };
            let items = first.into_iter().map(|(c, _)| c).collect();
            self.sign_batch(petition, None, items, from)
                .await?
                .into_iter()
                .map(|filed| match filed {
                    Filed::Accepted(_) => LineOutcome::Accepted,
                    Filed::Duplicate(_) => LineOutcome::Duplicate,
                    // Another signature holds this signer's paper receipt: only
                    // a signer stored already can, so this is their duplicate.
                    Filed::IdReused => LineOutcome::Duplicate,
                    Filed::Blocked(_) => {
                        LineOutcome::Invalid(vec![FieldError::new("signature", "blocked")])
                    }
                })
                .collect()
        };
        let mut outcomes = outcomes.into_iter();
        let lines = report
            .into_iter()
            .map(|(line, o)| match o.or_else(|| outcomes.next()) {
                Some(outcome) => Ok((line, outcome)),
                None => Err(SignError::Storage(format!("no outcome for line {line}"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(ImportReport { dry_run, lines })
    }

    /// What an import would make of each signer's first line, writing nothing.
    async fn foresee(
        &self,
        petition: &Petition,
        first: &[(Collected, IdentityKey)],
    ) -> Result<Vec<LineOutcome>, SignError> {
        let keys: Vec<[u8; 32]> = first.iter().map(|(_, k)| k.0).collect();
        let stored = self
            .store
            .stored_identities(petition.id, &keys)
            .await
            .map_err(|e| SignError::Storage(e.to_string()))?;
        Ok(first
            .iter()
            .map(|(c, key)| {
                if let crate::Screening::Rejected(_) = self.screen(petition, None, &c.signature) {
                    return LineOutcome::Invalid(vec![FieldError::new("signature", "blocked")]);
                }
                match stored.get(&key.0) {
                    // This very form, imported before.
                    Some(id) if Some(*id) == c.signature.client_id => LineOutcome::Accepted,
                    Some(_) => LineOutcome::Duplicate,
                    None => LineOutcome::Accepted,
                }
            })
            .collect())
    }
}
