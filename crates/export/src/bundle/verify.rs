//! The offline checks of a bundle.

use std::collections::BTreeMap;
use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use rawzip::CompressionMethod;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{FORMAT, MANIFEST, SIGNATURE, SIGNATURES};
use crate::columns::BOM;
use crate::merkle::RootBuilder;

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
pub(super) fn members(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
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
pub(super) fn records(csv: &[u8]) -> Result<(Vec<String>, Vec<&[u8]>), String> {
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

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::bundle::tests::{bundle, rezip};

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
}
