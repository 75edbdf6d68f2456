//! Withdrawing a signature from a browser: `GET /withdraw?petition={slug}`
//! asks for the address that signed (the form posts to the withdrawals
//! endpoint, which sends a link); `GET /withdraw/{token}` shows the link's
//! page and changes nothing; `POST /withdraw/{token}` withdraws: the
//! signature's data is erased and it is no longer counted.

use http::StatusCode;
use serde_json::json;
use undersigned_domain::{Placeholders, SignerToken, fill, notices};
use undersigned_mail::escape;
use undersigned_store::{LinkState, WithdrawalLink};
use uuid::Uuid;

use super::{linked_petition, page, paragraph, reader_locale, wants_json};
use crate::call::{Answer, Call};
use crate::problem::{ApiError, Undone};
use crate::query::Query;
use crate::reply::json;

/// `GET /withdraw?petition={slug}[&locale=]`: the form asking for the address.
pub async fn form(call: Call<'_>) -> Answer {
    let query = Query::of(call.uri());
    let petition = match query.get("petition") {
        Some(slug) => call.app.catalog.by_slug(slug).await?,
        None => None,
    };
    let Some(petition) = petition else {
        let words = notices("en");
        return Ok(page(
            StatusCode::NOT_FOUND,
            "en",
            words.withdraw_heading,
            &paragraph(words.unknown_link),
        ));
    };
    let locale = reader_locale(&petition, call.headers(), query.get("locale"));
    let words = notices(locale);
    let (_, title) = petition.title_for(Some(locale));
    let intro = fill(words.request_intro, &titled(title), escape);
    // Relative, so that the page works on any host serving it.
    let body = format!(
        "<p>{intro}</p>\n<form method=\"post\" action=\"v1/petitions/{slug}/withdrawals\">\n\
         <p><label for=\"email\">{label}</label><br>\n\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required></p>\n\
         <button type=\"submit\">{button}</button>\n</form>\n",
        slug = escape(&petition.slug),
        label = escape(words.request_label),
        button = escape(words.request_button),
    );
    Ok(page(StatusCode::OK, locale, words.withdraw_heading, &body))
}

/// `GET /withdraw/{token}`.
pub async fn show(call: Call<'_>) -> Answer {
    let link = look_up(&call).await?;
    answer(&call, link).await
}

/// `POST /withdraw/{token}`.
pub async fn withdraw(call: Call<'_>) -> Answer {
    call.app
        .ingest
        .withdraw(call.param("token"))
        .await
        .map_err(|_| ApiError::Unavailable(Undone::Change))?;
    // Whatever it did, the link now finds the signature withdrawn, or it
    // is unknown or expired.
    let link = look_up(&call).await?;
    answer(&call, link).await
}

/// What the token in the path finds, changing nothing.
async fn look_up(call: &Call<'_>) -> Result<Option<WithdrawalLink>, ApiError> {
    let Some(token) = SignerToken::parse(call.param("token")) else {
        return Ok(None);
    };
    call.app
        .store
        .withdrawal_link(&token.hash())
        .await
        .map_err(|_| ApiError::Unavailable(Undone::Read))
}

fn titled(title: &str) -> Placeholders<'_> {
    Placeholders {
        title,
        link: "",
        receipt: Uuid::nil(),
        days: 0,
        withdraw: "",
    }
}

async fn answer(call: &Call<'_>, link: Option<WithdrawalLink>) -> Answer {
    let json_client = wants_json(call.headers());
    let (link, petition) =
        match linked_petition(call, link, |l| &l.slug, |w| w.withdraw_heading).await {
            Ok(linked) => linked,
            Err(answer) => return answer,
        };
    let (locale, title) = petition.title_for(link.locale.as_deref());
    let words = notices(locale);
    match link.state {
        LinkState::Expired if json_client => Err(ApiError::LinkExpired),
        LinkState::Expired => Ok(page(
            StatusCode::GONE,
            locale,
            words.withdraw_heading,
            &paragraph(words.withdraw_expired),
        )),
        LinkState::Live if json_client => Ok(json(
            StatusCode::OK,
            &json!({"status": "signed", "petition": petition.slug}),
        )),
        LinkState::Live => {
            let body = format!(
                "<p>{intro}</p>\n<form method=\"post\" action=\"{action}\">\n\
                 <button type=\"submit\">{button}</button>\n</form>\n",
                intro = fill(words.withdraw_intro, &titled(title), escape),
                action = escape(call.param("token")),
                button = escape(words.withdraw_button),
            );
            Ok(page(StatusCode::OK, locale, words.withdraw_heading, &body))
        }
        LinkState::Withdrawn if json_client => Ok(json(
            StatusCode::OK,
            &json!({"status": "withdrawn", "petition": petition.slug}),
        )),
        LinkState::Withdrawn => Ok(page(
            StatusCode::OK,
            locale,
            words.withdraw_heading,
            &paragraph(words.withdrawn),
        )),
    }
}
