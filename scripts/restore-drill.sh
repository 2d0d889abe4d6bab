#!/usr/bin/env bash
# Restore drill: back up a running server, restore the backup into a fresh server on another
# port, compare DBSIZE and a sample of ENC.GET values with the source, and print how long each
# step took (the recovery-time figure an auditor asks for).
#
#   scripts/restore-drill.sh --url redis://127.0.0.1:6399 --master-key file:.dev/master.key [--sample 100]
#
# Needs redis-server, redis-cli and the release build (make release).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
url="" master_key="" sample=100 port="${DRILL_PORT:-6499}"
tool="${REDIS_ENC:-$root/target/release/redis-enc}"
module="${REDIS_ENC_MODULE:-$root/target/release/libredis_enc.so}"
while [ $# -gt 0 ]; do
    case "$1" in
        --url) url="$2"; shift 2 ;;
        --master-key) master_key="$2"; shift 2 ;;
        --sample) sample="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        *) echo "restore-drill: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$url" ] && [ -n "$master_key" ] || { echo "usage: $0 --url redis://HOST:PORT --master-key URI [--sample N] [--port P]" >&2; exit 2; }
[ -x "$tool" ] && [ -f "$module" ] || { echo "restore-drill: build first (make release)" >&2; exit 2; }
tool="$(realpath "$tool")"; module="$(realpath "$module")"

hostport="${url#redis://}"; hostport="${hostport%/}"; hostport="${hostport##*@}"
src_host="${hostport%:*}"; src_port="${hostport##*:}"
work="$(mktemp -d)"
drill_pid=""
cleanup() {
    [ -n "$drill_pid" ] && kill "$drill_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

t0=$(now)
"$tool" backup --url "$url" --master-key "$master_key" --out "$work/backup.renc" >/dev/null
t1=$(now)
"$tool" verify --in "$work/backup.renc" --master-key "$master_key" >/dev/null
t2=$(now)
mkdir -p "$work/data"
"$tool" restore --in "$work/backup.renc" --master-key "$master_key" --out "$work/data/dump.rdb" >/dev/null
t3=$(now)
redis-server --port "$port" --bind 127.0.0.1 --dir "$work/data" --save "" --appendonly no \
    --logfile "$work/drill.log" --loadmodule "$module" master-key "$master_key" &
drill_pid=$!
until redis-cli -p "$port" ping >/dev/null 2>&1; do
    kill -0 "$drill_pid" 2>/dev/null || { echo "restore-drill: the restored server did not start; see $work/drill.log" >&2; cat "$work/drill.log" >&2; exit 1; }
    sleep 0.05
done
t4=$(now)

src_size=$(redis-cli -h "$src_host" -p "$src_port" DBSIZE)
dst_size=$(redis-cli -p "$port" DBSIZE)
checked=0 mismatched=0
while read -r key; do
    [ -n "$key" ] || continue
    a=$(redis-cli -h "$src_host" -p "$src_port" ENC.GET "$key" 2>&1 | sha256sum)
    b=$(redis-cli -p "$port" ENC.GET "$key" 2>&1 | sha256sum)
    checked=$((checked + 1))
    [ "$a" = "$b" ] || mismatched=$((mismatched + 1))
done < <(redis-cli -h "$src_host" -p "$src_port" --scan | head -n "$sample")
t5=$(now)

echo "backup       $(took "$t0" "$t1") s   ($(stat -c %s "$work/backup.renc") bytes)"
echo "verify       $(took "$t1" "$t2") s"
echo "restore      $(took "$t2" "$t3") s"
echo "server up    $(took "$t3" "$t4") s   (loading the restored RDB)"
echo "compare      $(took "$t4" "$t5") s   (DBSIZE $src_size vs $dst_size; $checked keys sampled, $mismatched differ)"
echo "recovery     $(took "$t1" "$t4") s   (verify + restore + start)"
if [ "$src_size" != "$dst_size" ] || [ "$mismatched" -ne 0 ]; then
    echo "restore-drill: FAILED" >&2
    exit 1
fi
echo "restore-drill: OK"
