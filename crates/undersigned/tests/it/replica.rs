//! Exports from a streaming replica (`UNDERSIGNED_REPLICA_URL`), against a
//! real primary and hot standby the test makes with `initdb` and
//! `pg_basebackup` (the machine's own PostgreSQL allows no replication
//! connections): an export reads the replica only once it has replayed what
//! the primary had written when the export was asked for, and reads the
//! primary when the replica lags.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::exports::receipts;
use crate::support::{Namespace, TestApp, free_port, receipt, signer};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A PostgreSQL server of the test's own, in a folder it deletes.
struct Server {
    data: PathBuf,
    port: u16,
}

fn root() -> bool {
    Command::new("id").arg("-u").output().unwrap().stdout == b"0\n"
}

/// Runs a PostgreSQL program as the `postgres` user when the test runs as
/// root (PostgreSQL refuses to run as root), as the caller otherwise.
fn as_postgres(dir: &Path, program: &str, args: &[&str]) {
    let out = postgres_command(program, args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn postgres_command(program: &str, args: &[&str]) -> Command {
    let mut command = if root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &format!("{BIN}/{program}")]);
        c
    } else {
        Command::new(format!("{BIN}/{program}"))
    };
    command.args(args);
    command
}

impl Server {
    fn start(dir: &Path, data: PathBuf, port: u16) -> Self {
        as_postgres(
            dir,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                &format!("{}.log", data.display()),
                "-w",
                "-o",
                &format!(
                    "-p {port} -c listen_addresses=127.0.0.1 -k {}",
                    dir.display()
                ),
                "start",
            ],
        );
        Self { data, port }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }
}

/// Stopped however the test ends (a failed assertion included), before its
/// folder goes.
impl Drop for Server {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap_or_default();
        let _ = postgres_command("pg_ctl", &["-D", data, "-m", "immediate", "stop"])
            .current_dir("/")
            .output();
    }
}

/// A primary and its hot standby, streaming; dropped in this order, the
/// folder last.
struct Pair {
    replica: Server,
    primary: Server,
    _dir: tempfile::TempDir,
}

impl Pair {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        if root() {
            let chown = Command::new("chown")
                .args(["postgres:", dir.path().to_str().unwrap()])
                .status()
                .unwrap();
            assert!(chown.success());
        }
        let primary_data = dir.path().join("primary");
        as_postgres(
            dir.path(),
            "initdb",
            &[
                "-D",
                primary_data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-N",
            ],
        );
        let primary = Server::start(dir.path(), primary_data, free_port());
        let replica_data = dir.path().join("replica");
        // -R: standby.signal and the primary's address, so it starts as a hot
        // standby streaming from the primary.
        as_postgres(
            dir.path(),
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
                replica_data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
            ],
        );
        let replica = Server::start(dir.path(), replica_data, free_port());
        Self {
            replica,
            primary,
            _dir: dir,
        }
    }
}

async fn replay(pair: &Pair, paused: bool) {
    let replica = crate::support::connect(&format!("{}/postgres", pair.replica.url())).await;
    let call = if paused {
        "SELECT pg_wal_replay_pause()"
    } else {
        "SELECT pg_wal_replay_resume()"
    };
    replica.batch_execute(call).await.unwrap();
}

/// Where the petition's last finished export read, from the audit trail
/// (written just after the export's last byte: waited for).
async fn read_from(ns: &Namespace, exports: i64) -> String {
    let sql = ns.sql().await;
    for _ in 0..100 {
        let finished = sql
            .query(
                "SELECT detail FROM audit_log WHERE action = 'export.finish' ORDER BY id DESC",
                &[],
            )
            .await
            .unwrap();
        if finished.len() as i64 >= exports {
            let detail: Value = finished[0].get(0);
            return detail["read_from"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("export {exports} never recorded its end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_reads_the_replica_once_caught_up_and_the_primary_when_it_lags() {
    let pair = Pair::start();
    let ns = Namespace::on(&pair.primary.url());
    let replica_url = format!("{}/{}", pair.replica.url(), ns.database);
    let app = TestApp::start(&ns, |c| c.replica_url = Some(replica_url)).await;
    let slug = app.petition("from-the-replica").await;
    let token = app.admin_token().await;

    // Signed a moment before the export: the export waits for the replica
    // to replay it, then reads the replica.
    let mut signed = Vec::new();
    for i in 0..5 {
        signed.push(receipt(app.sign(&slug, &signer(i)).await).await.unwrap());
    }
    let exported = receipts(&app, &slug, "", &token).await;
    assert_eq!(exported, signed);
    assert_eq!(read_from(&ns, 1).await, "replica");

    // The replica stops replaying: the next signature is not there, so the
    // export reads the primary (after waiting 2 s for the replica) and
    // still delivers it.
    replay(&pair, true).await;
    signed.push(receipt(app.sign(&slug, &signer(5)).await).await.unwrap());
    let started = std::time::Instant::now();
    let exported = receipts(&app, &slug, "", &token).await;
    assert_eq!(exported, signed, "nothing acknowledged is missing");
    assert_eq!(read_from(&ns, 2).await, "primary");
    assert!(started.elapsed() >= Duration::from_secs(2));

    // Replaying again, it catches up and serves the next export.
    replay(&pair, false).await;
    let exported = receipts(&app, &slug, "", &token).await;
    assert_eq!(exported, signed);
    assert_eq!(read_from(&ns, 3).await, "replica");
    app.stop().await;
    ns.clean().await;
}
