//! An `Accept-Language` header: the locales it asks for, best first, each a
//! tag that reads back as itself, and negotiation picking only what is
//! offered.
#![no_main]

use libfuzzer_sys::fuzz_target;
use undersigned_domain::{Locale, accepted_locales, negotiate};

const OFFERED: [&str; 5] = ["en", "fr", "pt-BR", "az-Latn", "ar"];

fuzz_target!(|header: &str| {
    let wanted = accepted_locales(header);
    assert!(wanted.len() <= header.split(',').count());
    for locale in &wanted {
        let again = Locale::parse(locale.as_str()).expect("a locale reads back");
        assert_eq!(&again, locale);
    }
    if let Some(chosen) = negotiate(&wanted, &OFFERED) {
        assert!(OFFERED.contains(&chosen));
    }
});
