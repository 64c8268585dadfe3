//! The TOML file each harness node is started with (`--config`).

use std::net::SocketAddr;

use toml::{Table, Value};

/// The liveness of every harness node: dead after 3 s, a heartbeat every 500 ms, a claim
/// poll every 100 ms.
pub const STORE: [(&str, i64); 3] = [
    ("dead_after_ms", 3000),
    ("heartbeat_ms", 500),
    ("poll_ms", 100),
];

/// The mesh ping of every harness node.
pub const PING_MS: i64 = 500;

/// Where a node listens for the mesh, and how its peers reach it.
#[derive(Clone, Debug)]
pub struct Mesh {
    /// The node's name (`cluster.node_name`).
    pub name: String,
    /// Its own mesh listener (`cluster.listen`).
    pub listen: SocketAddr,
    /// What peers dial: its mesh proxy (`cluster.advertise`).
    pub advertise: SocketAddr,
    /// The other nodes' advertised addresses (`cluster.seeds`).
    pub seeds: Vec<SocketAddr>,
}

/// A node's config: `store_url` and the harness's liveness in `[store]`, a `[cluster]`
/// section if `mesh` is given, then `extra` merged over both (tables key by key; any
/// other value replaces).
pub fn render(store_url: &str, mesh: Option<&Mesh>, extra: &Table) -> String {
    let mut doc = Table::new();
    let mut store: Table = STORE
        .iter()
        .map(|(k, v)| (k.to_string(), Value::Integer(*v)))
        .collect();
    store.insert("url".into(), Value::String(store_url.to_owned()));
    doc.insert("store".into(), Value::Table(store));
    if let Some(mesh) = mesh {
        doc.insert("cluster".into(), Value::Table(cluster(mesh)));
    }
    merge(&mut doc, extra);
    toml::to_string(&doc).expect("a table always renders")
}

/// Parses a test's extra TOML, panicking with the parser's message.
pub fn parse_extra(extra: &str) -> Table {
    extra
        .parse()
        .unwrap_or_else(|e| panic!("the extra TOML does not parse: {e}\n{extra}"))
}

fn cluster(mesh: &Mesh) -> Table {
    let text = |a: &SocketAddr| Value::String(a.to_string());
    let mut t = Table::new();
    t.insert("node_name".into(), Value::String(mesh.name.clone()));
    t.insert("listen".into(), text(&mesh.listen));
    t.insert("advertise".into(), text(&mesh.advertise));
    let seeds = mesh.seeds.iter().map(text).collect();
    t.insert("seeds".into(), Value::Array(seeds));
    t.insert("ping_ms".into(), Value::Integer(PING_MS));
    t
}

/// Merges `over` into `base`: tables key by key, any other value replaced.
fn merge(base: &mut Table, over: &Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}
