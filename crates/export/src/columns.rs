//! What an export shows of each signature, and how a cell is written.

use std::borrow::Cow;

use chrono::SecondsFormat;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use undersigned_store::ExportRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Receipt,
    FullName,
    Organization,
    SignerKind,
    City,
    PostalCode,
    Country,
    SignedAt,
    Channel,
    Email,
    Locale,
    ConsentUpdates,
    ConsentedAt,
}

impl Column {
    pub const ALL: [Self; 13] = [
        Self::Receipt,
        Self::FullName,
        Self::Organization,
        Self::SignerKind,
        Self::City,
        Self::PostalCode,
        Self::Country,
        Self::SignedAt,
        Self::Channel,
        Self::Email,
        Self::Locale,
        Self::ConsentUpdates,
        Self::ConsentedAt,
    ];

    /// What the export of those who asked to be kept informed shows unless
    /// asked otherwise: what a mailing list takes.
    pub const CONSENT: [Self; 5] = [
        Self::Email,
        Self::FullName,
        Self::Country,
        Self::Locale,
        Self::ConsentedAt,
    ];

    /// Whether it shows a signer's personal data (what retention erases and
    /// sealing seals), rather than what is kept for counts.
    pub fn is_personal(self) -> bool {
        matches!(
            self,
            Self::FullName | Self::Organization | Self::City | Self::PostalCode | Self::Email
        )
    }

    /// What a delivery shows unless asked otherwise: who, where from, when.
    pub const DELIVERY: [Self; 6] = [
        Self::FullName,
        Self::Organization,
        Self::City,
        Self::PostalCode,
        Self::Country,
        Self::SignedAt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receipt => "receipt",
            Self::FullName => "full_name",
            Self::Organization => "organization",
            Self::SignerKind => "signer_kind",
            Self::City => "city",
            Self::PostalCode => "postal_code",
            Self::Country => "country",
            Self::SignedAt => "signed_at",
            Self::Channel => "channel",
            Self::Email => "email",
            Self::Locale => "locale",
            Self::ConsentUpdates => "consent_updates",
            Self::ConsentedAt => "consented_at",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s.trim())
    }

    /// The value, `None` when the signature has none.
    pub(crate) fn value(self, row: &ExportRow) -> Option<Cow<'_, str>> {
        match self {
            Self::Receipt => Some(row.id.to_string().into()),
            Self::FullName => Some(row.full_name.as_str().into()),
            Self::Organization => row.organization.as_deref().map(Cow::from),
            Self::SignerKind => Some(row.signer_kind.as_str().into()),
            Self::City => row.city.as_deref().map(Cow::from),
            Self::PostalCode => row.postal_code.as_deref().map(Cow::from),
            Self::Country => Some(row.country.as_str().into()),
            Self::SignedAt => Some(
                row.signed_at
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
                    .into(),
            ),
            Self::Channel => Some(row.channel.as_str().into()),
            Self::Email => row.email.as_deref().map(Cow::from),
            Self::Locale => row.locale.as_deref().map(Cow::from),
            Self::ConsentUpdates => Some(if row.consent_updates { "true" } else { "false" }.into()),
            Self::ConsentedAt => Some(
                row.consented_at
                    .to_rfc3339_opts(SecondsFormat::Secs, true)
                    .into(),
            ),
        }
    }
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, their
/// full-width forms that some locales read alike, and the tab and carriage
/// return that some read as such) gets a leading apostrophe,
/// which shows it as the text it is (OWASP's advice on CSV injection).
pub fn defuse(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '＝' | '＋' | '－' | '＠') => {
            format!("'{cell}").into()
        }
        _ => cell.into(),
    }
}

/// The SHA-256 of a receipt's text form, lower-case hex: what a bundle shows
/// so that a signer can find their own row without anyone else learning it.
pub fn receipt_digest(receipt: &uuid::Uuid) -> String {
    hex::encode(Sha256::digest(receipt.hyphenated().to_string()))
}

/// Writes signatures as CSV: UTF-8 with a byte-order mark (so spreadsheet
/// programs read non-Latin names right), a header, CRLF line ends, quotes
/// where needed, formulas defused.
pub struct CsvTable {
    columns: Vec<Column>,
    /// A bundle's first column: the receipt's digest.
    receipt_digest: bool,
    writer: csv::Writer<Buffer>,
    written: Buffer,
}

/// Bytes written by one part of an export, until another takes them.
#[derive(Clone, Default)]
pub(crate) struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Buffer {
    pub(crate) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub const BOM: &[u8] = "\u{feff}".as_bytes();

/// The name of a bundle's first column.
pub const RECEIPT_DIGEST: &str = "receipt_sha256";

impl CsvTable {
    pub fn new(columns: Vec<Column>, receipt_digest: bool) -> Self {
        let written = Buffer::default();
        Self {
            columns,
            receipt_digest,
            writer: csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(written.clone()),
            written,
        }
    }

    /// The header line, with its CRLF.
    pub fn header(&mut self) -> Result<Vec<u8>, csv::Error> {
        let names = self
            .receipt_digest
            .then_some(RECEIPT_DIGEST)
            .into_iter()
            .chain(self.columns.iter().map(|c| c.as_str()));
        self.writer.write_record(names)?;
        self.take()
    }

    /// One signature's line, with its CRLF.
    pub fn record(&mut self, row: &ExportRow) -> Result<Vec<u8>, csv::Error> {
        let mut cells: Vec<String> = Vec::with_capacity(self.columns.len() + 1);
        if self.receipt_digest {
            cells.push(receipt_digest(&row.id));
        }
        for column in &self.columns {
            cells.push(
                column
                    .value(row)
                    .map_or_else(String::new, |v| defuse(&v).into_owned()),
            );
        }
        self.writer.write_record(&cells)?;
        self.take()
    }

    fn take(&mut self) -> Result<Vec<u8>, csv::Error> {
        self.writer.flush()?;
        Ok(self.written.take())
    }
}

/// One signature as a line of JSON (values as stored, nothing defused: no
/// spreadsheet reads JSON lines), with its newline.
pub fn json_line(columns: &[Column], row: &ExportRow) -> Vec<u8> {
    let object: Map<String, Value> = columns
        .iter()
        .map(|c| {
            let value = c
                .value(row)
                .map_or(Value::Null, |v| Value::from(v.into_owned()));
            (c.as_str().to_owned(), value)
        })
        .collect();
    let mut line = serde_json::to_vec(&object).unwrap_or_default();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_the_rest_left_alone() {
        for evil in [
            "=HYPERLINK(\"x\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "＝1+1",
            "＠A1",
        ] {
            assert_eq!(defuse(evil), format!("'{evil}"));
        }
        for fine in ["Ana-Maria", "Ли", "محمد", "O'Brien", ""] {
            assert_eq!(defuse(fine), fine);
        }
    }
}
