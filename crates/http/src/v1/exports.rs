//! Exports for delivery: `GET /v1/petitions/{slug}/export`, streamed from one
//! snapshot as it is read, each audited when it starts and when it ends; and
//! the public key that signs bundles.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use futures_util::StreamExt;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{Either, StreamBody};
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::io::ReaderStream;
use undersigned_export::{ExportRequest, write_export};
use undersigned_store::{AuditEntry, Role};
use uuid::Uuid;

use crate::call::{Answer, Call, Reading};
use crate::problem::ApiError;
use crate::query::Query;
use crate::reply::json;

/// Exports running at once on one instance: each holds a Postgres connection
/// and a snapshot for its whole length.
pub const AT_ONCE: usize = 2;

/// The export key and the slots for running exports.
pub struct Exports {
    key: Arc<SigningKey>,
    slots: Arc<Semaphore>,
}

impl Exports {
    pub fn new(key: SigningKey) -> Self {
        Self {
            key: Arc::new(key),
            slots: Arc::new(Semaphore::new(AT_ONCE)),
        }
    }
}

/// `GET /v1/export-key`: what recipients check bundles with.
pub async fn key(call: Call<'_>) -> Answer {
    let app = call.app;
    let mut response = json(
        StatusCode::OK,
        &json!({
            "algorithm": "ed25519",
            "public_key": BASE64.encode(app.exports.key.verifying_key().to_bytes()),
        }),
    );
    crate::cors::public(response.headers_mut());
    Ok(response)
}

/// Why a petition's personal data is gone, for the 410 of an export asking
/// for it.
fn erased_detail(
    petition: &undersigned_store::Petition,
    erased: chrono::DateTime<chrono::Utc>,
) -> String {
    let after = match (petition.ends_at(), petition.retention_days) {
        (Some(ended), Some(days)) => format!(
            ", {days} days after the petition closed on {} (its retention_days)",
            ended.format("%Y-%m-%d")
        ),
        _ => String::new(),
    };
    format!(
        "The signers' personal data of this petition was erased on {}{after}. Its counts, \
         its history and the Merkle roots of the bundles delivered before stay: ask for the \
         columns receipt, signer_kind, country, signed_at and channel, or check a signer's \
         proof against a delivered bundle.",
        erased.format("%Y-%m-%d %H:%M UTC")
    )
}

/// `GET /v1/petitions/{slug}/export?format=&country=&since=&until=&channel=&signer_kind=&status=&columns=`
pub async fn export(call: Call<'_>, reading: Reading) -> Answer {
    let (petition, token, scope) = (reading.petition, reading.token, reading.scope);
    let app = call.app;
    let slug = petition.slug.clone();
    let query = Query::of(call.uri());
    let mut request = ExportRequest::parse(query.pairs()).map_err(ApiError::Invalid)?;
    // Those who asked to be kept informed are the campaign's to write to:
    // its admins' and organizers', not a coordinator's. E-mail addresses
    // leave only with an admin, or with an organizer for those signers, and
    // only when asked for.
    let consent = request.filter.consented;
    if consent && !matches!(token.role, Role::Admin | Role::Organizer) {
        return Err(ApiError::Forbidden);
    }
    if request.wants_email() && token.role != Role::Admin && !consent {
        return Err(ApiError::Forbidden);
    }
    // A coordinator exports their countries, all of them unless they choose.
    request.filter.countries = match (scope, request.filter.countries.take()) {
        (None, asked) => asked,
        (Some(scope), None) => Some(scope),
        (Some(scope), Some(asked)) if asked.iter().all(|c| scope.contains(c)) => Some(asked),
        (Some(_), Some(_)) => return Err(ApiError::Forbidden),
    };
    request
        .bind(&petition)
        .map_err(|e| ApiError::Invalid(vec![e]))?;
    if let Some(erased) = petition.personal_data_erased_at
        && request.reads_personal_data()
    {
        return Err(ApiError::PersonalDataErased(erased_detail(
            &petition, erased,
        )));
    }
    request.fits(&petition).map_err(ApiError::SealedExport)?;
    let slot = app
        .exports
        .slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::ExportsBusy)?;
    let id = Uuid::now_v7();
    let actor = call.actor(&token);
    let key = app.exports.key.clone();
    let exported_at = chrono::Utc::now();
    let first = request.job(id, exported_at, &petition, &key);
    let detail = first.started();
    let format = first.format;
    drop(first);
    app.store
        .audit(&AuditEntry::new(&actor, "export", detail).about(petition.id))
        .await?;

    let (reader, mut writer) = tokio::io::duplex(64 * 1024);
    let (done, finished) = tokio::sync::oneshot::channel::<bool>();
    let store = app.store.clone();
    tokio::spawn(async move {
        let job = request.job(id, exported_at, &petition, &key);
        let result = write_export(&store, &job, &mut writer).await;
        // Free before the answer ends: a client that asks for its next export
        // as soon as this one's last byte arrives finds the slot free, not
        // held for the audit record below (a 503 seen under CI's load).
        drop(slot);
        drop(writer);
        if let Err(e) = &result {
            tracing::warn!(export = %id, error = %e, "export cut short");
        }
        let detail = job.finished(&result);
        let _ = done.send(result.is_ok());
        let entry = AuditEntry::new(&actor, "export.finish", detail).about(petition.id);
        if let Err(e) = store.audit(&entry).await {
            tracing::error!(export = %id, error = %e, "recording an export's end failed");
        }
    });
    // The bytes as they come; at their end, an error if the export failed,
    // which cuts the answer short instead of ending it cleanly.
    let outcome = futures_util::stream::once(async move {
        match finished.await {
            Ok(true) => None,
            _ => Some(Err(std::io::Error::other("the export failed"))),
        }
    })
    .filter_map(|end| async move { end });
    let stream = ReaderStream::new(reader)
        .map(|chunk| chunk.map(|b: Bytes| Frame::data(b)))
        .chain(outcome);
    let mut response = Response::new(Either::Right(StreamBody::new(stream.boxed())));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    let name = format!("{slug}-{id}.{}", format.extension());
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
        headers.insert("export-id", v);
    }
    Ok(response)
}
