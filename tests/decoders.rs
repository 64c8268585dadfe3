//! Property tests of the node's config loader on untrusted files: arbitrary bytes never
//! panic it, and a refused file's error names the key that is wrong.
//! (Cron expressions and stored rows are checked beside their decoders, in the library.)

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use taskmesh::node::NodeConfig;
use toml::{Table, Value};

/// A file of its own under the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn with(bytes: &[u8]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("tm-config-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn load(bytes: &[u8]) -> Result<NodeConfig, String> {
    let file = TempFile::with(bytes);
    NodeConfig::load(Some(&file.0)).map_err(|e| e.to_string())
}

/// What a key takes.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Text,
    Integer,
}

/// Keys of the node's configuration and what they take.
const KEYS: [(&str, Kind); 9] = [
    ("data_dir", Kind::Text),
    ("http.addr", Kind::Text),
    ("http.max_body_bytes", Kind::Integer),
    ("http.token_file", Kind::Text),
    ("log.level", Kind::Text),
    ("shutdown.grace_ms", Kind::Integer),
    ("system.namespace", Kind::Text),
    ("system.cancel_grace_ms", Kind::Integer),
    ("system.retention_max", Kind::Integer),
];

/// A TOML value that a key of `kind` does not take.
fn wrong(kind: Kind) -> BoxedStrategy<Value> {
    let common = prop_oneof![
        any::<bool>().prop_map(Value::Boolean),
        prop::collection::vec(any::<i64>().prop_map(Value::Integer), 0..3).prop_map(Value::Array),
        Just(Value::Table(Table::new())),
    ];
    match kind {
        Kind::Text => prop_oneof![common, any::<i64>().prop_map(Value::Integer)].boxed(),
        Kind::Integer => prop_oneof![common, "\\PC{0,10}".prop_map(Value::String)].boxed(),
    }
}

/// A TOML file setting `key` (dotted) to `value`.
fn file(key: &str, value: Value) -> String {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().expect("a key");
    let mut table = Table::new();
    table.insert(last.to_string(), value);
    for part in parts.into_iter().rev() {
        let mut outer = Table::new();
        outer.insert(part.to_string(), Value::Table(table));
        table = outer;
    }
    toml::to_string(&table).expect("a table renders")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes never panic the loader.
    #[test]
    fn arbitrary_bytes_never_panic_the_config_loader(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = load(&bytes);
    }

    /// Arbitrary text shaped like TOML (tables, keys, values) never panics the loader.
    #[test]
    fn toml_like_text_never_panics_the_config_loader(text in "(\\[[a-z_.]{0,12}\\]\n|[a-z_]{1,12} = [^\n]{0,16}\n){0,6}") {
        let _ = load(text.as_bytes());
    }

    /// A value of the wrong type is refused with its key named.
    #[test]
    fn a_value_of_the_wrong_type_is_refused_naming_its_key(
        (key, value) in prop::sample::select(KEYS.to_vec()).prop_flat_map(|(k, kind)| (Just(k), wrong(kind))),
    ) {
        let text = file(key, value);
        let err = load(text.as_bytes()).expect_err(&text);
        prop_assert!(err.contains(&format!("at key {key}")), "{text}: {err}");
    }

    /// An unknown key is refused with its name.
    #[test]
    fn an_unknown_key_is_refused_naming_it(
        table in prop::sample::select(vec!["", "http.", "log.", "shutdown.", "system."]),
        name in "[a-z]{1,8}_x",
    ) {
        let text = file(&format!("{table}{name}"), Value::Integer(1));
        let err = load(text.as_bytes()).expect_err(&text);
        prop_assert!(err.contains(&format!("unknown key {name:?}")), "{text}: {err}");
    }
}
