#!/usr/bin/env bash
# What a fleet's Redis costs per Allocate: `floe serve` alone against `floe serve
# --redis` (users and quotas in a local redis-server), measured the same way in the
# same run, alternating which goes first, REPS times. The load is turn_load's allocs
# mode (ALLOC_WORKERS workers looping Allocate, 401 + authenticated, then
# Refresh(LIFETIME 0)); with Redis each Allocate waits for one quota script and each
# deletion sends one (pipelined with whatever else is queued).
# Prints every run as JSON (plus the CPU seconds of floe serve and of redis-server
# during it, from /proc), then the medians.
#
# Usage: benches/fleet_allocs.sh   (env: REPS=5 ALLOC_WORKERS=4 ALLOC_SECS=2 OUT=/tmp/..jsonl)
set -euo pipefail

REPS=${REPS:-5}
ALLOC_WORKERS=${ALLOC_WORKERS:-4}
ALLOC_SECS=${ALLOC_SECS:-2}
OUT=${OUT:-$(mktemp /tmp/fleet_allocs.XXXXXX.jsonl)}

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
(cd "$root" && cargo build --release -q -p floe-cli -p floe-benches --bin floe --bin turn_load)
floe_bin=$target/release/floe
load_bin=$target/release/turn_load

work=$(mktemp -d /tmp/fleet_allocs.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
for _ in $(seq 50); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
done
"$floe_bin" user-key --user alice --realm floe --password wonderland |
    while read -r cmd key value; do redis-cli -p "$redis_port" "$cmd" "$key" "$value" >/dev/null; done

start_floe() { # name extra-args...
    local name=$1
    shift
    "$floe_bin" serve --listen 127.0.0.1:0 --relay-ip 127.0.0.1 --drain-seconds 0 \
        --min-port 2000 --max-port 31999 "$@" >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    eval "${name}_pid=$!"
    for _ in $(seq 100); do
        [ -s "$work/$name.out" ] && break
        sleep 0.1
    done
    eval "${name}_addr=$(head -1 "$work/$name.out" | jq -r '.listening.udp[0]')"
}
start_floe alone --user alice:wonderland
start_floe fleet --redis "redis://127.0.0.1:$redis_port/0"
echo "floe serve alone at $alone_addr, with Redis at $fleet_addr (redis-server :$redis_port)" >&2
echo "results: $OUT" >&2
: >"$OUT"

cpu_secs() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

run() { # name addr pid
    local name=$1 addr=$2 pid=$3 before rbefore line
    before=$(cpu_secs "$pid")
    rbefore=$(cpu_secs "$redis_pid")
    line=$("$load_bin" --server "$addr" --label "$name" allocs --concurrency "$ALLOC_WORKERS" --secs "$ALLOC_SECS" --warmup 0.2)
    echo "$line" | jq -c \
        --argjson cpu "$(awk -v a="$before" -v b="$(cpu_secs "$pid")" 'BEGIN { print b - a }')" \
        --argjson rcpu "$(awk -v a="$rbefore" -v b="$(cpu_secs "$redis_pid")" 'BEGIN { print b - a }')" \
        '. + {server_cpu_s: $cpu, redis_cpu_s: $rcpu}' | tee -a "$OUT"
}

for rep in $(seq "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then order=(alone fleet); else order=(fleet alone); fi
    for name in "${order[@]}"; do
        addr_var=${name}_addr pid_var=${name}_pid
        sleep 1
        run "$name" "${!addr_var}" "${!pid_var}"
    done
done

python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(name, f):
    return statistics.median(f(r) for r in rows if r["label"] == name)
rate = {n: med(n, lambda r: r["per_sec"]) for n in ("alone", "fleet")}
cpu = {n: med(n, lambda r: r["server_cpu_s"] * 1e6 / r["cycles"]) for n in ("alone", "fleet")}
rcpu = med("fleet", lambda r: r["redis_cpu_s"] * 1e6 / r["cycles"])
print()
print("| floe serve | allocations/s | floe CPU µs per allocation | redis-server CPU µs per allocation |")
print("|---|---|---|---|")
print(f'| alone | {rate["alone"]:,.0f} | {cpu["alone"]:.1f} | - |')
print(f'| --redis | {rate["fleet"]:,.0f} | {cpu["fleet"]:.1f} | {rcpu:.1f} |')
print(f'\nwith Redis / alone: {rate["fleet"] / rate["alone"]:.2f}x the allocations/s, '
      f'{cpu["fleet"] / cpu["alone"]:.2f}x floe CPU per allocation')
PY
