//! Bearer-token authentication of the `/v1` routes.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use super::HttpState;

/// Lets the request through when no token is configured or when it carries
/// `Authorization: Bearer <token>` with the right token; otherwise answers 401.
pub(super) async fn require_token(
    State(state): State<HttpState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let Some(token) = &state.token else {
        return Ok(next.run(req).await);
    };
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    match presented {
        None => Err(ApiError::unauthorized(
            "missing bearer token: send `Authorization: Bearer <token>`",
        )),
        Some(candidate) if token.matches(candidate) => Ok(next.run(req).await),
        Some(_) => Err(ApiError::unauthorized("invalid bearer token")),
    }
}

/// The token of a `Bearer` authorization value (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
