//! A small HTTP client for the node's API, used by the CLI.

use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::Value;

/// The longest one wait request asks for: well below the node's request timeout.
const WAIT_STEP_MS: u128 = 10_000;

/// Why a CLI call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node's URL is not one requests can be sent to.
    #[error("--url {url:?} is not a valid http(s) base URL: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A flag's value is not valid.
    #[error("--{flag} {reason}")]
    InvalidArgument {
        /// The flag, without `--`.
        flag: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// A task id or schedule name that cannot be a path segment: `.` and `..` would name
    /// another resource.
    #[error("{0:?} is not a valid task id or schedule name")]
    InvalidSegment(String),
    /// The node could not be reached, or its answer could not be read. The `source` chain
    /// says why (connection refused, timeout, …).
    #[error("cannot reach {url}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The node answered with an error.
    #[error("{status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error code, e.g. `not_found`.
        code: String,
        /// The message.
        message: String,
    },
}

/// A client of one node.
#[derive(Clone, Debug)]
pub struct Client {
    base: Url,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:7700`, or a URL with a path
    /// prefix behind a proxy).
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let bad = |reason: String| ClientError::BadUrl {
            url: base.into(),
            reason,
        };
        let url = Url::parse(base).map_err(|e| bad(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(bad(format!("expected http or https, got {}", url.scheme())));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            base: url,
            token,
            http,
        })
    }

    /// The URL of `segments` under the base, each segment percent-encoded (so `a/b` stays
    /// one segment), with `query` pairs encoded too. `.` and `..` are refused: URLs
    /// resolve them away, so they would name another resource.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url, ClientError> {
        if let Some(s) = segments.iter().find(|s| matches!(**s, "." | "..")) {
            return Err(ClientError::InvalidSegment(s.to_string()));
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the base URL can be a base")
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends a request and returns the JSON body (or `null` for an empty one).
    pub async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let mut req = self.http.request(method, url.clone());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let unreachable = |source| ClientError::Unreachable {
            url: url.to_string(),
            source,
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let text = resp.text().await.map_err(unreachable)?;
        let json: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(json);
        }
        Err(api_error(status, &json))
    }

    /// GET the resource at `segments`.
    pub async fn get(&self, segments: &[&str]) -> Result<Value, ClientError> {
        self.call(Method::GET, self.url(segments, &[])?, None).await
    }

    /// POST `body` to `segments`.
    pub async fn post(&self, segments: &[&str], body: &Value) -> Result<Value, ClientError> {
        self.call(Method::POST, self.url(segments, &[])?, Some(body))
            .await
    }

    /// Waits until a task ends or `limit` passes, and returns it. The node answers each
    /// wait request as soon as the task ends (`GET /v1/tasks/{id}/wait`), so nothing
    /// polls; a long `limit` takes several requests.
    pub async fn wait(&self, id: &str, limit: Duration) -> Result<Value, ClientError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ms = left.as_millis().min(WAIT_STEP_MS).to_string();
            let url = self.url(&["v1", "tasks", id, "wait"], &[("timeout_ms", ms)])?;
            let task = self.call(Method::GET, url, None).await?;
            let state = task["state"].as_str().unwrap_or("");
            if matches!(state, "succeeded" | "failed" | "cancelled") || left.is_zero() {
                return Ok(task);
            }
        }
    }
}

/// The node's error shape (`{"error": {"code", "message"}}`), or the body as text when
/// the answer came from something else (a proxy, say).
fn api_error(status: reqwest::StatusCode, json: &Value) -> ClientError {
    let err = &json["error"];
    let message = match (err["message"].as_str(), json.as_str()) {
        (Some(m), _) => m.to_string(),
        (None, Some(text)) => text.chars().take(500).collect(),
        (None, None) => status.canonical_reason().unwrap_or("no message").into(),
    };
    ClientError::Api {
        status: status.as_u16(),
        code: err["code"].as_str().unwrap_or("error").to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_and_queries_are_percent_encoded() {
        let c = Client::new("http://127.0.0.1:7700", None).unwrap();
        let u = c.url(&["v1", "schedules", "a/b"], &[]).unwrap();
        assert_eq!(u.path(), "/v1/schedules/a%2Fb");
        let u = c.url(&["v1", "tasks", "../../metrics"], &[]).unwrap();
        assert_eq!(u.path(), "/v1/tasks/..%2F..%2Fmetrics");
        let u = c
            .url(&["v1", "tasks"], &[("kind", "a&state=x".into())])
            .unwrap();
        assert_eq!(u.query(), Some("kind=a%26state%3Dx"));
        let dots = c.url(&["v1", "tasks", ".."], &[]).unwrap_err();
        assert_eq!(
            dots.to_string(),
            "\"..\" is not a valid task id or schedule name"
        );
    }

    #[test]
    fn a_base_url_with_a_path_prefix_keeps_it() {
        let c = Client::new("http://proxy/taskmesh/", None).unwrap();
        assert_eq!(
            c.url(&["v1", "queues"], &[]).unwrap().path(),
            "/taskmesh/v1/queues"
        );
    }

    #[test]
    fn a_url_that_is_not_http_is_refused_naming_the_flag() {
        let err = Client::new("ftp://x", None).unwrap_err().to_string();
        assert!(err.starts_with("--url \"ftp://x\""), "{err}");
        assert!(Client::new("not a url", None).is_err());
    }
}
