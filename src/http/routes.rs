//! The route table: `/v1` behind the token, health and metrics open.

pub(super) mod cluster;
pub(super) mod schedules;
pub(super) mod system;
pub(super) mod tasks;
pub(super) mod wait;

use axum::routing::{get, post};
use axum::Router;

use super::{auth, error, openapi, HttpState};

/// Every route, with the fallback for unknown ones.
pub(super) fn all(state: HttpState) -> Router {
    let v1 = Router::new()
        .route("/v1/tasks", post(tasks::submit).get(tasks::list))
        .route("/v1/tasks/{id}", get(tasks::get))
        .route("/v1/tasks/{id}/events", get(tasks::events))
        .route("/v1/tasks/{id}/wait", get(wait::wait))
        .route("/v1/tasks/{id}/cancel", post(tasks::cancel))
        .route("/v1/tasks/{id}/pause", post(tasks::pause))
        .route("/v1/tasks/{id}/resume", post(tasks::resume))
        .route("/v1/tasks/{id}/restart", post(tasks::restart))
        .route("/v1/schedules", get(schedules::list))
        .route(
            "/v1/schedules/{name}",
            get(schedules::get)
                .put(schedules::put)
                .delete(schedules::remove),
        )
        .route("/v1/queues", get(system::queues))
        .route("/v1/cluster", get(cluster::status))
        .route("/v1/cluster/drain", post(cluster::drain))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    Router::new()
        .merge(v1)
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/health/live", get(system::live))
        .route("/health/ready", get(system::ready))
        .route("/metrics", get(system::metrics))
        .fallback(error::no_route)
        .with_state(state)
}
