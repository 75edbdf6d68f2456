//! Inclusion proofs: that one signature is in a delivered bundle.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::verify::{read_records, verify_bundle};
use crate::columns::receipt_digest;
use crate::merkle::{self, Hash};

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
/// checks out. Holds one hash per signature (32 MB for a million).
pub fn prove(bytes: &[u8], receipt: &Uuid) -> Result<Proof, String> {
    verify_bundle(bytes, None).map_err(|p| p.join("; "))?;
    let wanted = receipt_digest(receipt);
    let (leaves, found) = read_records(bytes, |mut records| {
        let mut leaves: Vec<Hash> = Vec::new();
        let mut found = None;
        while let Some(record) = records.next()? {
            if found.is_none()
                && record.starts_with(wanted.as_bytes())
                && record.get(64) == Some(&b',')
            {
                found = Some((leaves.len(), String::from_utf8_lossy(record).into_owned()));
            }
            leaves.push(merkle::leaf_hash(record));
        }
        Ok((leaves, found))
    })?;
    let (index, record) = found.ok_or("no signature with this receipt in the bundle")?;
    Ok(Proof {
        merkle_root: hex::encode(merkle::root_of(&leaves)),
        tree_size: leaves.len() as u64,
        leaf_index: index as u64,
        record,
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
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::bundle::tests::bundle;
    use crate::bundle::verify::members;
    use crate::sample::row;

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
        let csv = members(&bytes).remove("signatures.csv").unwrap();
        let text = String::from_utf8(csv).unwrap();
        assert!(text.starts_with('\u{feff}'));
        assert!(
            text.contains(",'=cmd|calc,"),
            "formulas are defused in bundles too"
        );
    }
}
