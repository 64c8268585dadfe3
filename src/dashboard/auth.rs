//! Sessions: the login form, the signed session cookie, roles, and CSRF tokens.
//!
//! The cookie is `base64url(role|expires|nonce|name).base64url(hmac)`, signed with a key
//! drawn at start (a restart logs everyone out). The CSRF token of a session is an HMAC of
//! its nonce, so it needs no server-side storage and cannot be guessed from the cookie.
//! The cookie is `Secure` when [`UiConfig::secure_cookie`](super::UiConfig::secure_cookie)
//! is set or the request came over TLS. Login attempts are limited per client address
//! (a burst of five, then one every 12 s; 429 with `Retry-After` beyond).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use maud::{html, Markup};
use serde::Deserialize;
use sha2::Sha256;

use super::{layout, Ui};
use crate::secret::Secret;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "taskmesh_session";
/// How long a session lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The longest name a visitor may give (it goes into task events as `ui:<name>`).
const MAX_NAME: usize = 40;

/// What a session may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Sees every page; takes no action.
    Viewer,
    /// Sees and acts.
    Operator,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
        }
    }
}

/// A verified session, put into the request's extensions by [`guard`].
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// What it may do.
    pub role: Role,
    /// Who, as recorded in task events (`ui:<name>`).
    pub actor: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// False when the node has no token (nothing to log out of).
    pub can_logout: bool,
}

impl Session {
    /// "operator" or "viewer".
    pub fn role_name(&self) -> &'static str {
        self.role.as_str()
    }
}

/// Why an action was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A viewer tried to act.
    Role,
    /// The form's CSRF token is missing or wrong.
    Csrf,
}

/// Login attempts per client address: a burst of [`LOGIN_BURST`], then one more every
/// [`LOGIN_EVERY`].
const LOGIN_BURST: u32 = 5;
/// See [`LOGIN_BURST`].
const LOGIN_EVERY: Duration = Duration::from_secs(12);
/// Addresses remembered by the login limiter before the idle ones are dropped.
const LOGIN_KEYS: usize = 10_000;

type LoginLimiter = governor::DefaultKeyedRateLimiter<IpAddr>;

/// The tokens, the signing key, the cookie's flags and the login limiter.
pub(crate) struct Auth {
    operator: Option<Secret>,
    viewer: Option<Secret>,
    key: [u8; 32],
    secure: bool,
    logins: LoginLimiter,
}

impl Auth {
    /// Checks against these tokens, with a fresh signing key.
    pub fn new(operator: Option<Secret>, viewer: Option<Secret>) -> Self {
        let burst = NonZeroU32::new(LOGIN_BURST).expect("not zero");
        let quota = governor::Quota::with_period(LOGIN_EVERY)
            .expect("not zero")
            .allow_burst(burst);
        Self {
            operator,
            viewer,
            key: rand::random(),
            secure: false,
            logins: governor::RateLimiter::keyed(quota),
        }
    }

    /// Marks the session cookie `Secure` on every response (else only over TLS).
    pub fn secure_cookie(mut self, always: bool) -> Self {
        self.secure = always;
        self
    }

    /// Takes one login attempt of `client`; the wait until the next one when it has used
    /// its allowance.
    pub fn login_attempt(&self, client: IpAddr) -> Result<(), Duration> {
        if self.logins.len() > LOGIN_KEYS {
            self.logins.retain_recent();
        }
        self.logins.check_key(&client).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
        })
    }

    /// The cookie's attributes for a request with `headers`: `Secure` when configured or
    /// when the request came over TLS.
    fn attributes(&self, headers: &HeaderMap) -> &'static str {
        let tls = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
        match self.secure || tls {
            true => "Path=/ui; HttpOnly; SameSite=Strict; Secure",
            false => "Path=/ui; HttpOnly; SameSite=Strict",
        }
    }

    /// True when visitors must log in.
    pub fn required(&self) -> bool {
        self.operator.is_some()
    }

    /// The role a token logs in as, if any.
    pub fn role_of(&self, token: &str) -> Option<Role> {
        if self.operator.as_ref().is_some_and(|t| t.matches(token)) {
            return Some(Role::Operator);
        }
        let viewer = self.viewer.as_ref().filter(|_| self.required());
        viewer.filter(|t| t.matches(token)).map(|_| Role::Viewer)
    }

    /// The session of a node without a token: an operator (`ui:operator`).
    pub fn open_session(&self) -> Session {
        self.session(Role::Operator, "", "", false)
    }

    /// A signed cookie value for a new session.
    pub fn issue(&self, role: Role, name: &str, now: SystemTime) -> String {
        let expires = secs(now + LIFETIME);
        let nonce = format!("{:032x}", rand::random::<u128>());
        let payload = format!("{}|{expires}|{nonce}|{}", role.as_str(), clean_name(name));
        let sig = self.sign(payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(sig)
        )
    }

    /// The session of a cookie value, if it is signed by this node and not expired.
    pub fn verify(&self, cookie: &str, now: SystemTime) -> Option<Session> {
        let (payload, sig) = cookie.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        self.mac(&payload).verify_slice(&sig).ok()?;
        let text = String::from_utf8(payload).ok()?;
        let mut parts = text.splitn(4, '|');
        let role = match parts.next()? {
            "operator" => Role::Operator,
            "viewer" => Role::Viewer,
            _ => return None,
        };
        let expires: u64 = parts.next()?.parse().ok()?;
        let nonce = parts.next()?;
        let name = parts.next()?;
        (expires > secs(now)).then(|| self.session(role, name, nonce, true))
    }

    /// Lets an operator's form through when it carries the session's CSRF token.
    pub fn permit(&self, session: &Session, csrf: Option<&str>) -> Result<(), Refusal> {
        if session.role != Role::Operator {
            return Err(Refusal::Role);
        }
        match csrf {
            Some(c) if Secret::new(session.csrf.clone()).matches(c) => Ok(()),
            _ => Err(Refusal::Csrf),
        }
    }

    fn session(&self, role: Role, name: &str, nonce: &str, can_logout: bool) -> Session {
        let name = if name.is_empty() { role.as_str() } else { name };
        Session {
            role,
            actor: format!("ui:{name}"),
            csrf: URL_SAFE_NO_PAD.encode(self.sign(format!("csrf|{nonce}").as_bytes())),
            can_logout,
        }
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("hmac takes a key of any length");
        mac.update(data);
        mac
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.mac(data).finalize().into_bytes().to_vec()
    }
}

