#!/usr/bin/env bash
# Runs every unit and integration test and ends with one summary line, "N passed, M failed".
# The integration tests load target/debug/libredis_enc.so, so the workspace is built first; the
# memory scan runs again against the release build.
set -uo pipefail
cd "$(dirname "$0")/.."

# Formatting and lints first: a change that fails them does not land.
cargo fmt --all --check || { echo "tests: formatting differs (cargo fmt --all)"; exit 1; }
cargo clippy --workspace --all-targets -- -D warnings || exit 1
# A build without the KMS providers still compiles and links no HTTP client.
cargo clippy -p redis-enc -p redis-enc-cli --no-default-features -- -D warnings || exit 1
cargo build --workspace || exit 1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The fuzz targets build with the ordinary toolchain (cargo fuzz adds coverage on nightly), and
# each runs a short while on random input, so none can rot unnoticed.
if CARGO_TARGET_DIR="$PWD/target/fuzz" cargo build --manifest-path fuzz/Cargo.toml --bins 2>&1 | tail -1; then
    for target in $(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^redis-enc-fuzz$'); do
        if target/fuzz/debug/"$target" -runs=20000 -max_len=4096 2>&1 | tail -1 | grep -q "^Done"; then
            echo "test result: ok. 1 passed; 0 failed (fuzz target $target, 20000 random inputs)" | tee -a "$log"
        else
            echo "fuzz target $target failed" | tee -a "$log"
            echo "test result: FAILED. 0 passed; 1 failed;" >>"$log"
            status=1
        fi
    done
else
    status=1
fi
# Where a key's transient copies sit on the stack depends on optimisation: the memory scan also
# runs against the release build of the module, as it is deployed.
if cargo build --release --lib 2>&1 | tail -1; then
    REDIS_ENC_MODULE="$PWD/target/release/libredis_enc.so" \
        cargo test --test outside --no-fail-fast -- a_destroyed_key_leaves_no_copy_in_memory 2>&1 | tee -a "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
else
    status=1
fi
# The Debian package installs, loads into redis-server and is removed again (needs root).
bash scripts/test-deb.sh 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -Eo '[0-9]+ failed;' "$log" | awk '{s += $1} END {print s + 0}')
echo
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
