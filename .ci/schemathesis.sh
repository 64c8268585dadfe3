#!/usr/bin/env bash
# A bounded schemathesis run against a real node: every generated request must get an
# answer that is not a 5xx and that matches the OpenAPI description at /v1/openapi.json.
#
#   .ci/schemathesis.sh            # debug binary, 25 examples per operation, 120 s of testing at most
#   ST_EXAMPLES=200 ST_SEED=7 .ci/schemathesis.sh
#
# schemathesis (PyPI) is installed into target/st-venv when it is not on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES="${ST_EXAMPLES:-25}"
SEED="${ST_SEED:-1}"
BUDGET="${ST_MAX_TIME:-120}"

if command -v schemathesis >/dev/null 2>&1; then
    ST=schemathesis
else
    if [ ! -x target/st-venv/bin/schemathesis ]; then
        python3 -m venv target/st-venv
        target/st-venv/bin/pip install --quiet 'schemathesis>=4,<5'
    fi
    ST=target/st-venv/bin/schemathesis
fi

cargo build --quiet --bin taskmesh
data="$(mktemp -d)"
out="$data/node.out"
node_pid=""
cleanup() {
    if [ -n "$node_pid" ]; then kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
    rm -rf "$data"
}
trap cleanup EXIT

target/debug/taskmesh node --data-dir "$data/db" --http-addr 127.0.0.1:0 --log warn \
    >"$out" 2>"$data/node.err" &
node_pid=$!
for _ in $(seq 1 300); do
    grep -q "listening on" "$out" 2>/dev/null && break
    if ! kill -0 "$node_pid" 2>/dev/null; then cat "$data/node.err"; exit 1; fi
    sleep 0.1
done
url="$(sed -n 's/^taskmesh node listening on //p' "$out" | head -1)"
[ -n "$url" ] || { echo "the node did not start"; cat "$data/node.err"; exit 1; }
echo "node at $url"

# --request-timeout covers the longest answer the node gives: a wait route long poll,
# capped a second under the node's 30 s request timeout.
timeout --kill-after=10 "$((BUDGET + 60))" "$ST" run "$url/v1/openapi.json" \
    --checks "${ST_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance}" \
    --max-examples "$EXAMPLES" --seed "$SEED" --max-time "$BUDGET" \
    --request-timeout 35 --workers 2 --no-color \
    --generation-database none
