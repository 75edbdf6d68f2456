//! The live counter: served from memory, rendered once per change, revalidated
//! by ETag, and pushed to whoever keeps a stream open (Server-Sent Events).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{Either, Full, StreamBody};
use hyper::body::Frame;
use rustc_hash::FxHashMap;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use undersigned_ingest::{Catalog, CountView};
use undersigned_store::Petition;

use crate::call::{Answer, Call};
use crate::problem::ApiError;
use crate::streams::Watching;

/// The last rendering of each petition's counter, reused while neither the
/// counts nor the petition change. By petition id: the service's own, so a
/// fast hash.
#[derive(Default)]
pub struct RenderedCounts(RwLock<FxHashMap<i64, Arc<Rendered>>>);

struct Rendered {
    view: Arc<CountView>,
    goal: i64,
    body: Bytes,
    /// The same as a stream's event.
    event: Bytes,
    etag: HeaderValue,
    /// A `200`'s headers and a `304`'s, made once: a read clones them, which
    /// costs less than inserting each (every read pays it; measured in
    /// benches/BENCHMARKS.md, "Counter reads").
    ok: HeaderMap,
    not_modified: HeaderMap,
}

impl RenderedCounts {
    fn get(&self, petition: &Petition, view: &Arc<CountView>) -> Arc<Rendered> {
        if let Some(r) = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&petition.id)
            .filter(|r| Arc::ptr_eq(&r.view, view) && r.goal == petition.goal)
        {
            return r.clone();
        }
        let body = json!({
            "petition": petition.slug,
            "count": view.total,
            "people": view.people,
            "organizations": view.organizations,
            "goal": petition.goal,
            "by_country": view.by_country,
            "by_event": view.by_event,
            "pending": view.pending,
            "updated_at": view.updated_at,
        });
        let etag = format!(
            "W/\"{}-{:x}-{}\"",
            view.total, view.fingerprint, petition.goal
        );
        let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("W/\"0\""));
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let event = [b"event: count\ndata: ".as_slice(), &body, b"\n\n"].concat();
        let mut not_modified = HeaderMap::with_capacity(4);
        not_modified.insert(header::ETAG, etag.clone());
        not_modified.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=1"),
        );
        crate::cors::public(&mut not_modified);
        let mut ok = not_modified.clone();
        ok.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let rendered = Arc::new(Rendered {
            view: view.clone(),
            goal: petition.goal,
            body: Bytes::from(body),
            event: Bytes::from(event),
            etag,
            ok,
            not_modified,
        });
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(petition.id, rendered.clone());
        rendered
    }
}

/// `GET /v1/petitions/{slug}/count`: public.
pub async fn show(call: Call<'_>) -> Answer {
    let app = call.app;
    let petition = call.petition().await?;
    let view = app.ingest.counter().view(petition.id);
    let rendered = app.counts.get(&petition, &view);
    let etag = rendered.etag.to_str().unwrap_or("");
    let fresh = call
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag.trim_start_matches("W/")
        });
    let (status, body, answer_headers) = if fresh {
        (
            StatusCode::NOT_MODIFIED,
            Bytes::new(),
            &rendered.not_modified,
        )
    } else {
        (StatusCode::OK, rendered.body.clone(), &rendered.ok)
    };
    let mut response = Response::new(Either::Left(Full::new(body)));
    *response.status_mut() = status;
    *response.headers_mut() = answer_headers.clone();
    Ok(response)
}

/// A stream's events come at most this often: a burst of signatures is one
/// event with the newest count, however many readers are watching.
const COALESCE: Duration = Duration::from_secs(1);

/// `GET /v1/petitions/{slug}/count/stream`: public, Server-Sent Events. The
/// count as `GET …/count` shows it (`event: count`), at once and then after
/// each change (at most one a [`COALESCE`]), with a comment when nothing was
/// sent for a heartbeat. Every change this instance learns of is sent (its
/// own commits, other instances' announcements, reloads), so each instance
/// streams every signature. Ends when the service stops or the petition is
/// gone; browsers reconnect by themselves. Within the streams' own budget
/// (see [`crate::streams`]): over it, 503 or 429 with `Retry-After`.
pub async fn stream(call: Call<'_>) -> Answer {
    let app = call.app;
    let petition = call.petition().await?;
    let watching = app.streams.admit(call.client()).map_err(|refusal| {
        app.metrics.stream_refused(refusal);
        ApiError::Streams(refusal)
    })?;
    let feed = Feed {
        _watching: watching,
        _not_signing: app.ingest.guard().joiners().busy_elsewhere(),
        changes: app.ingest.counter().watch(petition.id),
        petition,
        catalog: app.catalog.clone(),
        counts: app.counts.clone(),
        heartbeat: call.config.stream_heartbeat,
        stopping: app.stopping.clone(),
        sent: None,
    };
    let frames = futures_util::stream::unfold(feed, |mut feed| async move {
        let frame = feed.next().await?;
        Some((Ok(Frame::data(frame)), feed))
    });
    let mut response = Response::new(Either::Right(StreamBody::new(frames.boxed())));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // nginx (and proxies that follow it) would otherwise hold events back
    // to fill a buffer.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    crate::cors::public(h);
    Ok(response)
}

/// One stream's state: what it watches and when it last sent.
struct Feed {
    /// Its place among the open streams, given back when it ends.
    _watching: Watching,
    /// Its connection sends no signature while the stream lasts.
    _not_signing: undersigned_guard::Counted,
    petition: Arc<Petition>,
    changes: watch::Receiver<Arc<CountView>>,
    catalog: Arc<Catalog>,
    counts: Arc<RenderedCounts>,
    heartbeat: Duration,
    stopping: CancellationToken,
    /// When the last event was sent (none yet: the count goes out at once),
    /// and when anything was.
    sent: Option<(Instant, Instant)>,
}

impl Feed {
    /// The next frame to write: an event or a heartbeat; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        let Some((event_at, frame_at)) = self.sent else {
            return Some(self.event());
        };
        tokio::select! {
            () = self.stopping.cancelled() => None,
            changed = self.changes.changed() => {
                changed.ok()?;
                // The changes until a second after the last event are one event.
                tokio::select! {
                    () = self.stopping.cancelled() => return None,
                    () = tokio::time::sleep_until(event_at + COALESCE) => {}
                }
                // The goal shown is the petition's as it is now (cached briefly).
                match self.catalog.by_slug(&self.petition.slug).await {
                    Ok(Some(petition)) => self.petition = petition,
                    Ok(None) => return None,
                    Err(_) => {}
                }
                Some(self.event())
            }
            () = tokio::time::sleep_until(frame_at + self.heartbeat) => {
                self.sent = Some((event_at, Instant::now()));
                Some(Bytes::from_static(b": heartbeat\n\n"))
            }
        }
    }

    /// The count as it is now, as an event.
    fn event(&mut self) -> Bytes {
        let view = self.changes.borrow_and_update().clone();
        let now = Instant::now();
        self.sent = Some((now, now));
        self.counts.get(&self.petition, &view).event.clone()
    }
}
