//! An enrollment code as a tablet's user types it: read leniently (case,
//! dashes, spaces, look-alike letters), and one code has one hash however it
//! is typed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use undersigned_store::code_hash;

fuzz_target!(|code: &str| {
    let Some(hash) = code_hash(code) else {
        return;
    };
    assert_eq!(hash.len(), 32);
    assert_eq!(code_hash(&code.to_ascii_lowercase()), Some(hash.clone()));
    assert_eq!(code_hash(&code.replace(['-', ' '], "")), Some(hash));
});
