#!/usr/bin/env bash
# The randomized fault run (tests/chaos.rs): three nodes on the local PostgreSQL
# (127.0.0.1:5432, or TASKMESH_TEST_DATABASE_URL), random faults for the given seconds
# (default 600) under a steady load, then the checker over the database.
# TASKMESH_CHAOS_SEED=N replays a run's choices. Exit 0: no violation.
set -euo pipefail
cd "$(dirname "$0")/.."
TASKMESH_CHAOS_SECS="${1:-600}" TASKMESH_REQUIRE_PG=1 \
    cargo test --test chaos -- --nocapture
