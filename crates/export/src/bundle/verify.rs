//! The offline checks of a bundle. A bundle may come from anyone, so every
//! read is bounded, the manifest's signature is checked before any member it
//! covers is read, and a report lists the first problems and counts the rest.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use rawzip::{CompressionMethod, ZipArchive, ZipArchiveEntryWayfinder, ZipSliceArchive};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{FORMAT, MANIFEST, SIGNATURE, SIGNATURES};
use crate::columns::BOM;
use crate::merkle::RootBuilder;

// What the checks read is bounded, because a few megabytes of zip can
// inflate to gigabytes (deflate packs up to 1,032 bytes into one). The bounds
// come from what the service writes:
//
// - `manifest.json` is held whole. It does not grow with the number of
//   signatures: 1.3 KB for a petition with a short title and no targets,
//   219 KB at the domain's limits (a 200-character title and 100 targets with
//   200-character names and 300-character contacts, all in four-byte
//   characters, every country filtered on and counted; the test
//   `the_largest_manifest_the_service_writes_is_within_its_bound` keeps it
//   under half the bound).
// - `manifest.sig` is an Ed25519 signature: 64 bytes.
// - The other members are hashed as they inflate, in constant memory; their
//   bound caps the time a check takes. A million signatures take some
//   130 MiB of CSV (the 68 MiB `loadtest/exports` measured, and a 65-byte
//   receipt digest a row) and 110 MiB of PDF; a million records each at its
//   longest would take 2.7 GB.
// - A line of `signatures.csv` is held whole. The longest record the service
//   writes, every column at its longest, is 2,723 bytes (the test
//   `the_longest_record_the_service_writes_is_within_the_line_bound`).
// - A report lists 20 problems and counts the rest: a report of every problem
//   reached 20 to 42 MB (issue 26).

/// The most `manifest.json` can inflate to.
pub(super) const MANIFEST_MAX: u64 = 1 << 20;
/// The length of `manifest.sig`.
const SIGNATURE_LEN: u64 = 64;
/// The most any other member can inflate to.
const MEMBER_MAX: u64 = 4 << 30;
/// The longest line of `signatures.csv`, its CRLF included.
const LINE_MAX: usize = 64 << 10;
/// The most problems a report lists; the rest are counted.
const REPORTED: usize = 20;

/// A size as a bound is stated: "1 MiB", "64 bytes".
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// The manifest's fields that the checks read.
#[derive(Debug, Deserialize)]
struct Manifest {
    format: String,
    row_count: u64,
    /// Absent from bundles made before withdrawals existed: none.
    #[serde(default)]
    withdrawn_skipped: u64,
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
    /// Withdrawn signatures the export left out, as its manifest says.
    pub withdrawn_skipped: u64,
    pub merkle_root: String,
    /// The key that signed it (base64), checked against the trusted one when
    /// one was given.
    pub public_key: String,
    pub key_trusted: bool,
    /// The files whose SHA-256 matched the manifest's.
    pub files: Vec<String>,
}

/// What is wrong with a bundle: the first [`REPORTED`] problems and how many
/// more there are.
#[derive(Default)]
struct Problems {
    listed: Vec<String>,
    more: u64,
}

impl Problems {
    fn push(&mut self, problem: impl Into<String>) {
        if self.listed.len() < REPORTED {
            self.listed.push(problem.into());
        } else {
            self.more += 1;
        }
    }

    fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    fn report(mut self) -> Vec<String> {
        if self.more > 0 {
            self.listed.push(format!("and {} more problems", self.more));
        }
        self.listed
    }
}

/// A member as the zip's directory lists it.
struct Listed {
    name: String,
    wayfinder: ZipArchiveEntryWayfinder,
    method: CompressionMethod,
    /// What the directory says it inflates to (checked as it does).
    size: u64,
}

/// Why a member's name is refused, if it is. A bundle's members are named
/// exactly: an unzip program would put `../x`, `/x` or `a\x` elsewhere than
/// `x`, so such names are refused rather than tidied (and a name that is not
/// the manifest's exactly is not in it).
fn refused(name: &[u8]) -> Option<&'static str> {
    if name.starts_with(b"/") {
        Some("its name starts with \"/\"")
    } else if name.contains(&b'\\') {
        Some("its name has a backslash")
    } else if name.windows(2).any(|w| w == b"..") {
        Some("its name has \"..\"")
    } else if std::str::from_utf8(name).is_err() {
        Some("its name is not UTF-8")
    } else if name.iter().any(u8::is_ascii_control) {
        Some("its name has a control character")
    } else {
        None
    }
}

