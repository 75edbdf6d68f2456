//! An export as asked for: format, filters and columns, from a query string's
//! pairs (the HTTP API) or the command line's options, checked alike.

use undersigned_domain::{Channel, Country, FieldError, Locale, SignerKind, parse_time};
use undersigned_store::{ExportFilter, ExportStatus};

use crate::{Column, ExportJob, Format};

#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub format: Format,
    /// Its `countries`: `None` for every country (within the reader's scope).
    pub filter: ExportFilter,
    pub columns: Vec<Column>,
    /// Which of the petition's texts a PDF shows; its default when absent.
    pub locale: Option<Locale>,
}

impl ExportRequest {
    /// From `name=value` pairs: `format` (csv, jsonl, pdf or bundle; csv when
    /// absent), `country` (repeatable, or comma-separated), `since`, `until`
    /// (RFC 3339), `channel`, `signer_kind`, `status` (counted, invalidated,
    /// shadowed or all; counted when absent), `consent` (`updates`: only
    /// signers who asked to be kept informed), `columns` (comma-separated;
    /// the delivery columns when absent, or with `consent` those a mailing
    /// list takes) and `locale` (the petition's text a
    /// PDF shows; its default when absent). Any other name is refused: a typo
    /// must not widen an export.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut request = Self {
            format: Format::Csv,
            filter: ExportFilter::default(),
            columns: Column::DELIVERY.to_vec(),
            locale: None,
        };
        let mut errors_unknown = Vec::new();
        let mut columns_given = false;
        let mut note =
            |field: &'static str, code: &'static str| errors.push(FieldError::new(field, code));
        for (name, value) in pairs {
            let value = value.trim();
            match name {
                "format" => match Format::parse(value) {
                    Some(f) => request.format = f,
                    None => note("format", "invalid"),
                },
                "country" => {
                    for code in value.split(',').filter(|c| !c.trim().is_empty()) {
                        match Country::parse(code) {
                            Some(c) => request
                                .filter
                                .countries
                                .get_or_insert_with(Vec::new)
                                .push(c.as_str().to_owned()),
                            None => note("country", "unknown_country"),
                        }
                    }
                }
                "since" | "until" => match parse_time(value) {
                    Ok(t) if name == "since" => request.filter.since = Some(t),
                    Ok(t) => request.filter.until = Some(t),
                    Err(code) => note(if name == "since" { "since" } else { "until" }, code),
                },
                "channel" => match Channel::parse(value) {
                    Some(c) => request.filter.channel = Some(c),
                    None => note("channel", "invalid"),
                },
                "signer_kind" => match SignerKind::parse(value) {
                    Some(k) => request.filter.signer_kind = Some(k),
                    None => note("signer_kind", "invalid"),
                },
                "status" => match ExportStatus::parse(value) {
                    Some(s) => request.filter.status = s,
                    None => note("status", "invalid"),
                },
                "consent" => match value {
                    "updates" => request.filter.consented = true,
                    _ => note("consent", "invalid"),
                },
                "columns" => {
                    columns_given = true;
                    let parsed: Option<Vec<Column>> = value
                        .split(',')
                        .filter(|c| !c.trim().is_empty())
                        .map(Column::parse)
                        .collect();
                    match parsed {
                        Some(c) if !c.is_empty() => {
                            let mut unique = Vec::new();
                            for column in c {
                                if !unique.contains(&column) {
                                    unique.push(column);
                                }
                            }
                            request.columns = unique;
                        }
                        _ => note("columns", "invalid"),
                    }
                }
                "locale" => match Locale::parse(value) {
                    Ok(l) => request.locale = Some(l),
                    Err(code) => note("locale", code),
                },
                other => errors_unknown.push(FieldError::new(other.to_owned(), "unknown")),
            }
        }
        errors.extend(errors_unknown);
        if let Some(countries) = &mut request.filter.countries {
            countries.sort();
            countries.dedup();
        }
        if let (Some(since), Some(until)) = (request.filter.since, request.filter.until)
            && since >= until
        {
            errors.push(FieldError::new("until", "before_since"));
        }
        // Consent counts from signers whose signatures count: a pending
        // signer never confirmed their address, and a held-back or
        // invalidated signature may not be its owner's at all.
        if request.filter.consented && request.filter.status != ExportStatus::Counted {
            errors.push(FieldError::new("status", "counted_only_with_consent"));
        }
        if request.filter.consented && !columns_given {
            request.columns = Column::CONSENT.to_vec();
        }
        request.filter.with_email = request.columns.contains(&Column::Email);
        request.filter.sealed = request.format == Format::Sealed;
        if errors.is_empty() {
            Ok(request)
        } else {
            Err(errors)
        }
    }

    pub fn wants_email(&self) -> bool {
        self.filter.with_email
    }

    /// Binds the request to `petition`: its signatures, and its text in the
    /// locale asked for, which it must have.
    pub fn bind(&mut self, petition: &undersigned_store::Petition) -> Result<(), FieldError> {
        self.filter.petition_id = petition.id;
        match &self.locale {
            Some(wanted) if petition.wordings.find(wanted).is_none() => {
                Err(FieldError::new("locale", "not_available"))
            }
            _ => Ok(()),
        }
    }

    /// Whether it reads signers' personal data: a personal column, or the
    /// sealed fields.
    pub fn reads_personal_data(&self) -> bool {
        self.format == Format::Sealed || self.columns.iter().any(|c| c.is_personal())
    }

    /// Whether the format fits the petition: a sealed petition's personal
    /// fields leave only sealed (`format=sealed`; what stays in clear, like
    /// receipts and countries, exports in any format), and only a sealed
    /// petition has sealed rows. `Err(sealed)`, whether the petition is
    /// sealed, when it does not.
    pub fn fits(&self, petition: &undersigned_store::Petition) -> Result<(), bool> {
        let sealed = !petition.sealing.is_empty();
        match (sealed, self.format == Format::Sealed) {
            (false, true) => Err(false),
            (true, false) if self.reads_personal_data() => Err(true),
            _ => Ok(()),
        }
    }

    /// The export of this request (bound to `petition`), identified by `id`.
    pub fn job<'a>(
        &self,
        id: uuid::Uuid,
        exported_at: chrono::DateTime<chrono::Utc>,
        petition: &'a undersigned_store::Petition,
        key: &'a ed25519_dalek::SigningKey,
    ) -> ExportJob<'a> {
        let wordings = &petition.wordings;
        let locale = self
            .locale
            .as_ref()
            .and_then(|wanted| wordings.find(wanted))
            .map_or(wordings.locale.as_str(), |(l, _)| l)
            .to_owned();
        ExportJob {
            id,
            petition,
            filter: self.filter.clone(),
            columns: self.columns.clone(),
            format: self.format,
            locale,
            exported_at,
            key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_every_filter() {
        let r = ExportRequest::parse([]).unwrap();
        assert_eq!(r.format, Format::Csv);
        assert_eq!(r.columns, Column::DELIVERY);
        assert!(!r.filter.with_email);
        let r = ExportRequest::parse([
            ("format", "bundle"),
            ("country", "nl,BE"),
            ("country", "nl"),
            ("since", "2026-01-01T00:00:00Z"),
            ("channel", "paper"),
            ("signer_kind", "organization"),
            ("status", "all"),
            ("columns", "full_name,email,full_name"),
            ("locale", "fr-ca"),
        ])
        .unwrap();
        assert_eq!(r.format, Format::Bundle);
        assert_eq!(r.filter.countries, Some(vec!["BE".into(), "NL".into()]));
        assert_eq!(r.columns, [Column::FullName, Column::Email]);
        assert!(r.filter.with_email && r.wants_email());
        assert_eq!(r.filter.status, ExportStatus::All);
        assert_eq!(r.locale.as_ref().map(Locale::as_str), Some("fr-CA"));
        let errors = ExportRequest::parse([
            ("format", "pdfx"),
            ("locale", ""),
            ("country", "ZZ"),
            ("since", "2026-02-01T00:00:00Z"),
            ("until", "2026-01-01T00:00:00Z"),
            ("columns", "password"),
            ("countrys", "NL"),
        ])
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| (e.field.as_ref(), e.code)).collect();
        assert_eq!(
            fields,
            [
                ("format", "invalid"),
                ("locale", "required"),
                ("country", "unknown_country"),
                ("columns", "invalid"),
                ("countrys", "unknown"),
                ("until", "before_since")
            ]
        );
    }
}
