//! The kiosk page for event tablets, served at `/kiosk/`: plain HTML, CSS and
//! JavaScript in `crates/http/kiosk/`, built into the binary, with no build step.
//!
//! A tablet keeps working with no network: the service worker (`sw.js`) keeps
//! the page's files, and the page keeps signatures and the petition's text in
//! IndexedDB. The worker's cache is named after a digest of every file, so a
//! new release is a new worker, which takes over only once the tablet has sent
//! every signature (see `kiosk.js`).
//!
//! The kiosk speaks the languages the signing page does: its own words are in
//! `kiosk/words.json`, the form's labels are the signing page's
//! (`pages/words.rs`), merged into one catalogue written into `kiosk.js`.

use std::sync::LazyLock;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::call::{Answer, Call};
use crate::pages::words::every_language;
use crate::problem::ApiError;
use crate::query::Query;
use crate::reply::{full, page_headers, to_folder};

const INDEX: &str = include_str!("../kiosk/index.html");
const STYLE: &str = include_str!("../kiosk/kiosk.css");
const MANIFEST: &str = include_str!("../kiosk/manifest.webmanifest");
const ICON: &str = include_str!("../kiosk/icon.svg");
const ICON_192: &[u8] = include_bytes!("../kiosk/icon-192.png");
const ICON_512: &[u8] = include_bytes!("../kiosk/icon-512.png");
/// The kiosk's own words, by language: `{"en": {"key": "text"}, …}`.
const WORDS: &str = include_str!("../kiosk/words.json");

/// Only its own files, and its own API: a signer's data can go nowhere else.
/// (`worker-src` and `manifest-src` fall back to `default-src 'self'`.)
const POLICY: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
    style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'none'";

/// The catalogue the page reads: every language's kiosk words, with the
/// signing page's labels for the same fields, so both say the same.
fn catalogue() -> Map<String, Value> {
    let Ok(Value::Object(mut kiosk)) = serde_json::from_str::<Value>(WORDS) else {
        unreachable!("kiosk/words.json is an object (a unit test reads it)");
    };
    for page in every_language() {
        let Some(Value::Object(words)) = kiosk.get_mut(page.language) else {
            continue;
        };
        let shared = [
            ("full_name", page.full_name),
            ("email", page.email),
            ("country", page.country),
            ("postal_code", page.postal_code),
            ("city", page.city),
            ("organization", page.organization),
            ("consent", page.consent),
            ("submit", page.submit),
            ("field_required", page.field_required),
            ("field_invalid", page.field_invalid),
            ("field_too_long", page.field_too_long),
            ("email_undeliverable", page.email_undeliverable),
        ];
        for (key, text) in shared {
            words.insert(key.into(), json!(text));
        }
    }
    kiosk
}

static SCRIPT: LazyLock<String> = LazyLock::new(|| {
    include_str!("../kiosk/kiosk.js").replacen(
        "/*WORDS*/{}",
        &Value::Object(catalogue()).to_string(),
        1,
    )
});

/// The files the worker keeps, as the page asks for them (relative to
/// `/kiosk/`), each with its type and body.
fn files() -> [(&'static str, &'static str, Bytes); 7] {
    let text = |s: &'static str| Bytes::from_static(s.as_bytes());
    [
        ("./", "text/html; charset=utf-8", text(INDEX)),
        (
            "kiosk.js",
            "text/javascript; charset=utf-8",
            Bytes::from(SCRIPT.as_str()),
        ),
        ("kiosk.css", "text/css; charset=utf-8", text(STYLE)),
        (
            "manifest.webmanifest",
            "application/manifest+json",
            text(MANIFEST),
        ),
        ("icon.svg", "image/svg+xml", text(ICON)),
        ("icon-192.png", "image/png", Bytes::from_static(ICON_192)),
        ("icon-512.png", "image/png", Bytes::from_static(ICON_512)),
    ]
}

/// A digest of every file the worker keeps: this release's name.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut digest = Sha256::new();
    for (name, _, body) in &files() {
        digest.update(name.as_bytes());
        digest.update((body.len() as u64).to_le_bytes());
        digest.update(body);
    }
    hex::encode(&digest.finalize()[..8])
});

/// The worker, naming its cache after the release.
static WORKER: LazyLock<String> = LazyLock::new(|| {
    let names: Vec<&str> = files().iter().map(|(name, _, _)| *name).collect();
    include_str!("../kiosk/sw.js")
        .replacen("/*VERSION*/''", &json!(VERSION.as_str()).to_string(), 1)
        .replacen("/*FILES*/[]", &json!(names).to_string(), 1)
});

/// `/kiosk/{file}`: `file` is empty for the page itself. A worker asks for
/// its release's files as `?v=VERSION`: an instance of another release (a
/// rolling deployment) answers 404, so that no cache mixes two releases'
/// files; the worker's install fails and is tried again later.
pub async fn serve(call: Call<'_>) -> Answer {
    if Query::of(call.uri())
        .get("v")
        .is_some_and(|v| v != VERSION.as_str())
    {
        return Err(ApiError::NotFound);
    }
    let (content_type, body) = match call.param("file") {
        "" | "index.html" => (
            "text/html; charset=utf-8",
            Bytes::from_static(INDEX.as_bytes()),
        ),
        "sw.js" => (
            "text/javascript; charset=utf-8",
            Bytes::from(WORKER.as_str()),
        ),
        name => files()
            .into_iter()
            .find(|(file, _, _)| *file == name)
            .map(|(_, content_type, body)| (content_type, body))
            .ok_or(ApiError::NotFound)?,
    };
    let mut response = full(StatusCode::OK, content_type, body);
    // A new release reaches the tablets at their next load, through the
    // worker, which fetches its files afresh (and the browser checks `sw.js`).
    page_headers(&mut response, POLICY, "no-cache");
    Ok(response)
}

/// `/kiosk` without its slash: the page's relative links need it.
pub async fn to_page(_: Call<'_>) -> Answer {
    Ok(to_folder("/kiosk/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every language says everything English does, with the same blanks.
    #[test]
    fn every_language_has_every_word_with_its_blanks() {
        let words = catalogue();
        let english = words["en"].as_object().unwrap();
        let blanks = |text: &str| {
            let mut found: Vec<String> = text
                .split('{')
                .skip(1)
                .filter_map(|s| s.split_once('}').map(|(name, _)| name.to_owned()))
                .collect();
            found.sort();
            found
        };
        let languages: Vec<&str> = every_language().map(|w| w.language).collect();
        assert_eq!(languages, ["en", "fr", "ru", "tr", "az", "ar"]);
        for language in languages {
            let said = words[language]
                .as_object()
                .unwrap_or_else(|| panic!("no words in {language}"));
            assert_eq!(said.len(), english.len(), "{language}");
            for (key, text) in english {
                let theirs = said[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("{language} lacks {key}"));
                assert!(!theirs.trim().is_empty(), "{language}: {key}");
                assert_eq!(
                    blanks(theirs),
                    blanks(text.as_str().unwrap()),
                    "{language}: {key}"
                );
            }
        }
    }

    #[test]
    fn the_script_carries_the_catalogue_and_the_worker_its_files() {
        assert!(!SCRIPT.contains("/*WORDS*/"));
        assert!(SCRIPT.contains("\"ar\":{"));
        assert!(!WORKER.contains("/*VERSION*/"));
        assert!(WORKER.contains(&format!("\"{}\"", *VERSION)));
        assert!(WORKER.contains("\"kiosk.js\""));
    }
}
