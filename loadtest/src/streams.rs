//! `loadtest streams`: many readers holding the live count stream open, as a
//! viral page's visitors would, each timing every event it receives.
//!
//! A change is "received" when an event carrying it arrives. The service's
//! events say when their count was last changed (`updated_at`, the
//! counter's clock: this machine's); while signing runs without pause, a
//! change can have been made just after the view a reader last received, so
//! each event's arrival less the previous event's `updated_at` bounds how
//! long any change it carries took to reach that reader. Only events whose
//! previous view was made after `--settle` are timed: signing must run by
//! then, and go on to the end. The report gives
//! that bound's percentiles over every reader and event, and how many events
//! each reader got.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Args;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::Mutex;

use crate::client::Error;

#[derive(Args)]
pub struct StreamsArgs {
    /// The service's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
    /// The petition whose count to follow.
    #[arg(long)]
    petition: String,
    /// Readers, each on its own connection.
    #[arg(long, default_value_t = 10_000)]
    readers: usize,
    /// Loopback source addresses (127.0.0.2 onwards) the readers are spread
    /// over, as visitors from many addresses are.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(1..=250))]
    sources: u8,
    /// Seconds to hold the streams, once all are open.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds after the readers are open whose events are not timed:
    /// signing (the change to follow) must have begun by then.
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
}

#[derive(Default)]
struct Tally {
    open: AtomicUsize,
    failed: AtomicUsize,
}

pub async fn streams(args: StreamsArgs) -> Result<(), Error> {
    let tally = Arc::new(Tally::default());
    let lags = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let events = Arc::new(Mutex::new(Vec::with_capacity(args.readers)));
    let opened_by = tokio::time::Instant::now() + Duration::from_secs(30);
    let path = format!("/v1/petitions/{}/count/stream", args.petition);
    // Readers open 500 at a time, as a spike's visitors arrive.
    let mut readers = Vec::with_capacity(args.readers);
    for i in 0..args.readers {
        let source = Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(args.sources)) as u8);
        readers.push(tokio::spawn(read(
            source,
            args.target,
            path.clone(),
            tally.clone(),
        )));
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    while tally.open.load(Ordering::Relaxed) + tally.failed.load(Ordering::Relaxed) < args.readers
        && tokio::time::Instant::now() < opened_by
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open = tally.open.load(Ordering::Relaxed);
    eprintln!("streams: {open} of {} readers open", args.readers);
    // From now: time every event for `duration` seconds.
    let timed_from =
        chrono::Utc::now() + chrono::Duration::milliseconds((args.settle * 1000.0) as i64);
    let until = tokio::time::Instant::now() + Duration::from_secs_f64(args.settle + args.duration);
    for reader in readers {
        let (lags, events) = (lags.clone(), events.clone());
        tokio::spawn(async move {
            if let Ok(Ok(mut stream)) = reader.await {
                let seen = stream.follow(until, timed_from, &lags).await;
                events.lock().await.push(seen);
            } else {
                events.lock().await.push(0);
            }
        });
    }
    tokio::time::sleep_until(until + Duration::from_millis(500)).await;
    let lags = lags.lock().await;
    let mut events = events.lock().await.clone();
    events.sort_unstable();
    let quantile = |q: f64| {
        events
            .get(((events.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"readers\":{},\"open\":{open},\"failed\":{},\"events_min\":{},\"events_median\":{},\"lag_ms\":{{\"p50\":{},\"p99\":{},\"max\":{}}},\"timed_events\":{}}}",
        args.readers,
        tally.failed.load(Ordering::Relaxed),
        quantile(0.0),
        quantile(0.5),
        lags.value_at_quantile(0.5),
        lags.value_at_quantile(0.99),
        lags.max(),
        lags.len(),
    );
    Ok(())
}

/// One reader's connection, its answer's head read.
struct Reader {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

async fn read(
    from: Ipv4Addr,
    to: SocketAddr,
    path: String,
    tally: Arc<Tally>,
) -> Result<Reader, Error> {
    let opened = async {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((from, 0)))?;
        let mut stream = socket.connect(to).await?;
        stream
            .write_all(
                format!(
                    "GET {path} HTTP/1.1\r\nhost: loadtest\r\naccept: text/event-stream\r\n\r\n"
                )
                .as_bytes(),
            )
            .await?;
        let mut buffer = Vec::with_capacity(2048);
        let mut chunk = [0u8; 2048];
        while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err("closed before answering".into());
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        if !buffer.starts_with(b"HTTP/1.1 200") {
            return Err(format!(
                "answered {}",
                String::from_utf8_lossy(&buffer[..buffer.len().min(40)])
            )
            .into());
        }
        let body = buffer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(0)
            + 4;
        buffer.drain(..body);
        Ok::<_, Error>(Reader { stream, buffer })
    };
    match opened.await {
        Ok(reader) => {
            tally.open.fetch_add(1, Ordering::Relaxed);
            Ok(reader)
        }
        Err(e) => {
            tally.failed.fetch_add(1, Ordering::Relaxed);
            Err(e)
        }
    }
}

impl Reader {
    /// Reads events until `until`, recording each one's lag bound once
    /// `timed_from` has passed; the number of events read.
    async fn follow(
        &mut self,
        until: tokio::time::Instant,
        timed_from: chrono::DateTime<chrono::Utc>,
        lags: &Mutex<Histogram<u64>>,
    ) -> u64 {
        let mut previous: Option<chrono::DateTime<chrono::Utc>> = None;
        let mut seen = 0;
        let mut chunk = [0u8; 4096];
        let mut mine = Vec::new();
        loop {
            // Chunked transfer: the events are found by their `data:` lines,
            // whatever the chunk framing around them.
            while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let Some(updated) = updated_at(&frame) else {
                    continue;
                };
                let arrived = chrono::Utc::now();
                seen += 1;
                // Timed only when the previous view too was made in the
                // window, while signing ran: before it, the count stood
                // still, and no change was waiting.
                if let Some(before) = previous
                    && before >= timed_from
                {
                    mine.push((arrived - before).num_milliseconds().max(0) as u64);
                }
                previous = Some(updated);
            }
            match tokio::time::timeout_at(until, self.stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.buffer.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        let mut lags = lags.lock().await;
        for lag in mine {
            let _ = lags.record(lag);
        }
        seen
    }
}

/// The `updated_at` of an event's count, if the frame is an event.
fn updated_at(frame: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = std::str::from_utf8(frame).ok()?;
    let at = text.find("\"updated_at\":\"")? + "\"updated_at\":\"".len();
    let end = text[at..].find('"')? + at;
    chrono::DateTime::parse_from_rfc3339(&text[at..end])
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}
