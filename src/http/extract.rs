//! Extractors whose rejections come back in the API's error shape.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body; a missing content type, bad syntax, wrong types or an oversized body are
/// answered as [`ApiError`]s naming the field.
pub(super) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// An optional JSON body: an empty body or `null` is `None`; anything else must be valid
/// JSON of `T`.
pub(super) struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::from(axum::extract::rejection::JsonRejection::from(e)))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        let Json(value) = Json::<Option<T>>::from_bytes(&bytes)?;
        Ok(Self(value))
    }
}

/// A path parameter; a segment that does not decode (such as `%FF`, not UTF-8) is a 400
/// `invalid_request` naming the parameter.
pub(super) struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(r) => Err(path_error(r)),
        }
    }
}

fn path_error(r: PathRejection) -> ApiError {
    let text = r.body_text();
    let detail = text.strip_prefix("Invalid URL: ").unwrap_or(&text);
    ApiError::invalid(format!("invalid path parameter: {detail}"))
}

/// Query parameters by name; each is parsed by the handler, so errors name the parameter.
pub(super) struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state).await?;
        Ok(Self(map))
    }
}

impl Params {
    /// Refuses parameters outside `known`, naming the first unknown one.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        let mut unknown: Vec<&String> = self
            .0
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .collect();
        unknown.sort();
        match unknown.first() {
            None => Ok(()),
            Some(name) => Err(ApiError::invalid(format!(
                "unknown query parameter {name:?}: expected one of {}",
                known.join(", ")
            ))),
        }
    }

    /// The parameter as given, if present.
    pub fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// The parameter parsed by `parse`, whose error is wrapped into one naming `name`.
    pub fn parse<T, E: std::fmt::Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, ApiError> {
        let Some(raw) = self.0.get(name) else {
            return Ok(None);
        };
        parse(raw)
            .map(Some)
            .map_err(|e| ApiError::invalid(format!("invalid query parameter {name}: {e}")))
    }
}
