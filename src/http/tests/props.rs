//! Property tests of the API's decoders: arbitrary bytes and structure-aware JSON bodies,
//! query strings and path segments sent through the router never give a 5xx or a panic;
//! every 4xx has the error shape, and names the field when one field is at fault.

use axum::http::{header, Method, StatusCode};
use axum::Router;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Map, Value};

use super::{open, raw, send, start, Answer};
use crate::TaskSystem;

/// A runtime and a system with the router over it, shared by the cases of one property.
fn fixture() -> (tokio::runtime::Runtime, TaskSystem, Router) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let system = rt.block_on(start(|b| b));
    let app = open(&system);
    (rt, system, app)
}

/// No 5xx; an error is JSON in the error shape with a code and a message.
fn check_shape(answer: &Answer, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        answer.status.as_u16() < 500,
        "{what}: {} {:?}",
        answer.status,
        answer.body
    );
    if answer.status.is_client_error() {
        prop_assert_eq!(
            answer.header(header::CONTENT_TYPE),
            "application/json",
            "{}",
            what
        );
        prop_assert!(!answer.code().is_empty(), "{what}: {:?}", answer.body);
        prop_assert!(!answer.message().is_empty(), "{what}: {:?}", answer.body);
    }
    Ok(())
}

/// Any JSON value, nested a little, with numbers of every size.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "-?[1-9][0-9]{19,39}".prop_map(|d| serde_json::from_str::<Value>(&d).unwrap()),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const SUBMIT_FIELDS: [&str; 13] = [
    "kind",
    "args",
    "queue",
    "priority",
    "timeout_ms",
    "max_attempts",
    "unique_key",
    "run_at",
    "title",
    "correlation_id",
    "actor_id",
    "auto_start",
    "colour",
];

/// A submit body: some known fields (and an unknown one) with values of any type.
fn submit_body() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(&SUBMIT_FIELDS[..]), any_json()), 0..8).prop_map(
        |fields| {
            let mut body: Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            body.entry("kind").or_insert_with(|| json!("noop"));
            Value::Object(body)
        },
    )
}

/// A valid submit with exactly one field given a value of the wrong type or out of range.
fn one_bad_field() -> impl Strategy<Value = (&'static str, Value)> {
    let text = ".{0,20}".prop_map(Value::from);
    prop_oneof![
        (
            Just("kind"),
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                Just(json!([])),
                Just(json!(""))
            ]
        ),
        (
            Just("max_attempts"),
            prop_oneof![
                text.clone(),
                Just(json!(0)),
                Just(json!(-1)),
                Just(json!(1.5))
            ]
        ),
        (
            Just("timeout_ms"),
            prop_oneof![
                text.clone(),
                Just(json!(0)),
                Just(json!(-5)),
                Just(json!(u64::MAX))
            ]
        ),
        (
            Just("priority"),
            "[a-z]{1,10}"
                .prop_filter("not a level", |s| s.parse::<crate::Priority>().is_err())
                .prop_map(Value::from)
        ),
        (
            Just("run_at"),
            prop_oneof![
                text.clone(),
                Just(json!("1969-07-20T20:17:00Z")),
                Just(json!("2300-01-01T00:00:00Z"))
            ]
        ),
        (
            Just("unique_key"),
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                Just(json!("")),
                Just(json!("cron:x"))
            ]
        ),
        (
            Just("title"),
            prop_oneof![
                any::<bool>().prop_map(Value::from),
                Just(json!("t".repeat(201)))
            ]
        ),
        (
            Just("correlation_id"),
            prop_oneof![Just(json!({})), Just(json!("c".repeat(257)))]
        ),
        (
            Just("actor_id"),
            prop_oneof![
                Just(json!(7)),
                Just(json!("cron:me")),
                Just(json!("a".repeat(257)))
            ]
        ),
        (Just("auto_start"), text.clone()),
        (
            Just("queue"),
            prop_oneof![Just(json!(3)), Just(json!("no-such-queue"))]
        ),
    ]
}

/// `bytes` percent-encoded, so any bytes make a valid path segment or query value.
fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

