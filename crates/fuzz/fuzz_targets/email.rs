//! An email address as a signer types it. Its canonical form, the signer's
//! identity, must be stable: reading the address as kept for contact, or the
//! canonical form, gives the same identity again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use undersigned_domain::Email;

fuzz_target!(|input: &str| {
    let Ok(email) = Email::parse(input) else {
        return;
    };
    let canonical = email.canonical();
    // The canonical form is a key, not always an address (`a.+tag@x.org`
    // folds to `a.@x.org`, which is refused as typed); when it reads, it
    // reads as itself.
    if let Ok(again) = Email::parse(canonical) {
        assert_eq!(again.canonical(), canonical, "canonical form is stable");
    }
    let given = Email::parse(email.as_given()).expect("the address as given reads");
    assert_eq!(given.canonical(), canonical, "as given, the same identity");
    assert!(email.domain().is_ascii());
});
