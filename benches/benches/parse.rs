//! Reading a sign request's body: JSON and HTML form, through normalization.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use undersigned_benches::{FORM_BODY, JSON_BODY};
use undersigned_domain::SignerRules;
use undersigned_http::{BodyKind, parse_signature};

fn parse(c: &mut Criterion) {
    let rules = SignerRules::default();
    assert!(parse_signature(BodyKind::Json, JSON_BODY, &rules).is_ok());
    assert!(parse_signature(BodyKind::Form, FORM_BODY, &rules).is_ok());
    c.bench_function("sign body: JSON", |b| {
        b.iter(|| parse_signature(BodyKind::Json, black_box(JSON_BODY), &rules))
    });
    c.bench_function("sign body: form", |b| {
        b.iter(|| parse_signature(BodyKind::Form, black_box(FORM_BODY), &rules))
    });
}

criterion_group!(benches, parse);
criterion_main!(benches);
