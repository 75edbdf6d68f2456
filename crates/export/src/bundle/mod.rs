//! The signed bundle: a zip of the signatures (CSV), the petition's texts and
//! a manifest that names every file's SHA-256, the counts and the Merkle root
//! of the signatures, signed with the campaign's Ed25519 export key; and its
//! offline checks.
//!
//! Members, in order: `petition.json`, `signatures.csv`, `signatures.pdf`
//! (the same signatures, in the same order, for printing), `manifest.json`,
//! `manifest.sig` (the raw 64-byte signature of `manifest.json`'s exact bytes).
//! The Merkle tree's leaves are the CSV's records after the header, in file
//! order, each without its CRLF (see `merkle` for the tree). The CSV's first
//! column, `receipt_sha256`, is the SHA-256 of the signer's receipt (its
//! lower-case hyphenated text), so a signer can find and prove their row.

mod proof;
mod verify;

use std::collections::BTreeMap;
use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use rawzip::{CompressionMethod, ZipArchiveWriter};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;

use crate::columns::{BOM, Buffer, CsvTable, RECEIPT_DIGEST};
use crate::merkle::RootBuilder;
use crate::{ExportError, ExportJob, Hashing, Rows, Summary, pdf};

pub use proof::{Proof, check_proof, prove};
pub use verify::{BundleCheck, verify_bundle};

pub const FORMAT: &str = "undersigned-bundle/1";
const PETITION: &str = "petition.json";
const SIGNATURES: &str = "signatures.csv";
const PRINTABLE: &str = "signatures.pdf";
const MANIFEST: &str = "manifest.json";
const SIGNATURE: &str = "manifest.sig";

