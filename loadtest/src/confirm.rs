//! Confirming signatures under load: the links of the confirmation messages a
//! service wrote as `.eml` files (`UNDERSIGNED_MAIL_DIR`) are POSTed on a
//! fixed schedule, each once, while other runs may sign beside them; then the
//! petition's count must have grown by exactly the signatures confirmed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::{Method, Request, header};
use http_body_util::Full;
use mail_parser::MessageParser;
use tokio::time::Instant;

use crate::client::{Conn, Error};
use crate::run::Tally;
use crate::verify;

#[derive(Args)]
pub struct ConfirmArgs {
    /// The service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    /// The petition whose signatures are confirmed (its count is checked).
    #[arg(long)]
    petition: String,
    /// The folder of `.eml` files the service wrote.
    #[arg(long)]
    mail_dir: PathBuf,
    /// The public URL the links start with.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    public_url: String,
    /// Confirmations per second (open loop).
    #[arg(long, default_value_t = 5000.0)]
    rate: f64,
    /// Connections to send them on.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Confirm at most this many links.
    #[arg(long)]
    limit: Option<usize>,
}

impl ConfirmArgs {
    pub fn target(&self) -> &str {
        &self.target
    }
}

/// Confirms and checks; `Ok(false)` when the count is not exact.
pub async fn confirm(args: ConfirmArgs, target: SocketAddr) -> Result<bool, Error> {
    let mut tokens = read_tokens(&args.mail_dir, &args.public_url)?;
    if let Some(limit) = args.limit {
        tokens.truncate(limit);
    }
    if tokens.is_empty() {
        return Err(format!("no confirmation link in {}", args.mail_dir.display()).into());
    }
    let (before, _) = verify::counts(target, &args.petition).await?;
    println!(
        "confirm: {} links at {:.0}/s on {} connections, petition {}",
        tokens.len(),
        args.rate,
        args.connections,
        args.petition
    );
    let tokens = Arc::new(tokens);
    let started = Instant::now();
    let workers: Vec<_> = (0..args.connections.max(1))
        .map(|w| {
            let tokens = tokens.clone();
            let (rate, step) = (args.rate, args.connections.max(1));
            tokio::spawn(async move {
                let mut conn = Conn::new(target);
                let mut tally = Tally::new();
                // Worker `w` owns slots w, w + step, … of the schedule, as
                // the signing run's open loop does; latency counts from the
                // intended start, so a service that falls behind shows it.
                for slot in (w..tokens.len()).step_by(step) {
                    let intended = started + Duration::from_secs_f64(slot as f64 / rate);
                    tokio::time::sleep_until(intended).await;
                    let request = Request::builder()
                        .method(Method::POST)
                        .uri(format!("/confirm/{}", tokens[slot]))
                        .header(header::HOST, "loadtest")
                        .header(header::ACCEPT, "application/json")
                        .body(Full::new(Bytes::new()))
                        .expect("valid request");
                    match conn.send(request).await {
                        Ok((status, _)) => {
                            *tally.statuses.entry(status.as_u16()).or_default() += 1;
                        }
                        Err(_) => tally.io_errors += 1,
                    }
                    tally.record_since(intended);
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::new();
    for worker in workers {
        tally.add(&worker.await?);
    }
    let seconds = started.elapsed().as_secs_f64();
    crate::report("confirmations", &tally, seconds);
    // The counter is at most a second stale by design.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (after, _) = verify::counts(target, &args.petition).await?;
    let confirmed = tally.count(200);
    let grew = after - before;
    let exact = i64::try_from(confirmed).is_ok_and(|c| c == grew) && tally.requests() == confirmed;
    println!(
        "verify: {confirmed} of {} links confirmed, count grew by {grew}: {}",
        tokens.len(),
        crate::verdict(exact)
    );
    Ok(exact)
}

/// The confirmation tokens of the messages in `dir`, oldest message first.
fn read_tokens(dir: &Path, public_url: &str) -> Result<Vec<String>, Error> {
    let prefix = format!("{}/confirm/", public_url.trim_end_matches('/'));
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| {
            let n = p
                .file_stem()
                .and_then(|s| s.to_str()?.parse().ok())
                .unwrap_or(u64::MAX);
            (n, p)
        })
        .collect();
    files.sort();
    let parser = MessageParser::default();
    let mut tokens = Vec::with_capacity(files.len());
    for (_, path) in files {
        let raw = std::fs::read(&path)?;
        let Some(text) = parser
            .parse(&raw)
            .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        else {
            continue;
        };
        if let Some(start) = text.find(&prefix) {
            let token: String = text[start + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            tokens.push(token);
        }
    }
    Ok(tokens)
}
