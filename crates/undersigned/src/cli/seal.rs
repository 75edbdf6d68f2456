//! `undersigned seal-key generate` and `undersigned unseal`: a campaign's
//! keys for sealed petitions, and opening a sealed export on the campaign's
//! own machine, offline, without the database (crates/seal).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use undersigned::ExportKey;
use undersigned_export::{Format, Unsealing, unseal};

use super::{CliError, read_file, refused, write_whole};

#[derive(Subcommand)]
pub enum SealKeyCommand {
    /// Write a new age identity to a file (mode 0600) and print its public
    /// recipient last on stdout: the `sealing_key` to give a petition.
    Generate {
        /// The file to write the identity to; refused when it exists. Keep it
        /// off the service's machines: whoever holds it opens the signatures.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
pub struct UnsealOptions {
    /// An identity file of one of the petition's recipients (from `seal-key
    /// generate` or `age-keygen`).
    #[arg(long)]
    key: PathBuf,
    /// The sealed export (`GET /v1/petitions/{slug}/export?format=sealed`).
    #[arg(long = "in")]
    input: PathBuf,
    /// The format to write, as the service writes it for a clear petition.
    #[arg(long, value_enum)]
    format: OpenedFormat,
    /// The file to write.
    #[arg(long)]
    out: PathBuf,
    /// The Ed25519 key that signs a bundle: a file holding its seed as 64
    /// hex digits (the form of UNDERSIGNED_EXPORT_SIGNING_KEY).
    #[arg(long)]
    signing_key: Option<PathBuf>,
}

/// What a sealed export is opened into.
#[derive(Clone, Copy, ValueEnum)]
pub enum OpenedFormat {
    /// Comma-separated values, UTF-8 with a byte-order mark.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// A printable list for delivery, with the petition's text and counts.
    Pdf,
    /// A signed zip a recipient checks offline with `bundle verify`.
    Bundle,
}

pub fn key(command: SealKeyCommand) -> Result<(), CliError> {
    let SealKeyCommand::Generate { out } = command;
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (secret, public) = undersigned_seal::generate(&created);
    let file_error = |source| CliError::File {
        path: out.clone(),
        source,
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&out)
        .and_then(|mut file| {
            file.write_all(secret.as_bytes())?;
            file.sync_all()
        })
        .map_err(file_error)?;
    println!(
        "wrote the identity to {} (mode 0600): keep it off the service's machines, and a copy \
         somewhere safe; without it the sealed signatures cannot be opened",
        out.display()
    );
    println!("public key (the petition's sealing_key):");
    println!("{public}");
    Ok(())
}

pub async fn open(options: UnsealOptions) -> Result<(), CliError> {
    let identity = String::from_utf8(read_file(&options.key)?)
        .map_err(|_| refused(&options.key, "not an age identity file (not UTF-8)"))?;
    let signing_key = options
        .signing_key
        .as_ref()
        .map(|path| {
            let text = String::from_utf8(read_file(path)?).unwrap_or_default();
            text.parse::<ExportKey>()
                .map(ExportKey::into_signing_key)
                .map_err(|why| refused(path, why))
        })
        .transpose()?;
    let format = match options.format {
        OpenedFormat::Csv => Format::Csv,
        OpenedFormat::Jsonl => Format::Jsonl,
        OpenedFormat::Pdf => Format::Pdf,
        OpenedFormat::Bundle => Format::Bundle,
    };
    let unsealing = Unsealing {
        identity: &identity,
        input: &options.input,
        format,
        signing_key: signing_key.as_ref(),
    };
    // A row that does not open leaves no partial file.
    let summary = write_whole(&options.out, async |file| unseal(unsealing, file).await)
        .await?
        .map_err(|e| CliError::Refused(e.to_string()))?;
    let signatures = if summary.rows == 1 {
        "signature"
    } else {
        "signatures"
    };
    println!(
        "unsealed {} {signatures} into {} (sha256 {})",
        summary.rows,
        options.out.display(),
        summary.sha256
    );
    Ok(())
}
