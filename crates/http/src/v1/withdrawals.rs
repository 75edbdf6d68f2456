//! `POST /v1/petitions/{slug}/withdrawals`: a signer asks for a link to
//! withdraw their signature. The answer never tells whether the address
//! signed, not even by its timing: 202 either way (a page for a plain HTML
//! form), before the address is looked up; the link goes only to the address
//! that signed.

use http::StatusCode;
use serde_json::json;

use crate::call::{Answer, Call};
use crate::fields::Fields;
use crate::pages::{page, paragraph, reader_locale};
use crate::problem::{ApiError, Undone};
use crate::reply::json;
use crate::request::{BodyKind, body_kind, read_body};
use crate::v1::signatures::accepts_html;

const KNOWN: [&str; 1] = ["email"];

pub async fn request(mut call: Call<'_>) -> Answer {
    // Each request may send a message: the flood shield limits them per
    // address, and the store at most a few a day to any one signer.
    call.shield()?;
    let petition = call.petition().await?;
    let body = call.take_body()?;
    let kind = body_kind(&call.parts.headers, true)?;
    let to_page = kind == BodyKind::Form && accepts_html(&call.parts.headers);
    let body = read_body(&call.parts.headers, body, call.config.body_read_timeout).await?;
    let fields = Fields::parse(kind, &body)?;
    fields.only(&KNOWN)?;
    let email = fields.email()?;
    // Looked up after this answer, so that its timing tells nothing either.
    call.app
        .ingest
        .request_withdrawal(petition.clone(), email)
        .map_err(|_| ApiError::Unavailable(Undone::Change))?;
    if to_page {
        let locale = reader_locale(&petition, &call.parts.headers, None);
        let words = undersigned_domain::notices(locale);
        return Ok(page(
            StatusCode::OK,
            locale,
            words.withdraw_heading,
            &paragraph(words.request_sent),
        ));
    }
    Ok(json(StatusCode::ACCEPTED, &json!({"status": "accepted"})))
}
