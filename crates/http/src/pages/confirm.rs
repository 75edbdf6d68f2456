//! `GET /confirm/{token}` shows what the link is for and one button, and
//! changes nothing: mail scanners and link previews fetch links, and must
//! never confirm. `POST /confirm/{token}` (the button) confirms and counts.

use http::StatusCode;
use serde_json::json;
use undersigned_domain::{Placeholders, SignerToken, fill, notices};
use undersigned_mail::escape;
use undersigned_store::{PendingSignature, PendingState};

use super::{linked_petition, page, paragraph, wants_json};
use crate::call::{Answer, Call};
use crate::problem::{ApiError, Undone};
use crate::reply::{json, see_other};

/// The token in the path, when it is one this service could have sent.
fn token(call: &Call<'_>) -> Option<SignerToken> {
    SignerToken::parse(call.param("token"))
}

/// `GET /confirm/{token}`.
pub async fn show(call: Call<'_>) -> Answer {
    let found = match token(&call) {
        Some(token) => call
            .app
            .store
            .pending_signature(&token.hash())
            .await
            .map_err(|_| ApiError::Unavailable(Undone::Read))?,
        None => None,
    };
    answer(&call, found, false).await
}

/// `POST /confirm/{token}`.
pub async fn confirm(call: Call<'_>) -> Answer {
    let confirmed = call
        .app
        .ingest
        .confirm(call.param("token"))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "a confirmation failed; nothing was counted");
            ApiError::Unavailable(Undone::Change)
        })?;
    answer(&call, confirmed.map(|c| c.signature), true).await
}

async fn answer(call: &Call<'_>, found: Option<PendingSignature>, posted: bool) -> Answer {
    let json_client = wants_json(call.headers());
    let (signature, petition) =
        match linked_petition(call, found, |s| &s.slug, |w| w.confirm_heading).await {
            Ok(linked) => linked,
            Err(answer) => return answer,
        };
    let (locale, title) = petition.title_for(signature.locale.as_deref());
    let words = notices(locale);
    let receipt = signature.id.to_string();
    match signature.state {
        PendingState::Expired if json_client => Err(ApiError::LinkExpired),
        PendingState::Expired => Ok(page(
            StatusCode::GONE,
            locale,
            words.confirm_heading,
            &paragraph(words.expired_link),
        )),
        PendingState::Pending if json_client => Ok(json(
            StatusCode::OK,
            &json!({"status": "pending", "receipt": receipt, "petition": petition.slug}),
        )),
        PendingState::Pending => {
            let values = Placeholders {
                title,
                link: "",
                receipt: signature.id,
                days: 0,
                withdraw: "",
            };
            // Relative: from /confirm/{token}, the token alone is this address.
            let body = format!(
                "<p>{intro}</p>\n<form method=\"post\" action=\"{action}\">\n\
                 <button type=\"submit\">{button}</button>\n</form>\n",
                intro = fill(words.confirm_intro, &values, escape),
                action = escape(call.param("token")),
                button = escape(words.confirm_button),
            );
            Ok(page(StatusCode::OK, locale, words.confirm_heading, &body))
        }
        PendingState::Confirmed if json_client => Ok(json(
            StatusCode::OK,
            &json!({"status": "confirmed", "receipt": receipt, "petition": petition.slug}),
        )),
        PendingState::Confirmed => match &petition.web.confirmed_url {
            Some(url) if posted => Ok(see_other(&url.with_query(&[("receipt", &receipt)]))),
            _ => Ok(page(
                StatusCode::OK,
                locale,
                words.confirm_heading,
                &paragraph(words.confirmed),
            )),
        },
    }
}
