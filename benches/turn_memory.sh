#!/usr/bin/env bash
# Memory per TURN allocation: `floe serve` vs coturn in the same run.
#
# For each round (REPS, alternating which server goes first) both servers are started
# fresh, one allocation is made and deleted (so lazily built state exists), the server's
# RSS is read, then `turn_load hold` makes COUNT idle UDP allocations one after another
# (each its own 5-tuple) and the RSS is read again while they are held. Prints each
# round as JSON and the median bytes per allocation for both, and their ratio.
#
# Usage: benches/turn_memory.sh   (env: REPS=3 COUNT=2000 FLOE_BIN=... FLOE_ARGS=...)
set -euo pipefail

REPS=${REPS:-3}
COUNT=${COUNT:-2000}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
command -v turnserver >/dev/null || { echo "coturn (turnserver) is not installed" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is not installed" >&2; exit 1; }
(cd "$root" && cargo build --release -q -p floe-cli -p floe-benches --bin floe --bin turn_load)
floe_bin=${FLOE_BIN:-$target/release/floe}
load_bin=$target/release/turn_load
server_cpu=()
# floe allows 100 allocations per user by default; this user needs COUNT.
FLOE_ARGS="${FLOE_ARGS:-} --user-quota $((COUNT + 10))"
ulimit -n 65536 2>/dev/null || true

work=$(mktemp -d /tmp/turn_memory.XXXXXX)
# shellcheck source=benches/servers.sh
. "$root/benches/servers.sh"
trap 'stop_servers; rm -rf "$work"' EXIT INT TERM

rss_bytes() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"; }

measure() { # name addr pid
    local name=$1 addr=$2 pid=$3 before after fifo line
    "$load_bin" --server "$addr" hold --count 1 --secs 0 >/dev/null
    before=$(rss_bytes "$pid")
    fifo=$work/hold.$name
    rm -f "$fifo"
    mkfifo "$fifo"
    "$load_bin" --server "$addr" --label "$name" hold --count "$COUNT" --secs 3 >"$fifo" &
    local load_pid=$!
    exec 3<"$fifo"
    read -r line <&3
    after=$(rss_bytes "$pid")
    cat <&3 >/dev/null
    exec 3<&-
    wait "$load_pid"
    jq -cn --arg name "$name" --argjson before "$before" --argjson after "$after" \
        --argjson count "$COUNT" --argjson held "$line" \
        '{label: $name, count: $count, held: $held.allocations, rss_before: $before, rss_after: $after,
          per_allocation: (($after - $before) / $count)}'
}

out=$work/rounds.jsonl
for rep in $(seq "$REPS"); do
    start_servers
    if [ $((rep % 2)) = 1 ]; then order=(floe coturn); else order=(coturn floe); fi
    for name in "${order[@]}"; do
        if [ "$name" = floe ]; then
            measure floe "$floe_addr" "$floe_pid" | tee -a "$out"
        else
            measure coturn "$coturn_addr" "$coturn_pid" | tee -a "$out"
        fi
    done
    stop_servers
done

python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = {n: statistics.median(r["per_allocation"] for r in rows if r["label"] == n) for n in ("floe", "coturn")}
print()
print("| server | RSS per idle UDP allocation (median) |")
print("|---|---|")
for n in ("floe", "coturn"):
    print(f"| {n} | {med[n] / 1024:.1f} KiB |")
print(f"\nfloe / coturn = {med['floe'] / med['coturn']:.2f} ({len(rows) // 2} rounds of {rows[0]['count']} allocations)")
PY
