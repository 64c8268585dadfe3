//! Unit tests of the dashboard: views escape hostile values, every action checks the role
//! and the CSRF token, the live ticker runs only while watched. Driven in-process with
//! `tower::ServiceExt::oneshot` over a real system with a memory store; no sleeps.

mod actions;
mod bulk;
mod cluster;
mod filters;
mod live;
mod marks;
mod scale;
mod views;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use tower::ServiceExt;

use super::{Dashboard, UiConfig};
use crate::builtin::{self, ExecConfig};
use crate::secret::Secret;
use crate::store::MemoryStore;
use crate::{NewTask, QueueConfig, TaskId, TaskSystem};

/// The operator token of the guarded test dashboards.
const OPERATOR: &str = "op-token";
/// The viewer token of the guarded test dashboards.
const VIEWER: &str = "view-token";

/// A system with the built-in kinds, a memory store, and a paused queue `held` whose
/// tasks stay pending.
async fn start() -> TaskSystem {
    let builder = TaskSystem::builder()
        .namespace(format!("ui-{}", TaskId::new()))
        .store(MemoryStore::new())
        .queue(QueueConfig::new("held").bound(100));
    let system = builtin::register(builder, ExecConfig::default())
        .start()
        .await
        .expect("system starts");
    system.pause_queue("held").unwrap();
    system
}

/// A pending task in `held`.
async fn held(system: &TaskSystem) -> TaskId {
    let task = NewTask::new("noop", serde_json::json!({"n": 1})).queue("held");
    system.submit(task).await.unwrap().id
}

/// The dashboard with the operator and viewer tokens.
fn guarded(system: &TaskSystem) -> Router {
    let config = UiConfig {
        operator_token: Some(Secret::new(OPERATOR)),
        viewer_token: Some(Secret::new(VIEWER)),
        ..UiConfig::default()
    };
    Dashboard::new(system.clone(), config).router()
}

/// The dashboard of a node without a token.
fn open(system: &TaskSystem) -> Router {
    Dashboard::new(system.clone(), UiConfig::default()).router()
}

/// An answer: status, headers, body text.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// The CSRF token a page carries (`data-csrf` on its body).
    fn csrf(&self) -> String {
        let start = self
            .body
            .find("data-csrf=\"")
            .expect("a page with a csrf token")
            + 11;
        let end = self.body[start..].find('"').unwrap();
        self.body[start..start + end].to_string()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 22)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(app: &Router, path: &str, cookie: Option<&str>) -> Answer {
    let mut req = Request::builder().method(Method::GET).uri(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

async fn post(app: &Router, path: &str, cookie: Option<&str>, form: &str) -> Answer {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    send(app, req.body(Body::from(form.to_string())).unwrap()).await
}

/// Logs in with `token` as `name`; the `Cookie` header value of the session.
async fn login(app: &Router, token: &str, name: &str) -> String {
    let a = post(
        app,
        "/ui/login",
        None,
        &format!("token={token}&name={name}"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let set = a.header(header::SET_COOKIE);
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}
