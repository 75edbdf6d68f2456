//! After a run: the service's count must equal the distinct signers it
//! acknowledged, and every acknowledged signer's row must be in Postgres.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::Full;
use uuid::Uuid;

use crate::client::{Conn, Error};

/// The petition's signatures, counted or awaiting their signers'
/// confirmation (on a petition that confirms by email, every web signature
/// of a run is pending).
pub async fn count(target: SocketAddr, slug: &str) -> Result<i64, Error> {
    let (count, pending) = counts(target, slug).await?;
    Ok(count + pending)
}

/// The petition's (confirmed count, pending) as the service reports them.
pub async fn counts(target: SocketAddr, slug: &str) -> Result<(i64, i64), Error> {
    let answer = counter(target, slug).await?;
    let count = answer
        .get("count")
        .and_then(serde_json::Value::as_i64)
        .ok_or("no count in the answer")?;
    let pending = answer
        .get("pending")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    Ok((count, pending))
}

/// An event's tally on the petition's counter.
pub async fn event_tally(target: SocketAddr, slug: &str, event: &str) -> Result<i64, Error> {
    Ok(counter(target, slug).await?["by_event"][event]
        .as_i64()
        .unwrap_or(0))
}

async fn counter(target: SocketAddr, slug: &str) -> Result<serde_json::Value, Error> {
    let request = Request::get(format!("/v1/petitions/{slug}/count"))
        .header(header::HOST, "loadtest")
        .body(Full::new(Bytes::new()))?;
    let (status, body) = Conn::new(target).send(request).await?;
    if status != 200 {
        return Err(format!("count answered {status}").into());
    }
    Ok(serde_json::from_slice(&body)?)
}

/// (rows of the petition, receipts found among `receipts`).
pub async fn stored(
    database_url: &str,
    slug: &str,
    receipts: &[Uuid],
) -> Result<(i64, i64), Error> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM signatures s JOIN petitions p ON p.id = s.petition_id WHERE p.slug = $1",
            &[&slug],
        )
        .await?
        .get(0);
    let mut found = 0;
    for chunk in receipts.chunks(50_000) {
        let found_here: i64 = client
            .query_one(
                "SELECT count(*) FROM signatures WHERE id = ANY($1)",
                &[&chunk.to_vec()],
            )
            .await?
            .get(0);
        found += found_here;
    }
    Ok((rows, found))
}
