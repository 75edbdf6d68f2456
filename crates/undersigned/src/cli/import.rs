//! `undersigned import`: paper forms through the same checks and writers as
//! `POST /v1/petitions/{slug}/signatures:import`, audited the same way, with
//! a progress line on a terminal.

use std::path::PathBuf;

use serde_json::json;
use undersigned::{Config, OfflineIngest, offline_ingest};
use undersigned_ingest::{LineOutcome, read_paper_forms_reporting};

use super::progress::ProgressLine;
use super::{CliError, audited, petition_named, read_file, refused};

#[derive(clap::Args)]
pub struct ImportOptions {
    /// The slug of the petition the forms were signed for.
    #[arg(long)]
    petition: String,
    /// UTF-8 CSV with a header line naming its columns: full_name, email,
    /// country, postal_code, city, signer_kind, organization,
    /// consent_updates, locale, signed_at.
    #[arg(long)]
    file: PathBuf,
    /// Only check, and say what would become of each line.
    #[arg(long)]
    dry_run: bool,
}

/// "1 line", "2 lines".
fn line_count(n: usize) -> String {
    format!("{n} line{}", if n == 1 { "" } else { "s" })
}

/// One line of the report per line of the file (`line<TAB>status<TAB>field:code …`),
/// then the totals.
pub async fn import(options: ImportOptions, config: &Config) -> Result<(), CliError> {
    let file = read_file(&options.file)?;
    let offline = offline_ingest(config).await?;
    let imported = import_with(&options, &file, &offline).await;
    // On every path: what was queued is written, the tasks stop.
    offline.close().await;
    imported
}

async fn import_with(
    options: &ImportOptions,
    file: &[u8],
    offline: &OfflineIngest,
) -> Result<(), CliError> {
    let (store, ingest) = (&offline.store, &offline.ingest);
    let petition = petition_named(store, "--petition", &options.petition).await?;
    if petition.status != undersigned_domain::PetitionStatus::Open {
        return Err(CliError::Refused(format!(
            "--petition {:?}: the petition is {}, not open",
            options.petition,
            petition.status.as_str()
        )));
    }
    let mut line = ProgressLine::new();
    let checked = |n| line.update(|_| format!("import: {} checked", line_count(n)));
    let lines = read_paper_forms_reporting(file, &petition, chrono::Utc::now(), checked)
        .map_err(|e| refused(&options.file, e))?;
    line.show(&format!(
        "import: {} checked, {}",
        line_count(lines.len()),
        if options.dry_run {
            "looking for duplicates"
        } else {
            "storing"
        }
    ));
    let report = ingest
        .import(&petition, lines, options.dry_run)
        .await
        .map_err(|e| refused(&options.file, format!("not imported: {e}")))?;
    ingest.drain().await;
    drop(line);
    let [accepted, duplicate, refused] = report.tally();
    store
        .audit(
            &audited(
                "signatures.import",
                json!({"dry_run": options.dry_run, "lines": report.lines.len(),
                       "accepted": accepted, "duplicate": duplicate, "invalid": refused}),
            )
            .about(petition.id),
        )
        .await?;
    for (line, outcome) in &report.lines {
        let (status, reasons) = match outcome {
            LineOutcome::Accepted => ("accepted", String::new()),
            LineOutcome::Duplicate => ("duplicate", String::new()),
            LineOutcome::Invalid(errors) => (
                "invalid",
                errors
                    .iter()
                    .map(|e| format!("{}:{}", e.field, e.code))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        };
        println!("{line}\t{status}\t{reasons}");
    }
    println!(
        "{}{accepted} accepted, {duplicate} duplicate, {refused} invalid",
        if options.dry_run { "dry run: " } else { "" }
    );
    Ok(())
}
