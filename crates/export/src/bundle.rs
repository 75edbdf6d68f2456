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

use std::collections::BTreeMap;
use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, VerifyingKey};
use flate2::Compression;
use flate2::write::DeflateEncoder;
use rawzip::{CompressionMethod, ZipArchiveWriter};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;
use uuid::Uuid;

use crate::columns::{BOM, Buffer, CsvTable, RECEIPT_DIGEST, receipt_digest};
use crate::merkle::{self, Hash, RootBuilder};
use crate::{ExportError, ExportJob, Hashing, Rows, Summary, pdf};

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

/// The manifest's fields that the checks read.
#[derive(Debug, Deserialize)]
struct Manifest {
    format: String,
    row_count: u64,
    by_country: BTreeMap<String, u64>,
    files: BTreeMap<String, String>,
    merkle_root: String,
    public_key: String,
    petition: Value,
}

/// What a bundle that checks out holds.
#[derive(Debug, Clone, Serialize)]
pub struct BundleCheck {
    pub petition: String,
    pub row_count: u64,
    pub merkle_root: String,
    /// The key that signed it (base64), checked against the trusted one when
    /// one was given.
    pub public_key: String,
    pub key_trusted: bool,
    /// The files whose SHA-256 matched the manifest's.
    pub files: Vec<String>,
}

/// Every member, uncompressed, each checked against its CRC.
fn members(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    read_members(bytes, |name, reader| {
        let mut data = Vec::new();
        reader
            .read_to_end(&mut data)
            .map_err(|e| format!("{name}: damaged ({e})"))?;
        Ok(data)
    })
}

/// Each member read once, as it is decompressed (and checked against its
/// CRC), by `read`.
fn read_members<T>(
    bytes: &[u8],
    mut read: impl FnMut(&str, &mut dyn Read) -> Result<T, String>,
) -> Result<BTreeMap<String, T>, String> {
    let archive = rawzip::ZipArchive::from_slice(bytes).map_err(|e| format!("not a zip: {e}"))?;
    let mut entries = archive.entries();
    let mut found = BTreeMap::new();
    while let Some(entry) = entries
        .next_entry()
        .map_err(|e| format!("damaged zip: {e}"))?
    {
        let name = entry
            .file_path()
            .try_normalize()
            .map_err(|e| format!("a member with a bad name: {e}"))?
            .as_ref()
            .to_owned();
        let local = archive
            .get_entry(entry.wayfinder())
            .map_err(|e| format!("{name}: {e}"))?;
        let value = match entry.compression_method() {
            CompressionMethod::Store => read(&name, &mut local.verifying_reader(local.data()))?,
            CompressionMethod::Deflate => read(
                &name,
                &mut local.verifying_reader(flate2::bufread::DeflateDecoder::new(local.data())),
            )?,
            other => {
                return Err(format!(
                    "{name}: compression {other:?} is not used in bundles"
                ));
            }
        };
        if found.insert(name.clone(), value).is_some() {
            return Err(format!("{name} appears twice"));
        }
    }
    Ok(found)
}

/// What the checks need of a member, read in one pass: its SHA-256; the bytes
/// of the manifest and its signature; the facts of the signatures' CSV.
struct Member {
    sha256: String,
    bytes: Option<Vec<u8>>,
    csv: Option<Result<CsvFacts, String>>,
}

/// What `signatures.csv` holds, as the manifest states it.
struct CsvFacts {
    rows: u64,
    /// `None` when there is no `country` column.
    by_country: Option<BTreeMap<String, u64>>,
    merkle_root: String,
}

