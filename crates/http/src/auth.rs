//! Bearer tokens.

use http::{HeaderMap, header};
use undersigned_store::{Role, Token};

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

/// The caller's token, whatever its role: 401 without a valid one.
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Token, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    let token = app
        .store
        .authenticate(presented)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(token)
}
