#!/usr/bin/env bash
# TURN server benchmark: `floe serve` vs coturn, measured the same way in the same run.
#
# Builds `floe` and `turn_load` (benches/src/bin/turn_load.rs) in release, starts both
# servers on free loopback ports, and runs the same loads against each, alternating which
# goes first, REPS times:
#   - relayed packets/s: CLIENTS allocations, one channel each to a local UDP peer,
#     100 B and 1200 B payloads, client -> peer ("up"), plus 100 B peer -> client ("down"),
#     as fast as a window of WINDOW packets per allocation allows (loss is counted);
#   - server CPU per relayed packet at a fixed offered load: RATE packets/s over the
#     CLIENTS allocations, 100 B up (both servers carry it without loss; batching
#     helps less than at saturation, since fewer datagrams wait per wakeup);
#   - allocations/s: ALLOC_WORKERS workers looping Allocate (401 + authenticated) and
#     Refresh(LIFETIME 0).
# Prints every run as JSON (plus the server's CPU seconds during it, from /proc), then a
# table of medians, with server CPU time per relayed packet / per allocation: on a small
# shared machine the load generator and the server compete for the same cores, so CPU
# per packet is the steadier measure of the server's cost. Both servers are stopped on
# exit.
#
# Usage: benches/turn_vs_coturn.sh   (env: REPS=3 SECS=3 CLIENTS=4 WINDOW=64 RATE=50000
#                                     ALLOC_WORKERS=4 ALLOC_SECS=1 PIN=0 OUT=/tmp/..jsonl)
# PIN=1 runs the servers on CPU 0 and the load generator on CPU 1 (taskset).
# FLOE_BIN=path measures another floe binary (e.g. an older build); FLOE_ARGS adds
# `floe serve` flags (e.g. "--threads 2").
set -euo pipefail

REPS=${REPS:-3}
SECS=${SECS:-3}
CLIENTS=${CLIENTS:-4}
WINDOW=${WINDOW:-64}
RATE=${RATE:-50000}
ALLOC_WORKERS=${ALLOC_WORKERS:-4}
# coturn keeps a deleted allocation's relay port for about a second, so a long
# allocation run measures its port range, not its speed: both servers get 15 000 ports
# and the allocation runs are short.
ALLOC_SECS=${ALLOC_SECS:-1}
PIN=${PIN:-0}
OUT=${OUT:-$(mktemp /tmp/turn_vs_coturn.XXXXXX.jsonl)}

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
command -v turnserver >/dev/null || { echo "coturn (turnserver) is not installed" >&2; exit 1; }

(cd "$root" && cargo build --release -q -p floe-cli -p floe-benches --bin floe --bin turn_load)
floe_bin=${FLOE_BIN:-$target/release/floe}
load_bin=$target/release/turn_load

server_cpu=()
load_cpu=()
if [ "$PIN" = 1 ]; then
    server_cpu=(taskset -c 0)
    load_cpu=(taskset -c 1)
fi

work=$(mktemp -d /tmp/turn_vs_coturn.XXXXXX)
# shellcheck source=benches/servers.sh
. "$root/benches/servers.sh"
trap 'stop_servers; rm -rf "$work"' EXIT INT TERM
start_servers
echo "floe serve at $floe_addr (pid $floe_pid), coturn $(turnserver --version 2>/dev/null | head -1) at $coturn_addr (pid $coturn_pid)" >&2
echo "results: $OUT" >&2
: >"$OUT"

# CPU seconds (user + system, all threads) a process has used so far.
cpu_secs() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

run() { # name addr pid args...
    local name=$1 addr=$2 pid=$3 before line
    shift 3
    before=$(cpu_secs "$pid")
    line=$("${load_cpu[@]}" "$load_bin" --server "$addr" --label "$name" "$@")
    echo "$line" | jq -c --argjson cpu "$(awk -v a="$before" -v b="$(cpu_secs "$pid")" 'BEGIN { print b - a }')" \
        '. + {server_cpu_s: $cpu}' | tee -a "$OUT"
}

scenarios=(
    "packets --clients $CLIENTS --window $WINDOW --size 100 --secs $SECS"
    "packets --clients $CLIENTS --window $WINDOW --size 1200 --secs $SECS"
    "packets --clients $CLIENTS --window $WINDOW --size 100 --secs $SECS --direction down"
    "packets --clients $CLIENTS --window $WINDOW --size 100 --secs $SECS --rate $RATE"
    "allocs --concurrency $ALLOC_WORKERS --secs $ALLOC_SECS --warmup 0.2"
)
for rep in $(seq "$REPS"); do
    if [ $((rep % 2)) = 1 ]; then order=(floe coturn); else order=(coturn floe); fi
    for sc in "${scenarios[@]}"; do
        for name in "${order[@]}"; do
            if [ "$name" = floe ]; then
                addr=$floe_addr pid=$floe_pid
            else
                addr=$coturn_addr pid=$coturn_pid
            fi
            # Let coturn return the previous run's relay ports.
            case $sc in allocs*) sleep 2 ;; esac
            # shellcheck disable=SC2086
            run "$name" "$addr" "$pid" $sc
        done
    done
done

python3 - "$OUT" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def key(r):
    if r["mode"] == "packets":
        rate = f' at {r["rate"]:,} pps offered' if r.get("rate") else ""
        return f'packets {r["direction"]} {r["size"]} B{rate}'
    return f'allocs x{r["concurrency"]}'
keys = list(dict.fromkeys(key(r) for r in rows))
def med(k, name, field):
    v = [r[field] for r in rows if key(r) == k and r["label"] == name]
    return statistics.median(v) if v else float("nan")
def cpu_us(k, name):
    # Server CPU time per relayed packet or per allocation cycle, over the whole run.
    v = [r["server_cpu_s"] * 1e6 / (r["received"] if r["mode"] == "packets" else r["cycles"])
         for r in rows if key(r) == k and r["label"] == name and r.get("received", r.get("cycles"))]
    return statistics.median(v) if v else float("nan")
print()
print("| load | floe serve | coturn | floe / coturn | loss (failures) floe / coturn | server CPU µs per packet or allocation, floe / coturn |")
print("|---|---|---|---|---|---|")
for k in keys:
    field = "pps" if k.startswith("packets") else "per_sec"
    unit = "packets/s" if field == "pps" else "allocs/s"
    f, c = med(k, "floe", field), med(k, "coturn", field)
    if field == "pps":
        loss = f'{med(k, "floe", "loss_pct"):.2f} % / {med(k, "coturn", "loss_pct"):.2f} %'
    else:
        loss = f'{med(k, "floe", "failures"):.0f} / {med(k, "coturn", "failures"):.0f} failed'
    print(f"| {k} | {f:,.0f} {unit} | {c:,.0f} {unit} | {f / c:.2f} | {loss} | {cpu_us(k, 'floe'):.2f} / {cpu_us(k, 'coturn'):.2f} |")
n = len({(r["label"]) for r in rows})
print(f"\nmedian of {len(rows) // max(len(keys) * n, 1)} runs each")
EOF
