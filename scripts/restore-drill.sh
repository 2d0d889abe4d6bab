#!/usr/bin/env bash
# Restore drill: back up a running server, restore the backup into a private server, compare
# DBSIZE and a sample of ENC.GET values with the source, and print how long each step took (the
# recovery-time figure an auditor asks for).
#
#   scripts/restore-drill.sh --url redis://[user:password@]127.0.0.1:6399 --master-key file:.dev/master.key [--sample 100] [--record FILE]
#
# With --record, the drill appends a signed record of its result and timings to FILE (also when
# it fails), for `redis-enc report --records FILE`; the backup and its verification are recorded
# there too.
#
# The restored server holds production data under the production master key, so it listens on
# no TCP port: only on a unix socket in a private directory (mode 0700), with the source's enc.*
# PHI policy and an audit log of its own. The drill checks that the process answering on that
# socket is the one it started, and on every exit path (an error, Ctrl-C, SIGTERM, SIGHUP) it
# stops that server and removes the directory, the plaintext RDB included. While it runs, the
# plaintext RDB exists only in that directory.
#
# Needs redis-server, redis-cli and the release build (make release).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
url="" master_key="" sample=100 record=""
tool="${REDIS_ENC:-$root/target/release/redis-enc}"
module="${REDIS_ENC_MODULE:-$root/target/release/libredis_enc.so}"
while [ $# -gt 0 ]; do
    case "$1" in
        --url) url="$2"; shift 2 ;;
        --master-key) master_key="$2"; shift 2 ;;
        --sample) sample="$2"; shift 2 ;;
        --record) record="$2"; shift 2 ;;
        *) echo "restore-drill: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$url" ] && [ -n "$master_key" ] || { echo "usage: $0 --url redis://[user:password@]HOST:PORT --master-key URI [--sample N] [--record FILE]" >&2; exit 2; }
[ -x "$tool" ] && [ -f "$module" ] || { echo "restore-drill: build first (make release)" >&2; exit 2; }
tool="$(realpath "$tool")"; module="$(realpath "$module")"

work="$(mktemp -d)"
chmod 700 "$work"
socket="$work/drill.sock"
drill_pid=""
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
started=$(now)
recorded=0 detail='{}'
# Records the drill's result once: ok from the end of the drill, failed from any other exit.
record_drill() {
    [ -n "$record" ] && [ "$recorded" -eq 0 ] || return 0
    recorded=1
    "$tool" record --record "$record" --master-key "$master_key" --kind restore-drill \
        --result "$1" --seconds "$(took "$started" "$(now)")" --detail "$detail" >/dev/null
}
cleanup() {
    record_drill failed || true
    if [ -n "$drill_pid" ]; then
        kill "$drill_pid" 2>/dev/null || true
        wait "$drill_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

src() { redis-cli -u "$url" --no-auth-warning "$@"; }
drill() { redis-cli -s "$socket" "$@"; }
records=()
[ -z "$record" ] || records=(--record "$record")

# The drill server's configuration: the module with the source's enc.* PHI policy (its audit
# log is the drill's own). The source must let the drill read it (CONFIG GET).
quote() { local v="${1//\\/\\\\}"; printf '"%s"' "${v//\"/\\\"}"; }
settings="$(src CONFIG GET 'enc.*')" || { echo "restore-drill: cannot read the source's enc.* configs" >&2; exit 1; }
case "$settings" in
    ""|enc.*) ;;
    *) echo "restore-drill: cannot read the source's enc.* configs: $settings" >&2; exit 1 ;;
esac
{
    echo "loadmodule $(quote "$module") master-key $(quote "$master_key") audit-log $(quote "$work/drill-audit.log")"
    while IFS= read -r name && IFS= read -r value; do
        case "$name" in
            enc.audit-log) ;;
            enc.*) echo "$name $(quote "$value")" ;;
        esac
    done <<< "$settings"
} > "$work/drill.conf"

t0=$(now)
"$tool" backup --url "$url" --master-key "$master_key" --out "$work/backup.renc" "${records[@]}" >/dev/null
t1=$(now)
"$tool" verify --in "$work/backup.renc" --master-key "$master_key" "${records[@]}" >/dev/null
t2=$(now)
mkdir -m 700 "$work/data"
"$tool" restore --in "$work/backup.renc" --master-key "$master_key" --out "$work/data/dump.rdb" >/dev/null
t3=$(now)
redis-server "$work/drill.conf" --port 0 --unixsocket "$socket" --unixsocketperm 700 \
    --dir "$work/data" --save "" --appendonly no --logfile "$work/drill.log" &
drill_pid=$!
until [ "$(drill INFO server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" = "$drill_pid" ]; do
    kill -0 "$drill_pid" 2>/dev/null || { echo "restore-drill: the restored server did not start:" >&2; cat "$work/drill.log" >&2; exit 1; }
    sleep 0.05
done
t4=$(now)

src_size=$(src DBSIZE)
dst_size=$(drill DBSIZE)
checked=0 mismatched=0
while read -r key; do
    [ -n "$key" ] || continue
    a=$(src ENC.GET "$key" 2>&1 | sha256sum)
    b=$(drill ENC.GET "$key" 2>&1 | sha256sum)
    checked=$((checked + 1))
    [ "$a" = "$b" ] || mismatched=$((mismatched + 1))
done < <(src --scan | head -n "$sample")
t5=$(now)

echo "backup       $(took "$t0" "$t1") s   ($(stat -c %s "$work/backup.renc") bytes)"
echo "verify       $(took "$t1" "$t2") s"
echo "restore      $(took "$t2" "$t3") s"
echo "server up    $(took "$t3" "$t4") s   (loading the restored RDB)"
echo "compare      $(took "$t4" "$t5") s   (DBSIZE $src_size vs $dst_size; $checked keys sampled, $mismatched differ)"
echo "recovery     $(took "$t1" "$t4") s   (verify + restore + start)"
detail="{\"backup_s\":$(took "$t0" "$t1"),\"verify_s\":$(took "$t1" "$t2"),\"restore_s\":$(took "$t2" "$t3"),\"start_s\":$(took "$t3" "$t4"),\"recovery_s\":$(took "$t1" "$t4"),\"keys_source\":$src_size,\"keys_restored\":$dst_size,\"sampled\":$checked,\"differing\":$mismatched}"
if [ "$src_size" != "$dst_size" ] || [ "$mismatched" -ne 0 ]; then
    echo "restore-drill: FAILED" >&2
    exit 1
fi
record_drill ok
echo "restore-drill: OK"