/// Sends on what the zip writer wrote so far.
async fn send<W: AsyncWrite + Unpin>(
    pending: &Buffer,
    out: &mut Hashing<'_, W>,
) -> std::io::Result<()> {
    out.write(&pending.take()).await
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A whole member, compressed.
fn add(
    archive: &mut ZipArchiveWriter<Buffer>,
    name: &str,
    bytes: &[u8],
) -> Result<(), ExportError> {
    let (mut entry, config) = archive
        .new_file(name)
        .compression_method(CompressionMethod::Deflate)
        .start()?;
    let mut writer = config.wrap(DeflateEncoder::new(&mut entry, Compression::default()));
    writer.write_all(bytes)?;
    let (encoder, descriptor) = writer.finish()?;
    encoder.finish()?;
    entry.finish(descriptor)?;
    Ok(())
}

pub(crate) async fn write<W: AsyncWrite + Unpin + Send>(
    job: &ExportJob<'_>,
    rows: &mut Rows,
    out: &mut Hashing<'_, W>,
) -> Result<Summary, ExportError> {
    let (total, by_country) = rows.totals().await?;
    let pending = Buffer::default();
    let mut archive = ZipArchiveWriter::new(pending.clone());
    let mut files = BTreeMap::new();

    let p = job.petition;
    let texts = serde_json::to_vec_pretty(&json!({
        "slug": p.slug,
        "default_locale": p.wordings.locale,
        "wordings": std::iter::once((&p.wordings.locale, &p.wordings.default))
            .chain(p.wordings.translations.iter())
            .collect::<BTreeMap<_, _>>(),
        "goal": p.goal,
        "targets": p.targets,
    }))
    .unwrap_or_default();
    add(&mut archive, PETITION, &texts)?;
    files.insert(PETITION, sha256_hex(&texts));
    send(&pending, out).await?;

    let mut table = CsvTable::new(job.columns.clone(), true);
    let mut file = Sha256::new();
    let mut tree = RootBuilder::default();
    {
        let (mut entry, config) = archive
            .new_file(SIGNATURES)
            .compression_method(CompressionMethod::Deflate)
            .start()?;
        let mut writer = config.wrap(DeflateEncoder::new(&mut entry, Compression::fast()));
        let mut head = BOM.to_vec();
        head.extend(table.header()?);
        file.update(&head);
        writer.write_all(&head)?;
        while let Some(batch) = rows.batch().await? {
            for row in &batch {
                let record = table.record(row)?;
                tree.push(record.strip_suffix(b"\r\n").unwrap_or(&record));
                file.update(&record);
                writer.write_all(&record)?;
            }
            send(&pending, out).await?;
        }
        let (encoder, descriptor) = writer.finish()?;
        encoder.finish()?;
        entry.finish(descriptor)?;
    }
    if tree.leaves() != total {
        return Err(ExportError::Incomplete);
    }
    files.insert(SIGNATURES, hex::encode(file.finalize()));
    let merkle_root = hex::encode(tree.root());

    // The second pass over the same snapshot: the same rows, for printing.
    {
        let (mut entry, config) = archive
            .new_file(PRINTABLE)
            .compression_method(CompressionMethod::Deflate)
            .start()?;
        let mut writer = config.wrap(DeflateEncoder::new(&mut entry, Compression::fast()));
        let mut file = Sha256::new();
        let cover = pdf::Cover {
            total,
            by_country: &by_country,
            merkle_root: Some(&merkle_root),
        };
        let mut printer = pdf::Printer::new(job, cover);
        while let Some(bytes) = printer.next(rows).await? {
            file.update(&bytes);
            writer.write_all(&bytes)?;
            send(&pending, out).await?;
        }
        if printer.listed() != total {
            return Err(ExportError::Incomplete);
        }
        let (encoder, descriptor) = writer.finish()?;
        encoder.finish()?;
        entry.finish(descriptor)?;
        files.insert(PRINTABLE, hex::encode(file.finalize()));
    }

    let manifest = serde_json::to_vec_pretty(&json!({
        "format": FORMAT,
        "export_id": job.id,
        "petition": {
            "slug": p.slug,
            "title": p.wordings.default.title,
            "locale": p.wordings.locale,
            "goal": p.goal,
            "targets": p.targets,
        },
        "filters": job.filters_json(),
        "locale": job.locale,
        "columns": std::iter::once(RECEIPT_DIGEST).chain(job.column_names()).collect::<Vec<_>>(),
        "row_count": total,
        "by_country": by_country,
        "exported_at": job.exported_at,
        "files": files,
        "merkle_root": merkle_root,
        "merkle": "RFC 9162 §2.1: leaves are the records of signatures.csv after its header, \
                   in order, without their CRLF; leaf = SHA-256(0x00 ‖ record), \
                   node = SHA-256(0x01 ‖ left ‖ right)",
        "public_key": BASE64.encode(job.key.verifying_key().to_bytes()),
    }))
    .unwrap_or_default();
    add(&mut archive, MANIFEST, &manifest)?;
    add(&mut archive, SIGNATURE, &job.key.sign(&manifest).to_bytes())?;
    archive.finish()?;
    send(&pending, out).await?;
    Ok(Summary {
        rows: total,
        by_country,
        sha256: String::new(),
        manifest_sha256: Some(sha256_hex(&manifest)),
        merkle_root: Some(merkle_root),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use chrono::Utc;
    use ed25519_dalek::SigningKey;
    use undersigned_store::ExportFilter;
    use uuid::Uuid;

    use super::*;
    use crate::sample::{petition, row, snapshot};
    use crate::{Column, Format};

    /// A bundle of `n` signatures, as the service writes it.
    pub(crate) async fn bundle(n: u32, key: &SigningKey) -> Vec<u8> {
        let p = petition();
        let job = ExportJob {
            id: Uuid::nil(),
            petition: &p,
            filter: ExportFilter::default(),
            columns: Column::DELIVERY.to_vec(),
            format: Format::Bundle,
            locale: "en".into(),
            exported_at: Utc::now(),
            key,
        };
        // Two passes, as the snapshot reader sends them to a bundle.
        let mut rows = snapshot((0..n).map(row).collect(), 2);
        let mut out = Vec::new();
        let mut hashing = Hashing::new(&mut out);
        write(&job, &mut rows, &mut hashing).await.unwrap();
        out
    }

    /// The bundle again with one member's content replaced.
    pub(crate) fn rezip(
        members: &BTreeMap<String, Vec<u8>>,
        changed: &str,
        content: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut archive = ZipArchiveWriter::new(&mut out);
        for (name, data) in members {
            let data = if name == changed { content } else { data };
            let (mut entry, config) = archive.new_file(name).start().unwrap();
            let mut writer = config.wrap(&mut entry);
            writer.write_all(data).unwrap();
            let (_, descriptor) = writer.finish().unwrap();
            entry.finish(descriptor).unwrap();
        }
        archive.finish().unwrap();
        out
    }
}
