#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo fuzz, libFuzzer) for a time budget each.
#
#   scripts/fuzz.sh [seconds-per-target] [target ...]
#
# Defaults: 60 seconds, every target (cron_expr config_toml http_json stored_rows).
# Installs cargo-fuzz if it is missing. cargo fuzz needs a nightly compiler for its
# sanitizer flags: it uses the nightly toolchain if rustup has one, else the stable one
# with RUSTC_BOOTSTRAP=1. FUZZ_SANITIZER=none runs without AddressSanitizer (faster).
# Crashes are saved in fuzz/artifacts/<target>/; reproduce one with
#   cargo fuzz run <target> fuzz/artifacts/<target>/<file>
# Not part of CI: see docs/FUZZING.md.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(cron_expr config_toml http_json stored_rows cluster_wire)
fi
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [seconds-per-target] [target ...]" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

fuzz=(cargo fuzz)
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1
fi
sanitizer="${FUZZ_SANITIZER:-address}"

"${fuzz[@]}" build --sanitizer "$sanitizer"
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  seeds=()
  if [ -d "fuzz/seeds/$target" ]; then
    seeds=("fuzz/seeds/$target")
  fi
  echo "== $target: ${seconds}s" >&2
  "${fuzz[@]}" run --sanitizer "$sanitizer" "$target" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
done
echo "no crash in ${#targets[@]} target(s), ${seconds}s each" >&2
