#!/usr/bin/env bash
# Runs every unit and integration test and ends with one summary line, "N passed, M failed".
# The integration tests load target/debug/libredis_enc.so, so the workspace is built first.
set -uo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace || exit 1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s += $1} END {print s + 0}')
echo
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
