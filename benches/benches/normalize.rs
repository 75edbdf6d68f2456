//! Normalization and the identity key.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use undersigned_benches::typical_input;
use undersigned_domain::{Email, Pepper, Signature, SignerRules, Text};

fn normalize(c: &mut Criterion) {
    c.bench_function("name: NFC + white space", |b| {
        b.iter(|| {
            Text::parse(
                black_box("  Jose\u{301}   Mari\u{301}a  Go\u{301}mez "),
                200,
            )
        })
    });
    c.bench_function("email: canonical form", |b| {
        b.iter(|| Email::parse(black_box("  First.Last+petition@GoogleMail.com ")))
    });
    c.bench_function("signature: parse every field", |b| {
        b.iter_batched(
            typical_input,
            |input| Signature::parse(input, &SignerRules::default()),
            criterion::BatchSize::SmallInput,
        )
    });
    let pepper = Pepper::new(b"benchmark pepper, long enough").expect("pepper");
    let email = Email::parse("leyla.mammadova@example.az").expect("email");
    c.bench_function("identity key: HMAC-SHA256", |b| {
        b.iter(|| pepper.identity(black_box(42), &email))
    });
}

criterion_group!(benches, normalize);
criterion_main!(benches);