#[test]
fn arbitrary_bytes_as_a_body_never_give_a_5xx_and_errors_have_the_shape() {
    let (rt, system, app) = fixture();
    let routes = [
        "/v1/tasks",
        "/v1/schedules/p",
        "/v1/tasks/00000000-0000-0000-0000-000000000000/cancel",
    ];
    proptest!(ProptestConfig::with_cases(200), |(bytes in prop::collection::vec(any::<u8>(), 0..256), route in prop::sample::select(routes.to_vec()))| {
        let method = if route.starts_with("/v1/schedules") { Method::PUT } else { Method::POST };
        let req = raw(method, route, Some("application/json"), bytes);
        let answer = rt.block_on(send(&app, req));
        check_shape(&answer, route)?;
    });
    rt.block_on(system.shutdown(std::time::Duration::from_secs(5)));
}

#[test]
fn structured_submit_bodies_never_give_a_5xx_and_errors_have_the_shape() {
    let (rt, system, app) = fixture();
    proptest!(ProptestConfig::with_cases(300), |(body in submit_body())| {
        let req = raw(Method::POST, "/v1/tasks", Some("application/json"), body.to_string());
        let answer = rt.block_on(send(&app, req));
        check_shape(&answer, &body.to_string())?;
        if answer.status.is_success() {
            prop_assert_eq!(&answer.body["kind"], &body["kind"]);
        }
    });
    rt.block_on(system.shutdown(std::time::Duration::from_secs(5)));
}

#[test]
fn a_submit_with_one_bad_field_is_a_400_naming_that_field() {
    let (rt, system, app) = fixture();
    proptest!(ProptestConfig::with_cases(300), |((field, value) in one_bad_field())| {
        let mut body = json!({"kind": "noop", "args": {"n": 1}});
        body[field] = value;
        let req = raw(Method::POST, "/v1/tasks", Some("application/json"), body.to_string());
        let answer = rt.block_on(send(&app, req));
        check_shape(&answer, &body.to_string())?;
        prop_assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", body);
        prop_assert!(answer.message().contains(field), "{}: {}", body, answer.message());
    });
    rt.block_on(system.shutdown(std::time::Duration::from_secs(5)));
}

const LIST_PARAMS: [&str; 11] = [
    "state",
    "queue",
    "kind",
    "phase",
    "created_by",
    "node",
    "created_after",
    "created_before",
    "limit",
    "offset",
    "bogus",
];

#[test]
fn query_strings_never_give_a_5xx_and_a_bad_parameter_is_named() {
    let (rt, system, app) = fixture();
    let pair = (
        prop::sample::select(&LIST_PARAMS[..]),
        prop::collection::vec(any::<u8>(), 0..24),
    );
    proptest!(ProptestConfig::with_cases(300), |(pairs in prop::collection::vec(pair, 0..4), junk in "[ -~]{0,40}")| {
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        let uri = format!("/v1/tasks?{}", query.join("&"));
        let answer = rt.block_on(send(&app, raw(Method::GET, &uri, None, "")));
        check_shape(&answer, &uri)?;
        if answer.status == StatusCode::BAD_REQUEST && pairs.len() == 1 {
            let named = pairs[0].0;
            prop_assert!(answer.message().contains(named), "{}: {}", uri, answer.message());
        }
        if let Ok(req) = axum::http::Request::builder().uri(format!("/v1/tasks?{junk}")).body(axum::body::Body::empty()) {
            let answer = rt.block_on(send(&app, req));
            check_shape(&answer, &junk)?;
        }
    });
    rt.block_on(system.shutdown(std::time::Duration::from_secs(5)));
}

#[test]
fn arbitrary_path_segments_never_give_a_5xx_and_errors_have_the_shape() {
    let (rt, system, app) = fixture();
    let routes = [
        "/v1/tasks/{}",
        "/v1/tasks/{}/events",
        "/v1/tasks/{}/pause",
        "/v1/schedules/{}",
    ];
    proptest!(ProptestConfig::with_cases(300), |(segment in prop::collection::vec(any::<u8>(), 0..40), route in prop::sample::select(routes.to_vec()))| {
        let uri = route.replace("{}", &encode(&segment));
        let method = if route.ends_with("pause") { Method::POST } else { Method::GET };
        let answer = rt.block_on(send(&app, raw(method, &uri, None, "")));
        check_shape(&answer, &uri)?;
    });
    rt.block_on(system.shutdown(std::time::Duration::from_secs(5)));
}
