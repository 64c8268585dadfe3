//! The headers every dashboard response carries: a strict Content-Security-Policy (no
//! inline script or style, nothing from another origin), no framing, no sniffing, no
//! referrer, and `no-store` for pages (assets set their own caching).

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The policy: everything from the node itself, nothing inline, no plugins, no frames.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
base-uri 'none'";

/// Adds the security headers (and `Cache-Control: no-store` unless set).
pub(crate) async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// Refuses a form posted from another site (login included, which has no CSRF token yet):
/// a browser says where a POST comes from in `Origin` and `Sec-Fetch-Site`.
pub(crate) async fn same_origin(req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD && cross_site(req.headers()) {
        return (StatusCode::FORBIDDEN, "cross-site form refused").into_response();
    }
    next.run(req).await
}

/// True when the request says it comes from another origin than the host it is sent to.
/// `Sec-Fetch-Site` decides when the browser sends it (every current one does): only
/// `same-origin` and `none` (typed, bookmarked) pass; another port of the same host is
/// `same-site` and refused. Without it, `Origin` must name the host (`null` is refused).
pub(crate) fn cross_site(h: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| h.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return !matches!(site, "same-origin" | "none");
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => {
            let bare = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            bare != host
        }
        (Some(_), None) => true,
        _ => false,
    }
}
