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
use rawzip::time::UtcDateTime;
use rawzip::{CompressionMethod, ZipArchiveWriter, ZipDataWriterConfig, ZipEntryWriter};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;
use undersigned_store::ReadFrom;

use crate::columns::{BOM, Buffer, CsvTable, RECEIPT_DIGEST};
use crate::merkle::RootBuilder;
use crate::{ExportError, ExportJob, Hashing, Rows, Summary, pdf};

pub use proof::{Proof, check_proof, prove};
pub use verify::{BundleCheck, verify_bundle, verify_bundle_reporting};

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

/// A member, compressed and dated `at`: in the zip's DOS date and time
/// (local time in the format, UTC here, in steps of two seconds) and in an
/// extended timestamp (UTC, to the second). Undated, its DOS date read
/// 1980-00-00, which is no date.
fn member<'a, W: Write>(
    archive: &'a mut ZipArchiveWriter<W>,
    name: &str,
    at: UtcDateTime,
) -> Result<(ZipEntryWriter<'a, W>, ZipDataWriterConfig), ExportError> {
    Ok(archive
        .new_file(name)
        .compression_method(CompressionMethod::Deflate)
        .last_modified(at)
        .start()?)
}

/// A whole member.
fn add<W: Write>(
    archive: &mut ZipArchiveWriter<W>,
    name: &str,
    at: UtcDateTime,
    bytes: &[u8],
) -> Result<(), ExportError> {
    let (mut entry, config) = member(archive, name, at)?;
    let mut writer = config.wrap(DeflateEncoder::new(&mut entry, Compression::default()));
    writer.write_all(bytes)?;
    let (encoder, descriptor) = writer.finish()?;
    encoder.finish()?;
    entry.finish(descriptor)?;
    Ok(())
}

