//! Limits on the request head, checked before routing so that an oversized target or header
//! block gets the API's error shape (414 `uri_too_long`, 431 `headers_too_large`).
//!
//! hyper keeps its own, larger ceilings (a 64 KiB target, about 400 KiB of head, 100
//! headers); past those it answers with a bare status before any of our code runs. These
//! limits sit below them, so every request a client can reasonably send is answered here.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;

/// The longest request target (path and query) accepted, in bytes.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The largest header block accepted (names and values), in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// The most headers accepted.
pub const MAX_HEADERS: usize = 64;

/// Answers 414 or 431 for a request head over the limits; passes the rest on.
pub(super) async fn check(req: Request, next: Next) -> Result<Response, ApiError> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::uri_too_long(format!(
            "the request target is {target} bytes, more than the limit of {MAX_URI_BYTES}"
        )));
    }
    let headers = req.headers();
    if headers.len() > MAX_HEADERS {
        return Err(ApiError::headers_too_large(format!(
            "the request has {} headers, more than the limit of {MAX_HEADERS}",
            headers.len()
        )));
    }
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(ApiError::headers_too_large(format!(
            "the request headers are {bytes} bytes, more than the limit of {MAX_HEADER_BYTES}"
        )));
    }
    Ok(next.run(req).await)
}
