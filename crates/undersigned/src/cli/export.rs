//! `undersigned export`: the same request checks, writer and audit entries as
//! `GET /v1/petitions/{slug}/export`, by an operator on the service's own
//! machine (who may read e-mails), with a progress line on a terminal.

use std::path::PathBuf;

use clap::ValueEnum;
use undersigned::{Config, open_export_key, open_store};
use undersigned_export::{ExportRequest, Progress, write_export_reporting};

use super::progress::{ProgressLine, rate};
use super::{CliError, audited, choice_name, country, petition_named, refused, write_whole};

#[derive(clap::Args)]
pub struct ExportOptions {
    /// The petition's slug.
    #[arg(long)]
    petition: String,
    /// The file's format.
    #[arg(long, value_enum, default_value_t = FormatName::Csv)]
    format: FormatName,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
    /// Only signatures from this country (ISO code); repeatable.
    #[arg(long = "country", value_parser = country)]
    countries: Vec<String>,
    /// Signed at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Signed before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Only signatures that came this way.
    #[arg(long, value_enum)]
    channel: Option<ChannelName>,
    /// Only people's signatures, or only organizations'.
    #[arg(long, value_enum)]
    signer_kind: Option<SignerKindName>,
    /// Which signatures, by what became of them (`counted` unless given).
    #[arg(long, value_enum)]
    status: Option<ExportStatusName>,
    /// Only signers who gave this consent; its columns are then those a
    /// mailing list takes, unless --columns says otherwise.
    #[arg(long, value_enum)]
    consent: Option<ConsentName>,
    /// The columns, comma-separated, in order (the delivery's unless given).
    #[arg(long, value_enum, value_delimiter = ',')]
    columns: Vec<ColumnName>,
    /// Which of the petition's texts the PDF shows (its default otherwise).
    #[arg(long)]
    locale: Option<String>,
}

/// An export's format.
#[derive(Clone, Copy, ValueEnum)]
pub enum FormatName {
    /// Comma-separated values, UTF-8 with a byte-order mark, for spreadsheets.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// A printable list for delivery, with the petition's text and counts.
    Pdf,
    /// A signed zip (CSV, PDF, manifest) a recipient checks offline with
    /// `bundle verify`.
    Bundle,
    /// A sealed petition's rows as sealed, for `unseal` with a recipient's key.
    Sealed,
}

/// How a signature reached the service.
#[derive(Clone, Copy, ValueEnum)]
pub enum ChannelName {
    /// A web form or the API.
    Web,
    /// An event's tablet.
    Event,
    /// A paper form, typed in and imported.
    Paper,
}

/// Who signed.
#[derive(Clone, Copy, ValueEnum)]
pub enum SignerKindName {
    /// A person, in their own name.
    Person,
    /// An organization.
    Organization,
}

/// What became of a signature.
#[derive(Clone, Copy, ValueEnum)]
pub enum ExportStatusName {
    /// Counted: neither invalidated nor held back. What is delivered.
    Counted,
    /// Removed from the count by an invalidation.
    Invalidated,
    /// Accepted in appearance only, by a block rule that shadows.
    Shadowed,
    /// Every signature, whatever became of it.
    All,
}

/// A column of the export.
#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ColumnName {
    /// The signature's receipt (a UUID), as the signer was given it.
    Receipt,
    /// The signer's name.
    FullName,
    /// The organization, for an organization's signature.
    Organization,
    /// person or organization.
    SignerKind,
    /// The signer's city.
    City,
    /// The signer's postal code.
    PostalCode,
    /// The signer's country (ISO code).
    Country,
    /// When it was signed (RFC 3339, UTC).
    SignedAt,
    /// web, event or paper.
    Channel,
    /// The signer's e-mail address.
    Email,
    /// The language the signer signed in.
    Locale,
    /// Whether the signer asked to be kept informed (true or false).
    ConsentUpdates,
    /// When they consented: confirmed their address, or signed where no
    /// confirmation was asked (RFC 3339, UTC).
    ConsentedAt,
}

/// Which signers' consent the export is for.
#[derive(Clone, Copy, ValueEnum)]
pub enum ConsentName {
    /// Only those who asked to be kept informed (`consent_updates`): the
    /// campaign's mailing list.
    Updates,
}

