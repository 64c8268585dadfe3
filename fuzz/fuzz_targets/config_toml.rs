//! The node's config loader on arbitrary file contents: it refuses, never panics.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use taskmesh::node::NodeConfig;

/// One file per fuzzing process, rewritten for each input.
static FILE: LazyLock<PathBuf> = LazyLock::new(|| {
    std::env::temp_dir().join(format!("taskmesh-fuzz-config-{}.toml", std::process::id()))
});

fuzz_target!(|data: &[u8]| {
    if std::fs::write(&*FILE, data).is_ok() {
        let _ = NodeConfig::load(Some(&FILE));
    }
});
