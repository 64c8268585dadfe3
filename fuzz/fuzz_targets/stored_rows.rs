//! The SQLite row decoders on arbitrary column values: they refuse, never panic.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rusqlite::types::Value;

/// A column value of any SQLite type.
#[derive(Arbitrary, Debug)]
enum Column {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<Column> for Value {
    fn from(c: Column) -> Self {
        match c {
            Column::Null => Value::Null,
            Column::Integer(n) => Value::Integer(n),
            Column::Real(x) => Value::Real(x),
            Column::Text(s) => Value::Text(s),
            Column::Blob(b) => Value::Blob(b),
        }
    }
}

fuzz_target!(|columns: Vec<Column>| {
    let values: Vec<Value> = columns.into_iter().map(Value::from).collect();
    let _ = taskmesh::store::fuzz_decode_rows(&values);
});
