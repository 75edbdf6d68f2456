//! `undersigned bundle verify` on a zip from anyone: a report of what is
//! wrong, in bounded memory, never a panic or an abort (a member said to
//! inflate to gigabytes, `..` in names, thousands of members, a huge
//! manifest, a truncated file).
#![no_main]

use libfuzzer_sys::fuzz_target;
use undersigned_export::verify_bundle;

fuzz_target!(|zip: &[u8]| {
    match verify_bundle(zip, None) {
        Ok(check) => assert!(!check.key_trusted),
        // The first 20 problems and a line counting the rest.
        Err(problems) => assert!(!problems.is_empty() && problems.len() <= 21),
    }
});
