//! The operators' command line against the real Postgres: what each command
//! prints, the audit entry it leaves (the API's action, its detail marked
//! `"via": "command line"`), one short line and exit status 2 for a value it
//! cannot take, and a progress line only on a terminal.

use std::process::Output;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};
use undersigned_store::{Actor, AuditEntry, Store};

use crate::support::{Namespace, PEPPER, petition_id};

/// What a command that succeeded printed.
fn printed(ns: &Namespace, args: &[&str]) -> String {
    let out = ns.cli(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    // A command logs only warnings and errors unless RUST_LOG asks for more:
    // its check of the migrations, say, is not news to whoever typed it.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("INFO"), "{args:?}: {stderr}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// The one line a command that failed printed on stderr, and its exit status.
fn failure(ns: &Namespace, args: &[&str]) -> (Option<i32>, String) {
    let out: Output = ns.cli_with(args, &[("RUST_LOG", "error")]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr:?}");
    assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    (out.status.code(), stderr)
}

/// A value the command line cannot take: exit status 2, and one line that
/// names what it accepts.
fn refused_value(ns: &Namespace, args: &[&str], accepted: &[&str]) {
    let (code, error) = failure(ns, args);
    assert_eq!(code, Some(2), "{args:?}: {error}");
    assert!(error.starts_with("undersigned: "), "{error}");
    for value in accepted {
        assert!(
            error.contains(value),
            "{args:?}: {value} not named: {error}"
        );
    }
}

/// Each line's words.
fn words(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The audit trail's entries with this action: petition id and detail.
async fn audited(ns: &Namespace, action: &str) -> Vec<(Option<i64>, Value)> {
    ns.sql()
        .await
        .query(
            "SELECT petition_id, detail FROM audit_log WHERE action = $1 ORDER BY id",
            &[&action],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A petition, open, with a goal of 1000.
fn create_petition(ns: &Namespace, slug: &str) {
    let args = ["petition", "create", "--slug", slug, "--title", "Signed"];
    printed(ns, &[&args[..], &["--goal", "1000"]].concat());
}

/// A petition with three paper signatures: two from Belgium, one from the
/// Netherlands.
fn signed_petition(ns: &Namespace, slug: &str) -> std::path::PathBuf {
    create_petition(ns, slug);
    let forms = std::env::temp_dir().join(format!("{}-{slug}-forms.csv", ns.database));
    std::fs::write(
        &forms,
        "full_name,email,country\nAnna Jansen,anna@example.nl,NL\n\
         Bo Peeters,bo@example.be,BE\nClaire Dupont,claire@example.be,BE\n",
    )
    .unwrap();
    let report = printed(
        ns,
        &[
            "import",
            "--petition",
            slug,
            "--file",
            forms.to_str().unwrap(),
        ],
    );
    assert!(
        report.ends_with("3 accepted, 0 duplicate, 0 invalid\n"),
        "{report}"
    );
    forms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn petitions_are_listed_shown_closed_and_opened_and_each_change_is_audited() {
    let ns = Namespace::new();
    let forms = signed_petition(&ns, "declaration");
    let _ = std::fs::remove_file(forms);
    printed(
        &ns,
        &[
            "petition",
            "create",
            "--slug",
            "clean-air",
            "--title",
            "Clean air",
            "--goal",
            "500",
            "--status",
            "draft",
        ],
    );

    let list = printed(&ns, &["petition", "list"]);
    let lines = words(&list);
    assert_eq!(lines.len(), 3, "{list}");
    assert_eq!(lines[0], ["slug", "status", "count", "goal", "created_at"]);
    assert_eq!(lines[1][..4], ["declaration", "open", "3", "1000"]);
    assert_eq!(lines[2][..4], ["clean-air", "draft", "0", "500"]);
    for line in &lines[1..] {
        assert!(line[4].ends_with('Z'), "{list}");
        DateTime::parse_from_rfc3339(line[4]).expect("RFC 3339");
    }
    let listed = json_lines(&printed(&ns, &["petition", "list", "--json"]));
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (&listed[0]["slug"], &listed[0]["count"], &listed[0]["goal"]),
        (&json!("declaration"), &json!(3), &json!(1000))
    );

    let shown = printed(&ns, &["petition", "show", "declaration"]);
    let lines = words(&shown);
    assert!(lines.contains(&vec!["count", "3"]), "{shown}");
    assert!(lines.contains(&vec!["title", "Signed"]), "{shown}");
    let table = lines
        .iter()
        .position(|l| *l == ["country", "count"])
        .expect("the counts by country");
    assert_eq!(lines[table + 1..], [vec!["BE", "2"], vec!["NL", "1"]]);
    let shown: Value = serde_json::from_str(&printed(
        &ns,
        &["petition", "show", "declaration", "--json"],
    ))
    .unwrap();
    assert_eq!(shown["by_country"], json!({"BE": 2, "NL": 1}));

    assert_eq!(
        printed(&ns, &["petition", "close", "declaration"]),
        "declaration closed\n"
    );
    assert_eq!(
        json_lines(&printed(&ns, &["petition", "list", "--json"]))[0]["status"],
        "closed"
    );
    assert_eq!(
        printed(&ns, &["petition", "open", "declaration"]),
        "declaration open\n"
    );
    let id = petition_id(&ns, "declaration").await;
    let change = json!({"fields": ["status"], "via": "command line"});
    assert_eq!(
        audited(&ns, "petition.update").await,
        [(Some(id), change.clone()), (Some(id), change)]
    );

    let (code, error) = failure(&ns, &["petition", "show", "nowhere"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        error,
        "undersigned: petition \"nowhere\": no such petition\n"
    );
    refused_value(
        &ns,
        &[
            "petition", "create", "--slug", "x", "--title", "X", "--status", "shut",
        ],
        &["--status", "shut", "draft, open, closed"],
    );
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_listed_without_their_secret_and_revoked_with_an_audit_entry() {
    let ns = Namespace::new();
    create_petition(&ns, "declaration");
    let admin = printed(&ns, &["token", "create", "--role", "admin"]);
    let coordinator = printed(
        &ns,
        &[
            "token",
            "create",
            "--role",
            "coordinator",
            "--petition",
            "declaration",
            "--country",
            "NL",
            "--country",
            "be",
            "--expires",
            "2099-06-30T00:00:00Z",
        ],
    );

    let list = printed(&ns, &["token", "list"]);
    for secret in [&admin, &coordinator] {
        assert!(!list.contains(secret.trim()), "a secret listed: {list}");
    }
    let lines = words(&list);
    assert_eq!(
        lines[0],
        [
            "id",
            "role",
            "petitions",
            "countries",
            "expires_at",
            "last_used_at",
            "revoked_at"
        ]
    );
    // Newest first.
    assert_eq!(
        lines[1][1..],
        [
            "coordinator",
            "declaration",
            "NL,BE",
            "2099-06-30T00:00:00Z",
            "-",
            "-"
        ]
    );
    assert_eq!(lines[2][1..], ["admin", "-", "-", "-", "-", "-"]);
    let listed = printed(&ns, &["token", "list", "--json"]);
    assert!(!listed.contains(coordinator.trim()));
    let id = json_lines(&listed)[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(id, lines[1][0]);

    assert_eq!(
        printed(&ns, &["token", "revoke", &id]),
        format!("{id} revoked\n")
    );
    let revoked = json_lines(&printed(&ns, &["token", "list", "--json"]));
    assert!(revoked[0]["revoked_at"].is_string(), "{revoked:?}");
    assert!(revoked[1]["revoked_at"].is_null(), "{revoked:?}");
    assert_eq!(
        audited(&ns, "token.revoke").await,
        [(None, json!({"token": id, "via": "command line"}))]
    );
    let (code, error) = failure(&ns, &["token", "revoke", &id]);
    assert_eq!(code, Some(1));
    assert!(error.contains(&id), "{error}");

    refused_value(&ns, &["token", "revoke", "my-token"], &["my-token", "UUID"]);
    refused_value(
        &ns,
        &["token", "create", "--role", "owner"],
        &["owner", "admin, organizer, coordinator, device"],
    );
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_created_listed_and_hands_out_a_code_a_tablet_enrolls_with() {
    let ns = Namespace::new();
    create_petition(&ns, "declaration");
    let starts = rfc3339(Utc::now() + Duration::hours(1));
    let ends = rfc3339(Utc::now() + Duration::hours(9));
    let event = |extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "event",
            "create",
            "--petition",
            "declaration",
            "--name",
            "Market day",
            "--starts-at",
            &starts,
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect()
    };
    let args = event(&["--ends-at", &ends, "--country", "nl", "--place", "Dam"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = printed(&ns, &args).trim().to_owned();
    uuid::Uuid::parse_str(&id).expect("the event's id");

    let list = printed(&ns, &["event", "list", "--petition", "declaration"]);
    let lines = words(&list);
    assert_eq!(
        lines[0],
        [
            "id",
            "starts_at",
            "ends_at",
            "country",
            "signatures",
            "name",
            "place"
        ]
    );
    assert_eq!(
        lines[1],
        [
            id.as_str(),
            starts.as_str(),
            ends.as_str(),
            "NL",
            "0",
            "Market",
            "day",
            "Dam"
        ]
    );
    let listed = json_lines(&printed(
        &ns,
        &["event", "list", "--petition", "declaration", "--json"],
    ));
    assert_eq!(
        (&listed[0]["name"], &listed[0]["place"]),
        (&json!("Market day"), &json!("Dam"))
    );

    let code = printed(&ns, &["event", "code", &id]).trim().to_owned();
    let store = Store::connect(&ns.database_url(), 2).unwrap();
    let tablet = AuditEntry::new(&Actor::default(), "device.enroll", json!({}));
    let enrolled = store
        .enroll_device(&code, "tablet 1", tablet)
        .await
        .unwrap()
        .expect("the code enrolls a tablet");
    assert_eq!(enrolled.event.id.to_string(), id);

    let petition = petition_id(&ns, "declaration").await;
    let created = audited(&ns, "event.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].0, Some(petition));
    assert_eq!(
        (&created[0].1["name"], &created[0].1["via"]),
        (&json!("Market day"), &json!("command line"))
    );
    let codes = audited(&ns, "event.enrollment_code").await;
    assert_eq!(codes.len(), 1);
    assert_eq!(codes[0].0, Some(petition));
    assert_eq!(
        (&codes[0].1["event"], &codes[0].1["via"]),
        (&json!(id), &json!("command line"))
    );

    let args = event(&["--ends-at", &ends, "--country", "Narnia"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused_value(&ns, &args, &["--country", "Narnia"]);
    let args = event(&["--ends-at", &starts, "--country", "NL"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    refused_value(&ns, &args, &["--ends-at", "not_after_starts_at"]);
    let (status, error) = failure(&ns, &["event", "code", &uuid::Uuid::nil().to_string()]);
    assert_eq!(status, Some(1));
    assert!(error.contains("no such event"), "{error}");
    ns.clean().await;
}

#[test]
fn every_choice_of_an_export_is_typed_and_a_wrong_one_names_the_others() {
    let ns = Namespace::new();
    let export = ["export", "--petition", "p", "--out", "p.csv"];
    for (option, value, accepted) in [
        ("--format", "docx", "csv, jsonl, pdf, bundle"),
        ("--channel", "fax", "web, event, paper"),
        ("--signer-kind", "robot", "person, organization"),
        ("--status", "lost", "counted, invalidated, shadowed, all"),
        ("--columns", "full_name,shoe_size", "receipt, full_name"),
    ] {
        let mut args = export.to_vec();
        args.extend([option, value]);
        refused_value(&ns, &args, &[option, accepted]);
    }
    let help = printed(&ns, &["export", "--help"]);
    for value in [
        "jsonl",
        "bundle",
        "paper",
        "organization",
        "shadowed",
        "postal_code",
    ] {
        assert!(help.contains(value), "{value} not in --help");
    }
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let ns = Namespace::new();
    let bash = printed(&ns, &["completions", "bash"]);
    assert!(bash.contains("complete -F _undersigned"), "{bash}");
    assert!(bash.contains("petition") && bash.contains("--signer-kind"));
    assert!(printed(&ns, &["completions", "zsh"]).starts_with("#compdef undersigned"));
    assert!(printed(&ns, &["completions", "fish"]).contains("complete -c undersigned"));
    refused_value(&ns, &["completions", "tcsh"], &["bash", "zsh", "fish"]);
}

/// Runs the command line on a pseudo-terminal (util-linux `script`), as an
/// operator at a terminal does; what the terminal showed.
fn on_terminal(ns: &Namespace, args: &[&str]) -> String {
    let command: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_undersigned"))
        .chain(args.iter().copied())
        .map(|a| format!("'{a}'"))
        .collect();
    let out = std::process::Command::new("script")
        .args(["-qec", &command.join(" "), "/dev/null"])
        .env("UNDERSIGNED_DATABASE_URL", ns.database_url())
        .env("UNDERSIGNED_IDENTITY_PEPPER", PEPPER)
        .env("RUST_LOG", "error")
        .output()
        .expect("util-linux script runs");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_work_shows_its_progress_on_a_terminal_and_nothing_when_stderr_is_not_one() {
    let ns = Namespace::new();
    let forms = signed_petition(&ns, "declaration");
    let forms = forms.to_str().unwrap();
    let bundle = std::env::temp_dir().join(format!("{}-bundle.zip", ns.database));
    let bundle = bundle.to_str().unwrap();
    let export = [
        "export",
        "--petition",
        "declaration",
        "--format",
        "bundle",
        "--out",
        bundle,
    ];

    // Drawn at once, rewritten in place with `\r`, and ended with a newline
    // before what the command prints.
    let progress = |shown: &str, what: &str| -> Vec<String> {
        let line = shown
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in {shown:?}"));
        line.split('\r')
            .skip(1)
            .map(|drawn| drawn.trim_end().to_owned())
            .collect()
    };
    let shown = on_terminal(&ns, &export);
    let drawn = progress(&shown, "rows written");
    assert!(
        drawn[0].starts_with("export: 0 of 3 rows written (pass 1 of 2), "),
        "{drawn:?}"
    );
    assert!(
        drawn
            .last()
            .unwrap()
            .starts_with("export: 3 of 3 rows written (pass 2 of 2), "),
        "{drawn:?}"
    );
    assert!(drawn.iter().all(|d| d.ends_with(" rows/s")), "{drawn:?}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with('{') && l.contains("\"rows\":3")),
        "{shown:?}"
    );
    let shown = on_terminal(&ns, &["bundle", "verify", bundle]);
    let drawn = progress(&shown, "members verified");
    assert_eq!(
        drawn.last().unwrap(),
        "bundle verify: 3 of 3 members verified"
    );
    assert!(shown.lines().any(|l| l.starts_with("ok: 3 signatures")));
    let shown = on_terminal(
        &ns,
        &[
            "import",
            "--petition",
            "declaration",
            "--file",
            forms,
            "--dry-run",
        ],
    );
    let drawn = progress(&shown, "checked");
    assert_eq!(
        drawn.last().unwrap(),
        "import: 3 lines checked, looking for duplicates"
    );

    for args in [
        &export[..],
        &["bundle", "verify", bundle],
        &["import", "--petition", "declaration", "--file", forms],
    ] {
        let out = ns.cli_with(args, &[("RUST_LOG", "error")]);
        assert!(out.status.success(), "{out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {out:?}");
    }
    let _ = std::fs::remove_file(bundle);
    let _ = std::fs::remove_file(forms);
    ns.clean().await;
}

/// An install that once generated its pepper, given another in the
/// environment (as `UNDERSIGNED_REQUIRE_SECRETS` asks), refuses to start:
/// every signer's identity key would change, and each could sign again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pepper_other_than_the_one_stored_is_refused() {
    let ns = Namespace::new();
    let mut config = ns.config();
    config.identity_pepper = None;
    let (store, _) = undersigned::open_store(&config).await.unwrap();
    let stored = store.pepper_stored_before().await.unwrap().unwrap();
    drop(store);
    config.identity_pepper = Some(PEPPER.parse().unwrap());
    let refused = undersigned::open_store(&config)
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|e| e.contains("differs from the pepper this database generated")),
        "{refused:?}"
    );
    config.identity_pepper = Some(stored.parse().unwrap());
    assert!(undersigned::open_store(&config).await.is_ok());
    ns.clean().await;
}