impl Member {
    fn read(name: &str, reader: &mut dyn Read) -> Result<Self, String> {
        let damaged = |e: std::io::Error| format!("{name}: damaged ({e})");
        let mut hasher = Sha256::new();
        if name == SIGNATURES {
            let mut reader = std::io::BufReader::new(Hashed {
                inner: reader,
                hasher: &mut hasher,
            });
            let facts = csv_facts(&mut reader).map_err(damaged)?;
            drop(reader);
            return Ok(Self {
                sha256: hex::encode(hasher.finalize()),
                bytes: None,
                csv: Some(facts),
            });
        }
        let keep = name == MANIFEST || name == SIGNATURE;
        let mut bytes = Vec::new();
        let mut chunk = vec![0; 64 * 1024];
        loop {
            let n = reader.read(&mut chunk).map_err(damaged)?;
            if n == 0 {
                break;
            }
            hasher.update(&chunk[..n]);
            if keep {
                bytes.extend_from_slice(&chunk[..n]);
            }
        }
        Ok(Self {
            sha256: hex::encode(hasher.finalize()),
            bytes: keep.then_some(bytes),
            csv: None,
        })
    }
}

/// A reader that hashes what is read through it.
struct Hashed<'a, R: ?Sized> {
    inner: &'a mut R,
    hasher: &'a mut Sha256,
}

impl<R: Read + ?Sized> Read for Hashed<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads the CSV record by record (as [`records`] splits it): the count, the
/// counts per country and the Merkle root; the outer error is a damaged
/// member, the inner one a CSV that is not a bundle's.
fn csv_facts(reader: &mut impl std::io::BufRead) -> std::io::Result<Result<CsvFacts, String>> {
    let mut line = Vec::new();
    let mut country = None;
    let mut first = true;
    let mut tree = RootBuilder::default();
    let mut by_country: BTreeMap<String, u64> = BTreeMap::new();
    let mut problem = None;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let Some(record) = line.strip_suffix(b"\r\n") else {
            // Every record ends with CRLF, the last one too.
            problem.get_or_insert(format!("a line of {SIGNATURES} does not end with CRLF"));
            continue;
        };
        if first {
            first = false;
            match fields(record.strip_prefix(BOM).unwrap_or(record)) {
                Ok(names) => country = names.iter().position(|c| c == "country"),
                Err(e) => return Ok(Err(e)),
            }
            continue;
        }
        tree.push(record);
        if let Some(i) = country {
            match fields(record) {
                Ok(cells) => {
                    *by_country
                        .entry(cells.get(i).cloned().unwrap_or_default())
                        .or_default() += 1;
                }
                Err(e) => {
                    problem.get_or_insert(e);
                }
            }
        }
    }
    if first {
        problem.get_or_insert(format!("{SIGNATURES} does not end with CRLF"));
    }
    Ok(match problem {
        Some(p) => Err(p),
        None => Ok(CsvFacts {
            rows: tree.leaves(),
            by_country: country.map(|_| by_country),
            merkle_root: hex::encode(tree.root()),
        }),
    })
}

/// The signature records of a bundle's CSV (after its header), each without
/// its CRLF, and the header's column names.
fn records(csv: &[u8]) -> Result<(Vec<String>, Vec<&[u8]>), String> {
    let csv = csv.strip_prefix(BOM).unwrap_or(csv);
    let body = csv
        .strip_suffix(b"\r\n")
        .ok_or_else(|| format!("{SIGNATURES} does not end with CRLF"))?;
    let mut lines = body
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let header = lines.next().unwrap_or_default();
    let names = fields(header)?;
    Ok((names, lines.collect()))
}

fn fields(record: &[u8]) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(record);
    match reader.records().next() {
        Some(Ok(r)) => Ok(r.iter().map(str::to_owned).collect()),
        Some(Err(e)) => Err(format!("{SIGNATURES}: a bad record ({e})")),
        None => Ok(Vec::new()),
    }
}

/// Checks a bundle offline: the manifest's signature (by `trusted` when given),
/// every member's SHA-256, no member missing or added, the row count, the
/// counts per country and the Merkle root. Says everything that is wrong.
pub fn verify_bundle(
    bytes: &[u8],
    trusted: Option<&VerifyingKey>,
) -> Result<BundleCheck, Vec<String>> {
    check(
        &read_members(bytes, Member::read).map_err(|e| vec![e])?,
        trusted,
    )
}

