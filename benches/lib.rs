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

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

/// Whether criterion is measuring (`cargo bench`), rather than the test suite
/// running each benchmark once.
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The database the storage benchmarks write to (created and migrated when
/// missing): `undersigned_bench` under `cargo bench`; one of this process's own
/// when the test suite runs them, so checkouts at different migrations never
/// share one (dropped by [`drop_scratch_database`], or by `.ci/run`'s sweep of
/// `us_test_*`).
pub fn database_url() -> String {
    std::env::var("UNDERSIGNED_BENCH_DATABASE_URL").unwrap_or_else(|_| {
        if measuring() {
            format!("{POSTGRES}/undersigned_bench")
        } else {
            format!("{POSTGRES}/us_test_bench_{}", std::process::id())
        }
    })
}

/// Drops the test suite's scratch database, if this run made one.
pub async fn drop_scratch_database() {
    if measuring() || std::env::var_os("UNDERSIGNED_BENCH_DATABASE_URL").is_some() {
        return;
    }
    let Ok((client, connection)) =
        tokio_postgres::connect(&format!("{POSTGRES}/postgres"), tokio_postgres::NoTls).await
    else {
        return;
    };
    tokio::spawn(connection);
    let name = format!("us_test_bench_{}", std::process::id());
    let _ = client
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
}

pub fn redis_url() -> String {
    std::env::var("UNDERSIGNED_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}
