#!/usr/bin/env bash
# The benchmark suite: redis-enc against plain Redis, side by side in the same run, reported as
# ratios. Writes bench/RESULTS.md. Needs the release build (make bench builds it).
#
#   scripts/bench.sh [--quick]     (--quick: fewer requests, for a smoke run)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
module="$root/target/release/libredis_enc.so"
tool="$root/target/release/redis-enc"
out="$root/bench/RESULTS.md"
quick=0
[ "${1:-}" = "--quick" ] && quick=1
n_pipelined=$([ $quick -eq 1 ] && echo 20000 || echo 200000)
n_single=$([ $quick -eq 1 ] && echo 5000 || echo 50000)
reencrypt_keys=$([ $quick -eq 1 ] && echo 100000 || echo 1000000)
memory_keys=$([ $quick -eq 1 ] && echo 100000 || echo 1000000)
# shellcheck source=scripts/bench-common.sh
. "$root/scripts/bench-common.sh"

"$tool" keygen --out "$work/master.key" >/dev/null

# start NAME [extra server args...]: starts a server, sets PORT_<NAME>.
start() {
    local name="$1"; shift
    local port; port=$(free_port)
    mkdir -p "$work/$name"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$work/$name" --save "" --appendonly no \
        --logfile "$work/$name/log" "$@" &
    pids+=($!)
    until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
    printf -v "PORT_$name" '%s' "$port"
}
with_module=(--loadmodule "$module" master-key "file:$work/master.key")

# bench PORT REQUESTS PIPELINE COMMAND...: prints "rps p50 p99".
bench() {
    local port="$1" n="$2" p="$3"; shift 3
    redis-benchmark -p "$port" -n "$n" -P "$p" -c 50 -r 100000 --csv "$@" 2>/dev/null |
        awk -F'","' 'NR == 2 { gsub(/"/, "", $2); gsub(/"/, "", $5); gsub(/"/, "", $7); print $2, $5, $7 }'
}


value_of() { head -c "$1" /dev/zero | tr '\0' 'v'; }
timed() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'; }

start enc "${with_module[@]}"
port=$PORT_enc

{
    echo "# redis-enc benchmark results"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
    echo "- server: $(redis-server --version | awk '{print $3}' | sed 's/v=//'), redis-benchmark with 50 clients"
    echo "- requests per run: $n_pipelined pipelined (-P 16), $n_single unpipelined; each pair runs A B A B and the better of each is kept"
    echo
    echo "## Commands against their plain counterparts (same server, module loaded)"
    echo
    echo "| pair | value | pipeline | plain rps | enc rps | ratio | plain p50/p99 ms | enc p50/p99 ms |"
    echo "|---|---|---|---|---|---|---|---|"
} > "$out"

best() { sort -k1 -n -r | head -1; }

for size in 64 1024 16384; do
    v=$(value_of "$size")
    # Prefill keys so that reads hit.
    redis-benchmark -p "$port" -n 100000 -P 64 -r 100000 -q SET "plain:__rand_int__" "$v" >/dev/null 2>&1
    redis-benchmark -p "$port" -n 100000 -P 64 -r 100000 -q ENC.SET "enc:__rand_int__" "$v" >/dev/null 2>&1
    redis-benchmark -p "$port" -n 100000 -P 64 -r 100000 -q HSET "plainh:__rand_int__" f "$v" >/dev/null 2>&1
    redis-benchmark -p "$port" -n 100000 -P 64 -r 100000 -q ENC.HSETFIELD "ench:__rand_int__" f "$v" >/dev/null 2>&1
    for pipeline in 16 1; do
        n=$([ "$pipeline" -eq 1 ] && echo "$n_single" || echo "$n_pipelined")
        for pair in "SET|SET plain:__rand_int__ $v|ENC.SET enc:__rand_int__ $v" \
                    "GET|GET plain:__rand_int__|ENC.GET enc:__rand_int__" \
                    "HSET|HSET plainh:__rand_int__ f $v|ENC.HSETFIELD ench:__rand_int__ f $v" \
                    "HGET|HGET plainh:__rand_int__ f|ENC.HGETFIELD ench:__rand_int__ f" \
                    "MSET|MSET plain:__rand_int__ $v plain:__rand_int__ $v|ENC.MSET enc:__rand_int__ $v enc:__rand_int__ $v"; do
            IFS='|' read -r name plain enc <<< "$pair"
            a1=$(bench "$port" "$n" "$pipeline" $plain); b1=$(bench "$port" "$n" "$pipeline" $enc)
            a2=$(bench "$port" "$n" "$pipeline" $plain); b2=$(bench "$port" "$n" "$pipeline" $enc)
            a=$(printf '%s\n%s\n' "$a1" "$a2" | best); b=$(printf '%s\n%s\n' "$b1" "$b2" | best)
            read -r ar ap50 ap99 <<< "$a"; read -r br bp50 bp99 <<< "$b"
            echo "| $name / ENC.${name/HSET/HSETFIELD} | $size B | $pipeline | $ar | $br | $(ratio "$br" "$ar") | $ap50 / $ap99 | $bp50 / $bp99 |" |
                sed 's/ENC.HGET /ENC.HGETFIELD /; s/ENC\.HSETFIELDFIELD/ENC.HSETFIELD/; s/ENC\.HGET |/ENC.HGETFIELD |/' >> "$out"
        done
    done
