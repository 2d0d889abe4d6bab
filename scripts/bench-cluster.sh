#!/usr/bin/env bash
# Throughput through a cluster client: ENC.SET/ENC.GET against plain SET/GET on the same
# 3-primary Redis Cluster (redis-benchmark --cluster), and the module's cluster-bus messages
# during the run (keyring synchronisation must cost nothing per command). Appends to the file
# given (bench/RESULTS.md), or prints.
#
#   scripts/bench-cluster.sh [--quick] [OUT]
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
module="$root/target/release/libredis_enc.so"
tool="$root/target/release/redis-enc"
quick=0
[ "${1:-}" = "--quick" ] && { quick=1; shift; }
out="${1:-/dev/stdout}"
n=$([ $quick -eq 1 ] && echo 50000 || echo 400000)
# shellcheck source=scripts/bench-common.sh
. "$root/scripts/bench-common.sh"

"$tool" keygen --out "$work/master.key" >/dev/null
ports=()
for i in 1 2 3; do
    port=$(free_port)
    bus=$(free_port)
    mkdir -p "$work/$i"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$work/$i" --save "" --appendonly no \
        --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port "$bus" \
        --logfile "$work/$i/log" --loadmodule "$module" master-key "file:$work/master.key" &
    pids+=($!)
    until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
    ports+=("$port")
done
redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null
until redis-cli -p "${ports[0]}" cluster info | grep -q cluster_state:ok; do sleep 0.1; done
sleep 2

# bench COMMAND...: prints "rps p50 p99" through a cluster client. In cluster mode
# redis-benchmark routes a command line of its own by the "{tag}" in its key.
bench() {
    redis-benchmark --cluster -p "${ports[0]}" -n "$n" -P 16 -c 50 -r 100000 --csv "$@" 2>/dev/null |
        awk -F'","' '/^"/ && !/^"test"/ { gsub(/"/, "", $2); gsub(/"/, "", $5); gsub(/"/, "", $7); print $2, $5, $7; exit }'
}
module_messages() {
    local sum=0
    for p in "${ports[@]}"; do
        local m
        m=$(redis-cli -p "$p" cluster info | tr -d '\r' | awk -F: '$1 == "cluster_stats_messages_module_sent" { print $2 }')
        sum=$((sum + ${m:-0}))
    done
    echo "$sum"
}

v=$(head -c 64 /dev/zero | tr '\0' 'v')
start_messages=$(module_messages)
start_time=$(date +%s.%N)
read -r sr sp50 sp99 <<<"$(bench SET "k:{tag}:__rand_int__" "$v")"
read -r er ep50 ep99 <<<"$(bench ENC.SET "e:{tag}:__rand_int__" "$v")"
read -r gr gp50 gp99 <<<"$(bench GET "k:{tag}:__rand_int__")"
read -r ogr ogp50 ogp99 <<<"$(bench ENC.GET "e:{tag}:__rand_int__")"
end_time=$(date +%s.%N)
messages=$(( $(module_messages) - start_messages ))
seconds=$(awk -v a="$start_time" -v b="$end_time" 'BEGIN { printf "%.1f", b - a }')
{
    echo
    echo "## Through a cluster client (3 primaries, redis-benchmark --cluster, 64-byte values, -P 16, 50 clients, $n requests each)"
    echo
    echo "| pair | plain rps | enc rps | ratio | plain p50/p99 ms | enc p50/p99 ms |"
    echo "|---|---|---|---|---|---|"
    echo "| SET / ENC.SET | $sr | $er | $(ratio "$er" "$sr") | $sp50 / $sp99 | $ep50 / $ep99 |"
    echo "| GET / ENC.GET | $gr | $ogr | $(ratio "$ogr" "$gr") | $gp50 / $gp99 | $ogp50 / $ogp99 |"
    echo
    echo "- keyring synchronisation: $messages module messages sent on the cluster bus during the four runs (${seconds} s, $((4 * n)) commands): $(awk -v m="$messages" -v s="$seconds" 'BEGIN { printf "%.1f", m / s }') per second, what each node's once-a-second epoch and seal-count messages to its two peers make (3 x 2 x 2 = 12 per second), whatever the command rate; none is sent per command"
} >> "$out"
