//! A stop leaves nothing behind: every signature accepted is stored, and no
//! background task of the service outlives `run`. A vital task's death stops
//! the service with that death as its error.

use std::time::Duration;

use reqwest::Client;
use tokio::sync::oneshot;
use undersigned::{Config, Policy, Supervisor};

use crate::durability::wait_ready;
use crate::support::{Namespace, TestApp, receipt, signer, stored};

/// What the service's own runtime saw: how `run` ended, and how many tasks
/// were still alive on it once the connections it dropped had closed.
struct Ended {
    ran: Result<(), String>,
    alive: usize,
}

/// Runs the service on a runtime of its own in another thread, so that every
/// task alive on that runtime is the service's. Returns its base URL, the
/// sender that stops it, and the thread, which ends with what it saw.
fn start_alone(
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
