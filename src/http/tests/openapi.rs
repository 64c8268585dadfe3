//! The OpenAPI description: served without a token, and covering every route.

use axum::http::{Method, StatusCode};

use super::{guarded, request, send, start, stop};

#[tokio::test]
async fn the_openapi_description_is_served_without_a_token_and_lists_every_route() {
    let system = start(|b| b).await;
    let app = guarded(&system, "s3cret");
    let answer = send(&app, request(Method::GET, "/v1/openapi.json", None, None)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["openapi"], "3.1.0");
    let paths = &answer.body["paths"];
    let routes = [
        ("/v1/tasks", "post"),
        ("/v1/tasks", "get"),
        ("/v1/tasks/{id}", "get"),
        ("/v1/tasks/{id}/events", "get"),
        ("/v1/tasks/{id}/wait", "get"),
        ("/v1/tasks/{id}/cancel", "post"),
        ("/v1/tasks/{id}/pause", "post"),
        ("/v1/tasks/{id}/resume", "post"),
        ("/v1/tasks/{id}/restart", "post"),
        ("/v1/schedules", "get"),
        ("/v1/schedules/{name}", "get"),
        ("/v1/schedules/{name}", "put"),
        ("/v1/schedules/{name}", "delete"),
        ("/v1/queues", "get"),
        ("/v1/cluster", "get"),
        ("/v1/cluster/drain", "post"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
    ];
    for (path, method) in routes {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is not described"
        );
    }
    let described: usize = paths
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(described, routes.len());
    let schemas = &answer.body["components"]["schemas"];
    assert!(schemas["SubmitBody"]["properties"]["kind"].is_object());
    assert!(schemas["ErrorBody"]["properties"]["error"].is_object());
    stop(system).await;
}