done

# The guard's cost on plain commands for non-PHI keys: module loaded with patterns vs no module.
start plain
# The policy configs are protected; the suite switches them from loopback.
start guarded --enable-protected-configs yes "${with_module[@]}" phi-patterns "patient:*"
v=$(value_of 64)
{
    echo
    echo "## Costs of the other features"
    echo
    echo "| measurement | baseline rps | with feature rps | ratio |"
    echo "|---|---|---|---|"
} >> "$out"
# best_of3 A B: runs "bench A" and "bench B" alternately three times; prints the best rps of each.
best_of3() {
    local a="" b="" i
    for i in 1 2 3; do
        a+="$(eval "$1")"$'\n'; b+="$(eval "$2")"$'\n'
    done
    echo "$(printf '%s' "$a" | best | cut -d' ' -f1) $(printf '%s' "$b" | best | cut -d' ' -f1)"
}
for cmd in "SET bench:__rand_int__ $v" "GET bench:__rand_int__"; do
    read -r a b <<< "$(best_of3 "bench $PORT_plain $n_pipelined 16 $cmd" "bench $PORT_guarded $n_pipelined 16 $cmd")"
    echo "| plain ${cmd%% *} on non-PHI keys, guard on (phi-patterns set) vs module not loaded, -P 16 | $a | $b | $(ratio "$b" "$a") |" >> "$out"
done
# The same server with the guard switched off and on: the filter's own cost, without the
# difference between two processes.
guard() { redis-cli -p "$PORT_guarded" CONFIG SET enc.phi-guard "$1" >/dev/null; }
read -r a b <<< "$(best_of3 "guard no; bench $PORT_guarded $n_pipelined 16 SET bench:__rand_int__ $v" "guard yes; bench $PORT_guarded $n_pipelined 16 SET bench:__rand_int__ $v")"
echo "| plain SET on non-PHI keys, guard on vs off (same server), -P 16 | $a | $b | $(ratio "$b" "$a") |" >> "$out"

# The audit log's cost on PHI reads.
redis-benchmark -p "$PORT_guarded" -n 100000 -P 64 -r 100000 -q ENC.SET "patient:__rand_int__" "$v" >/dev/null 2>&1
audit() { redis-cli -p "$PORT_guarded" CONFIG SET enc.audit-log "$1" >/dev/null; }
read -r a b <<< "$(best_of3 "audit ''; bench $PORT_guarded $n_pipelined 16 ENC.GET patient:__rand_int__" "audit $work/audit.log; bench $PORT_guarded $n_pipelined 16 ENC.GET patient:__rand_int__")"
audit ""
echo "| ENC.GET on PHI keys, audit log on vs off, -P 16 | $a | $b | $(ratio "$b" "$a") |" >> "$out"

# Blind indexes: a 3-field ENC.HSETFIELD of which 2 fields are indexed, rules set vs none (same
# server); plain HSET on keys the rules cover (each one schedules the stale-token check) and on
# other keys; and ENC.TOKENIZE against plain GET.
rules() { redis-cli -p "$PORT_guarded" CONFIG SET enc.blind-indexes "$1" >/dev/null; }
indexed="doc:* mrn 24,doc:* patient_name 20"
write3="ENC.HSETFIELD doc:__rand_int__ mrn MRN-0000042 patient_name Ada_Lovelace note $v"
read -r a b <<< "$(best_of3 "rules ''; bench $PORT_guarded $n_pipelined 16 $write3" "rules '$indexed'; bench $PORT_guarded $n_pipelined 16 $write3")"
echo "| ENC.HSETFIELD of 3 fields (64 B note), 2 with blind indexes vs none, -P 16 | $a | $b | $(ratio "$b" "$a") |" >> "$out"
for key in doc other; do
    hset="HSET $key:__rand_int__ tenant north"
    read -r a b <<< "$(best_of3 "rules ''; bench $PORT_guarded $n_pipelined 16 $hset" "rules '$indexed'; bench $PORT_guarded $n_pipelined 16 $hset")"
    echo "| plain HSET on keys the rules $([ $key = doc ] && echo cover || echo do not cover), blind-index rules set vs none, -P 16 | $a | $b | $(ratio "$b" "$a") |" >> "$out"
