//! The live counter: served from memory, rendered once per change, revalidated by ETag.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;
use undersigned_ingest::CountView;
use undersigned_store::Petition;

use crate::call::{Answer, Call};
use crate::reply::full;

/// The last rendering of each petition's counter, reused while neither the
/// counts nor the petition change.
#[derive(Default)]
pub struct RenderedCounts(RwLock<HashMap<i64, Rendered>>);

#[derive(Clone)]
struct Rendered {
    view: Arc<CountView>,
    goal: i64,
    body: Bytes,
    etag: HeaderValue,
}

impl RenderedCounts {
    fn get(&self, petition: &Petition, view: &Arc<CountView>) -> Rendered {
        let cached = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&petition.id)
            .cloned();
        if let Some(r) = cached.filter(|r| Arc::ptr_eq(&r.view, view) && r.goal == petition.goal) {
            return r;
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
        let rendered = Rendered {
            view: view.clone(),
            goal: petition.goal,
            body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("W/\"0\"")),
        };
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
    let headers = call.headers();
    let petition = call.petition().await?;
    let view = app.ingest.counter().view(petition.id);
    let rendered = app.counts.get(&petition, &view);
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*"
                || tag.trim_start_matches("W/")
                    == rendered
                        .etag
                        .to_str()
                        .unwrap_or("")
                        .trim_start_matches("W/")
        });
    let mut response = if fresh {
        let mut r = full(StatusCode::NOT_MODIFIED, "application/json", Bytes::new());
        r.headers_mut().remove(header::CONTENT_TYPE);
        r
    } else {
        full(StatusCode::OK, "application/json", rendered.body)
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, rendered.etag);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=1"),
    );
    crate::cors::public(h);
    Ok(response)
}
