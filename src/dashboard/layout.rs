//! The page shell: head with the embedded assets, skip link, navigation, session bar.

use maud::{html, Markup, DOCTYPE};

use super::assets;
use super::auth::Session;

/// htmx settings that keep it within the CSP: no inline styles, no eval, no script tags.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0,"selfRequestsOnly":true}"#;

/// The pages in the navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Nav {
    /// `/ui`.
    Overview,
    /// `/ui/tasks`.
    Tasks,
    /// `/ui/queues`.
    Queues,
    /// `/ui/schedules`.
    Schedules,
    /// `/ui/cluster`.
    Cluster,
}

const NAV: [(Nav, &str, &str, &str); 5] = [
    (Nav::Overview, "/ui", "Overview", "g o"),
    (Nav::Tasks, "/ui/tasks", "Tasks", "g t"),
    (Nav::Queues, "/ui/queues", "Queues", "g q"),
    (Nav::Schedules, "/ui/schedules", "Schedules", "g s"),
    (Nav::Cluster, "/ui/cluster", "Cluster", "g c"),
];

/// A full page of the dashboard.
pub(crate) fn page(title: &str, current: Nav, session: &Session, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-csrf=(session.csrf) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui" { "taskmesh" }
                    nav aria-label="Main" {
                        ul {
                            @for (nav, href, label, keys) in NAV {
                                li { a href=(href) aria-keyshortcuts=(keys)
                                    aria-current=[(nav == current).then_some("page")] { (label) } }
                            }
                        }
                    }
                    (who(session))
                }
                main #main { (body) }
                footer { p { "Keys: g o, g t, g q, g s, g c move between pages; / focuses the filter." } }
            }
        }
    }
}

/// A page without navigation (login, errors).
pub(crate) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main #main .narrow { (body) } }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="htmx-config" content=(HTMX_CONFIG);
            title { (title) " · taskmesh" }
            link rel="stylesheet" href=(assets::url("app.css"));
            link rel="icon" href=(assets::url("favicon.svg")) type="image/svg+xml";
            script src=(assets::url("vendor/htmx.min.js")) defer {}
            script src=(assets::url("vendor/htmx-ext-sse.min.js")) defer {}
            script src=(assets::url("vendor/idiomorph-ext.min.js")) defer {}
            script src=(assets::url("app.js")) defer {}
        }
    }
}

fn who(session: &Session) -> Markup {
    html! {
        div.who {
            span { (session.actor) " · " (session.role_name()) }
            @if session.can_logout {
                form method="post" action="/ui/logout" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    button.link type="submit" { "Log out" }
                }
            }
        }
    }
}

/// The hidden CSRF field every action form carries.
pub(crate) fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A one-button action form posting to `action`, shown only to operators.
pub(crate) fn action(session: &Session, action: &str, label: &str, class: &str) -> Markup {
    html! {
        @if session.role == super::auth::Role::Operator {
            form.action method="post" action=(action) {
                (csrf(session))
                button type="submit" class=(class) { (label) }
            }
        }
    }
}
