//! Starting the real service against the real Postgres and Redis, each test on
//! its own database and Redis key prefix.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::{Client, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use undersigned::Config;
use undersigned_guard::Limit;
use undersigned_store::{NewToken, Role, Store};
use uuid::Uuid;

pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
pub const REDIS: &str = "redis://127.0.0.1:6379";
pub const PEPPER: &str = "test pepper, long enough";

/// A fresh database and Redis prefix, shared by the instances of one test.
#[derive(Clone)]
pub struct Namespace {
    pub database: String,
    pub prefix: String,
    /// The PostgreSQL server's URL, without a database.
    pub server: String,
}

impl Namespace {
    pub fn new() -> Self {
        Self::on(POSTGRES)
    }

    /// A namespace on another PostgreSQL server than the machine's.
    pub fn on(server: &str) -> Self {
        let id = Uuid::new_v4().simple().to_string();
        Self {
            database: format!("us_test_{id}"),
            prefix: format!("test:{id}"),
            server: server.to_owned(),
        }
    }

    pub fn database_url(&self) -> String {
        format!("{}/{}", self.server, self.database)
    }

    /// A configuration for this namespace: no limits (tests that need one set
    /// it), small pools. Every test's clients share 127.0.0.1, so one address
    /// may hold the whole cap of connections but its reserve.
    pub fn config(&self) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: self.database_url(),
            redis_url: REDIS.into(),
            redis_prefix: self.prefix.clone(),
            identity_pepper: Some(PEPPER.parse().expect("a long pepper")),
            ip_limit: Vec::new(),
            domain_limit: None,
            shield_limit: None,
            max_connections_per_address: Config::default().max_connections,
            pool_size: 6,
            shutdown_grace_secs: 5,
            // The tests' clients keep idle connections in their pools: a stop
            // closes them at once, as it did before proxies were considered.
            shutdown_idle_secs: 0,
            // Never the working folder's `mail/`.
            mail_dir: std::env::temp_dir().join(format!("{}-mail", self.database)),
            ..Config::default()
        }
    }

    /// Runs the `undersigned` command line on this namespace's database.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_with(args, &[])
    }

    /// As [`Namespace::cli`], with these environment variables too.
    pub fn cli_with(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_undersigned"))
            .args(args)
            .env("UNDERSIGNED_DATABASE_URL", self.database_url())
            .env("UNDERSIGNED_IDENTITY_PEPPER", PEPPER)
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .output()
            .expect("cli runs")
    }

    pub async fn sql(&self) -> tokio_postgres::Client {
        connect(&self.database_url()).await
    }

    /// Drops the database and the Redis keys.
    pub async fn clean(&self) {
        let admin = connect(&format!("{}/postgres", self.server)).await;
        let _ = admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.database
            ))
            .await;
        if let Ok(client) = redis::Client::open(REDIS)
            && let Ok(mut conn) = client.get_multiplexed_async_connection().await
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{{{}*", self.prefix))
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
            }
        }
    }
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("postgres reachable");
    tokio::spawn(connection);
    client
}

/// The environment that turns every limit off, for a service binary run by a test.
pub const NO_LIMITS: [(&str, &str); 3] = [
    ("UNDERSIGNED_IP_LIMIT", "off"),
    ("UNDERSIGNED_DOMAIN_LIMIT", "off"),
    ("UNDERSIGNED_SHIELD_LIMIT", "off"),
];

/// A request's answer, as JSON.
async fn json_answer(request: reqwest::RequestBuilder) -> Value {
    request
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("json answer")
}

