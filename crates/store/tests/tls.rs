//! Postgres over TLS, against real servers: the machine's own (Debian's
//! snakeoil certificate, `ssl = on`) and a private cluster this test starts
//! with a certificate chain it makes (`deploy/test-certificates`), so that `verify-ca` and
//! `verify-full` meet a certificate they can and one they cannot trust.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Db;
use undersigned_store::{Store, StoreError, TlsMode};

/// Whether every connection the store holds to `db` is encrypted (at least one).
async fn encrypted(db: &Db, store: &Store) -> bool {
    store.ping().await.unwrap();
    let admin = Db {
        url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
        name: "postgres".into(),
    };
    let sql = admin.sql().await;
    let rows = sql
        .query(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.datname = $1",
            &[&db.name],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty());
    rows.iter().all(|r| r.get::<_, bool>(0))
}

#[tokio::test]
async fn require_encrypts_and_a_local_server_without_sslmode_is_reached_in_the_clear() {
    let db = Db::new().await;
    let store = Store::open(&format!("{}?sslmode=require", db.url), 1)
        .await
        .unwrap();
    assert_eq!(store.tls(), TlsMode::Require);
    assert!(encrypted(&db, &store).await);
    drop(store);

    let store = Store::open(&db.url, 1).await.unwrap();
    assert_eq!(store.tls(), TlsMode::Disable);
    assert!(!encrypted(&db, &store).await);
    drop(store);

    // The snakeoil certificate names the machine (and localhost), never
    // 127.0.0.1; whether the system's roots hold it depends on the machine.
    let refused = Store::open(&format!("{}?sslmode=verify-full", db.url), 1).await;
    let reason = format!("{:?}", refused.err());
    assert!(
        reason.contains("NotValidForName") || reason.contains("UnknownIssuer"),
        "{reason}"
    );
    db.drop().await;
}

/// A Postgres cluster of its own on a free port, serving TLS with a
/// certificate for `db.internal` signed by a CA made here.
struct Private {
    dir: PathBuf,
    port: u16,
}

impl Private {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("us-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        run(Command::new("chmod").arg("755").arg(&dir));
        let certificates =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/test-certificates");
        run(Command::new(certificates).arg(&dir).arg("DNS:db.internal"));
        let data = dir.join("data");
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir));
        }
        as_postgres(
            &dir,
            &[
                &pg_bin("initdb"),
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-N",
                "-E",
                "UTF8",
            ],
        );
        for file in ["server.crt", "server.key"] {
            std::fs::copy(dir.join(file), data.join(file)).unwrap();
        }
        run(Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key")));
        if is_root() {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(data.join("server.crt"))
                .arg(data.join("server.key")));
        }
        let port = free_port();
        as_postgres(
            &dir,
            &[
                &pg_bin("pg_ctl"),
                "-D",
                data.to_str().unwrap(),
                "-w",
                "-l",
                dir.join("postgres.log").to_str().unwrap(),
                "-o",
                &format!(
                    "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c ssl=on",
                    dir.display()
                ),
                "start",
            ],
        );
        Self { dir, port }
    }

    fn url(&self, sslmode: &str, root: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/tls?sslmode={sslmode}&sslrootcert={}",
            self.port,
            self.dir.join(root).display()
        )
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        as_postgres(
            &self.dir,
            &[
                &pg_bin("pg_ctl"),
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) {
    let out = command.output().expect("runs");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Postgres refuses to run as root: as its own user then.
fn as_postgres(dir: &Path, args: &[&str]) {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).args(args);
        c
    } else {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    };
    run(command.current_dir(dir));
}

fn pg_bin(name: &str) -> String {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("pg_config");
    format!("{}/{name}", String::from_utf8_lossy(&out.stdout).trim())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn verify_ca_checks_the_chain_and_verify_full_the_name_too() {
    let server = Private::start();
    // Its CA: the chain holds; the name does not (the certificate names
    // db.internal, the URL 127.0.0.1).
    let store = Store::open(&server.url("verify-ca", "ca.crt"), 1)
        .await
        .unwrap();
    assert_eq!(store.tls(), TlsMode::VerifyCa);
    store.ping().await.unwrap();
    drop(store);
    let by_name = Store::open(&server.url("verify-full", "ca.crt"), 1).await;
    assert!(
        matches!(&by_name, Err(StoreError::Postgres(e)) if format!("{e:?}").contains("NotValidForName")),
        "{:?}",
        by_name.err()
    );
    // Another CA: neither, nor require or prefer, which check a chain when
    // given a root, as libpq's do.
    for mode in ["verify-ca", "verify-full", "require", "prefer"] {
        let refused = Store::open(&server.url(mode, "stranger.crt"), 1).await;
        assert!(
            matches!(&refused, Err(StoreError::Postgres(e)) if format!("{e:?}").contains("BadSignature") || format!("{e:?}").contains("UnknownIssuer")),
            "{mode}: {:?}",
            refused.err()
        );
    }
    // The name it holds, reached by that name: verify-full holds.
    let full = format!(
        "host=db.internal hostaddr=127.0.0.1 port={} user=postgres dbname=tls sslmode=verify-full sslrootcert={}",
        server.port,
        server.dir.join("ca.crt").display()
    );
    let store = Store::open(&full, 1).await.unwrap();
    store.ping().await.unwrap();
    drop(store);
    // Without a root, require takes the certificate it is shown (libpq's
    // require), and encrypts.
    let require = format!(
        "postgres://postgres@127.0.0.1:{}/tls?sslmode=require",
        server.port
    );
    let store = Store::open(&require, 1).await.unwrap();
    store.ping().await.unwrap();
    drop(store);
    // Its Unix socket, which names no server: reached, in the clear.
    let socket = format!(
        "host={} port={} user=postgres dbname=tls",
        server.dir.display(),
        server.port
    );
    let store = Store::open(&socket, 1).await.unwrap();
    assert_eq!(store.tls(), TlsMode::Disable);
    store.ping().await.unwrap();
}
