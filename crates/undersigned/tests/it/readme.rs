//! The README as a test: its `console` walkthroughs, replayed top to bottom
//! against a fresh instance, must answer what the README shows.
//!
//! - Every ```` ```console ```` block is replayed, in order, unless the line
//!   before it is an HTML comment starting `<!-- not replayed`, which gives
//!   the reason (building the project, running the whole suite, a load test).
//! - A command is a `$ ` line and the lines that complete it (an open quote, a
//!   trailing backslash, a here-document); what follows, up to the next `$ `
//!   line, is what it shows.
//! - One bash runs every command, in a fresh directory, so variables and files
//!   carry from one block to the next. `localhost:8080` becomes the test
//!   instance's address; the instance has the limits `deploy/run` has. The
//!   debug binary's directory is first on `PATH` and the command line is
//!   pointed at the test's database, so `undersigned` is this build.
//! - Each command must exit 0 (with `pipefail`), and each HTTP answer curl
//!   receives must be a 2xx, unless the command shows a problem of that status:
//!   a `jq` filter cannot hide a refusal.
//! - Output shown as JSON (one value or several) must be JSON of the same
//!   shape: objects with the same keys (a key that is a UUID stands for any
//!   UUID, like the events' ids in `by_event`), arrays of the same length,
//!   element by element, scalars of the same type. Ids, times, tokens and
//!   hashes differ from run to run and all carry digits, so a string shown
//!   with a digit stands for any string; one without (a status, a locale, a
//!   problem's type and title, an error's code) must be the same, and so must
//!   numbers, booleans and null. `…` elides: a string containing it stands for
//!   any string, and a bare `…` for any value.
//! - Other output is compared line by line, blank lines aside: as many lines,
//!   each with as many words, and each word the same, except that a word shown
//!   with a digit in it stands for any word unless it is all digits (a count).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::{Namespace, PEPPER, TestApp};

/// One command of a walkthrough and what the README shows it printing.
#[derive(Debug)]
struct Step {
    /// The README's line number of the command's first line.
    line: usize,
    command: String,
    shown: String,
}

/// The commands of every replayed console block, in order, and the number of
/// blocks replayed.
fn walkthroughs(readme: &str) -> (Vec<Step>, usize) {
    let lines: Vec<&str> = readme.lines().collect();
    let mut steps = Vec::new();
    let mut blocks = 0;
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != "```console" {
            i += 1;
            continue;
        }
        let skipped = i > 0 && lines[i - 1].trim_start().starts_with("<!-- not replayed");
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].trim_end() == "```")
            .unwrap_or_else(|| panic!("README.md:{}: unclosed console block", i + 1));
        if !skipped {
            blocks += 1;
            steps.extend(block_steps(&lines[i + 1..end], i + 2));
        }
        i = end + 1;
    }
    (steps, blocks)
}

/// The steps of one block's lines, the first of which is README line `first`.
fn block_steps(lines: &[&str], first: usize) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(start) = lines[i].strip_prefix("$ ") else {
            let step = steps
                .last_mut()
                .unwrap_or_else(|| panic!("README.md:{}: output before any command", first + i));
            step.shown.push_str(lines[i]);
            step.shown.push('\n');
            i += 1;
            continue;
        };
        let line = first + i;
        let mut command = start.to_owned();
        i += 1;
        let mut extend = |command: &mut String, what: &str| {
            let next = lines
                .get(i)
                .unwrap_or_else(|| panic!("README.md:{line}: {what} never ends"));
            command.push('\n');
            command.push_str(next);
            i += 1;
            next.trim()
        };
        while incomplete(&command) {
            extend(&mut command, "the command");
        }
        if let Some(delimiter) = here_document(&command) {
            while extend(&mut command, "the here-document") != delimiter {}
        }
        steps.push(Step {
            line,
            command,
            shown: String::new(),
        });
    }
    steps
}

/// Whether a shell command needs more lines: a quote left open, or a
/// backslash at the end.
fn incomplete(command: &str) -> bool {
    #[derive(PartialEq)]
    enum In {
        Word,
        Single,
        Double,
        Comment,
    }
    let mut state = In::Word;
    let mut previous = ' ';
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match state {
            In::Word => match c {
                '\\' if chars.next().is_none() => return true,
                '\'' => state = In::Single,
                '"' => state = In::Double,
                '#' if previous.is_whitespace() => state = In::Comment,
                _ => {}
            },
            In::Single if c == '\'' => state = In::Word,
            In::Double if c == '\\' => {
                chars.next();
            }
            In::Double if c == '"' => state = In::Word,
            In::Comment if c == '\n' => state = In::Word,
            _ => {}
        }
        previous = c;
    }
    state == In::Single || state == In::Double
}

