#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers of hostile input: the stdin
# document, the request, a copy's listing and the DDL checker (fuzz/, their
# properties in src/fuzzing.rs). Builds the targets with cargo-fuzz
# (installed if missing; RUSTC_BOOTSTRAP=1 lets the stable toolchain take
# libFuzzer's flags) and runs each for SECONDS (default 20) from the seeds
# in fuzz/corpus/ and what earlier runs kept (target/fuzz-corpus/). A
# finding stops the run with the failing input in fuzz/artifacts/<target>/
# (reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run -s none <target> <file>).
#
#   scripts/fuzz.sh           every target, 20 s each (what CI runs)
#   scripts/fuzz.sh 3600 ddl  one target for an hour
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
seconds=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(stdin_document request listing ddl)
ensure_deps
# libFuzzer itself is C++, built by libfuzzer-sys.
command -v c++ >/dev/null || apt_install g++
if ! command -v cargo-fuzz >/dev/null; then
  say "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
# No sanitizer: the crate forbids unsafe code; libFuzzer's coverage
# guidance and Rust's own checks (debug assertions, overflow) remain.
say "building the fuzz targets"
cargo fuzz build -s none
for t in "${targets[@]}"; do
  mkdir -p "target/fuzz-corpus/$t"
  say "fuzzing $t for ${seconds}s"
  set +e
  cargo fuzz run -s none "$t" "target/fuzz-corpus/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>&1 |
    grep -E '(DONE|stat::number_of_executed_units|stat::peak_rss_mb|INFO: seed corpus|==[0-9]+==|panicked|SUMMARY|Test unit written)'
  status=${PIPESTATUS[0]}
  set -e
  [ "$status" -eq 0 ] || { echo "fuzz target $t failed: see fuzz/artifacts/$t/" >&2; exit 1; }
done