/// A name from the zip as a report shows it: escaped, and cut at 100
/// characters.
fn shown(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    let mut shown: String = name
        .chars()
        .take(100)
        .flat_map(char::escape_debug)
        .collect();
    if name.chars().nth(100).is_some() {
        shown.push('…');
    }
    shown
}

/// The members the zip's directory lists, by name; a name refused or
/// repeated is a problem.
fn list(
    archive: &ZipSliceArchive<&[u8]>,
    problems: &mut Problems,
) -> Result<BTreeMap<String, Listed>, String> {
    let mut entries = archive.entries();
    let mut listed = BTreeMap::new();
    while let Some(entry) = entries
        .next_entry()
        .map_err(|e| format!("damaged zip: {e}"))?
    {
        let raw = entry.file_path().as_bytes();
        if let Some(reason) = refused(raw) {
            problems.push(format!("member {} is refused: {reason}", shown(raw)));
            continue;
        }
        let name = String::from_utf8_lossy(raw).into_owned();
        if listed.contains_key(&name) {
            problems.push(format!("{} appears twice", shown(raw)));
            continue;
        }
        let member = Listed {
            name: name.clone(),
            wayfinder: entry.wayfinder(),
            method: entry.compression_method(),
            size: entry.uncompressed_size_hint(),
        };
        listed.insert(name, member);
    }
    Ok(listed)
}

/// A member's bytes as they inflate, checked against its CRC and size at the
/// end; refused, before anything is inflated, when it says it is larger than
/// `bound` (and when it lies about its size, the check fails as soon as it
/// inflates past it).
fn open<'a>(
    archive: &'a ZipSliceArchive<&[u8]>,
    member: &Listed,
    bound: u64,
) -> Result<Box<dyn Read + 'a>, String> {
    let name = shown(member.name.as_bytes());
    if member.size > bound {
        return Err(format!(
            "{name} is refused: it inflates to {} bytes, over the bound of {}",
            member.size,
            size(bound)
        ));
    }
    let entry = archive
        .get_entry(member.wayfinder)
        .map_err(|e| format!("{name}: damaged ({e})"))?;
    // A program that reads the zip front to back goes by the local header.
    let local = entry.file_path().as_bytes();
    if local != member.name.as_bytes() {
        return Err(format!(
            "{name} is refused: its local header names it {}",
            shown(local)
        ));
    }
    let data = entry.data();
    Ok(match member.method {
        CompressionMethod::Store => Box::new(entry.verifying_reader(data)),
        CompressionMethod::Deflate => {
            Box::new(entry.verifying_reader(flate2::bufread::DeflateDecoder::new(data)))
        }
        other => {
            return Err(format!(
                "{name}: compression {other:?} is not used in bundles"
            ));
        }
    })
}

/// Runs `read` on the records of the bundle's CSV.
pub(super) fn read_records<T>(
    bytes: &[u8],
    read: impl FnOnce(Records<&mut dyn BufRead>) -> Result<T, String>,
) -> Result<T, String> {
    let archive = ZipArchive::from_slice(bytes).map_err(|e| format!("not a zip: {e}"))?;
    let members = list(&archive, &mut Problems::default())?;
    let member = members
        .get(SIGNATURES)
        .ok_or_else(|| format!("{SIGNATURES} is missing"))?;
    let mut reader = BufReader::with_capacity(64 * 1024, open(&archive, member, MEMBER_MAX)?);
    read(Records::new(&mut reader as &mut dyn BufRead)?)
}

/// Every member, whole.
#[cfg(test)]
pub(super) fn members(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let archive = ZipArchive::from_slice(bytes).unwrap();
    list(&archive, &mut Problems::default())
        .unwrap()
        .into_iter()
        .map(|(name, member)| {
            let bytes = read_whole(&archive, &member, MEMBER_MAX).unwrap();
            (name, bytes)
        })
        .collect()
}

/// A member held whole: the manifest and its signature.
fn read_whole(
    archive: &ZipSliceArchive<&[u8]>,
    member: &Listed,
    bound: u64,
) -> Result<Vec<u8>, String> {
    // Opened first: `open` refuses a member that says it is larger than
    // `bound`, before anything is allocated for what it says.
    let mut reader = open(archive, member, bound)?;
    let mut bytes = Vec::with_capacity(member.size as usize);
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: damaged ({e})", shown(member.name.as_bytes())))?;
    Ok(bytes)
}

