#!/usr/bin/env bash
# The dashboard in a real browser: builds the binary, starts a node (with an operator and a
# viewer token) on a free port and a temp data dir, seeds tasks and a schedule through the
# HTTP API, then runs tests/browser/dashboard.mjs (playwright-core driving Debian's
# Chromium, headless). Screenshots go to docs/screenshots/. Prints `N passed, N failed`.
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
cleanup() {
    if [ -n "$node_pid" ]; then kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
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
UI_URL="$url" SHOTS="docs/screenshots" CHROMIUM="$CHROMIUM" \
    timeout --kill-after=10 300 node tests/browser/dashboard.mjs
