//! `loadtest timing`: can a duplicate be told apart by how long its answer
//! takes? One connection sends one request at a time, alternating a new
//! signer and a signer who signed a moment earlier (written another way, as a
//! person signing twice would), so both kinds meet the same service; each
//! kind's latency is recorded apart.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Method, Request, header};
use http_body_util::Full;

use crate::client::{Conn, Error};
use crate::signers;

/// Latencies in microseconds, of new signers and of repeated ones.
pub struct Timing {
    pub fresh: Histogram<u64>,
    pub repeated: Histogram<u64>,
}

/// Sends `pairs` new signers and as many repeats, one request at a time.
/// Every answer must be 202: a refused request would time something else.
pub async fn run(target: SocketAddr, slug: &str, pairs: u64) -> Result<Timing, Error> {
    let mut conn = Conn::new(target);
    let mut timing = Timing {
        fresh: Histogram::new(3)?,
        repeated: Histogram::new(3)?,
    };
    let mut body = String::new();
    // Signer 0 signs first, untimed, so that every pair repeats one whose
    // commit (and the seen mark that follows it) is a whole request behind.
    send(&mut conn, slug, 0, 0, &mut body).await?;
    for i in 1..=pairs {
        let took = send(&mut conn, slug, i, 0, &mut body).await?;
        timing.fresh.record(took)?;
        let took = send(&mut conn, slug, i - 1, 1, &mut body).await?;
        timing.repeated.record(took)?;
    }
    Ok(timing)
}

async fn send(
    conn: &mut Conn,
    slug: &str,
    signer: u64,
    variant: u32,
    body: &mut String,
) -> Result<u64, Error> {
    signers::body(signer, variant, body);
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/v1/petitions/{slug}/signatures"))
        .header(header::HOST, "loadtest")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.clone())))?;
    let started = Instant::now();
    let (status, answer) = conn.send(request).await?;
    let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    if status != 202 {
        return Err(format!(
            "signer {signer} answered {status}: {}",
            String::from_utf8_lossy(&answer)
        )
        .into());
    }
    Ok(took)
}