done
rules ""
read -r a b <<< "$(best_of3 "bench $PORT_guarded $n_pipelined 16 GET bench:__rand_int__" "bench $PORT_guarded $n_pipelined 16 ENC.TOKENIZE patient __rand_int__")"
echo "| ENC.TOKENIZE (AES-SIV) vs plain GET of 64 B, -P 16 | $a | $b | $(ratio "$b" "$a") |" >> "$out"

# Re-encryption rate over many keys, and the p99 of a concurrent load with and without it.
start reenc "${with_module[@]}"
redis-benchmark -p "$PORT_reenc" -n "$reencrypt_keys" -P 64 -r 100000000 -q ENC.SET "r:__rand_int__" "$v" >/dev/null 2>&1
keys=$(redis-cli -p "$PORT_reenc" DBSIZE)
p99() { bench "$PORT_reenc" "$n_single" 1 GET "r:__rand_int__" | cut -d' ' -f3; }
# The load's p99 is measured twice without the job (before it and after it) and twice during it.
without1=$(p99)
redis-cli -p "$PORT_reenc" ENC.KEYRING ROTATE >/dev/null
redis-cli -p "$PORT_reenc" ENC.REENCRYPT START >/dev/null
during1=$(p99); during2=$(p99)
until [ "$(redis-cli -p "$PORT_reenc" ENC.REENCRYPT STATUS | sed -n 2p)" = "done" ]; do sleep 0.1; done
without2=$(p99)
resealed=$(redis-cli -p "$PORT_reenc" ENC.REENCRYPT STATUS | sed -n 8p)
elapsed_ms=$(redis-cli -p "$PORT_reenc" ENC.REENCRYPT STATUS | sed -n 12p)
mean2() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (a + b) / 2 }'; }
p99_without=$(mean2 "$without1" "$without2"); p99_during=$(mean2 "$during1" "$during2")
{
    echo
    echo "## Re-encryption"
    echo
    echo "- keys: $keys; values re-sealed: $resealed in $elapsed_ms ms: $(awk -v k="$resealed" -v ms="$elapsed_ms" 'BEGIN { printf "%.0f", k / (ms / 1000) }') keys/s (with the load below running for part of the time)"
    echo "- p99 of a concurrent unpipelined GET load (50 clients): without the job $without1 ms before it and $without2 ms after it, during it $during1 ms and $during2 ms; means $p99_without / $p99_during ms ($(ratio "$p99_during" "$p99_without")x)"
} >> "$out"

# Memory: 64-byte values, sealed vs plain.
start memplain
start memenc "${with_module[@]}" phi-patterns "m:*"
redis-benchmark -p "$PORT_memplain" -n "$memory_keys" -P 64 -r 100000000000 -q SET "m:__rand_int__" "$v" >/dev/null 2>&1
redis-benchmark -p "$PORT_memenc" -n "$memory_keys" -P 64 -r 100000000000 -q ENC.SET "m:__rand_int__" "$v" >/dev/null 2>&1
mp=$(redis-cli -p "$PORT_memplain" INFO memory | grep '^used_memory:' | cut -d: -f2 | tr -d '\r')
me=$(redis-cli -p "$PORT_memenc" INFO memory | grep '^used_memory:' | cut -d: -f2 | tr -d '\r')
kp=$(redis-cli -p "$PORT_memplain" DBSIZE); ke=$(redis-cli -p "$PORT_memenc" DBSIZE)
{
    echo
    echo "## Memory (64-byte values)"
    echo
    echo "- envelope: 48 bytes over the plaintext (64 B value -> 112 B stored)"
    echo "- used_memory: $mp bytes for $kp plain values, $me bytes for $ke sealed values ($(ratio "$me" "$mp")x); $(awk -v a="$me" -v b="$mp" -v n="$ke" 'BEGIN { printf "%.0f", (a - b) / n }') bytes more per value"
} >> "$out"

