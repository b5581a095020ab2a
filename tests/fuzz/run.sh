#!/usr/bin/env bash
# Run every fuzz target for a bounded time (not part of CI).
#
#   bash tests/fuzz/run.sh [seconds per target, default 120] [target ...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). libFuzzer's sanitizer flags are
# nightly-only; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. The working
# corpus grows in target/fuzz-corpus/<target> (seeded from tests/fuzz/seeds/<target>);
# crashes land in tests/fuzz/artifacts/<target>/ and each should become a regression
# test (tests/it/errors.rs, tests/it/adversarial.rs or tests/python/test_adversarial.py).
# A summary line per target (runs, executions per second, findings) is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-120}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(wkb geoarrow parquet index_bytes)
fi
export RUSTC_BOOTSTRAP=1
export POLYMATCH_FUZZ_TMP="${POLYMATCH_FUZZ_TMP:-/dev/shm}"
# One rayon thread: the targets are small, and thread start-up would dominate.
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-1}"
cargo fuzz build --fuzz-dir tests/fuzz
summary=()
for t in "${targets[@]}"; do
    corpus="target/fuzz-corpus/$t"
    mkdir -p "$corpus" "tests/fuzz/artifacts/$t"
    log="target/fuzz-corpus/$t.log"
    before=$(find "tests/fuzz/artifacts/$t" -type f | wc -l)
    # -fork=1 keeps fuzzing after a crash; every crash is saved as an artifact.
    set +e
    cargo fuzz run --fuzz-dir tests/fuzz "$t" "$corpus" "tests/fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=20 -fork=1 \
        -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 >"$log" 2>&1
    set -e
    after=$(find "tests/fuzz/artifacts/$t" -type f | wc -l)
    runs=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    execs=$(grep -oE '#[0-9]+' "$log" | tail -1 | tr -d '#' || echo "?")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    summary+=("$t: ${execs} executions in ${seconds}s (${runs} exec/s), coverage ${cov}, corpus $(ls "$corpus" | wc -l), new findings $((after - before)) (log: $log)")
done
printf '%s\n' "${summary[@]}"
