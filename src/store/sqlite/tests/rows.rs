//! The row decoders on arbitrary column values: they never panic, and a refused row's
//! error names the column that is wrong.

use proptest::prelude::*;
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, Row};
use serde_json::Value as Json;

use super::super::rows;
use super::{at, record};
use crate::store::{EventKind, StoreError};

/// Any SQLite value: null, integer, real, text (arbitrary or JSON), blob.
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Real),
        "\\PC{0,40}".prop_map(Value::Text),
        json().prop_map(|j| Value::Text(j.to_string())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::Blob),
    ]
}

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>().prop_map(Json::from),
        "\\PC{0,12}".prop_map(Json::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

/// `valid` (a JSON object) with the value at one of its keys, picked by `pick`, replaced.
fn mutate(valid: &Json, pick: usize, with: Json) -> String {
    let mut v = valid.clone();
    if let Some(map) = v.as_object_mut() {
        let key = map.keys().nth(pick % map.len().max(1)).cloned();
        if let Some(k) = key {
            map.insert(k, with);
        }
    }
    v.to_string()
}

/// Runs `decode` on one row of `values`, with the columns named `names`.
fn decode<T>(
    names: &[&str],
    values: Vec<Value>,
    decode: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let conn = Connection::open_in_memory().unwrap();
    let columns: Vec<String> = (1..=names.len())
        .zip(names)
        .map(|(i, name)| format!("?{i} AS {name}"))
        .collect();
    let sql = format!("SELECT {}", columns.join(", "));
    let mut stmt = conn.prepare(&sql).unwrap();
    let mut rows = stmt.query(params_from_iter(values)).unwrap();
    decode(rows.next().unwrap().unwrap())
}

/// A valid row of each decoder, with its column names.
fn valid_rows() -> [(Vec<&'static str>, Vec<Value>); 3] {
    let r = record("k", at(1));
    let id = Value::Text(r.task.id.to_string());
    let task = Value::Text(serde_json::to_string(&r.task).unwrap());
    let life = Value::Text(serde_json::to_string(&r.life).unwrap());
    let data = Value::Text(serde_json::to_string(&EventKind::Created).unwrap());
    let text = |s: &str| Value::Text(s.into());
    [
        (vec!["id", "task", "life"], vec![id.clone(), task, life]),
        (
            vec!["seq", "id", "at", "actor_id", "correlation_id", "data"],
            vec![
                Value::Integer(7),
                id.clone(),
                Value::Integer(1),
                text("a"),
                Value::Null,
                data,
            ],
        ),
        (
            vec!["task_id", "at", "attempt", "kind", "reason"],
            vec![
                id,
                Value::Integer(1),
                Value::Integer(2),
                text("panicked"),
                text("boom"),
            ],
        ),
    ]
}

/// Decodes with decoder `which` (0 record, 1 event, 2 crash); Ok(()) or the error text.
fn run(which: usize, names: &[&str], values: Vec<Value>) -> Result<(), String> {
    let result = match which {
        0 => decode(names, values, rows::record).map(drop),
        1 => decode(names, values, rows::event).map(drop),
        _ => decode(names, values, rows::crash).map(drop),
    };
    result.map_err(|e| e.to_string())
}

#[test]
fn valid_rows_decode() {
    for (which, (names, values)) in valid_rows().into_iter().enumerate() {
        assert_eq!(run(which, &names, values), Ok(()), "{names:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every column arbitrary: decoding never panics.
    #[test]
    fn arbitrary_rows_never_panic_a_decoder(which in 0usize..3, values in prop::collection::vec(value(), 6)) {
        let (names, valid) = &valid_rows()[which];
        let values = values.into_iter().take(valid.len()).collect();
        let _ = run(which, names, values);
    }

    /// One column arbitrary, the others valid: a refused row names that column.
    #[test]
    fn a_refused_row_names_the_wrong_column(which in 0usize..3, col in 0usize..6, bad in value()) {
        let (names, mut values) = valid_rows()[which].clone();
        let col = col % values.len();
        values[col] = bad;
        if let Err(e) = run(which, &names, values) {
            prop_assert!(e.contains(&format!("column {}", names[col])), "{}", e);
        }
    }

    /// The task and life JSON with one key's value replaced by any JSON: decoding never
    /// panics, and a refusal names the column.
    #[test]
    fn task_and_life_json_with_any_value_at_a_key_never_panic(
        col in 1usize..3, pick in 0usize..32, with in json(),
    ) {
        let (names, mut values) = valid_rows()[0].clone();
        let Value::Text(valid) = &values[col] else { unreachable!("json is text") };
        let valid: Json = serde_json::from_str(valid).unwrap();
        values[col] = Value::Text(mutate(&valid, pick, with));
        if let Err(e) = run(0, &names, values) {
            prop_assert!(e.contains(&format!("column {}", names[col])), "{}", e);
        }
    }
}