/// A member's SHA-256, read through once (and the facts of the CSV as it
/// goes, when `csv` is given).
fn hash_member(
    archive: &ZipSliceArchive<&[u8]>,
    member: &Listed,
    csv: Option<&BTreeMap<String, u64>>,
) -> Result<(String, Option<CsvFacts>), String> {
    let mut reader = open(archive, member, MEMBER_MAX)?;
    let mut hasher = Sha256::new();
    let facts = match csv {
        Some(countries) => Some(csv_facts(
            BufReader::with_capacity(
                64 * 1024,
                Hashed {
                    inner: &mut reader,
                    hasher: &mut hasher,
                },
            ),
            countries,
        )?),
        None => {
            let mut chunk = vec![0; 64 * 1024];
            loop {
                let n = reader
                    .read(&mut chunk)
                    .map_err(|e| format!("{}: damaged ({e})", shown(member.name.as_bytes())))?;
                if n == 0 {
                    break;
                }
                hasher.update(&chunk[..n]);
            }
            None
        }
    };
    Ok((hex::encode(hasher.finalize()), facts))
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

/// The records of a bundle's CSV, after its header, each without its CRLF and
/// none longer than [`LINE_MAX`].
pub(super) struct Records<R> {
    reader: R,
    line: Vec<u8>,
    /// The line read last, from 1.
    number: u64,
    /// The header's column names.
    columns: Vec<String>,
}

impl<R: BufRead> Records<R> {
    /// Reads the header.
    pub(super) fn new(reader: R) -> Result<Self, String> {
        let mut records = Self {
            reader,
            line: Vec::new(),
            number: 0,
            columns: Vec::new(),
        };
        let header = records
            .next()?
            .ok_or_else(|| format!("{SIGNATURES} does not end with CRLF"))?;
        records.columns = fields(header.strip_prefix(BOM).unwrap_or(header))?;
        Ok(records)
    }

    /// The next record; `None` after the last.
    pub(super) fn next(&mut self) -> Result<Option<&[u8]>, String> {
        self.line.clear();
        self.number += 1;
        loop {
            let available = self
                .reader
                .fill_buf()
                .map_err(|e| format!("{SIGNATURES}: damaged ({e})"))?;
            if available.is_empty() {
                break;
            }
            let (take, end) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (available.len(), false),
            };
            if self.line.len() + take > LINE_MAX {
                return Err(format!(
                    "{SIGNATURES} is refused: line {} is longer than the bound of {}",
                    self.number,
                    size(LINE_MAX as u64)
                ));
            }
            self.line.extend_from_slice(&available[..take]);
            self.reader.consume(take);
            if end {
                break;
            }
        }
        if self.line.is_empty() {
            return Ok(None);
        }
        // Every record ends with CRLF, the last one too.
        match self.line.strip_suffix(b"\r\n") {
            Some(record) => Ok(Some(record)),
            None => Err(format!(
                "line {} of {SIGNATURES} does not end with CRLF",
                self.number
            )),
        }
    }
}

/// What `signatures.csv` holds, as the manifest states it.
struct CsvFacts {
    rows: u64,
    /// Whether the counts per country are the manifest's; `None` when there
    /// is no `country` column.
    countries_match: Option<bool>,
    merkle_root: String,
}

