//! The OpenAPI 3.1 description of the API, generated from the handlers' annotations and
//! the request and answer types, served at `GET /v1/openapi.json` (no token needed).

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::routes::{cluster, schedules, system, tasks, wait};

pub(crate) mod names;

/// The API's description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "taskmesh",
        description = "Durable tasks, cron schedules and queues of a taskmesh node. Every error is `{\"error\": {\"code\", \"message\"}}`; messages name the field at fault."
    ),
    paths(
        tasks::submit, tasks::list, tasks::get, tasks::events, wait::wait,
        tasks::cancel, tasks::pause, tasks::resume, tasks::restart,
        schedules::list, schedules::get, schedules::put, schedules::remove,
        system::queues, system::live, system::ready, system::metrics,
        cluster::status, cluster::drain,
    ),
    modifiers(&BearerToken),
    tags(
        (name = "tasks", description = "submit, read, list and command tasks"),
        (name = "schedules", description = "cron schedules by name"),
        (name = "system", description = "queues, health and metrics"),
        (name = "cluster", description = "the nodes of the cluster, and draining this one"),
    )
)]
pub(crate) struct ApiDoc;

/// Declares the optional bearer token of the `/v1` routes.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `GET /v1/openapi.json`.
pub(super) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
