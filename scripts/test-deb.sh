#!/usr/bin/env bash
# Installs the Debian package (scripts/deb.sh) with dpkg -i, starts redis-server with a
# configuration that loads the installed module, round-trips a value, and removes the package.
# Needs root and dpkg; leaves alone a redis-enc package that was installed before it ran.
# Prints one "test result:" line, as cargo does.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
    if [ -n "${REDIS_ENC_REQUIRE_ALL:-}" ]; then
        echo "package test: $1"
        echo "test result: FAILED. 0 passed; 1 failed; (package install)"
        exit 1
    fi
    echo "skipped: package test: $1"
    exit 0
}
[ "$(id -u)" -eq 0 ] || skip "installing a package needs root"
command -v dpkg-deb >/dev/null 2>&1 || skip "dpkg-deb is missing (not a Debian or Ubuntu system)"
if dpkg -s redis-enc >/dev/null 2>&1; then
    skip "a redis-enc package is already installed here; it is left as it is"
fi

deb="$(bash scripts/deb.sh "$@" | tail -1)"
work="$(mktemp -d)"
pid=""
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    dpkg -r redis-enc >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "package test: $1"
    [ ! -f "$work/log" ] || tail -5 "$work/log"
    echo "test result: FAILED. 0 passed; 1 failed; (package install)"
    exit 1
}

dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb failed"
for f in /usr/lib/redis/modules/libredis_enc.so /usr/bin/redis-enc \
         /usr/share/doc/redis-enc/examples/redis.conf.example /usr/share/doc/redis-enc/SECURITY.md; do
    [ -f "$f" ] || fail "$f is not installed"
done
/usr/bin/redis-enc keygen --out "$work/master.key" >/dev/null || fail "redis-enc keygen failed"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$work/redis.conf" <<CONF
port $port
bind 127.0.0.1
dir $work
save ""
appendonly no
logfile $work/log
loadmodule /usr/lib/redis/modules/libredis_enc.so master-key file:$work/master.key
CONF
redis-server "$work/redis.conf" &
pid=$!
for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
done
cli() { redis-cli -p "$port" "$@"; }
[ "$(cli INFO server | tr -d '\r' | sed -n 's/^process_id://p')" = "$pid" ] || fail "the server did not start"
[ "$(cli ENC.SET patient:1 'from the package')" = "OK" ] || fail "ENC.SET failed"
[ "$(cli ENC.GET patient:1)" = "from the package" ] || fail "ENC.GET did not return the value"
[ "$(cli GET patient:1 | tr -d '\0')" != "from the package" ] || fail "the value is stored in clear"
cli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
wait "$pid" 2>/dev/null || true
pid=""
dpkg -r redis-enc >/dev/null || fail "dpkg -r failed"
[ ! -e /usr/lib/redis/modules/libredis_enc.so ] && [ ! -e /usr/bin/redis-enc ] || fail "files remain after dpkg -r"
echo "test result: ok. 1 passed; 0 failed; (package $(basename "$deb"): installed, loaded, round trip, removed)"