/// Reads the CSV record by record: the count, the counts per country (only
/// those the manifest names are kept, so a CSV of many countries cannot
/// grow the counts) and the Merkle root.
fn csv_facts(reader: impl BufRead, manifest: &BTreeMap<String, u64>) -> Result<CsvFacts, String> {
    let mut records = Records::new(reader)?;
    let country = records.columns.iter().position(|c| c == "country");
    let mut tree = RootBuilder::default();
    let mut counts: BTreeMap<&str, u64> = manifest.keys().map(|c| (c.as_str(), 0)).collect();
    let mut others = false;
    while let Some(record) = records.next()? {
        tree.push(record);
        if let Some(i) = country {
            let cells = fields(record)?;
            match counts.get_mut(cells.get(i).map_or("", String::as_str)) {
                Some(count) => *count += 1,
                None => others = true,
            }
        }
    }
    Ok(CsvFacts {
        rows: tree.leaves(),
        countries_match: country.map(|_| !others && counts.values().eq(manifest.values())),
        merkle_root: hex::encode(tree.root()),
    })
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
/// then every member's SHA-256, no member missing or added, the row count, the
/// counts per country and the Merkle root. Says what is wrong: the first
/// problems and how many more.
pub fn verify_bundle(
    bytes: &[u8],
    trusted: Option<&VerifyingKey>,
) -> Result<BundleCheck, Vec<String>> {
    verify_bundle_reporting(bytes, trusted, |_, _| {})
}

/// As [`verify_bundle`], telling `report` how many of the members the
/// manifest lists have been checked, and of how many, after each.
pub fn verify_bundle_reporting(
    bytes: &[u8],
    trusted: Option<&VerifyingKey>,
    mut report: impl FnMut(usize, usize),
) -> Result<BundleCheck, Vec<String>> {
    let mut problems = Problems::default();
    let checked = ZipArchive::from_slice(bytes)
        .map_err(|e| format!("not a zip: {e}"))
        .and_then(|archive| {
            let members = list(&archive, &mut problems)?;
            let manifest = signed_manifest(&archive, &members, trusted, &mut problems)?;
            check_members(&archive, &members, &manifest, &mut problems, &mut report);
            Ok(manifest)
        });
    match checked {
        Ok(manifest) if problems.is_empty() => Ok(BundleCheck {
            petition: manifest.petition["slug"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            row_count: manifest.row_count,
            withdrawn_skipped: manifest.withdrawn_skipped,
            merkle_root: manifest.merkle_root,
            public_key: manifest.public_key,
            key_trusted: trusted.is_some(),
            files: manifest.files.into_keys().collect(),
        }),
        Ok(_) => Err(problems.report()),
        Err(e) => {
            problems.push(e);
            Err(problems.report())
        }
    }
}

/// The manifest, whose signature checks out: read first, and nothing else is
/// read when it does not.
fn signed_manifest(
    archive: &ZipSliceArchive<&[u8]>,
    members: &BTreeMap<String, Listed>,
    trusted: Option<&VerifyingKey>,
    problems: &mut Problems,
) -> Result<Manifest, String> {
    let (Some(manifest), Some(signature)) = (members.get(MANIFEST), members.get(SIGNATURE)) else {
        return Err(format!("{MANIFEST} or {SIGNATURE} is missing"));
    };
    let manifest_bytes = read_whole(archive, manifest, MANIFEST_MAX)?;
    let signature = read_whole(archive, signature, SIGNATURE_LEN)?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| format!("{MANIFEST} is not a manifest: {e}"))?;
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
            problems.push("the manifest names another key than the trusted one");
            Some(*t)
        }
        (Some(t), _) => Some(*t),
        (None, l) => l,
    };
    let signature = <[u8; 64]>::try_from(signature.as_slice())
        .map_err(|_| format!("{SIGNATURE} is not 64 bytes"))?;
    let key = key.ok_or("no usable public key")?;
    key.verify_strict(&manifest_bytes, &Signature::from_bytes(&signature))
        .map_err(|_| format!("{SIGNATURE} does not sign {MANIFEST}"))?;
    Ok(manifest)
}