/// The delimiter of the here-document a command opens (`<<EOF`, `<<'EOF'`), if any.
fn here_document(command: &str) -> Option<String> {
    let after = &command[command.find("<<")? + 2..];
    let word: String = after
        .trim_start_matches('-')
        .trim_start()
        .trim_matches(|c| c == '\'' || c == '"')
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// The bash script that runs `steps`, recording each one's output, exit
/// status and the HTTP status of every answer curl receives in `record`.
fn script(steps: &[Step], address: &str) -> String {
    let mut script = String::from(
        "set -o pipefail\n\
         curl() { command curl -D \"$(mktemp \"$README_RECORD/headers.$README_STEP.XXXXXX\")\" \"$@\"; }\n",
    );
    for (i, step) in steps.iter().enumerate() {
        let command = step.command.replace("localhost:8080", address);
        // `:` first, so that a command that is only a comment still makes a group.
        script += &format!(
            "README_STEP={i}\n{{ :\n{command}\n}} >\"$README_RECORD/out.{i}\"\necho $? >\"$README_RECORD/exit.{i}\"\n"
        );
    }
    script
}

/// What went wrong with one step, if anything.
fn judge(step: &Step, output: &str, exit: &str, statuses: &[u16]) -> Option<String> {
    match exit.trim() {
        "0" => {}
        "" => return Some("not run: bash stopped before it".into()),
        code => return Some(format!("exited with {code}")),
    }
    let shown = json_values(&elided(&step.shown));
    let problems: BTreeSet<u16> = shown
        .iter()
        .flatten()
        .filter(|v| {
            v["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("/problems/"))
        })
        .filter_map(|v| v["status"].as_u64().map(|s| s as u16))
        .collect();
    if let Some(status) = statuses
        .iter()
        .find(|s| !(200..300).contains(*s) && !problems.contains(s))
    {
        return Some(format!("an HTTP answer was {status}"));
    }
    match shown {
        Some(shown) => {
            let Some(got) = json_values(output) else {
                return Some("the README shows JSON, the command printed something else".into());
            };
            if shown.len() != got.len() {
                return Some(format!(
                    "{} JSON values shown, {} printed",
                    shown.len(),
                    got.len()
                ));
            }
            shown
                .iter()
                .zip(&got)
                .find_map(|(shown, got)| same_shape(shown, got, "$").err())
        }
        None => same_lines(&step.shown, output).err(),
    }
}

/// The text with each bare `…` (outside a JSON string) quoted, so that shown
/// output eliding a whole value still reads as JSON.
fn elided(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        match c {
            '…' if !in_string => out.push_str("\"…\""),
            _ => {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        in_string = false;
                    }
                } else if c == '"' {
                    in_string = true;
                }
                out.push(c);
            }
        }
    }
    out
}

/// The JSON values the text holds, one after another, or `None` when it is
/// not JSON (or empty).
fn json_values(text: &str) -> Option<Vec<Value>> {
    let values = serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    (!values.is_empty()).then_some(values)
}

/// Whether `got` has the shape of `shown`, under the module's rules; the
/// error names the path where they part.
fn same_shape(shown: &Value, got: &Value, path: &str) -> Result<(), String> {
    let differ = |why: String| Err(format!("at {path}: {why}"));
    match (shown, got) {
        (Value::String(s), _) if s == "…" => Ok(()),
        (Value::String(s), Value::String(g)) => {
            if s.contains('…') || s.chars().any(|c| c.is_ascii_digit()) || s == g {
                Ok(())
            } else {
                differ(format!("{s:?} shown, {g:?} printed"))
            }
        }
        (Value::Object(s), Value::Object(g)) => {
            let keys = |o: &serde_json::Map<String, Value>| -> BTreeSet<String> {
                o.keys().map(|k| any_uuid(k)).collect()
            };
            if keys(s) != keys(g) {
                return differ(format!("keys {:?} shown, {:?} printed", keys(s), keys(g)));
            }
            let mut s_entries: Vec<_> = s.iter().map(|(k, v)| (any_uuid(k), k, v)).collect();
            let mut g_entries: Vec<_> = g.iter().map(|(k, v)| (any_uuid(k), k, v)).collect();
            s_entries.sort_by(|a, b| a.0.cmp(&b.0));
            g_entries.sort_by(|a, b| a.0.cmp(&b.0));
            s_entries
                .iter()
                .zip(&g_entries)
                .try_for_each(|((_, k, s), (_, _, g))| same_shape(s, g, &format!("{path}.{k}")))
        }
        (Value::Array(s), Value::Array(g)) => {
            if s.len() != g.len() {
                return differ(format!("{} elements shown, {} printed", s.len(), g.len()));
            }
            s.iter()
                .zip(g)
                .enumerate()
                .try_for_each(|(i, (s, g))| same_shape(s, g, &format!("{path}[{i}]")))
        }
        (Value::Number(_) | Value::Bool(_) | Value::Null, _) if shown == got => Ok(()),
        _ => differ(format!("{shown} shown, {got} printed")),
    }
}