# The evidence report over the sealed keys above (all PHI: enc.phi-patterns m:*), against a plain
# SCAN loop (COUNT 1000, redis-py) over the same keyspace; the server's own time from
# INFO commandstats (the report's SCAN steps run inside ENC.COVERAGE and count there too).
scan_loop() {
    python3 -c 'import sys, redis
r = redis.Redis(port=int(sys.argv[1])); c = 0
while True:
    c, _ = r.scan(c, count=1000)
    if c == 0: break' "$PORT_memenc"
}
usec() { redis-cli -p "$PORT_memenc" INFO commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:.*,usec=\([0-9]*\),.*/\1/p"; }
redis-cli -p "$PORT_memenc" CONFIG RESETSTAT >/dev/null
ts=$(timed scan_loop)
scan_only=$(usec scan)
redis-cli -p "$PORT_memenc" CONFIG RESETSTAT >/dev/null
tp=$(timed "$tool" report --url "redis://127.0.0.1:$PORT_memenc" --json "$work/report.json")
coverage=$(usec enc.coverage); inner_scan=$(usec scan)
ts2=$(timed scan_loop)
tp2=$(timed "$tool" report --url "redis://127.0.0.1:$PORT_memenc" --json "$work/report.json")
scanned=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([c for c in d["checks"] if c["id"]=="phi-coverage"][0]["figures"]["keys_scanned"])' "$work/report.json")
{
    echo
    echo "## Evidence report ($scanned keys)"
    echo
    echo "- redis-enc report, wall time: $tp s, then $tp2 s; a SCAN loop over the same keys (COUNT 1000, redis-py): $ts s, then $ts2 s (ratio $(ratio "$tp" "$ts"), then $(ratio "$tp2" "$ts2"))"
    echo "- server time: ENC.COVERAGE $((coverage / 1000)) ms in all, of which its SCAN steps $((inner_scan / 1000)) ms ($(awk -v a="$inner_scan" -v b="$coverage" 'BEGIN { printf "%.0f", 100 * a / b }') %); the plain SCAN loop $((scan_only / 1000)) ms"
} >> "$out"

# Backup and restore throughput on an RDB of about 1 GB (smaller with --quick).
start big --enable-debug-command yes --rdbcompression no
populate=$([ $quick -eq 1 ] && echo 100000 || echo 1000000)
redis-cli -p "$PORT_big" DEBUG POPULATE "$populate" key 1000 >/dev/null
redis-cli -p "$PORT_big" SAVE >/dev/null
rdb="$work/big/dump.rdb"
size=$(stat -c %s "$rdb")
tb=$(timed "$tool" backup --rdb "$rdb" --master-key "file:$work/master.key" --out "$work/big.renc")
tv=$(timed "$tool" verify --in "$work/big.renc" --master-key "file:$work/master.key")
tr=$(timed "$tool" restore --in "$work/big.renc" --master-key "file:$work/master.key" --out "$work/restored.rdb")
tc=$(timed cp "$rdb" "$work/copy.rdb")
mbps() { awk -v b="$size" -v s="$1" 'BEGIN { if (s > 0) printf "%.0f", b / 1e6 / s; else print "n/a" }'; }
{
    echo
    echo "## Backups (RDB of $size bytes)"
    echo
    echo "| step | seconds | MB/s |"
    echo "|---|---|---|"
    echo "| backup --rdb | $tb | $(mbps "$tb") |"
    echo "| verify | $tv | $(mbps "$tv") |"
    echo "| restore | $tr | $(mbps "$tr") |"
    echo "| plain cp of the same RDB (the disk's own speed) | $tc | $(mbps "$tc") |"
} >> "$out"

# Through a cluster client, on a 3-primary cluster.
bash "$root/scripts/bench-cluster.sh" $([ $quick -eq 1 ] && echo --quick) "$out"

# Seal/open against the raw AEAD (Criterion).
{
    echo
    echo "## Seal and open against the raw primitive"
    echo
    echo "See \`cargo bench -p redis-enc-core\` (Criterion); its summary:"
    echo
    echo '```'
} >> "$out"
(cd "$root" && cargo bench -p redis-enc-core --bench seal -- --output-format bencher 2>/dev/null) |
    awk '/^test envelope\// {
            split($2, p, "/"); t[p[2] "/" p[3]] = $5; print "test " $2 ": " $5 " ns (+/- " $8
         }
         END {
            print ""
            for (s = 64; s <= 16384; s *= 16) {
                printf "%5d B: seal %.2fx raw-encrypt, open %.2fx raw-decrypt, open-uncached %.2fx raw-decrypt\n", s,
                    t["seal/" s] / t["raw-encrypt/" s], t["open/" s] / t["raw-decrypt/" s],
                    t["open-uncached/" s] / t["raw-decrypt/" s]
            }
         }' >> "$out" || true
echo '```' >> "$out"
echo "wrote $out"
