//! The API's error: a status, a stable code and a message naming what is wrong, always
//! rendered as `{"error": {"code": "...", "message": "..."}}`.

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::HttpState;
use crate::error::{SubmitError, TaskError, ValidationError};
use crate::scheduler::ScheduleError;

/// The error shape, for the OpenAPI description: `{"error": {"code", "message"}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable code such as `invalid_request` or `not_found`.
    code: String,
    /// What is wrong, naming the field or parameter at fault.
    message: String,
}

/// An error answer of the API.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `invalid_request`; the message should name the field.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 400 `invalid_json`.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 503 `not_ready`.
    pub fn not_ready(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", message)
    }

    /// 414 `uri_too_long`.
    pub fn uri_too_long(message: impl Into<String>) -> Self {
        Self::new(StatusCode::URI_TOO_LONG, "uri_too_long", message)
    }

    /// 431 `headers_too_large`.
    pub fn headers_too_large(message: impl Into<String>) -> Self {
        let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        Self::new(status, "headers_too_large", message)
    }

    fn too_large(limit: usize) -> Self {
        let why = format!("request body is larger than the limit of {limit} bytes");
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", why)
    }

    /// The error for a status that axum or a layer produced without a JSON body; `text` is
    /// that body, kept as the message where it says more than the status.
    fn for_status(status: StatusCode, text: &str, state: &HttpState) -> Self {
        let reason = match text.trim() {
            "" => status.canonical_reason().unwrap_or("error").to_lowercase(),
            said => said.to_string(),
        };
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => Self::too_large(state.max_body_bytes),
            StatusCode::REQUEST_TIMEOUT => {
                let ms = state.request_timeout.as_millis();
                let why = format!("the request did not complete within {ms} ms");
                Self::new(status, "request_timeout", why)
            }
            StatusCode::NOT_FOUND => Self::not_found("no such route"),
            StatusCode::METHOD_NOT_ALLOWED => Self::new(
                status,
                "method_not_allowed",
                "method not allowed on this route",
            ),
            StatusCode::URI_TOO_LONG => Self::uri_too_long(reason),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Self::headers_too_large(reason),
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Self::invalid(reason)
            }
            s if s.is_server_error() => Self::new(s, "internal", reason),
            _ => Self::new(StatusCode::BAD_REQUEST, "invalid_request", reason),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "http request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.into(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::invalid(e.to_string())
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let message = e.to_string();
        match e {
            SubmitError::Invalid(v) => v.into(),
            SubmitError::UnknownKind(_) => Self::invalid(format!("invalid kind: {message}")),
            SubmitError::UnknownQueue(_) => Self::invalid(format!("invalid queue: {message}")),
            SubmitError::Overloaded { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
            }
            SubmitError::ShuttingDown | SubmitError::TreeDown | SubmitError::Store(_) => {
                Self::not_ready(message)
            }
        }
    }
}

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        let message = e.to_string();
        match e {
            TaskError::Submit(s) => s.into(),
            TaskError::NotFound(_) => Self::not_found(message),
            TaskError::AlreadyTerminal { .. }
            | TaskError::Transition(_)
            | TaskError::Busy(_)
            | TaskError::Conflict(_) => Self::conflict(message),
            TaskError::WaitTimeout(_)
            | TaskError::SystemStopped
            | TaskError::EndNotStored(_)
            | TaskError::Store(_) => Self::not_ready(message),
        }
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        let message = e.to_string();
        match e {
            ScheduleError::Invalid(v) => v.into(),
            ScheduleError::Cron(crate::cron::CronError::Zone(_)) => {
                Self::invalid(format!("invalid timezone: {message}"))
            }
            ScheduleError::Cron(_) => Self::invalid(format!("invalid cron: {message}")),
            ScheduleError::NotFound(_) => Self::not_found(message),
            ScheduleError::Store(_) | ScheduleError::Unavailable => Self::not_ready(message),
        }
    }
}

const DATA_PREFIX: &str = "Failed to deserialize the JSON body into the target type: ";
const SYNTAX_PREFIX: &str = "Failed to parse the request body as JSON: ";

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let text = r.body_text();
        match r {
            JsonRejection::JsonDataError(_) => {
                let detail = text.strip_prefix(DATA_PREFIX).unwrap_or(&text);
                Self::invalid(format!("invalid request body: {detail}"))
            }
            JsonRejection::JsonSyntaxError(_) => {
                let detail = text.strip_prefix(SYNTAX_PREFIX).unwrap_or(&text);
                Self::invalid_json(format!("malformed JSON: {detail}"))
            }
            JsonRejection::MissingJsonContentType(_) => {
                Self::invalid("expected the header `Content-Type: application/json`")
            }
            // Too large: 413 from the body limit. The limit itself is filled in by
            // `json_errors`, which rewrites every 413.
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::too_large(0),
            _ => Self::invalid(format!("could not read the request body: {text}")),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::invalid(format!("invalid query string: {}", r.body_text()))
    }
}

/// The longest non-JSON error body kept as the message of the rewritten error.
const MAX_ERROR_TEXT: usize = 4096;

/// Rewrites error answers that are not in the API's shape (a 413 from the body limit, a
/// 405 from routing, a rejection that slipped through) and fills in the body limit.
pub(super) async fn json_errors(State(state): State<HttpState>, response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let fix = status == StatusCode::PAYLOAD_TOO_LARGE
        || ((status.is_client_error() || status.is_server_error()) && !is_json);
    if !fix {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_ERROR_TEXT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let api = ApiError::for_status(status, &text, &state).into_response();
    let (api_parts, body): (_, Body) = api.into_parts();
    parts.status = api_parts.status;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(api_parts.headers);
    Response::from_parts(parts, body)
}

/// The fallback for routes that do not exist.
pub(super) async fn no_route(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}
