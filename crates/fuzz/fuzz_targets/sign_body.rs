//! A signature's body as a web form or a campaign site posts it: JSON or
//! `application/x-www-form-urlencoded`, read and checked under a petition's
//! rules. Any bytes get a signature or field errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use undersigned_http::{ApiError, BodyKind, parse_signature};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let kind = if choice & 128 == 0 {
        BodyKind::Json
    } else {
        BodyKind::Form
    };
    match parse_signature(kind, body, &undersigned_fuzz::rules(choice)) {
        Ok((signature, _captcha)) => {
            // What is accepted reads the same again: the address as kept.
            if let Some(email) = &signature.email {
                let again = undersigned_domain::Email::parse(email.as_given()).expect("kept reads");
                assert_eq!(again.canonical(), email.canonical());
            }
        }
        Err(ApiError::Invalid(errors)) => assert!(!errors.is_empty()),
        Err(ApiError::Malformed(reason)) => assert!(!reason.is_empty()),
        Err(other) => panic!("a body is refused only as malformed or invalid, not {other:?}"),
    }
});
