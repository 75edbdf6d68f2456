//! Shared inputs of the benchmarks in `benches/`.

use undersigned_domain::SignatureInput;

/// A typical web signature: a name with diacritics, a tagged address, a postal code.
pub fn typical_input() -> SignatureInput {
    SignatureInput {
        full_name: Some("  Leyla   Məmmədova ".into()),
        email: Some("Leyla.Mammadova+petition@Example.AZ".into()),
        country: Some("az".into()),
        postal_code: Some("az 1000".into()),
        city: Some("Bakı".into()),
        consent_updates: Some("true".into()),
        ..SignatureInput::default()
    }
}

pub const JSON_BODY: &[u8] = br#"{"full_name":"  Leyla   M\u0259mm\u0259dova ","email":"Leyla.Mammadova+petition@Example.AZ","country":"az","postal_code":"az 1000","city":"Bak\u0131","consent_updates":true}"#;

pub const FORM_BODY: &[u8] = b"full_name=++Leyla+++M%C9%99mm%C9%99dova+&email=Leyla.Mammadova%2Bpetition%40Example.AZ&country=az&postal_code=az+1000&city=Bak%C4%B1&consent_updates=on";

/// The database the storage benchmarks write to (created and migrated when missing).
pub fn database_url() -> String {
    std::env::var("UNDERSIGNED_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/undersigned_bench".into())
}

pub fn redis_url() -> String {
    std::env::var("UNDERSIGNED_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}
