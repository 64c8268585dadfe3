//! The CSS, JavaScript and icon of the dashboard, embedded in the binary (`assets/ui`).
//!
//! URLs carry the file's hash (`?v=…`), so browsers may keep a file for a year and still
//! load a new one after an upgrade.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

/// The files under `assets/ui`, in the binary.
#[derive(Embed)]
#[folder = "assets/ui"]
pub(crate) struct Assets;

/// The URL of an embedded file, with its hash for cache busting.
pub(crate) fn url(path: &str) -> String {
    let hash = Assets::get(path)
        .map(|f| hex8(&f.metadata.sha256_hash()))
        .unwrap_or_default();
    format!("/ui/assets/{path}?v={hash}")
}

fn hex8(hash: &[u8; 32]) -> String {
    hash[..4].iter().map(|b| format!("{b:02x}")).collect()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

/// `GET /ui/assets/{path}`: the file, cached for a year, with an ETag.
pub(crate) async fn serve(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(file) = Assets::get(&path) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = format!("\"{}\"", hex8(&file.metadata.sha256_hash()));
    let cache = "public, max-age=31536000, immutable";
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(&etag)
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let mut res = file.data.into_owned().into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    res
}
