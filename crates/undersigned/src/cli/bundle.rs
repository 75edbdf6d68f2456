//! `undersigned bundle …`: checking delivered bundles and inclusion proofs,
//! offline, without the database.

use std::path::PathBuf;

use clap::Subcommand;
use undersigned_export::{Proof, check_proof, prove, verify_bundle_reporting};

use super::progress::ProgressLine;
use super::{CliError, public_key, read_file, receipt, refused};

#[derive(Subcommand)]
pub enum BundleCommand {
    /// Check a bundle: its signature, every file's SHA-256, the counts and the
    /// Merkle root; says what is wrong, if anything.
    Verify {
        /// The bundle: a zip from `GET /v1/petitions/{slug}/export?format=bundle`.
        file: PathBuf,
        /// The campaign's public key (base64, from GET /v1/export-key); without
        /// it, the key the manifest names is used and reported.
        #[arg(long, value_parser = public_key)]
        key: Option<ed25519_dalek::VerifyingKey>,
    },
    /// Print the inclusion proof (JSON) of the signature with this receipt.
    Prove {
        /// The bundle holding the signature.
        file: PathBuf,
        /// The receipt the signer was given when signing (a UUID).
        #[arg(long, value_parser = receipt)]
        receipt: uuid::Uuid,
    },
    /// Check an inclusion proof against a delivered bundle's Merkle root.
    CheckProof {
        /// The proof, as `bundle prove` prints it (JSON).
        proof: PathBuf,
        /// The signer's receipt (a UUID): the proof must be of its row.
        #[arg(long, value_parser = receipt)]
        receipt: uuid::Uuid,
        /// The `merkle_root` of the delivered bundle's manifest.
        #[arg(long)]
        root: String,
    },
}

pub fn execute(command: BundleCommand) -> Result<(), CliError> {
    match command {
        BundleCommand::Verify { file, key } => verify(&file, key.as_ref()),
        BundleCommand::Prove { file, receipt } => {
            let proof = prove(&read_file(&file)?, &receipt).map_err(|e| refused(&file, e))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&proof).unwrap_or_default()
            );
            Ok(())
        }
        BundleCommand::CheckProof {
            proof: path,
            receipt,
            root,
        } => {
            let proof: Proof = serde_json::from_slice(&read_file(&path)?)
                .map_err(|e| refused(&path, format!("not a proof: {e}")))?;
            check_proof(&proof, &receipt, &root).map_err(|e| refused(&path, e))?;
            println!(
                "ok: signature {} of {} is in the bundle with root {root}",
                proof.leaf_index + 1,
                proof.tree_size
            );
            Ok(())
        }
    }
}

/// `bundle verify`, with a progress line on a terminal: the members checked.
fn verify(
    file: &std::path::Path,
    key: Option<&ed25519_dalek::VerifyingKey>,
) -> Result<(), CliError> {
    let bytes = read_file(file)?;
    let mut line = ProgressLine::new();
    let checked = verify_bundle_reporting(&bytes, key, |done, of| {
        line.update(|_| format!("bundle verify: {done} of {of} members verified"))
    });
    drop(line);
    match checked {
        Ok(check) => {
            println!(
                "ok: {} signatures of {} ({}), Merkle root {}, signed by {}{}",
                check.row_count,
                check.petition,
                check.files.join(", "),
                check.merkle_root,
                check.public_key,
                if check.key_trusted {
                    " (the trusted key)"
                } else {
                    " (not checked against a trusted key: pass --key)"
                }
            );
            Ok(())
        }
        Err(problems) => Err(refused(
            file,
            format!("not intact: {}", problems.join("; ")),
        )),
    }
}