/// [`verify_bundle`] on members already read.
fn check(
    members: &BTreeMap<String, Member>,
    trusted: Option<&VerifyingKey>,
) -> Result<BundleCheck, Vec<String>> {
    let mut problems = Vec::new();
    let bytes = |name| members.get(name).and_then(|m: &Member| m.bytes.as_ref());
    let (Some(manifest_bytes), Some(sig)) = (bytes(MANIFEST), bytes(SIGNATURE)) else {
        return Err(vec![format!("{MANIFEST} or {SIGNATURE} is missing")]);
    };
    let manifest: Manifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| vec![format!("{MANIFEST} is not a manifest: {e}")])?;
    if manifest.format != FORMAT {
        problems.push(format!("unknown format {:?}", manifest.format));
    }
    let listed_key = BASE64
        .decode(&manifest.public_key)
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok());
    let key = match (trusted, listed_key) {
        (Some(t), Some(l)) if t != &l => {
            problems.push("the manifest names another key than the trusted one".into());
            Some(*t)
        }
        (Some(t), _) => Some(*t),
        (None, l) => l,
    };
    match (key, <[u8; 64]>::try_from(sig.as_slice())) {
        (None, _) => problems.push("no usable public key".into()),
        (_, Err(_)) => problems.push(format!("{SIGNATURE} is not 64 bytes")),
        (Some(key), Ok(sig)) => {
            if key
                .verify_strict(manifest_bytes, &Signature::from_bytes(&sig))
                .is_err()
            {
                problems.push(format!("{SIGNATURE} does not sign {MANIFEST}"));
            }
        }
    }
    for (name, member) in members {
        match manifest.files.get(name) {
            Some(hash) if *hash == member.sha256 => {}
            Some(_) => problems.push(format!(
                "{name} has changed: its SHA-256 is not the manifest's"
            )),
            None if name == MANIFEST || name == SIGNATURE => {}
            None => problems.push(format!("{name} is not in the manifest")),
        }
    }
    for name in manifest.files.keys().filter(|n| !members.contains_key(*n)) {
        problems.push(format!("{name} is missing"));
    }
    match members.get(SIGNATURES).and_then(|m| m.csv.as_ref()) {
        None => problems.push(format!("{SIGNATURES} is missing")),
        Some(Err(e)) => problems.push(e.clone()),
        Some(Ok(facts)) => {
            if facts.rows != manifest.row_count {
                problems.push(format!(
                    "{SIGNATURES} has {} signatures, the manifest says {}",
                    facts.rows, manifest.row_count
                ));
            }
            if facts
                .by_country
                .as_ref()
                .is_some_and(|counts| *counts != manifest.by_country)
            {
                problems.push("the counts per country are not the manifest's".into());
            }
            if facts.merkle_root != manifest.merkle_root {
                problems.push("the Merkle root of the signatures is not the manifest's".into());
            }
        }
    }
    if problems.is_empty() {
        Ok(BundleCheck {
            petition: manifest.petition["slug"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            row_count: manifest.row_count,
            merkle_root: manifest.merkle_root,
            public_key: manifest.public_key,
            key_trusted: trusted.is_some(),
            files: manifest.files.into_keys().collect(),
        })
    } else {
        Err(problems)
    }
}

/// That one signature is in a bundle: its CSV record and the path from its
/// leaf to the Merkle root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    pub merkle_root: String,
    pub tree_size: u64,
    pub leaf_index: u64,
    /// The signature's line of `signatures.csv`, without its CRLF; it starts
    /// with the receipt's SHA-256.
    pub record: String,
    /// Sibling hashes from the leaf up, lower-case hex.
    pub path: Vec<String>,
}

