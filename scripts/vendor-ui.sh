#!/usr/bin/env bash
# Refreshes the dashboard's vendored JavaScript (assets/ui/vendor) from the npm registry
# with `npm pack`, and rewrites assets/ui/CHECKSUMS (sha256 of every vendored file; a unit
# test checks the embedded files against it).
# A maintainer's script: `cargo build` never calls npm, and the node loads nothing from
# outside. Change a version below, run this, review the diff, commit.
#   scripts/vendor-ui.sh          refresh the files and the checksums
#   scripts/vendor-ui.sh --check  only verify the checksums (CI)
set -euo pipefail
cd "$(dirname "$0")/.."

HTMX=2.0.11
SSE=2.2.4
IDIOMORPH=0.8.0

checksums() {
  (cd assets/ui && find vendor -type f | LC_ALL=C sort | xargs sha256sum)
}

if [[ "${1:-}" == "--check" ]]; then
  diff <(checksums) assets/ui/CHECKSUMS && echo "assets/ui: checksums match"
  exit
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch() { # package version file-in-package destination
  (cd "$work" && npm pack --silent "$1@$2" >/dev/null)
  local tgz="$work/$(echo "$1" | sed 's|^@||; s|/|-|')-$2.tgz"
  mkdir -p "$work/$1"
  tar xzf "$tgz" -C "$work/$1"
  cp "$work/$1/package/$3" "assets/ui/vendor/$4"
}
mkdir -p assets/ui/vendor
fetch htmx.org "$HTMX" dist/htmx.min.js htmx.min.js
fetch htmx-ext-sse "$SSE" dist/sse.min.js htmx-ext-sse.min.js
fetch idiomorph "$IDIOMORPH" dist/idiomorph-ext.min.js idiomorph-ext.min.js
cat > assets/ui/vendor/VERSIONS <<VERSIONS
htmx.org $HTMX (dist/htmx.min.js, 0BSD)
htmx-ext-sse $SSE (dist/sse.min.js, 0BSD)
idiomorph $IDIOMORPH (dist/idiomorph-ext.min.js, 0BSD)
VERSIONS
checksums > assets/ui/CHECKSUMS
echo "vendored; sizes gzipped:"
for f in assets/ui/vendor/*.js; do echo "  $f $(gzip -9c "$f" | wc -c)"; done
