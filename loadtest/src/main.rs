//! `loadtest`: drives undersigned (or the reference server) and reports
//! throughput, latency percentiles and errors, then checks the count is exact.

mod client;
mod confirm;
mod flood;
mod reference;
mod run;
mod signers;
mod streams;
mod tablets;
mod timing;
mod verify;

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use http::{Request, header};
use http_body_util::Full;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use client::{Conn, Error};
use run::{Outcome, Plan, Tally};

#[derive(Parser)]
#[command(about = "Load generator for undersigned")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign (and optionally read the counter) against a running service.
    Run(RunArgs),
    /// Sequential signatures on one connection, alternating a new signer and
    /// one who already signed: each kind's latency, to show a duplicate cannot
    /// be told apart by timing (run the service with its limits off).
    Timing {
        /// The service's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        target: String,
        /// Admin token to create a fresh petition for the run.
        #[arg(long, env = "UNDERSIGNED_ADMIN_TOKEN")]
        admin_token: String,
        /// New signers, each followed by a repeated one.
        #[arg(long, default_value_t = 2000)]
        pairs: u64,
    },
    /// The bare hyper server: reads the body, answers 202. Prints its address.
    Reference {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Hold many slow connections open, as an attacker would, timing
    /// `/healthz` from another address meanwhile.
    Flood(flood::FloodArgs),
    /// POST the confirmation links of the `.eml` files a service wrote, on a
    /// fixed schedule, and check the count grew by exactly those confirmed.
    Confirm(confirm::ConfirmArgs),
    /// Hold many readers of a petition's live count stream, timing how soon
    /// each change reaches each of them.
    Streams(streams::StreamsArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The service's base URL; given again, more instances of it: the signing
    /// connections take them in turn (counter reads, tablets and the checks
    /// use the first, and the count is checked on each).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: Vec<String>,
    /// Sign this existing petition (its count before the run is the baseline).
    #[arg(long, conflicts_with = "admin_token")]
    petition: Option<String>,
    /// Create a fresh petition for the run with this admin token.
    #[arg(long, env = "UNDERSIGNED_ADMIN_TOKEN")]
    admin_token: Option<String>,
    /// Signing connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Open loop at this many signatures per second; closed loop when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many distinct signers.
    #[arg(long)]
    total: Option<u64>,
    /// Share of requests re-sending an earlier signer written differently (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Send X-Forwarded-For with varied client addresses.
    #[arg(long)]
    forwarded_for: bool,
    /// Counter-reading connections.
    #[arg(long, default_value_t = 0)]
    readers: usize,
    /// Counter reads per second (open loop); as fast as answered when absent.
    #[arg(long)]
    read_rate: Option<f64>,
    /// Send the counter reads to the reference server instead of the service:
    /// what that many bare HTTP round trips cost the signing beside them on
    /// this machine, whatever the service does to answer them.
    #[arg(long, requires = "readers")]
    read_reference: bool,
    /// Check every acknowledged signer's row in this database after the run.
    #[arg(long)]
    database_url: Option<String>,
    /// First measure the reference server with the same settings, and report the ratio.
    #[arg(long)]
    compare: bool,
    /// Event tablets sending batches besides the web signers (needs
    /// --admin-token to create the event and enroll them; run the service
    /// with UNDERSIGNED_DEVICE_LIMIT=off to measure it rather than the limit).
    #[arg(long, default_value_t = 0)]
    tablets: usize,
    /// Signatures per tablet batch (at most 500).
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Share of tablet batches sent twice, as after a lost answer (0 to 1).
    #[arg(long, default_value_t = 0.1)]
    resend_share: f64,
    /// Also print, second by second, the requests and how many took longer
    /// than this many milliseconds (by the second each was meant to start).
    #[arg(long, value_name = "MS")]
    timeline: Option<f64>,
    /// How the petition created for the run verifies web signatures: `none`
    /// (counted at once) or `email` (pending until confirmed, each one
    /// queuing a confirmation message).
    #[arg(long, default_value = "none", value_parser = ["none", "email"])]
    verification: String,
    /// Number the web signers from here: a second run on the same petition
    /// (`--petition`) signs other people than the first.
    #[arg(long, default_value_t = 0)]
    first_signer: u64,
    /// Give up a signing request not answered within this many seconds
    /// (counted as timed out, its connection closed).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Write the signing requests' outcome as JSON to this file: statuses,
    /// I/O errors, timeouts, 503s without `Retry-After`, the slowest answer,
    /// the distinct signers acknowledged and every receipt.
    #[arg(long, value_name = "FILE")]
    summary: Option<std::path::PathBuf>,
    /// Skip the checks after the run, for a caller that makes its own
    /// (loadtest/chaos: with faults injected, a signature can be stored
    /// whose answer was lost, so the count may exceed the acknowledged).
    #[arg(long)]
    unchecked: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Reference { listen } => match reference::serve(listen).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("reference: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Timing {
            target,
            admin_token,
            pairs,
        } => match time_duplicates(&target, &admin_token, pairs).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadtest: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Streams(args) => match streams::streams(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("streams: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Flood(args) => match flood::flood(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("flood: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Confirm(args) => {
            let confirmed = match resolve(args.target()) {
                Ok(target) => confirm::confirm(args, target).await,
                Err(e) => Err(e),
            };
            match confirmed {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(3),
                Err(e) => {
                    eprintln!("loadtest: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => match execute(args).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(3),
            Err(e) => {
                eprintln!("loadtest: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn resolve(url: &str) -> Result<SocketAddr, Error> {
    let authority = url
        .strip_prefix("http://")
        .ok_or("only http:// targets")?
        .trim_end_matches('/');
    authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| "target does not resolve".into())
}

async fn create_petition(
    target: SocketAddr,
    token: &str,
    verification: &str,
) -> Result<String, Error> {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let slug = format!("load-{millis}");
    let body = format!(
        r#"{{"slug":"{slug}","title":"Load test {millis}","text":"Generated by loadtest.","goal":1000000,"verification":"{verification}"}}"#
    );
    let request = Request::post("/v1/petitions")
        .header(header::HOST, "loadtest")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let (status, answer) = Conn::new(target).send(request).await?;
    if status != 201 {
        return Err(format!(
            "creating the petition: {status} {}",
            String::from_utf8_lossy(&answer)
        )
        .into());
    }
    Ok(slug)
}

fn plan(args: &RunArgs, targets: Vec<SocketAddr>, slug: String) -> Plan {
    let target = targets[0];
    Plan {
        target,
        sign_targets: targets,
        read_target: target,
        slug,
        // Tablets alone may sign: then no web connection is needed.
        connections: if args.tablets > 0 {
            args.connections
        } else {
            args.connections.max(1)
        },
        rate: args.rate,
        duration: Duration::from_secs_f64(args.duration),
        total: args.total,
        first_signer: args.first_signer,
        duplicates: args.duplicates.clamp(0.0, 1.0),
        forwarded_for: args.forwarded_for,
        readers: args.readers,
        read_rate: args.read_rate,
        tablets: None,
        timeline: args
            .timeline
            .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)),
        timeout: args.timeout.map(|s| Duration::from_secs_f64(s.max(0.001))),
    }
}

/// Starts the reference server as a child process (killed when dropped).
async fn start_reference() -> Result<(Child, SocketAddr), Error> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("reference")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("reference printed nothing")?;
    let address = BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .ok_or("reference printed nothing")?;
    Ok((child, address.parse()?))
}

/// Measures the reference server with the run's settings.
async fn measure_reference(args: &RunArgs) -> Result<Outcome, Error> {
    let (mut child, address) = start_reference().await?;
    let outcome = run::run(plan(args, vec![address], "reference".into())).await;
    child.kill().await?;
    Ok(outcome)
}

async fn execute(args: RunArgs) -> Result<bool, Error> {
    let targets = args
        .target
        .iter()
        .map(|t| resolve(t))
        .collect::<Result<Vec<_>, _>>()?;
    let target = targets[0];
    let reference = if args.compare {
        Some(measure_reference(&args).await?)
    } else {
        None
    };
    let (slug, baseline) = match (&args.petition, &args.admin_token) {
        (Some(slug), _) => (slug.clone(), verify::count(target, slug).await?),
        (None, Some(token)) => (create_petition(target, token, &args.verification).await?, 0),
        (None, None) => return Err("give --petition SLUG or --admin-token TOKEN".into()),
    };
    let mut plan = plan(&args, targets.clone(), slug.clone());
    let _read_reference = if args.read_reference {
        let (child, address) = start_reference().await?;
        plan.read_target = address;
        Some(child)
    } else {
        None
    };
    if args.tablets > 0 {
        let token = args
            .admin_token
            .as_deref()
            .ok_or("--tablets needs --admin-token")?;
        let mut tablets = tablets::enroll(target, token, &slug, args.tablets).await?;
        tablets.batch_size = args.batch_size.clamp(1, 500);
        tablets.resend = args.resend_share.clamp(0.0, 1.0);
        println!(
            "tablets: {} enrolled for event {}, batches of {}, {:.0} % sent twice",
            tablets.tokens.len(),
            tablets.event,
            tablets.batch_size,
            tablets.resend * 100.0
        );
        plan.tablets = Some(tablets);
    }
    let event = plan.tablets.as_ref().map(|t| t.event.clone());
    if targets.len() > 1 {
        println!("targets: signing on {} instances in turn", targets.len());
    }
    println!(
        "run: {} loop, {} signing connections{}, {:.0} s{}, duplicates {:.0} %, readers {}{}, petition {slug}",
        if plan.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        plan.connections,
        plan.rate
            .map(|r| format!(" at {r:.0}/s"))
            .unwrap_or_default(),
        plan.duration.as_secs_f64(),
        plan.total
            .map(|t| format!(" or {t} signers"))
            .unwrap_or_default(),
        plan.duplicates * 100.0,
        plan.readers,
        plan.read_rate
            .map(|r| format!(" at {r:.0}/s"))
            .unwrap_or_default(),
    );
    if args.read_reference {
        println!(
            "readers: reading from the reference server at {}",
            plan.read_target
        );
    }
    let outcome = run::run(plan).await;
    let seconds = outcome.elapsed.as_secs_f64();
    report("signing", &outcome.sign, seconds);
    if event.is_some() {
        let t = &outcome.tablets;
        report("tablet batches", &t.batches, seconds);
        let items: Vec<String> = t.items.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        println!(
            "tablet signatures: {{{}}} = {:.0} accepted/s; {} batches sent twice, {} answered differently",
            items.join(", "),
            t.items.get("accepted").copied().unwrap_or(0) as f64 / seconds,
            t.resent,
            t.resend_mismatches
        );
    }
    if outcome.read.requests() > 0 {
        report(
            "counter reads",
            &outcome.read,
            outcome.read_elapsed.as_secs_f64(),
        );
    }
    let accepted_rate = (outcome.sign.count(202)
        + outcome.tablets.items.get("accepted").copied().unwrap_or(0))
        as f64
        / seconds;
    if let Some(reference) = &reference {
        let reference_seconds = reference.elapsed.as_secs_f64();
        report("reference server", &reference.sign, reference_seconds);
        let reference_rate = reference.sign.count(202) as f64 / reference_seconds;
        println!(
            "ratio: {accepted_rate:.0}/s accepted ÷ {reference_rate:.0}/s reference = {:.3}",
            accepted_rate / reference_rate
        );
    }

    if let Some(path) = &args.summary {
        write_summary(path, &outcome)?;
    }
    if args.unchecked {
        return Ok(true);
    }
    // Let other instances' counters settle (at most 1 s stale by design).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let distinct = outcome.acked.len() as i64;
    let mut exact = true;
    for (i, &instance) in targets.iter().enumerate() {
        let counted = verify::count(instance, &slug).await? - baseline;
        exact &= counted == distinct;
        println!(
            "verify: {distinct} distinct signers acknowledged, count grew by {counted}{}: {}",
            if targets.len() > 1 {
                format!(" on instance {}", i + 1)
            } else {
                String::new()
            },
            verdict(counted == distinct)
        );
    }
    if let Some(event) = &event {
        let from_tablets = outcome.tablets.acked.len() as i64;
        let tally = verify::event_tally(target, &slug, event).await?;
        let ok = tally == from_tablets && outcome.tablets.resend_mismatches == 0;
        exact &= ok;
        println!(
            "verify: {from_tablets} signers accepted from tablets, the event's tally is {tally}, \
             {} resends answered differently: {}",
            outcome.tablets.resend_mismatches,
            verdict(ok)
        );
    }
    if let Some(url) = &args.database_url {
        let (rows, found) = verify::stored(url, &slug, &outcome.receipts).await?;
        let rows = rows - baseline;
        let ok = rows == distinct && found == distinct;
        exact &= ok;
        println!(
            "verify: {rows} rows in Postgres, {found} of {} receipts stored (one per distinct signer): {}",
            outcome.receipts.len(),
            verdict(ok)
        );
    }
    Ok(exact)
}

async fn time_duplicates(target: &str, token: &str, pairs: u64) -> Result<(), Error> {
    let target = resolve(target)?;
    let slug = create_petition(target, token, "none").await?;
    let timing = timing::run(target, &slug, pairs).await?;
    let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    for (what, h) in [("new", &timing.fresh), ("duplicate", &timing.repeated)] {
        println!(
            "{what:>9}: {} signatures, latency ms p10 {:.2}  p50 {:.2}  p90 {:.2}  p99 {:.2}",
            h.len(),
            ms(h, 0.1),
            ms(h, 0.5),
            ms(h, 0.9),
            ms(h, 0.99)
        );
    }
    println!(
        "median ratio duplicate / new: {:.2}",
        ms(&timing.repeated, 0.5) / ms(&timing.fresh, 0.5)
    );
    Ok(())
}

/// The signing requests' outcome, for a script to read.
fn write_summary(path: &std::path::Path, outcome: &Outcome) -> Result<(), Error> {
    let sign = &outcome.sign;
    let statuses: serde_json::Map<String, serde_json::Value> = sign
        .statuses
        .iter()
        .map(|(s, n)| (s.to_string(), (*n).into()))
        .collect();
    let receipts: Vec<String> = outcome.receipts.iter().map(ToString::to_string).collect();
    let summary = serde_json::json!({
        "seconds": outcome.elapsed.as_secs_f64(),
        "requests": sign.requests(),
        "statuses": statuses,
        "io_errors": sign.io_errors,
        "timeouts": sign.timeouts,
        "without_retry_after": sign.without_retry_after,
        "max_ms": sign.latency.max() as f64 / 1000.0,
        "p50_ms": sign.latency.value_at_quantile(0.5) as f64 / 1000.0,
        "p99_ms": sign.latency.value_at_quantile(0.99) as f64 / 1000.0,
        "acked": outcome.acked.len(),
        "receipts": receipts,
    });
    std::fs::write(path, serde_json::to_vec(&summary)?)?;
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "OK" } else { "MISMATCH" }
}

fn report(what: &str, tally: &Tally, seconds: f64) {
    let statuses: Vec<String> = tally
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    let ms = |q: f64| tally.latency.value_at_quantile(q) as f64 / 1000.0;
    let mut failures = format!("io errors {}", tally.io_errors);
    if tally.timeouts > 0 {
        failures += &format!("; timed out {}", tally.timeouts);
    }
    if tally.without_retry_after > 0 {
        failures += &format!("; 503 without Retry-After {}", tally.without_retry_after);
    }
    println!(
        "{what}: {} requests in {seconds:.1} s = {:.0}/s; {} ok = {:.0}/s; statuses {{{}}}; {failures}",
        tally.requests(),
        tally.requests() as f64 / seconds,
        tally.count(202) + tally.count(200),
        (tally.count(202) + tally.count(200)) as f64 / seconds,
        statuses.join(", "),
    );
    println!(
        "{what} latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        tally.latency.max() as f64 / 1000.0
    );
    if let Some(timeline) = &tally.timeline {
        println!(
            "{what} by second: requests, slower than {:.1} ms, slowest ms",
            timeline.slow_ms()
        );
        for (at, second) in timeline.seconds.iter().enumerate() {
            println!(
                "  {at:>4} s  {:>8}  {:>7}  {:>9.2}",
                second.requests,
                second.slow,
                second.slowest as f64 / 1000.0
            );
        }
    }
}