/// The inclusion proof of the signature with this receipt, from a bundle that
/// checks out.
pub fn prove(bytes: &[u8], receipt: &Uuid) -> Result<Proof, String> {
    verify_bundle(bytes, None).map_err(|p| p.join("; "))?;
    let members = members(bytes)?;
    let csv = members.get(SIGNATURES).ok_or("no signatures")?;
    let (_, records) = records(csv)?;
    let wanted = receipt_digest(receipt);
    let index = records
        .iter()
        .position(|r| r.starts_with(wanted.as_bytes()) && r.get(64) == Some(&b','))
        .ok_or("no signature with this receipt in the bundle")?;
    let leaves: Vec<Hash> = records.iter().map(|r| merkle::leaf_hash(r)).collect();
    Ok(Proof {
        merkle_root: hex::encode(merkle::root_of(&leaves)),
        tree_size: leaves.len() as u64,
        leaf_index: index as u64,
        record: String::from_utf8_lossy(records[index]).into_owned(),
        path: merkle::inclusion_path(&leaves, index)
            .iter()
            .map(hex::encode)
            .collect(),
    })
}

/// Checks that `proof` shows the signature with `receipt` under `root` (the
/// Merkle root of the delivered bundle's manifest).
pub fn check_proof(proof: &Proof, receipt: &Uuid, root: &str) -> Result<(), String> {
    let digest = receipt_digest(receipt);
    if proof.record.split(',').next() != Some(digest.as_str()) {
        return Err("the record is not this receipt's".into());
    }
    let path = proof
        .path
        .iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|b| <Hash>::try_from(b).ok())
                .ok_or_else(|| format!("{h:?} is not a SHA-256"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = merkle::leaf_hash(proof.record.as_bytes());
    match merkle::root_from_path(proof.leaf_index, proof.tree_size, leaf, &path) {
        Some(r) if hex::encode(r) == root.trim().to_ascii_lowercase() => Ok(()),
        Some(_) => Err("the path leads to another root".into()),
        None => Err("the path does not fit a tree of this size".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};
    use ed25519_dalek::SigningKey;
    use tokio::sync::mpsc;
    use undersigned_domain::{PetitionStatus, SignerRules, WebSettings, Window, Wording, Wordings};
    use undersigned_store::{ExportFilter, ExportMessage, ExportRow, Petition};

    use super::*;
    use crate::{Column, Format};

    fn petition() -> Petition {
        Petition {
            id: 1,
            slug: "peace".into(),
            wordings: Wordings {
                locale: "en".into(),
                default: Wording {
                    title: "Peace".into(),
                    text: "Now.".into(),
                    ask: None,
                },
                translations: BTreeMap::new(),
            },
            goal: 100,
            status: PetitionStatus::Open,
            window: Window::default(),
            targets: Vec::new(),
            signers: SignerRules::default(),
            web: WebSettings::default(),
            created_at: Utc::now(),
        }
    }

    fn row(i: u32) -> ExportRow {
        ExportRow {
            id: Uuid::from_u128(i as u128 + 1),
            full_name: ["Ана Петрова", "محمد علي", "Leyla Məmmədova", "=cmd|calc"][i as usize % 4]
                .into(),
            organization: None,
            signer_kind: "person".into(),
            city: Some("Bakı".into()),
            postal_code: None,
            country: ["AZ", "RU", "EG"][i as usize % 3].into(),
            signed_at: Utc.timestamp_opt(1_800_000_000 + i as i64, 0).unwrap(),
            channel: "web".into(),
            email: None,
        }
    }

    /// A bundle of `n` signatures, as the service writes it.
    async fn bundle(n: u32, key: &SigningKey) -> Vec<u8> {
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
        let (send, receive) = mpsc::channel(4);
        let mut by_country = BTreeMap::new();
        for i in 0..n {
            *by_country.entry(row(i).country).or_insert(0) += 1;
        }
        tokio::spawn(async move {
            let _ = send
                .send(ExportMessage::Totals {
                    rows: n as u64,
                    by_country,
                })
                .await;
            let rows: Vec<_> = (0..n).map(row).collect();
            // Two passes, as the snapshot reader sends them to a bundle.
            for _ in 0..2 {
                for chunk in rows.chunks(7) {
                    let _ = send.send(ExportMessage::Rows(chunk.to_vec())).await;
                }
                let _ = send.send(ExportMessage::PassEnd).await;
            }
        });
        let mut out = Vec::new();
        let mut hashing = Hashing::new(&mut out);
        write(&job, &mut Rows(receive), &mut hashing).await.unwrap();
        out
    }

    /// The bundle again with one member's content replaced.
    fn rezip(members: &BTreeMap<String, Vec<u8>>, changed: &str, content: &[u8]) -> Vec<u8> {
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

    #[tokio::test]
    async fn a_bundle_verifies_and_no_byte_of_any_member_can_change() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let bytes = bundle(23, &key).await;
        let check = verify_bundle(&bytes, Some(&key.verifying_key())).unwrap();
        assert_eq!((check.row_count, check.petition.as_str()), (23, "peace"));
        let members = members(&bytes).unwrap();
        assert_eq!(
            members.keys().collect::<Vec<_>>(),
            [
                "manifest.json",
                "manifest.sig",
                "petition.json",
                "signatures.csv",
                "signatures.pdf"
            ]
        );
        // Rebuilt as is, it still verifies: the checks read contents, not the zip's bytes.
        let same = rezip(&members, "", &[]);
        assert!(verify_bundle(&same, Some(&key.verifying_key())).is_ok());
        for (name, data) in &members {
            // Every byte of the small members; of the others, 150 spread over
            // the whole, the first and last included.
            let step = data.len().div_ceil(150).max(1);
            let positions = (0..data.len()).step_by(step).chain([data.len() - 1]);
            for at in positions {
                let mut changed = data.clone();
                changed[at] ^= 0x01;
                let tampered = rezip(&members, name, &changed);
                assert!(
                    verify_bundle(&tampered, Some(&key.verifying_key())).is_err(),
                    "{name} with byte {at} changed still verifies"
                );
            }
        }
        // Another key, a missing or an extra member.
        let other = SigningKey::from_bytes(&[8; 32]);
        let problems = verify_bundle(&bytes, Some(&other.verifying_key())).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("another key")),
            "{problems:?}"
        );
        let mut fewer = members.clone();
        fewer.remove("petition.json");
        let problems = verify_bundle(&rezip(&fewer, "", &[]), None).unwrap_err();
        assert_eq!(problems, ["petition.json is missing"]);
        let mut more = members.clone();
        more.insert("extra.csv".into(), b"x".to_vec());
        let problems = verify_bundle(&rezip(&more, "", &[]), None).unwrap_err();
        assert_eq!(problems, ["extra.csv is not in the manifest"]);
    }

    #[tokio::test]
    async fn a_signer_proves_their_signature_is_in_the_bundle() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let bytes = bundle(11, &key).await;
        let root = verify_bundle(&bytes, None).unwrap().merkle_root;
        for i in 0..11 {
            let receipt = row(i).id;
            let proof = prove(&bytes, &receipt).unwrap();
            assert_eq!(proof.leaf_index, i as u64);
            check_proof(&proof, &receipt, &root).unwrap();
            assert!(check_proof(&proof, &row((i + 1) % 11).id, &root).is_err());
            let mut forged = proof.clone();
            forged.record = forged
                .record
                .replace("AZ", "NL")
                .replace("RU", "NL")
                .replace("EG", "NL");
            assert!(check_proof(&forged, &receipt, &root).is_err());
        }
        assert!(prove(&bytes, &Uuid::from_u128(999)).is_err());
        let csv = members(&bytes).unwrap().remove("signatures.csv").unwrap();
        let text = String::from_utf8(csv).unwrap();
        assert!(text.starts_with('\u{feff}'));
        assert!(
            text.contains(",'=cmd|calc,"),
            "formulas are defused in bundles too"
        );
    }
}