/// Letters, digits and `._@-` only, at most [`MAX_NAME`] of them.
fn clean_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._@-".contains(*c))
        .take(MAX_NAME)
        .collect()
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The session cookie's value in `headers`, if any.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// Puts the request's [`Session`] into its extensions; without one, sends a page view to
/// the login form and refuses anything else with 401.
pub(crate) async fn guard(State(ui): State<Ui>, mut req: Request, next: Next) -> Response {
    let session = match ui.auth.required() {
        false => Some(ui.auth.open_session()),
        true => cookie(req.headers()).and_then(|c| ui.auth.verify(c, SystemTime::now())),
    };
    match session {
        Some(s) => {
            req.extensions_mut().insert(s);
            next.run(req).await
        }
        None if req.method() == Method::GET && req.uri().path() != "/ui/live" => {
            Redirect::to("/ui/login").into_response()
        }
        None => (StatusCode::UNAUTHORIZED, "log in at /ui/login").into_response(),
    }
}

/// The login form's fields.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    #[serde(default)]
    name: String,
}

/// `GET /ui/login`.
pub(crate) async fn login_page(State(ui): State<Ui>) -> Response {
    if !ui.auth.required() {
        return Redirect::to("/ui").into_response();
    }
    login_form(None).into_response()
}

/// `POST /ui/login`: a session for a right token, the form again with an error otherwise;
/// 429 once the client's address has used its attempts.
pub(crate) async fn login(
    State(ui): State<Ui>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let client = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.0 .0.ip());
    if let Err(wait) = ui.auth.login_attempt(client) {
        let secs = wait.as_secs() + 1;
        let page = login_form(Some(&format!(
            "Too many attempts from your address: try again in {secs} s."
        )));
        let retry = [(header::RETRY_AFTER, secs.to_string())];
        return (StatusCode::TOO_MANY_REQUESTS, retry, page).into_response();
    }
    let Some(role) = ui.auth.role_of(form.token.trim()) else {
        let page = login_form(Some("That token is not valid for this node."));
        return (StatusCode::UNAUTHORIZED, page).into_response();
    };
    let value = ui.auth.issue(role, &form.name, SystemTime::now());
    let cookie = format!(
        "{COOKIE}={value}; {}; Max-Age={}",
        ui.auth.attributes(&headers),
        LIFETIME.as_secs()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/ui")).into_response()
}

/// `POST /ui/logout`: clears the cookie (the form carries the CSRF token).
pub(crate) async fn logout(
    State(ui): State<Ui>,
    axum::Extension(session): axum::Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<super::actions::ActionForm>,
) -> Response {
    if Secret::new(session.csrf).matches(form.csrf.as_deref().unwrap_or("")) {
        let clear = format!("{COOKIE}=; {}; Max-Age=0", ui.auth.attributes(&headers));
        return ([(header::SET_COOKIE, clear)], Redirect::to("/ui/login")).into_response();
    }
    super::error::UiError::refused(Refusal::Csrf).into_response()
}

fn login_form(error: Option<&str>) -> Markup {
    layout::bare(
        "Log in",
        html! {
            h1 { "Log in to taskmesh" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/ui/login" .login {
                label for="token" { "API token" }
                input #token type="password" name="token" required autocomplete="current-password";
                label for="name" { "Your name (recorded with your actions)" }
                input #name type="text" name="name" maxlength="40" autocomplete="username";
                button type="submit" { "Log in" }
            }
        },
    )
}