/// One running instance of the service, in this process.
pub struct TestApp {
    pub base: String,
    /// The operators' listener's base URL, when the test configured one.
    pub operator: Option<String>,
    pub http: Client,
    pub ns: Namespace,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestApp {
    pub async fn start(ns: &Namespace, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = ns.config();
        tweak(&mut config);
        let listeners = undersigned::bind(&config).expect("bind");
        let base_of = |l: &tokio::net::TcpListener| format!("http://{}", l.local_addr().unwrap());
        let base = base_of(&listeners.public);
        let operator = listeners.operator.as_ref().map(base_of);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            undersigned::run(config, listeners, async {
                let _ = stopped.await;
            })
            .await
            .expect("service ran");
        });
        let app = Self {
            base,
            operator,
            http: Client::builder()
                .pool_max_idle_per_host(512)
                .build()
                .expect("client"),
            ns: ns.clone(),
            stop: Some(stop),
            task: Some(task),
        };
        app.wait_ready().await;
        app
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.http.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("service did not become ready");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Asks for a graceful stop and waits until the queue is drained.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("service stopped cleanly");
        }
    }

    pub async fn admin_token(&self) -> String {
        self.token(NewToken::admin()).await
    }

    /// Issues a token straight in the store.
    pub async fn token(&self, new: NewToken) -> String {
        let store = Store::connect(&self.ns.database_url(), 1).expect("store");
        store.create_token(&new, None).await.expect("token").1
    }

    /// Creates an open petition through the API, counting web signatures at
    /// once (no email confirmation), and returns its slug.
    pub async fn petition(&self, slug: &str) -> String {
        self.petition_with(slug, json!({"verification": "none"}))
            .await
    }

    /// Creates an open petition with these settings besides its wording.
    pub async fn petition_with(&self, slug: &str, settings: Value) -> String {
        let token = self.admin_token().await;
        let mut body = json!({"slug": slug, "title": "A declaration", "text": "We declare.", "goal": 1_000_000});
        if let (Some(body), Value::Object(settings)) = (body.as_object_mut(), settings) {
            body.extend(settings);
        }
        let r = self
            .http
            .post(self.url("/v1/petitions"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("create petition");
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
        slug.to_owned()
    }

    pub async fn sign(&self, slug: &str, body: &Value) -> Response {
        self.http
            .post(self.url(&format!("/v1/petitions/{slug}/signatures")))
            .json(body)
            .send()
            .await
            .expect("sign request sent")
    }

    /// A POST with a body as given (or no Content-Type at all), for malformed requests.
    pub async fn post_raw(
        &self,
        url: &str,
        content_type: Option<&str>,
        body: &'static str,
    ) -> Response {
        let mut request = self.http.post(url).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        json_answer(self.http.get(self.url(path))).await
    }

    /// A GET with a bearer token, its answer as JSON.
    pub async fn get_json_as(&self, path: &str, token: &str) -> Value {
        json_answer(self.http.get(self.url(path)).bearer_auth(token)).await
    }

    /// The Prometheus text at `/metrics`, on the operators' listener if there is one.
    pub async fn metrics_text(&self) -> String {
        let base = self.operator.as_ref().unwrap_or(&self.base);
        let r = self.http.get(format!("{base}/metrics")).send().await;
        r.expect("metrics").text().await.expect("metrics text")
    }

    /// The value of one series in `/metrics`, named with its labels written
    /// out (`name{label="value"}`); `None` while it has none (a labelled
    /// counter appears at its first increment).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        self.metrics_text()
            .await
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// Signs as a client whose address a trusted proxy forwards.
    pub async fn sign_from(&self, slug: &str, body: &Value, forwarded_for: &str) -> Response {
        self.http
            .post(self.url(&format!("/v1/petitions/{slug}/signatures")))
            .header("x-forwarded-for", forwarded_for)
            .json(body)
            .send()
            .await
            .expect("sign request sent")
    }

    pub async fn count(&self, slug: &str) -> Value {
        self.http
            .get(self.url(&format!("/v1/petitions/{slug}/count")))
            .send()
            .await
            .expect("count")
            .json()
            .await
            .expect("count json")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Checks an RFC 9457 answer with this status and returns its body.
pub async fn problem(r: Response, status: u16) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().unwrap().starts_with("/problems/"));
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

/// The whole seconds of a Retry-After header.
/// A problem's `errors`, as (field, code) pairs.
pub fn problem_fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            let text = |name: &str| e[name].as_str().expect("a text").to_owned();
            (text("field"), text("code"))
        })
        .collect()
}

pub fn retry_after(r: &Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds")
}

