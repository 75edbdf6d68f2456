//! Connections per client address: one address holding all it may hold still
//! leaves room for other addresses and for health checks, and its further
//! connections are closed at once. Linux routes all of 127/8 to the loopback,
//! so a client bound to 127.0.0.2 is a second address.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{Namespace, TestApp, read_answer};

const FLOODER: [u8; 4] = [127, 0, 0, 1];
const NEIGHBOUR: [u8; 4] = [127, 0, 0, 2];

/// `n` connections from `from`, each having begun a request it never finishes.
async fn slow_connections(app: &TestApp, from: [u8; 4], n: usize) -> Vec<TcpStream> {
    let to: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((from, 0))).unwrap();
        let mut stream = socket.connect(to).await.expect("the backlog takes it");
        // The service may already have closed it: that is for the count below.
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\n").await;
        streams.push(stream);
    }
    streams
}

/// How many of `streams` the service closed: they read an end (or a reset)
/// rather than waiting for an answer to a request never finished.
async fn closed_by_the_service(streams: Vec<TcpStream>) -> usize {
    let closed = streams.into_iter().map(|mut s| async move {
        let mut buffer = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(1), s.read(&mut buffer)).await,
            Ok(Ok(0) | Err(_))
        )
    });
    join_all(closed).await.into_iter().filter(|c| *c).count()
}

/// A client from another loopback address, with a deadline far below the
/// header timeout that would otherwise free the flooder's slots.
fn neighbour() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(NEIGHBOUR))
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_at_its_cap_leaves_room_for_another_and_its_extra_connections_are_closed() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| {
        c.max_connections = 16;
        c.max_connections_per_address = 4;
    })
    .await;
    // As many as the whole cap: without a share per address, they would take it.
    let flood = slow_connections(&app, FLOODER, 16).await;
    let r = neighbour()
        .get(app.url("/v1/openapi.json"))
        .send()
        .await
        .expect("another address is served");
    assert_eq!(r.status(), 200);
    // The test's own client may hold one of the flooder's four already.
    let closed = closed_by_the_service(flood).await;
    assert!(closed >= 12, "{closed} of 16 closed");
    let metrics = app.metrics_text().await;
    let refused = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("undersigned_http_connections_refused_total{reason=\"address\"} ")
        })
        .expect("the refusals are counted");
    assert_eq!(refused, closed.to_string());
    app.stop().await;
    ns.clean().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_are_answered_while_one_address_holds_its_maximum() {
    let ns = Namespace::new();
    // One address may hold as many as the cap allows but the reserve.
    let app = TestApp::start(&ns, |c| {
        c.max_connections = 64;
        c.max_connections_per_address = 64;
    })
    .await;
    let flood = slow_connections(&app, FLOODER, 64).await;
    let probe = neighbour();
    for path in ["/healthz", "/readyz"] {
        let r = probe
            .get(app.url(path))
            .send()
            .await
            .expect("a health check is served");
        assert_eq!(r.status(), 200, "{path}");
        // Read to the end, so the probe's one connection is used again.
        r.bytes().await.unwrap();
    }
    assert!(closed_by_the_service(flood).await >= 1);
    app.stop().await;
    ns.clean().await;
}

/// Sends `head` (a request without its final blank line) and the blank line,
/// and reads the status line of the answer.
async fn status_of(app: &TestApp, head: &str) -> String {
    let to: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let mut stream = TcpStream::connect(to).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(b"\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_or_too_large_headers_are_answered_431_and_a_browsers_are_served() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |_| {}).await;
    let request = |fields: usize, size: usize| {
        let mut head =
            String::from("GET /healthz HTTP/1.1\r\nHost: undersigned\r\nConnection: close\r\n");
        for i in 0..fields {
            head.push_str(&format!("X-Field-{i}: {}\r\n", "v".repeat(size)));
        }
        head
    };
    // A browser's request, generously: 40 fields, 4 KiB in all; then a
    // head of 60 KiB still within the limit.
    assert_eq!(status_of(&app, &request(40, 80)).await, "HTTP/1.1 200 OK");
    assert_eq!(
        status_of(&app, &request(2, 30 * 1024)).await,
        "HTTP/1.1 200 OK"
    );
    // Past the field count, then past the size of the head.
    let count = undersigned_http::MAX_HEADERS;
    assert_eq!(
        status_of(&app, &request(count, 8)).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    // Twice the size: hyper's default (about 400 KiB) took it.
    let size = undersigned_http::MAX_HEAD_BYTES;
    assert_eq!(
        status_of(&app, &request(4, size / 2)).await,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    // The service goes on serving.
    assert_eq!(status_of(&app, &request(0, 0)).await, "HTTP/1.1 200 OK");
    app.stop().await;
    ns.clean().await;
}

/// Asks for `/healthz` on `stream`, kept alive, and reads the answer's
/// status line.
async fn healthz_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: undersigned\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_answer(stream).await;
    head.lines().next().unwrap_or_default().to_owned()
}

/// Whether the service closes `stream` within `within`.
async fn closes(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 64];
    matches!(
        tokio::time::timeout(within, stream.read(&mut buffer)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Each request head has the header timeout from the moment the service
/// waits for it, on a connection that has already served many: a head that
/// dribbles in, and a connection left idle, are closed at its end, not
/// before; requests that keep coming in time are served past it. Three
/// connections wait at once, each on its own timer: one shared would wake
/// only the connection that looked at it last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_head_gets_the_header_timeout_and_no_more() {
    let ns = Namespace::new();
    let app = TestApp::start(&ns, |c| c.header_read_timeout_secs = 2).await;
    let to: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let connect = || async {
        let mut stream = TcpStream::connect(to).await.unwrap();
        assert_eq!(healthz_on(&mut stream).await, "http/1.1 200 ok");
        stream
    };
    // Requests 0.8 s apart for 4.8 s: the first head's deadline passes
    // early on, and the connection is served throughout. Then idle: closed
    // once its next head is a timeout late, not earlier.
    let kept = async {
        let mut kept = connect().await;
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(800)).await;
            assert_eq!(healthz_on(&mut kept).await, "http/1.1 200 ok");
        }
        assert!(
            !closes(&mut kept, Duration::from_secs(1)).await,
            "closed early"
        );
        assert!(
            closes(&mut kept, Duration::from_secs(4)).await,
            "an idle connection is closed"
        );
    };
    // Idle from its first answer on.
    let idle = async {
        let mut idle = connect().await;
        assert!(
            closes(&mut idle, Duration::from_secs(4)).await,
            "an idle connection is closed"
        );
    };
    // A head begun after a served request and never finished.
    let dribbled = async {
        let mut slow = connect().await;
        tokio::time::sleep(Duration::from_millis(1400)).await;
        slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        slow.write_all(b"Host: undersigned\r\n").await.unwrap();
        assert!(
            closes(&mut slow, Duration::from_secs(4)).await,
            "a dribbled head is cut off"
        );
    };
    tokio::join!(kept, idle, dribbled);
    app.stop().await;
    ns.clean().await;
}
