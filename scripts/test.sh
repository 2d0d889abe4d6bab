#!/usr/bin/env bash
# Runs every unit and integration test and ends with one summary line, "N passed, M failed".
# The integration tests load target/debug/libredis_enc.so, so the workspace is built first; the
# memory scan runs again against the release build.
set -uo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace || exit 1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# Where a key's transient copies sit on the stack depends on optimisation: the memory scan also
# runs against the release build of the module, as it is deployed.
if cargo build --release --lib 2>&1 | tail -1; then
    REDIS_ENC_MODULE="$PWD/target/release/libredis_enc.so" \
        cargo test --test outside --no-fail-fast -- a_destroyed_key_leaves_no_copy_in_memory 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
else
    status=1
fi
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s += $1} END {print s + 0}')
echo
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