/// The receipt of a 202, or `None` for any other answer.
pub async fn receipt(response: Response) -> Option<Uuid> {
    if response.status() != 202 {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    assert_eq!(body["status"], "accepted");
    body["receipt"].as_str()?.parse().ok()
}

/// How many of `receipts` are stored.
pub async fn stored(sql: &tokio_postgres::Client, receipts: &[Uuid]) -> i64 {
    let receipts = receipts.to_vec();
    sql.query_one(
        "SELECT count(*) FROM signatures WHERE id = ANY($1)",
        &[&receipts],
    )
    .await
    .expect("query")
    .get(0)
}

pub async fn rows(sql: &tokio_postgres::Client) -> i64 {
    sql.query_one("SELECT count(*) FROM signatures", &[])
        .await
        .expect("query")
        .get(0)
}

/// Names in the scripts signers use, to exercise normalization.
pub const NAMES: [&str; 8] = [
    "José María Gómez",
    "Leyla Məmmədova",
    "Ильхам Алиев",
    "مريم الحسيني",
    "İsmail Işık",
    "Zoë Ørsted",
    "Nguyễn Thị Hương",
    "Siobhán Ní Bhriain",
];
pub const COUNTRIES: [&str; 8] = ["ES", "AZ", "RU", "EG", "TR", "DK", "VN", "IE"];

/// The i-th distinct signer.
/// Waits until both instances count `n` for the petition, failing once
/// `within` has passed since `since`.
pub async fn counted_on_both(
    (a, b): (&TestApp, &TestApp),
    slug: &str,
    n: i64,
    since: Instant,
    within: Duration,
) {
    loop {
        let (ca, cb) = tokio::join!(a.count(slug), b.count(slug));
        if ca["count"] == n && cb["count"] == n {
            return;
        }
        assert!(
            since.elapsed() < within,
            "counts at {} and {}",
            ca["count"],
            cb["count"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Signer `i` again, their address written in capitals.
pub fn again(i: usize) -> Value {
    let mut s = signer(i);
    s["email"] = json!(s["email"].as_str().unwrap().to_uppercase());
    s
}

pub fn signer(i: usize) -> Value {
    json!({
        "full_name": NAMES[i % NAMES.len()],
        "email": format!("signer.{i}@example.org"),
        "country": COUNTRIES[i % COUNTRIES.len()],
    })
}

/// A petition's id, for scoping tokens in the store.
pub async fn petition_id(ns: &Namespace, slug: &str) -> i64 {
    ns.sql()
        .await
        .query_one("SELECT id FROM petitions WHERE slug = $1", &[&slug])
        .await
        .unwrap()
        .get(0)
}

pub fn scoped(role: Role, petition: i64, countries: &[&str]) -> NewToken {
    NewToken {
        role,
        petition_ids: vec![petition],
        countries: countries.iter().map(|c| (*c).to_owned()).collect(),
        expires_at: None,
    }
}

/// Waits until the counter shows `expected`.
pub async fn count_reaches(app: &TestApp, slug: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let count = app.count(slug).await["count"].as_i64().unwrap();
        if count == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "count {count}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lets the petition's tablets and paper forms leave out the email.
pub async fn email_optional_offline(app: &TestApp, slug: &str) {
    let r = app
        .http
        .patch(app.url(&format!("/v1/petitions/{slug}")))
        .bearer_auth(app.admin_token().await)
        .json(&json!({"email_optional_offline": true}))
        .send()
        .await
        .expect("patch sent");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.expect("petition")["email_optional_offline"],
        true
    );
}

/// Moves an event back in time (an event cannot be created over): it ran
/// from `starts` to `ends` hours ago.
pub async fn event_ran_hours_ago(ns: &Namespace, event: &str, starts: i32, ends: i32) {
    ns.sql()
        .await
        .execute(
            "UPDATE events SET starts_at = now() - make_interval(hours => $2),
                               ends_at = now() - make_interval(hours => $3)
             WHERE id = $1::text::uuid",
            &[&event, &starts, &ends],
        )
        .await
        .expect("event moved");
}

/// Clients connected to the service at `base` (`http://host:port`) that send
/// nothing, as on the web others who could sign next are: a lingering batch
/// waits for them (the guard's `joiners.rs`). Closed when dropped.
pub async fn idle_clients(base: &str, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://").trim_end_matches('/');
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
        // An answer shows the connection was admitted, and so counted.
        client
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 512];
        let read = client.read(&mut answer).await.unwrap();
        assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "healthz");
        clients.push(client);
    }
    clients
}

/// An event on the petition (from `starts_at` to `ends_at`) and an
/// enrollment code for its tablets: the event's id and the code.
pub async fn event_code(
    app: &TestApp,
    slug: &str,
    starts_at: chrono::DateTime<chrono::Utc>,
    ends_at: chrono::DateTime<chrono::Utc>,
) -> (String, String) {
    let (event, answer) = event_enrollment(app, slug, starts_at, ends_at).await;
    (event, answer["code"].as_str().unwrap().to_owned())
}

/// An event on the petition and the answer to asking for an enrollment code
/// (`code`, `url`, `qr_svg`, …): the event's id and that answer.
pub async fn event_enrollment(
    app: &TestApp,
    slug: &str,
    starts_at: chrono::DateTime<chrono::Utc>,
    ends_at: chrono::DateTime<chrono::Utc>,
) -> (String, Value) {
    let organizer = app.admin_token().await;
    let post = |path: String, body: Value| {
        app.http
            .post(app.url(&path))
            .bearer_auth(&organizer)
            .json(&body)
            .send()
    };
    let r = post(
        format!("/v1/petitions/{slug}/events"),
        json!({"name": "Flash mob", "country": "NL", "starts_at": starts_at, "ends_at": ends_at}),
    )
    .await
    .expect("create event");
    assert_eq!(r.status(), 201);
    let event = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post(format!("/v1/events/{event}/enrollment-codes"), json!({}))
        .await
        .expect("code");
    assert_eq!(r.status(), 201);
    (event, r.json::<Value>().await.unwrap())
}

/// An event on the petition and a tablet enrolled for it: the event's id and
/// the tablet's token.
pub async fn tablet(
    app: &TestApp,
    slug: &str,
    starts_at: chrono::DateTime<chrono::Utc>,
    ends_at: chrono::DateTime<chrono::Utc>,
) -> (String, String) {
    let (event, code) = event_code(app, slug, starts_at, ends_at).await;
    let r = app
        .http
        .post(app.url("/v1/devices"))
        .json(&json!({"code": code, "label": "Tablet"}))
        .send()
        .await
        .expect("enroll");
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    (event, token)
}

/// The event's tally on the public counter.
pub async fn event_tally(app: &TestApp, slug: &str, event: &str) -> i64 {
    app.count(slug).await["by_event"][event]
        .as_i64()
        .unwrap_or(0)
}

/// One item's or line's fate in a batch or import report, as
/// `status field:code…`.
pub fn fate(result: &Value) -> String {
    let mut text = result["status"].as_str().expect("status").to_owned();
    for e in result["errors"].as_array().expect("errors") {
        text += &format!(
            " {}:{}",
            e["field"].as_str().expect("field"),
            e["code"].as_str().expect("code")
        );
    }
    text
}

/// A Redis of the calling test's own, so that stopping it or counting its
/// commands disturbs no other test.
pub async fn private_redis() -> (tokio::process::Child, String) {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let client = redis::Client::open(url.as_str()).unwrap();
    let child = redis_server(&["--port", &port.to_string()], &client).await;
    (child, url)
}

/// The same over TLS only (`rediss://`), its certificate for 127.0.0.1
/// (no other name) signed by `ca.crt` in the folder returned (which also holds
/// `stranger.crt`, a CA that signed nothing; `deploy/test-certificates`).
pub async fn private_redis_tls() -> (tokio::process::Child, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/test-certificates"),
    )
    .arg(dir.path())
    .arg("IP:127.0.0.1")
    .status()
    .expect("deploy/test-certificates runs");
    assert!(made.success());
    let port = free_port();
    let url = format!("rediss://127.0.0.1:{port}");
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let client = redis::Client::build_with_tls(
        url.as_str(),
        redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(dir.path().join("ca.crt")).unwrap()),
        },
    )
    .unwrap();
    let child = redis_server(
        &[
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &file("server.crt"),
            "--tls-key-file",
            &file("server.key"),
            "--tls-ca-cert-file",
            &file("ca.crt"),
            "--tls-auth-clients",
            "no",
        ],
        &client,
    )
    .await;
    (child, url, dir)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A redis-server on 127.0.0.1 with `listening` and nothing kept on disk,
