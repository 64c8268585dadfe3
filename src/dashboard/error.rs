//! Errors shown as errors: a page with the status and a message, never an empty list.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::auth::Refusal;
use super::layout;
use crate::scheduler::ScheduleError;
use crate::{SubmitError, TaskError};

/// An error page: the status and what went wrong.
#[derive(Debug)]
pub(crate) struct UiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the operator.
    pub message: String,
}

impl UiError {
    /// An error with `status`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400: a bad parameter, named.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 403 for a refused action.
    pub fn refused(why: Refusal) -> Self {
        let message = match why {
            Refusal::Role => "your session is read-only (viewer): actions need the operator token",
            Refusal::Csrf => {
                "the form's CSRF token is missing or stale: reload the page and try again"
            }
        };
        Self::new(StatusCode::FORBIDDEN, message)
    }
}

impl From<TaskError> for UiError {
    fn from(e: TaskError) -> Self {
        let status = match &e {
            TaskError::NotFound(_) => StatusCode::NOT_FOUND,
            TaskError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::CONFLICT,
        };
        Self::new(status, e.to_string())
    }
}

impl From<ScheduleError> for UiError {
    fn from(e: ScheduleError) -> Self {
        let status = match &e {
            ScheduleError::NotFound(_) => StatusCode::NOT_FOUND,
            ScheduleError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ScheduleError::Invalid(_) | ScheduleError::Cron(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::CONFLICT,
        };
        Self::new(status, e.to_string())
    }
}

impl From<SubmitError> for UiError {
    fn from(e: SubmitError) -> Self {
        let status = match &e {
            SubmitError::UnknownQueue(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::CONFLICT,
        };
        Self::new(status, e.to_string())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let page = layout::bare(
            title,
            html! {
                h1 { (self.status.as_u16()) " " (title) }
                p.error role="alert" { (self.message) }
                p { a href="/ui" { "Back to the overview" } }
            },
        );
        (self.status, page).into_response()
    }
}
