//! `loadtest flood`: slow connections, as an attacker holding the service's
//! connections would open them: each begins a request and never finishes it
//! (a header line more every second, as slowloris sends them), and is opened
//! again whenever the service closes it; and, with `--idle`, keep-alive
//! connections that ask once and then say nothing. Once a second, a probe
//! from another loopback address times `/healthz`, and the line printed says
//! (at the second the probe started) how many connections the flood holds and
//! how many the service has closed so far.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::client::Error;

#[derive(Args)]
pub struct FloodArgs {
    /// The service's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
    /// Slow connections to hold open: a request's head never finished.
    #[arg(long, default_value_t = 10_200)]
    connections: usize,
    /// Idle keep-alive connections besides: one request answered, then
    /// silence until the service closes them (then opened again).
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// Loopback source addresses (127.0.0.2 to 127.0.0.N+1; 127.0.0.1 is left
    /// to honest clients) the connections are spread over; 1 is a single
    /// attacker. The probe uses the next one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=250))]
    sources: u8,
    /// Seconds to hold them.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
}

#[derive(Default)]
struct Tally {
    /// Connected and not (yet) closed by the service; some may still wait in
    /// its listen backlog.
    open: AtomicUsize,
    /// Closed by the service before the flood ended.
    closed: AtomicUsize,
}

pub async fn flood(args: FloodArgs) -> Result<(), Error> {
    let until = Instant::now() + Duration::from_secs_f64(args.duration);
    let tally = Arc::new(Tally::default());
    let holders: Vec<_> = (0..args.connections + args.idle)
        .map(|i| {
            let source = Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(args.sources)) as u8);
            let idle = i >= args.connections;
            tokio::spawn(hold(source, args.target, until, idle, tally.clone()))
        })
        .collect();
    let probe_from = Ipv4Addr::new(127, 0, 0, 2 + args.sources);
    println!("second   open  closed_by_service  healthz_ms");
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // A probe waiting out its 5 s must not be followed by a burst of others.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    while Instant::now() < until {
        tick.tick().await;
        let second = started.elapsed().as_secs();
        let healthz = match probe(probe_from, args.target).await {
            Some(took) => format!("{:.1}", took.as_secs_f64() * 1000.0),
            None => "no answer in 5 s".into(),
        };
        println!(
            "{second:>6}  {:>5}  {:>17}  {healthz}",
            tally.open.load(Ordering::Relaxed),
            tally.closed.load(Ordering::Relaxed),
        );
    }
    for holder in holders {
        holder.await?;
    }
    Ok(())
}

async fn connect(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

/// Keeps one slow (or, when `idle`, idle keep-alive) connection open until
/// `until`, opening it again each time the service closes it.
async fn hold(from: Ipv4Addr, to: SocketAddr, until: Instant, idle: bool, tally: Arc<Tally>) {
    while Instant::now() < until {
        let Ok(mut stream) = connect(from, to).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        tally.open.fetch_add(1, Ordering::Relaxed);
        let first: &[u8] = if idle {
            b"GET /healthz HTTP/1.1\r\nhost: flood\r\n\r\n"
        } else {
            b"POST /v1/petitions/x/signatures HTTP/1.1\r\n"
        };
        let _ = stream.write_all(first).await;
        let (mut reader, mut writer) = stream.split();
        let mut buffer = [0u8; 512];
        let closed = tokio::time::timeout_at(until.into(), async {
            let read = async { while reader.read(&mut buffer).await.is_ok_and(|n| n > 0) {} };
            // A slow client sends a header line now and then, never the end.
            let trickle = async {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if idle || writer.write_all(b"x-slow: 1\r\n").await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                () = read => {}
                () = trickle => {}
            }
        })
        .await
        .is_ok();
        tally.open.fetch_sub(1, Ordering::Relaxed);
        if closed {
            tally.closed.fetch_add(1, Ordering::Relaxed);
            // As an attacker would, come back; not in a tight loop.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// How long `/healthz` took to answer on a new connection; `None` after 5 s.
async fn probe(from: Ipv4Addr, to: SocketAddr) -> Option<Duration> {
    let started = Instant::now();
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        let mut stream = connect(from, to).await.ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: flood\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        answer.starts_with(b"HTTP/1.1 200").then_some(())
    })
    .await;
    matches!(answered, Ok(Some(()))).then(|| started.elapsed())
}