/// once `client` has its PING answered.
async fn redis_server(listening: &[&str], client: &redis::Client) -> tokio::process::Child {
    // redis's rustls asks for the process's provider (two are built in).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let child = tokio::process::Command::new("redis-server")
        .args(listening)
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server is installed");
    for _ in 0..200 {
        if let Ok(mut c) = client.get_multiplexed_async_connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_ok()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("private redis did not start");
}

/// Limits as a test writes them, like `2/60s,3/1h`.
pub fn limits(written: &str) -> Vec<Limit> {
    Limit::parse_list(written).expect("limits")
}

/// One limit as a test writes it, like `2/1h`.
pub fn limit(written: &str) -> Option<Limit> {
    Some(written.parse().expect("a limit"))
}

/// Messages waiting: in the outbox, and due on pending signatures.
pub async fn outbox_rows(ns: &Namespace) -> i64 {
    let sql = ns.sql().await;
    sql.query_one(
        "SELECT (SELECT count(*) FROM outbox)
              + (SELECT count(*) FROM signatures WHERE mail_due IS NOT NULL)",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// The outbox once it is empty (panics after `within`).
pub async fn outbox_empties(ns: &Namespace, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while outbox_rows(ns).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the outbox kept messages"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `tests/browser/{script}` in node with `env` (Debian's Chromium,
/// driven by playwright-core, both installed by `deploy/test`) and returns
/// its outcome, the JSON of its last line; fails the test with everything
/// it printed when it failed.
pub async fn in_browser(script: &str, env: &[(&str, &str)]) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    let run = tokio::process::Command::new("node")
        .arg(&path)
        .envs(env.iter().copied())
        .env(
            "CHROMIUM",
            std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        )
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs (deploy/test installs the browser, playwright-core and axe-core)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{script} failed: {stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let outcome: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert_eq!(outcome["ok"], true, "{outcome}");
    outcome
}

/// Reads one HTTP/1.1 answer with a `content-length` off `stream`: its head,
/// lower-cased, and its body.
pub async fn read_answer(stream: &mut tokio::net::TcpStream) -> (String, String) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("a length"));
            if got.len() >= end + 4 + length {
                return (head, text[end + 4..end + 4 + length].to_owned());
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("an answer within 5 s")
            .expect("the connection still open");
        assert!(n > 0, "closed without an answer, after {got:?}");
        got.extend_from_slice(&chunk[..n]);
    }
}
