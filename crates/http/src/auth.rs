//! Bearer tokens.

use std::net::IpAddr;

use http::{HeaderMap, header};
use undersigned_store::{Actor, READ_DEADLINE, Role, Token, within};

use crate::App;
use crate::problem::ApiError;

/// The caller's token, which must have `role`: 401 without a valid token, 403 with another role.
pub async fn require(app: &App, headers: &HeaderMap, role: Role) -> Result<Token, ApiError> {
    let token = authenticate(app, headers).await?;
    if token.role != role {
        return Err(ApiError::Forbidden);
    }
    Ok(token)
}

/// A token allowed to manage this petition: an admin's, or an organizer's
/// holding it. 401 without a valid token, 403 for any other.
pub async fn require_petition(
    app: &App,
    headers: &HeaderMap,
    petition_id: i64,
) -> Result<Token, ApiError> {
    require_holder(app, headers, petition_id, &[Role::Organizer]).await
}

/// A token that may sign this petition without a captcha: an admin's, or a
/// device's or organizer's holding it. 401 without a valid token, 403 otherwise.
pub async fn require_signer(
    app: &App,
    headers: &HeaderMap,
    petition_id: i64,
) -> Result<Token, ApiError> {
    require_holder(app, headers, petition_id, &[Role::Device, Role::Organizer]).await
}

/// An admin's token, or one of `roles` holding this petition.
async fn require_holder(
    app: &App,
    headers: &HeaderMap,
    petition_id: i64,
    roles: &[Role],
) -> Result<Token, ApiError> {
    let token = authenticate(app, headers).await?;
    holds(&token, petition_id, roles)?;
    Ok(token)
}

/// Whether `token` is an admin's, or one of `roles` holding this petition
/// (403 otherwise): for a caller authenticated before the petition is known.
pub fn holds(token: &Token, petition_id: i64, roles: &[Role]) -> Result<(), ApiError> {
    let allowed = token.role == Role::Admin
        || (roles.contains(&token.role) && token.petition_ids.contains(&petition_id));
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// A token allowed to read this petition's signatures, and the countries it
/// is limited to (`None`: all): admins and the petition's organizers see all,
/// its coordinators their countries.
pub async fn require_reader(
    app: &App,
    headers: &HeaderMap,
    petition_id: i64,
) -> Result<(Token, Option<Vec<String>>), ApiError> {
    let token = authenticate(app, headers).await?;
    let countries = reader_scope(&token, petition_id)?;
    Ok((token, countries))
}

/// The countries whose signatures `token` may read in this petition
/// (`None`: all), or 403.
pub fn reader_scope(token: &Token, petition_id: i64) -> Result<Option<Vec<String>>, ApiError> {
    let holds = token.petition_ids.contains(&petition_id);
    match token.role {
        Role::Admin => Ok(None),
        Role::Organizer if holds => Ok(None),
        Role::Coordinator if holds => Ok(Some(token.countries.clone())),
        _ => Err(ApiError::Forbidden),
    }
}

/// Who is acting, for the audit trail: the token and the client's address.
pub fn actor(token: &Token, client: IpAddr) -> Actor {
    Actor {
        token_id: Some(token.id),
        client_address: Some(client),
    }
}

/// The token in `Authorization: Bearer …`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The caller's token, whatever its role: 401 without a valid one.
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Token, ApiError> {
    valid(app, bearer(headers)).await
}

/// The token `presented` names: 401 when none is, or it is not valid.
pub async fn valid(app: &App, presented: Option<&str>) -> Result<Token, ApiError> {
    let presented = presented.ok_or(ApiError::Unauthorized)?;
    let token = within(READ_DEADLINE, app.store.authenticate(presented))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(token)
}
