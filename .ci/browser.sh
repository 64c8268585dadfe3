#!/usr/bin/env bash
# The dashboard in a real browser: builds the binary, starts a node (with an operator and a
# viewer token) on a free port and a temp data dir, seeds tasks and a schedule through the
# HTTP API, then runs tests/browser/dashboard.mjs (playwright-core driving Debian's
# Chromium, headless). For the cluster page it also starts two nodes in a cluster on a
# fresh PostgreSQL database (TASKMESH_TEST_DATABASE_URL's server, default 127.0.0.1:5432), dropped at the
# end; without a server the cluster check fails unless TASKMESH_BROWSER_NO_PG=1 (then it
# checks the page of a node alone). Screenshots go to docs/screenshots/. Prints
# `N passed, N failed`.
#
# Needs /usr/bin/chromium (apt-get install -y chromium) and tests/browser/node_modules
# (npm ci); .ci/run installs both when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || { echo "no $CHROMIUM: apt-get install -y chromium"; exit 1; }
[ -d tests/browser/node_modules/playwright-core ] || { echo "run: (cd tests/browser && npm ci)"; exit 1; }
echo "chromium: $("$CHROMIUM" --version 2>/dev/null | head -1)"
echo "playwright-core: $(node -p "require('./tests/browser/node_modules/playwright-core/package.json').version")"
echo "axe-core: $(node -p "require('./tests/browser/node_modules/axe-core/package.json').version")"

cargo build --quiet --bin taskmesh
data="$(mktemp -d)"
out="$data/node.out"
node_pid=""
cluster_pids=()
pg_db=""
pg_server="${TASKMESH_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_server="${pg_server%/*}"
cleanup() {
    for pid in "$node_pid" "${cluster_pids[@]}"; do
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    done
    if [ -n "$pg_db" ]; then psql -q "$pg_server/postgres" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true; fi
    rm -rf "$data"
}
trap cleanup EXIT

export UI_TOKEN="ci-operator-$RANDOM$RANDOM"
export UI_VIEWER_TOKEN="ci-viewer-$RANDOM$RANDOM"
TASKMESH_HTTP__TOKEN="$UI_TOKEN" TASKMESH_UI__VIEWER_TOKEN="$UI_VIEWER_TOKEN" \
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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_node() { # name, args...: starts a node of the cluster and waits until it listens
    local name="$1"; shift
    TASKMESH_HTTP__TOKEN="$UI_TOKEN" TASKMESH_UI__VIEWER_TOKEN="$UI_VIEWER_TOKEN" \
        target/debug/taskmesh node --data-dir "$data/$name" --http-addr 127.0.0.1:0 --log warn "$@" \
        >"$data/$name.out" 2>"$data/$name.err" &
    cluster_pids+=($!)
    for _ in $(seq 1 300); do
        grep -q "listening on" "$data/$name.out" 2>/dev/null && return
        sleep 0.1
    done
    echo "node $name did not start"; cat "$data/$name.err"; exit 1
}
cluster_url=""
if pg_isready -q -d "$pg_server/postgres" 2>/dev/null; then
    pg_db="browser_$$_$RANDOM"
    psql -q "$pg_server/postgres" -c "CREATE DATABASE $pg_db" >/dev/null
    export TASKMESH_CLUSTER__COOKIE="ci-cookie-$RANDOM$RANDOM"
    for name in c1 c2; do
        start_node "$name" --store "$pg_server/$pg_db" --node-name "$name" --cluster-listen "127.0.0.1:$(free_port)"
    done
    cluster_url="$(sed -n 's/^taskmesh node listening on //p' "$data/c1.out" | head -1)"
    for i in 1 2 3 4 5 6; do # tasks that run on either node, for the node filter
        curl -fsS -X POST -H "Authorization: Bearer $UI_TOKEN" -H "content-type: application/json" \
            --data "{\"kind\":\"echo\",\"args\":{\"n\":$i},\"title\":\"cluster echo $i\"}" \
            "$cluster_url/v1/tasks" >/dev/null
    done
    echo "cluster of two at $cluster_url (database $pg_db)"
elif [ "${TASKMESH_BROWSER_NO_PG:-}" != 1 ]; then
    echo "no PostgreSQL at $pg_server: the cluster page is checked on a node alone, and that check fails (TASKMESH_BROWSER_NO_PG=1 accepts it)"
fi

api() { # method path [json]
    curl -fsS -X "$1" -H "Authorization: Bearer $UI_TOKEN" -H "content-type: application/json" \
        ${3:+--data "$3"} "$url$2" >/dev/null
}
for i in 1 2 3 4 5; do api POST /v1/tasks "{\"kind\":\"echo\",\"args\":{\"n\":$i},\"title\":\"echo $i\"}"; done
api POST /v1/tasks '{"kind":"fail","args":{"message":"upstream said 503 <b>busy</b>"},"max_attempts":2,"title":"flaky upstream"}'
api POST /v1/tasks '{"kind":"echo","args":{"note":"<script>alert(1)</script>"},"title":"<img src=x onerror=alert(2)>"}'
api POST /v1/tasks '{"kind":"sleep","args":{"ms":600000},"title":"a long sleep"}'
api POST /v1/tasks '{"kind":"echo","args":{"later":true},"run_at":"2099-01-01T00:00:00Z","title":"scheduled for later"}'
api POST /v1/tasks '{"kind":"echo","args":{"held":true},"auto_start":false,"title":"created paused"}'
api PUT /v1/schedules/nightly-report '{"cron":"0 30 2 * * *","timezone":"Europe/Berlin","task":{"kind":"echo","args":{"report":"daily"}},"catch_up":"all"}'
api PUT /v1/schedules/every-minute '{"cron":"0 * * * * *","task":{"kind":"noop","args":{}},"overlap":"skip"}'

mkdir -p docs/screenshots
UI_URL="$url" UI_CLUSTER_URL="$cluster_url" SHOTS="docs/screenshots" CHROMIUM="$CHROMIUM" \
    timeout --kill-after=10 300 node tests/browser/dashboard.mjs