/// An object key, with any UUID standing for every UUID.
fn any_uuid(key: &str) -> String {
    match uuid::Uuid::parse_str(key) {
        Ok(_) => "<uuid>".into(),
        Err(_) => key.into(),
    }
}

/// Whether plain output has the lines shown, under the module's rules.
fn same_lines(shown: &str, got: &str) -> Result<(), String> {
    let lines = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect()
    };
    let (shown, got) = (lines(shown), lines(got));
    if shown.len() != got.len() {
        return Err(format!(
            "{} lines shown, {} printed",
            shown.len(),
            got.len()
        ));
    }
    for (n, (s, g)) in shown.iter().zip(&got).enumerate() {
        let word_fits = |(s, g): (&String, &String)| {
            s == g
                || s.contains('…')
                || (s.chars().any(|c| c.is_ascii_digit()) && !s.chars().all(|c| c.is_ascii_digit()))
        };
        if s.len() != g.len() || !s.iter().zip(g).all(word_fits) {
            return Err(format!(
                "line {}: {:?} shown, {:?} printed",
                n + 1,
                s.join(" "),
                g.join(" ")
            ));
        }
    }
    Ok(())
}

/// The final status of each HTTP answer curl saved headers for in this step.
fn curl_statuses(record: &Path, step: usize) -> Vec<u16> {
    let prefix = format!("headers.{step}.");
    let mut statuses = Vec::new();
    for entry in std::fs::read_dir(record).expect("record directory") {
        let entry = entry.expect("record entry");
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let headers = std::fs::read_to_string(entry.path()).unwrap_or_default();
        // Interim answers (100 Continue) come first; the last status line is the answer.
        let status = headers
            .lines()
            .rfind(|l| l.starts_with("HTTP/"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u16>().ok());
        // No answer at all: curl failed, which its exit status or the output shows.
        statuses.extend(status);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_readme_walkthrough_replays_on_a_fresh_instance_and_answers_as_shown() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let (steps, blocks) = walkthroughs(&readme);
    // Sign and count, operating, the PDF, the bundle, the street event: a
    // parser that lost blocks would pass vacuously.
    assert!(blocks >= 5, "only {blocks} console blocks replayed");

    let ns = Namespace::new();
    let root = std::env::temp_dir().join(format!("us-readme-{}", ns.database));
    let (work, record) = (root.join("work"), root.join("record"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&record).unwrap();
    // The limits a newcomer's `deploy/run` has: the walkthroughs must pass
    // them. Its messages are files in `mail/` where the commands run, as
    // `deploy/run`'s are at the repository's root.
    let mail = work.join("mail");
    let app = TestApp::start(&ns, |config| {
        let defaults = undersigned::Config::default();
        config.ip_limit = defaults.ip_limit;
        config.domain_limit = defaults.domain_limit;
        config.shield_limit = defaults.shield_limit;
        config.mail_dir = mail;
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let binary = Path::new(env!("CARGO_BIN_EXE_undersigned"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut bash = tokio::process::Command::new("bash");
    bash.args(["--noprofile", "--norc", "-c", &script(&steps, &address)])
        .current_dir(&work)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("UNDERSIGNED_")) {
        bash.env_remove(name);
    }
    bash.env("PATH", path)
        .env("UNDERSIGNED_DATABASE_URL", ns.database_url())
        .env("UNDERSIGNED_IDENTITY_PEPPER", PEPPER)
        .env("UNDERSIGNED_REDIS_PREFIX", &ns.prefix)
        .env("README_RECORD", &record);
    let run = tokio::time::timeout(Duration::from_secs(120), bash.output())
        .await
        .expect("the walkthroughs finish within two minutes")
        .expect("bash runs");

    let mut failures = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let read = |name: String| std::fs::read_to_string(record.join(name)).unwrap_or_default();
        let output = read(format!("out.{i}"));
        let exit = read(format!("exit.{i}"));
        if let Some(why) = judge(step, &output, &exit, &curl_statuses(&record, i)) {
            failures.push(format!(
                "README.md:{}: {why}\n$ {}\n--- shown\n{}--- printed\n{output}\n",
                step.line, step.command, step.shown
            ));
        }
    }
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    app.stop().await;
    ns.clean().await;
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        failures.is_empty(),
        "{} of {} README commands do not answer as shown:\n\n{}\n--- bash's stderr\n{stderr}",
        failures.len(),
        steps.len(),
        failures.join("\n")
    );
}

#[test]
fn a_refusal_behind_a_jq_filter_does_not_pass_for_the_answer_shown() {
    let step = Step {
        line: 1,
        command: "curl … | jq -c '{slug,status}'".into(),
        shown: "{\"slug\":\"declaration\",\"status\":\"open\"}\n".into(),
    };
    // The 409's body through the same filter, and the status curl saw.
    let printed = "{\"slug\":null,\"status\":409}\n";
    assert!(judge(&step, printed, "0\n", &[409]).is_some());
    let printed = "{\"slug\":\"declaration\",\"status\":\"open\"}\n";
    assert!(judge(&step, printed, "0\n", &[409]).is_some());
    assert_eq!(judge(&step, printed, "0\n", &[201]), None);
}

#[test]
fn shapes_match_on_keys_and_kinds_and_ids_may_differ() {
    let shown = elided(
        r#"{"by_event":{"01a22824-e3af-755b-becd-aedfae7bb278":2},"receipt":"01a2…","status":"accepted","lines":…}"#,
    );
    let shown: Value = serde_json::from_str(&shown).unwrap();
    let same = serde_json::json!({"by_event":{"019d0000-0000-7000-8000-000000000000":2},
        "receipt":"019d0000-0000-7000-8000-000000000001","status":"accepted","lines":[1]});
    assert_eq!(same_shape(&shown, &same, "$"), Ok(()));
    let missing_key =
        serde_json::json!({"by_event":{},"receipt":"x","status":"accepted","lines":[]});
    assert!(same_shape(&shown, &missing_key, "$").is_err());
    let other_status = serde_json::json!({"by_event":{"019d0000-0000-7000-8000-000000000000":2},
        "receipt":"x","status":"duplicate","lines":[]});
    assert!(same_shape(&shown, &other_status, "$").is_err());
}

#[test]
fn plain_lines_match_word_for_word_but_ids_and_times_may_differ() {
    let shown = "2\taccepted\t\nok: 2 signatures, Merkle root bf2e66, at 2026-11-29 13:53:25 UTC\n";
    let same = "2\taccepted\t\nok: 2 signatures, Merkle root 07a1c3, at 2027-01-02 08:00:00 UTC\n";
    assert_eq!(same_lines(shown, same), Ok(()));
    let other_count =
        "2\taccepted\t\nok: 3 signatures, Merkle root 07a1c3, at 2027-01-02 08:00:00 UTC\n";
    assert!(same_lines(shown, other_count).is_err());
    assert!(same_lines(shown, "2\tduplicate\t\n").is_err());
}

#[test]
fn commands_run_on_past_quotes_backslashes_and_here_documents() {
    let block = [
        "$ curl -d '{\"a\":",
        "    1}' \\",
        "    -H x",
        "{\"a\":1}",
        "$ cat > f.csv <<EOF",
        "a,b",
        "EOF",
        "$ # it's a comment",
        "$ echo \"it's\"",
        "it's",
    ];
    let steps = block_steps(&block, 10);
    let commands: Vec<(usize, &str, &str)> = steps
        .iter()
        .map(|s| (s.line, s.command.as_str(), s.shown.as_str()))
        .collect();
    assert_eq!(
        commands,
        [
            (10, "curl -d '{\"a\":\n    1}' \\\n    -H x", "{\"a\":1}\n"),
            (14, "cat > f.csv <<EOF\na,b\nEOF", ""),
            (17, "# it's a comment", ""),
            (18, "echo \"it's\"", "it's\n"),
        ]
    );
}