/// The export's progress, as its line shows it: rows written (of each pass,
/// for a bundle, which reads them twice) and their rate.
fn describe(p: Progress, elapsed: std::time::Duration) -> String {
    let pass = if p.passes > 1 {
        format!(" (pass {} of {})", p.pass, p.passes)
    } else {
        String::new()
    };
    let done = u64::from(p.pass - 1) * p.total + p.rows;
    format!(
        "export: {} of {} rows written{pass}, {} rows/s",
        p.rows,
        p.total,
        rate(done, elapsed)
    )
}

pub async fn export(options: ExportOptions, config: &Config) -> Result<(), CliError> {
    let format = choice_name(&options.format);
    let mut pairs: Vec<(&str, String)> = vec![("format", format)];
    pairs.extend(options.countries.iter().map(|c| ("country", c.clone())));
    if !options.columns.is_empty() {
        let names: Vec<String> = options.columns.iter().map(choice_name).collect();
        pairs.push(("columns", names.join(",")));
    }
    let choices = [
        ("channel", options.channel.as_ref().map(choice_name)),
        ("signer_kind", options.signer_kind.as_ref().map(choice_name)),
        ("status", options.status.as_ref().map(choice_name)),
        ("consent", options.consent.as_ref().map(choice_name)),
        ("since", options.since),
        ("until", options.until),
        ("locale", options.locale),
    ];
    pairs.extend(choices.into_iter().filter_map(|(n, v)| Some((n, v?))));
    let option = |field: &str, code: &str| format!("--{}: {code}", field.replace('_', "-"));
    let mut request =
        ExportRequest::parse(pairs.iter().map(|(n, v)| (*n, v.as_str()))).map_err(|errors| {
            CliError::Usage(
                errors
                    .iter()
                    .map(|e| option(&e.field, e.code))
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?;
    let (store, _) = open_store(config).await?;
    let key = open_export_key(config, &store).await?;
    let petition = petition_named(&store, "--petition", &options.petition).await?;
    request
        .bind(&petition)
        .map_err(|e| CliError::Refused(option(&e.field, e.code)))?;
    if let Some(erased) = petition.personal_data_erased_at
        && request.reads_personal_data()
    {
        return Err(CliError::Refused(format!(
            "--petition {}: its signers' personal data was erased on {} (its retention_days); \
             export --columns receipt,signer-kind,country,signed-at,channel instead",
            petition.slug,
            erased.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    request.fits(&petition).map_err(|sealed| {
        CliError::Refused(if sealed {
            format!(
                "--petition {}: its signer data is sealed; export it with --format sealed and \
                 open that with `undersigned unseal`",
                petition.slug
            )
        } else {
            format!(
                "--petition {}: --format sealed is for sealed petitions",
                petition.slug
            )
        })
    })?;
    let job = request.job(uuid::Uuid::now_v7(), chrono::Utc::now(), &petition, &key);
    store
        .audit(&audited("export", job.started()).about(petition.id))
        .await?;
    let mut line = ProgressLine::new();
    let report = move |p: Progress| line.update(|elapsed| describe(p, elapsed));
    let result = write_whole(&options.out, async |file| {
        write_export_reporting(&store, &job, file, report).await
    })
    .await?;
    let finish = job.finished(&result);
    store
        .audit(&audited("export.finish", finish).about(petition.id))
        .await?;
    let summary = result.map_err(|e| refused(&options.out, e))?;
    println!(
        "{}",
        serde_json::json!({
            "file": options.out, "rows": summary.rows, "by_country": summary.by_country,
            "sha256": summary.sha256, "merkle_root": summary.merkle_root,
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;
    use undersigned_domain::{Channel, SignerKind};
    use undersigned_export::{Column, Format};
    use undersigned_store::ExportStatus;

    use super::*;

    fn names<T: ValueEnum>() -> Vec<String> {
        T::value_variants().iter().map(choice_name).collect()
    }

    #[test]
    fn the_command_line_names_formats_filters_and_columns_as_the_api_does() {
        for name in names::<FormatName>() {
            assert!(Format::parse(&name).is_some(), "{name}");
        }
        for name in names::<ChannelName>() {
            assert!(Channel::parse(&name).is_some(), "{name}");
        }
        for name in names::<SignerKindName>() {
            assert!(SignerKind::parse(&name).is_some(), "{name}");
        }
        for name in names::<ExportStatusName>() {
            assert!(ExportStatus::parse(&name).is_some(), "{name}");
        }
        let api: Vec<&str> = Column::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names::<ColumnName>(), api);
    }
}