/// Checks the members against the signed manifest; only those it lists are
/// read.
fn check_members(
    archive: &ZipSliceArchive<&[u8]>,
    members: &BTreeMap<String, Listed>,
    manifest: &Manifest,
    problems: &mut Problems,
    report: &mut dyn FnMut(usize, usize),
) {
    let mut csv = None;
    let mut checked = 0;
    for (name, member) in members {
        let Some(hash) = manifest.files.get(name) else {
            if name != MANIFEST && name != SIGNATURE {
                problems.push(format!("{} is not in the manifest", shown(name.as_bytes())));
            }
            continue;
        };
        let countries = (name == SIGNATURES).then_some(&manifest.by_country);
        match hash_member(archive, member, countries) {
            Ok((sha256, facts)) => {
                if *hash != sha256 {
                    problems.push(format!(
                        "{} has changed: its SHA-256 is not the manifest's",
                        shown(name.as_bytes())
                    ));
                }
                csv = csv.or(facts);
            }
            Err(e) => problems.push(e),
        }
        checked += 1;
        report(checked, manifest.files.len());
    }
    for name in manifest.files.keys().filter(|n| !members.contains_key(*n)) {
        problems.push(format!("{} is missing", shown(name.as_bytes())));
    }
    if !manifest.files.contains_key(SIGNATURES) {
        problems.push(format!("the manifest lists no {SIGNATURES}"));
    }
    if let Some(facts) = csv {
        if facts.rows != manifest.row_count {
            problems.push(format!(
                "{SIGNATURES} has {} signatures, the manifest says {}",
                facts.rows, manifest.row_count
            ));
        }
        if facts.countries_match == Some(false) {
            problems.push("the counts per country are not the manifest's");
        }
        if facts.merkle_root != manifest.merkle_root {
            problems.push("the Merkle root of the signatures is not the manifest's");
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use ed25519_dalek::Signer;

    use super::*;
    use crate::bundle::tests::{bundle, rezip, zip_of};
    use crate::bundle::{PETITION, PRINTABLE};

    /// The hostile zips `deploy/fuzz` starts from (`crates/fuzz/seeds`), each
    /// refused with its reason. `lying_size` says its manifest inflates to
    /// 4 GiB: the bound is checked before anything is allocated for it (the
    /// capacity was asked for first, which `deploy/fuzz`'s 512 MiB limit on
    /// one allocation, under AddressSanitizer, reports as a crash).
    #[test]
    fn hostile_zips_are_refused_with_their_reason() {
        macro_rules! seed {
            ($name:literal) => {
                include_bytes!(concat!("../../../fuzz/seeds/bundle_verify/", $name, ".zip"))
            };
        }
        let cases: [(&str, &[u8], &str); 6] = [
            (
                "lying_size",
                seed!("lying_size"),
                "inflates to 4294967280 bytes, over the bound of 1 MiB",
            ),
            (
                "huge_manifest",
                seed!("huge_manifest"),
                "over the bound of 1 MiB",
            ),
            ("dotdot", seed!("dotdot"), "its name has \"..\""),
            ("truncated", seed!("truncated"), "not a zip"),
            (
                "many_members",
                seed!("many_members"),
                "and 981 more problems",
            ),
            (
                "inflating_csv",
                seed!("inflating_csv"),
                "has 8192 signatures, the manifest says 0",
            ),
        ];
        for (name, zip, reason) in cases {
            let problems = verify_bundle(zip, None).expect_err(name);
            assert!(problems.len() <= REPORTED + 1, "{name}: {problems:?}");
            assert!(
                problems.iter().any(|p| p.contains(reason)),
                "{name}: {problems:?}"
            );
        }
    }

    /// The members with `name`'s content replaced and the manifest changed to
    /// match, signed again by `key`: what anyone can build when the recipient
    /// does not pass the trusted key.
    fn resign(
        members: &BTreeMap<String, Vec<u8>>,
        key: &SigningKey,
        name: &str,
        content: &[u8],
    ) -> BTreeMap<String, Vec<u8>> {
        let mut members = members.clone();
        let mut manifest: Value = serde_json::from_slice(&members[MANIFEST]).unwrap();
        manifest["files"][name] = hex::encode(Sha256::digest(content)).into();
        let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
        members.insert(SIGNATURE.into(), key.sign(&manifest).to_bytes().to_vec());
        members.insert(MANIFEST.into(), manifest);
        members.insert(name.into(), content.to_vec());
        members
    }

    /// The zip with one field of a member's central directory record
    /// overwritten (at `at` bytes into the record).
    fn patch_directory(zip: &[u8], name: &str, at: usize, value: &[u8]) -> Vec<u8> {
        let archive = ZipArchive::from_slice(zip).unwrap();
        let mut entries = archive.entries();
        let mut offset = None;
        while let Some(entry) = entries.next_entry().unwrap() {
            if entry.file_path().as_bytes() == name.as_bytes() {
                offset = Some(entry.central_directory_offset() as usize);
            }
        }
        let mut zip = zip.to_vec();
        let offset = offset.expect("the member") + at;
        zip[offset..offset + value.len()].copy_from_slice(value);
        zip
    }

    /// The central directory record's field of the size a member inflates to.
    const UNCOMPRESSED_SIZE: usize = 24;
    /// And of its compression method.
    const METHOD: usize = 10;

    #[tokio::test]
    async fn verifying_reports_each_member_the_manifest_lists_as_it_is_checked() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let bytes = bundle(5, &key).await;
        let mut seen = Vec::new();
        verify_bundle_reporting(&bytes, Some(&key.verifying_key()), |done, of| {
            seen.push((done, of))
        })
        .unwrap();
        assert_eq!(seen, [(1, 3), (2, 3), (3, 3)]);
    }

    #[tokio::test]
    async fn a_bundle_verifies_and_no_byte_of_any_member_can_change() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let bytes = bundle(23, &key).await;
        let check = verify_bundle(&bytes, Some(&key.verifying_key())).unwrap();
        assert_eq!((check.row_count, check.petition.as_str()), (23, "peace"));
        let members = members(&bytes);
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
    async fn a_manifest_that_inflates_past_its_bound_is_refused_before_it_is_inflated() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let members = members(&bundle(3, &key).await);
        // 8 MiB of JSON white space after the manifest: still a manifest, and
        // some 8 KB in the zip.
        let mut huge = members[MANIFEST].clone();
        huge.resize(8 << 20, b' ');
        let zip = rezip(&members, MANIFEST, &huge);
        assert!(zip.len() < 100_000, "{} bytes on disk", zip.len());
        let problems = verify_bundle(&zip, None).unwrap_err();
        assert_eq!(
            problems,
            ["manifest.json is refused: it inflates to 8388608 bytes, over the bound of 1 MiB"]
        );
        // The same zip saying the manifest inflates to 1,000 bytes: the
        // inflating stops there, with the member named.
        let lying = patch_directory(&zip, MANIFEST, UNCOMPRESSED_SIZE, &1000u32.to_le_bytes());
        let problems = verify_bundle(&lying, None).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("manifest.json: damaged ("),
            "{problems:?}"
        );
        // A signature longer than a signature's 64 bytes.
        let zip = rezip(&members, SIGNATURE, &[0; 65]);
        assert_eq!(
            verify_bundle(&zip, None).unwrap_err(),
            ["manifest.sig is refused: it inflates to 65 bytes, over the bound of 64 bytes"]
        );
    }

    #[tokio::test]
    async fn a_line_of_the_csv_longer_than_its_bound_is_refused_before_it_is_held() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let members = members(&bundle(3, &key).await);
        let csv = &members[SIGNATURES];
        let header = csv.iter().position(|&b| b == b'\n').unwrap() + 1;
        // A second line of 1 MiB, in a manifest signed to match it.
        let mut long = csv[..header].to_vec();
        long.extend(std::iter::repeat_n(b'a', 1 << 20));
        long.extend_from_slice(b"\r\n");
        long.extend_from_slice(&csv[header..]);
        let zip = rezip(&resign(&members, &key, SIGNATURES, &long), "", &[]);
        assert_eq!(
            verify_bundle(&zip, None).unwrap_err(),
            ["signatures.csv is refused: line 2 is longer than the bound of 64 KiB"]
        );
        // A line at the bound is read.
        let mut at_bound = csv.to_vec();
        let last = at_bound.len() - 2;
        let padding =
            LINE_MAX - (last - at_bound[..last].iter().rposition(|&b| b == b'\n').unwrap());
        at_bound.splice(last..last, std::iter::repeat_n(b'a', padding - 1));
        let zip = rezip(&resign(&members, &key, SIGNATURES, &at_bound), "", &[]);
        let problems = verify_bundle(&zip, None).unwrap_err();
        assert_eq!(
            problems,
            ["the Merkle root of the signatures is not the manifest's"]
        );
    }

    #[tokio::test]
    async fn nothing_is_read_before_the_signature_checks_out_nor_any_member_it_does_not_list() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let members = members(&bundle(3, &key).await);
        // A member whose compression the checks cannot read: an error if read.
        let unreadable = |zip: &[u8], name: &str| patch_directory(zip, name, METHOD, &[12, 0]);
        let mut forged = members.clone();
        let manifest = String::from_utf8(members[MANIFEST].clone()).unwrap();
        forged.insert(
            MANIFEST.into(),
            manifest.replace("\"peace\"", "\"peacf\"").into(),
        );
        let zip = unreadable(&rezip(&forged, "", &[]), PRINTABLE);
        assert_eq!(
            verify_bundle(&zip, None).unwrap_err(),
            ["manifest.sig does not sign manifest.json"]
        );
        let mut more = members.clone();
        more.insert("extra.bin".into(), b"x".to_vec());
        let zip = unreadable(&rezip(&more, "", &[]), "extra.bin");
        assert_eq!(
            verify_bundle(&zip, None).unwrap_err(),
            ["extra.bin is not in the manifest"]
        );
        // A listed member is read, and the same compression named.
        let zip = unreadable(&rezip(&members, "", &[]), PRINTABLE);
        let problems = verify_bundle(&zip, None).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("signatures.pdf: compression"),
            "{problems:?}"
        );
    }

    #[tokio::test]
    async fn a_report_lists_the_first_twenty_problems_and_counts_the_rest() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let members = members(&bundle(3, &key).await);
        let names: Vec<String> = (0..10_000).map(|i| format!("extra-{i:05}.csv")).collect();
        let mut zip: Vec<(&str, &[u8])> = members
            .iter()
            .map(|(name, data)| (name.as_str(), data.as_slice()))
            .collect();
        zip.extend(names.iter().map(|name| (name.as_str(), &b"x"[..])));
        let problems = verify_bundle(&zip_of(&zip), None).unwrap_err();
        assert_eq!(problems.len(), 21);
        assert_eq!(problems[0], "extra-00000.csv is not in the manifest");
        assert_eq!(problems[19], "extra-00019.csv is not in the manifest");
        assert_eq!(problems[20], "and 9980 more problems");
    }

    #[test]
    fn the_longest_record_the_service_writes_is_within_the_line_bound() {
        // Every column at its longest, in four-byte characters or in quotes
        // (doubled in CSV), whichever takes more.
        let long = |n: usize| "𝔓".repeat(n);
        let row = undersigned_store::ExportRow {
            full_name: long(200),
            organization: Some(long(200)),
            signer_kind: "organization".into(),
            city: Some(long(100)),
            postal_code: Some(long(16)),
            email: Some("\"".repeat(254)),
            ..crate::sample::row(0)
        };
        let mut table = crate::columns::CsvTable::new(crate::Column::ALL.to_vec(), true);
        let record = table.record(&row).unwrap();
        assert!(record.len() <= LINE_MAX / 16, "{} bytes", record.len());
    }

    #[tokio::test]
    async fn member_names_must_be_the_bundles_exactly() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let members = members(&bundle(3, &key).await);
        let renamed = |from: &str, to: &'static str| -> Vec<u8> {
            let zip: Vec<(&str, &[u8])> = members
                .iter()
                .map(|(name, data)| (if name == from { to } else { name.as_str() }, &data[..]))
                .collect();
            zip_of(&zip)
        };
        for (from, to, problem) in [
            (
                PRINTABLE,
                "../signatures.pdf",
                r#"member ../signatures.pdf is refused: its name has "..""#,
            ),
            (
                SIGNATURES,
                "/signatures.csv",
                r#"member /signatures.csv is refused: its name starts with "/""#,
            ),
            (
                MANIFEST,
                "x/../manifest.json",
                r#"member x/../manifest.json is refused: its name has "..""#,
            ),
            (
                PETITION,
                r"x\petition.json",
                r"member x\\petition.json is refused: its name has a backslash",
            ),
        ] {
            let problems = verify_bundle(&renamed(from, to), None).unwrap_err();
            assert_eq!(problems[0], problem, "{problems:?}");
        }
        // Twice, the same bytes both times.
        let mut zip: Vec<(&str, &[u8])> = members
            .iter()
            .map(|(name, data)| (name.as_str(), &data[..]))
            .collect();
        zip.push((PRINTABLE, &members[PRINTABLE]));
        assert_eq!(
            verify_bundle(&zip_of(&zip), None).unwrap_err(),
            ["signatures.pdf appears twice"]
        );
        // The local header, which a program reading the zip front to back
        // goes by, names another file than the directory does.
        let zip = zip_of(&zip[..zip.len() - 1]);
        let archive = ZipArchive::from_slice(&zip).unwrap();
        let mut entries = archive.entries();
        let mut local = None;
        while let Some(entry) = entries.next_entry().unwrap() {
            if entry.file_path().as_bytes() == PETITION.as_bytes() {
                local = Some(entry.local_header_offset() as usize + 30);
            }
        }
        let mut zip = zip.clone();
        zip[local.unwrap()] = b'P';
        assert_eq!(
            verify_bundle(&zip, None).unwrap_err(),
            ["petition.json is refused: its local header names it Petition.json"]
        );
    }
}
