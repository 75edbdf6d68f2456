//! A street tablet's batch body (`{"signatures": [...]}`), each item checked
//! against the event and its petition. Any bytes get items or a refusal of
//! the whole body, and one answer per item, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use undersigned_http::{BodyKind, Fields, read_batch};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, body)) = data.split_first() else {
        return;
    };
    let Ok(fields) = Fields::parse(BodyKind::Json, body) else {
        return;
    };
    let petition = undersigned_fuzz::petition(undersigned_fuzz::rules(choice));
    let event = undersigned_fuzz::event();
    if let Ok((items, checked)) = read_batch(&fields, &event, &petition, undersigned_fuzz::now()) {
        assert_eq!(items.len(), checked.len());
        assert!(items.len() <= undersigned_http::BATCH_MAX);
        for check in checked {
            match check {
                Ok(collected) => assert!(collected.signature.client_id.is_some()),
                Err(errors) => assert!(!errors.is_empty()),
            }
        }
    }
});
