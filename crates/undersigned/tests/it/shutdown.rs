//! A stop leaves nothing behind: every signature accepted is stored, and no
//! background task of the service outlives `run`. A vital task's death stops
//! the service with that death as its error.

use std::time::Duration;

use reqwest::Client;
use tokio::sync::oneshot;
use undersigned::{Config, Policy, Supervisor};

use crate::durability::wait_ready;
use crate::support::{Namespace, TestApp, idle_clients, read_answer, receipt, signer, stored};

/// What the service's own runtime saw: how `run` ended, and how many tasks
/// were still alive on it once the connections it dropped had closed.
pub(crate) struct Ended {
    pub(crate) ran: Result<(), String>,
    pub(crate) alive: usize,
}

/// Runs the service on a runtime of its own in another thread, so that every
/// task alive on that runtime is the service's. Returns its base URL, the
/// sender that stops it, and the thread, which ends with what it saw.
pub(crate) fn start_alone(
    config: Config,
    tasks: Supervisor,
) -> (String, oneshot::Sender<()>, std::thread::JoinHandle<Ended>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let (bound, base) = std::sync::mpsc::channel();
    let service = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let ran = runtime.block_on(async {
            let listeners = undersigned::bind(&config).expect("bind");
            let address = listeners.public.local_addr().expect("address");
            bound.send(format!("http://{address}")).expect("test waits");
            undersigned::run_supervised(
                config,
                listeners,
                async {
                    let _ = stopped.await;
                },
                tasks,
            )
            .await
        });
        // Connections to Postgres and Redis end moments after their clients
        // are dropped; anything still alive after that was left running.
        let alive = runtime.block_on(async {
            let metrics = tokio::runtime::Handle::current().metrics();
            for _ in 0..300 {
                if metrics.num_alive_tasks() == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            metrics.num_alive_tasks()
        });
        Ended {
            ran: ran.map_err(|e| e.to_string()),
            alive,
        }
    });
    (base.recv().expect("service bound"), stop, service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_with_signatures_queued_stores_every_one_and_ends_every_task() {
    let ns = Namespace::new();
    // A petition made through a service of its own, so the one under test
    // starts with the catalog it will serve.
    let setup = TestApp::start(&ns, |_| {}).await;
    let slug = setup.petition("stopping").await;
    setup.stop().await;

    let mut config = ns.config();
    // One writer that holds a small batch for a second, waiting for more:
    // the signatures are still queued when the stop comes.
    config.writers = 1;
    config.batch_linger_ms = 1000;
    let tasks = Supervisor::new();
    let (base, stop, service) = start_alone(config, tasks.clone());
    let http = Client::new();
    wait_ready(&http, &base).await;
    assert!(tasks.live() > 0, "the service runs its tasks under `tasks`");
    // Another client connected, who could still sign: the writer lingers
    // for it (were every client's signature queued, it would go at once).
    let _other = idle_clients(&base, 1).await;

    let url = format!("{base}/v1/petitions/{slug}/signatures");
    let signing: Vec<_> = (0..20)
        .map(|i| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move { http.post(&url).json(&signer(i)).send().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answered_before_stop = signing.iter().filter(|s| s.is_finished()).count();
    stop.send(()).expect("service running");

    let mut receipts = Vec::new();
    for s in signing {
        let answer = s
            .await
            .unwrap()
            .expect("answered, though the stop came first");
        assert_eq!(answer.status(), 202);
        receipts.push(receipt(answer).await.expect("a receipt"));
    }
    let ended = tokio::task::spawn_blocking(move || service.join().expect("service thread"))
        .await
        .unwrap();
    assert_eq!(ended.ran, Ok(()));
    assert!(
        answered_before_stop < receipts.len(),
        "some signatures were still queued at the stop"
    );
    assert_eq!(
        stored(&ns.sql().await, &receipts).await,
        receipts.len() as i64,
        "every receipt given is stored"
    );
    assert_eq!(tasks.live(), 0, "every supervised task ended");
    assert_eq!(ended.alive, 0, "no task of the service outlives run");
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vital_task_that_dies_stops_the_service_with_its_error() {
    let ns = Namespace::new();
    let tasks = Supervisor::new();
    let (base, _stop, service) = start_alone(ns.config(), tasks.clone());
    wait_ready(&Client::new(), &base).await;
    tasks.spawn("vital test task", Policy::Fatal, || async {
        Err::<(), _>("its disk is gone")
    });
    let ended = tokio::task::spawn_blocking(move || service.join().expect("service thread"))
        .await
        .unwrap();
    assert_eq!(
        ended.ran,
        Err("background task \"vital test task\" died: its disk is gone".to_owned())
    );
    assert_eq!(tasks.live(), 0);
    assert_eq!(ended.alive, 0);
    ns.clean().await;
}

/// Behind a proxy, a connection the service closed while idle could cross a
/// request the proxy was sending on it: that request would get no answer
/// (nginx answers its client 502 and, for a POST, tries no other instance).
/// So at a stop, a kept-alive connection idle then is still served for a
/// while, each answer saying `Connection: close`, while new connections are
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_idle_at_the_stop_is_still_answered_and_told_to_close() {
    use tokio::io::AsyncWriteExt;
    let ns = Namespace::new();
    let setup = TestApp::start(&ns, |_| {}).await;
    let slug = setup.petition("idle-at-stop").await;
    setup.stop().await;

    let mut config = ns.config();
    config.shutdown_idle_secs = 3;
    let (base, stop, service) = start_alone(config, Supervisor::new());
    wait_ready(&Client::new(), &base).await;
    let address = base.trim_start_matches("http://").to_owned();
    let mut kept = tokio::net::TcpStream::connect(&address).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_answer(&mut kept).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");

    stop.send(()).expect("service running");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        tokio::net::TcpStream::connect(&address).await.is_err(),
        "no new connection once stopping"
    );
    let body = signer(1).to_string();
    let request = format!(
        "POST /v1/petitions/{slug}/signatures HTTP/1.1\r\nhost: test\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    kept.write_all(request.as_bytes()).await.unwrap();
    let (head, body) = read_answer(&mut kept).await;
    assert!(head.starts_with("http/1.1 202"), "{head}\n{body}");
    assert!(head.contains("connection: close"), "{head}");
    let receipt: serde_json::Value = serde_json::from_str(&body).unwrap();
    let receipt: uuid::Uuid = receipt["receipt"].as_str().unwrap().parse().unwrap();
    let mut rest = Vec::new();
    use tokio::io::AsyncReadExt;
    let read = tokio::time::timeout(Duration::from_secs(2), kept.read_to_end(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0))),
        "the service closes the connection after that answer"
    );

    // With its last connection closed, the service ends without waiting out
    // the idle time (3 s) or the grace (5 s).
    let closed = std::time::Instant::now();
    let ended = tokio::task::spawn_blocking(move || service.join().expect("service thread"))
        .await
        .unwrap();
    assert!(
        closed.elapsed() < Duration::from_secs(2),
        "{:?}",
        closed.elapsed()
    );
    assert_eq!(ended.ran, Ok(()));
    assert_eq!(stored(&ns.sql().await, &[receipt]).await, 1);
    ns.clean().await;
}