/// The manifest: what the bundle holds, each member's SHA-256 and the Merkle
/// root of the signatures.
fn manifest(
    job: &ExportJob<'_>,
    (total, withdrawn): (u64, u64),
    by_country: &BTreeMap<String, u64>,
    files: &BTreeMap<&str, String>,
    merkle_root: &str,
) -> Vec<u8> {
    let p = job.petition;
    serde_json::to_vec_pretty(&json!({
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
        // Receipts of signatures withdrawn by their signers (or erased on
        // request): left out, their data gone, counted here.
        "withdrawn_skipped": withdrawn,
        "by_country": by_country,
        "exported_at": job.exported_at,
        "files": files,
        "merkle_root": merkle_root,
        "merkle": "RFC 9162 §2.1: leaves are the records of signatures.csv after its header, \
                   in order, without their CRLF; leaf = SHA-256(0x00 ‖ record), \
                   node = SHA-256(0x01 ‖ left ‖ right)",
        "public_key": BASE64.encode(job.key.verifying_key().to_bytes()),
    }))
    .unwrap_or_default()
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
    let at = UtcDateTime::from_unix(job.exported_at.timestamp());

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
    add(&mut archive, PETITION, at, &texts)?;
    files.insert(PETITION, sha256_hex(&texts));
    send(&pending, out).await?;

    let mut table = CsvTable::new(job.columns.clone(), true);
    let mut file = Sha256::new();
    let mut tree = RootBuilder::default();
    {
        let (mut entry, config) = member(&mut archive, SIGNATURES, at)?;
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
        let (mut entry, config) = member(&mut archive, PRINTABLE, at)?;
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

    let manifest = manifest(
        job,
        (total, rows.withdrawn),
        &by_country,
        &files,
        &merkle_root,
    );
    add(&mut archive, MANIFEST, at, &manifest)?;
    add(
        &mut archive,
        SIGNATURE,
        at,
        &job.key.sign(&manifest).to_bytes(),
    )?;
    archive.finish()?;
    send(&pending, out).await?;
    Ok(Summary {
        rows: total,
        by_country,
        sha256: String::new(),
        read_from: ReadFrom::Primary,
        manifest_sha256: Some(sha256_hex(&manifest)),
        merkle_root: Some(merkle_root),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};
    use ed25519_dalek::SigningKey;
    use rawzip::time::ZipDateTimeKind;
    use undersigned_domain::{Country, Target};

    use super::*;
    use crate::sample::{job, petition, row, snapshot};
    use crate::{Column, Format};

    /// A bundle of `n` signatures, as the service writes it.
    pub(crate) async fn bundle(n: u32, key: &SigningKey) -> Vec<u8> {
        let p = petition();
        write_bundle(&job(&p, key, Format::Bundle), n).await
    }

    async fn write_bundle(job: &ExportJob<'_>, n: u32) -> Vec<u8> {
        // Two passes, as the snapshot reader sends them to a bundle.
        let mut rows = snapshot((0..n).map(row).collect(), 2);
        let mut out = Vec::new();
        let mut hashing = Hashing::new(&mut out);
        write(job, &mut rows, &mut hashing).await.unwrap();
        out
    }

    #[tokio::test]
    async fn progress_is_reported_from_the_totals_to_every_row_of_each_pass() {
        let p = petition();
        let key = SigningKey::from_bytes(&[7; 32]);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let report = {
            let seen = seen.clone();
            move |p: crate::Progress| seen.lock().unwrap().push((p.pass, p.rows, p.total))
        };
        // 20 rows in batches of 7: 7, 14, 20 written in each pass.
        let mut rows = crate::sample::reported_snapshot((0..20).map(row).collect(), 2, report);
        let mut out = Vec::new();
        write(
            &job(&p, &key, Format::Bundle),
            &mut rows,
            &mut Hashing::new(&mut out),
        )
        .await
        .unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                (1, 0, 20),
                (1, 7, 20),
                (1, 14, 20),
                (1, 20, 20),
                (2, 0, 20),
                (2, 7, 20),
                (2, 14, 20),
                (2, 20, 20)
            ]
        );
    }

    #[tokio::test]
    async fn members_are_dated_the_export_time() {
        let p = petition();
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut job = job(&p, &key, Format::Bundle);
        // An odd second: the DOS time has steps of two.
        job.exported_at = Utc.with_ymd_and_hms(2026, 11, 29, 13, 53, 25).unwrap();
        let zip = write_bundle(&job, 3).await;
        let archive = rawzip::ZipArchive::from_slice(&zip).unwrap();
        let mut entries = archive.entries();
        let mut dated = 0;
        while let Some(entry) = entries.next_entry().unwrap() {
            // The extended timestamp, which readers prefer to the DOS fields.
            match entry.last_modified() {
                ZipDateTimeKind::Utc(t) => assert_eq!(t.to_unix(), job.exported_at.timestamp()),
                other => panic!("no extended timestamp: {other:?}"),
            }
            // The DOS date and time, in the central directory record and in
            // the local header alike.
            let field = |at: usize| u16::from_le_bytes([zip[at], zip[at + 1]]);
            let central = entry.central_directory_offset() as usize;
            let local = entry.local_header_offset() as usize;
            let (time, date) = (field(central + 12), field(central + 14));
            assert_eq!((time, date), (field(local + 10), field(local + 12)));
            let dos = chrono::NaiveDate::from_ymd_opt(
                1980 + i32::from(date >> 9),
                u32::from(date >> 5 & 0xf),
                u32::from(date & 0x1f),
            )
            .and_then(|d| {
                d.and_hms_opt(
                    u32::from(time >> 11),
                    u32::from(time >> 5 & 0x3f),
                    u32::from(time & 0x1f) * 2,
                )
            })
            .unwrap_or_else(|| panic!("DOS date {date:#06x} and time {time:#06x} are no date"))
            .and_utc();
            let behind = job.exported_at - dos;
            assert!(
                behind >= chrono::TimeDelta::zero() && behind < chrono::TimeDelta::seconds(2),
                "{dos} for {}",
                job.exported_at
            );
            dated += 1;
        }
        assert_eq!(dated, 5);
    }

    #[test]
    fn the_largest_manifest_the_service_writes_is_within_its_bound() {
        // Every text at its longest, in four-byte characters.
        let long = |n: usize| "𝔓".repeat(n);
        let mut p = petition();
        p.slug = "s".repeat(64);
        p.wordings.default.title = long(200);
        p.targets = (0..100)
            .map(|_| Target {
                name: long(200),
                country: Some("NL".into()),
                contact: Some(long(300)),
            })
            .collect();
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut job = job(&p, &key, Format::Bundle);
        job.locale = "x".repeat(35);
        job.columns = Column::ALL.to_vec();
        // Every country, filtered on and counted.
        let countries: Vec<String> = (b'A'..=b'Z')
            .flat_map(|a| (b'A'..=b'Z').map(move |b| String::from_utf8(vec![a, b]).unwrap()))
            .filter(|c| Country::parse(c).is_some())
            .collect();
        assert_eq!(countries.len(), 250);
        job.filter.countries = Some(countries.clone());
        job.filter.since = Some(Utc::now());
        job.filter.until = Some(Utc::now());
        let by_country = countries.into_iter().map(|c| (c, 1_000_000_000)).collect();
        let files = [PETITION, SIGNATURES, PRINTABLE]
            .map(|name| (name, "f".repeat(64)))
            .into();
        let manifest = manifest(
            &job,
            (u64::MAX, u64::MAX),
            &by_country,
            &files,
            &"f".repeat(64),
        );
        assert!(
            manifest.len() as u64 <= verify::MANIFEST_MAX / 2,
            "{} bytes",
            manifest.len()
        );
    }

    /// The bundle again with one member's content replaced.
    pub(crate) fn rezip(
        members: &BTreeMap<String, Vec<u8>>,
        changed: &str,
        content: &[u8],
    ) -> Vec<u8> {
        let members: Vec<(&str, &[u8])> = members
            .iter()
            .map(|(name, data)| (name.as_str(), if name == changed { content } else { data }))
            .collect();
        zip_of(&members)
    }

    /// A zip of these members, deflated, in this order and named exactly as
    /// given: the zip writer would tidy a name like `../x`, so each is written
    /// under a stand-in of its length, then renamed in its local header and
    /// its central directory record.
    pub(crate) fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut archive = ZipArchiveWriter::new(&mut out);
        for (name, data) in members {
            add(
                &mut archive,
                &"x".repeat(name.len()),
                UtcDateTime::from_unix(0),
                data,
            )
            .unwrap();
        }
        archive.finish().unwrap();
        let mut at = Vec::new();
        let zip = rawzip::ZipArchive::from_slice(&out).unwrap();
        let mut entries = zip.entries();
        while let Some(entry) = entries.next_entry().unwrap() {
            // The fixed parts of the two records before the name.
            at.push(entry.local_header_offset() as usize + 30);
            at.push(entry.central_directory_offset() as usize + 46);
        }
        for (name, at) in members.iter().flat_map(|(n, _)| [n, n]).zip(at) {
            out[at..at + name.len()].copy_from_slice(name.as_bytes());
        }
        out
    }
}
