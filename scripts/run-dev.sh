#!/usr/bin/env bash
# Starts redis-server on 127.0.0.1:6399 in the foreground with the release build of the
# module and a local development master key (created on first use, mode 0600, git-ignored).
# Never use this key for real data.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dev="$root/.dev"
key="$dev/master.key"
module="$root/target/release/libredis_enc.so"
port="${REDIS_ENC_PORT:-6399}"

mkdir -p "$dev/data"
chmod 700 "$dev"
if [ ! -f "$key" ]; then
    "$root/target/release/redis-enc" keygen --out "$key"
fi
if [ ! -f "$module" ]; then
    echo "run-dev: $module is missing; run 'make run' (it builds first)" >&2
    exit 1
fi

cat <<MSG
redis-enc development server on 127.0.0.1:$port (Ctrl-C stops it)
  connect:  redis-cli -p $port
  try:      ENC.SET patient:81 "{\"name\":\"Ada\"}" PHI EX 3600
            ENC.GET patient:81
            ENC.INSPECT patient:81
  data dir: $dev/data   master key: $key (development only)
MSG
exec redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes \
    --dir "$dev/data" --appendonly yes --appendfsync everysec \
    --loadmodule "$module" master-key "file:$key"
