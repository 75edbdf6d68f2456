//! The command line's own messages: each error once, naming the file or value
//! at fault; exit status 2 for a command typed wrong, 1 for one that failed.

use std::process::Output;

use crate::support::Namespace;

/// What the command printed on stderr, which must be one line: the error,
/// said once.
fn one_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    stderr
}

#[test]
fn verifying_a_bundle_that_is_not_there_names_the_file_and_fails() {
    let out = Namespace::new().cli(&["bundle", "verify", "/nonexistent.zip"]);
    assert_eq!(out.status.code(), Some(1));
    let error = one_error(&out);
    assert!(
        error.starts_with("undersigned: /nonexistent.zip: "),
        "{error}"
    );
    assert!(!error.contains("listener"), "{error}");
}

#[test]
fn verifying_a_file_that_is_not_a_zip_says_so_and_names_it() {
    let ns = Namespace::new();
    let file = std::env::temp_dir().join(format!("{}-notes.txt", ns.database));
    std::fs::write(&file, "These are notes, not a bundle.\n").unwrap();
    let path = file.to_str().unwrap();
    let out = ns.cli(&["bundle", "verify", path]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(out.status.code(), Some(1));
    let error = one_error(&out);
    assert!(
        error.contains(path) && error.contains("not a zip"),
        "{error}"
    );
    assert!(!error.contains("configuration"), "{error}");
}

#[test]
fn a_value_the_command_line_cannot_take_is_bad_usage() {
    let ns = Namespace::new();
    for args in [
        &["token", "create", "--role", "owner"][..],
        &[
            "token",
            "create",
            "--role",
            "admin",
            "--expires",
            "2020-01-01T00:00:00Z",
        ],
        &[
            "token",
            "create",
            "--role",
            "coordinator",
            "--country",
            "Netherlands",
        ],
        &["bundle", "prove", "bundle.zip", "--receipt", "my-receipt"],
        &["bundle", "verify", "bundle.zip", "--key", "not base64"],
        // Options that do not fit together, found after parsing.
        &[
            "token",
            "create",
            "--role",
            "admin",
            "--petition",
            "declaration",
        ],
        &["bundle", "frobnicate"],
    ] {
        let out = ns.cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("configuration"), "{args:?}: {stderr}");
    }
    let out = ns.cli(&["bundle", "prove", "bundle.zip", "--receipt", "my-receipt"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("my-receipt") && stderr.contains("--receipt"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_petition_that_does_not_exist_is_said_once_and_fails() {
    let ns = Namespace::new();
    let out = ns.cli_with(
        &[
            "token",
            "create",
            "--role",
            "organizer",
            "--petition",
            "nowhere",
        ],
        &[("RUST_LOG", "warn")],
    );
    assert_eq!(out.status.code(), Some(1));
    let error = one_error(&out);
    assert!(
        error.starts_with("undersigned: --petition \"nowhere\": no such petition"),
        "{error}"
    );
    ns.clean().await;
}

#[test]
fn a_bad_configuration_names_the_variable_or_the_file_and_fails() {
    let ns = Namespace::new();
    let out = ns.cli_with(&["migrate"], &[("UNDERSIGNED_LISTEN", "nowhere")]);
    assert_eq!(out.status.code(), Some(1));
    let error = one_error(&out);
    assert!(
        error.starts_with("undersigned: UNDERSIGNED_LISTEN: "),
        "{error}"
    );

    let out = ns.cli(&["--config", "/nonexistent.toml", "migrate"]);
    assert_eq!(out.status.code(), Some(1));
    let error = one_error(&out);
    assert!(
        error.starts_with("undersigned: /nonexistent.toml: "),
        "{error}"
    );
}
