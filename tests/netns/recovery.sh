#!/usr/bin/env bash
# Calls that survive the network changing under them, on real Linux NATs: two
# `floe connect` stream a timestamped line every 50 ms each way through MASQUERADE
# routers, with `floe serve` (STUN and TURN) on the "internet"; mid-stream:
#
#   1. A's router starts masquerading with --random-fully and flushes its conntrack
#      table (`conntrack -F`), so every mapping comes back on a new, per-destination
#      port (a symmetric NAT now, against B's port-restricted one): lines must keep
#      arriving both ways within 2 s. The direct path cannot be punched again, so the
#      call recovers through the TURN relay (A's allocation was lost with its mapping).
#   2. A moves to a second router (a new address on a new interface, default route
#      moved, the old address removed, as a phone leaving Wi-Fi): floe's address watcher
#      sees it, and lines must keep arriving both ways after the move.
#
#      srv (10.200.0.1) ---- br0 (internet, 10.200.0.0/24) ---- rb (MASQUERADE) -- hb
#                              |                  |
#                         ra (MASQUERADE)     ra2 (MASQUERADE) --------------------.
#                             `-- ha (eth0 192.168.1.2; eth1 192.168.3.2 after the move)
#
# RECOVERY_EXTRA adds flags to both `floe connect` (CI runs it once more with
# `--address-watch 30`, so the move in step 2 is seen through netlink alone: with only
# the 30 s poll, A would not know its new address before the test ends).
# Prints the recovery times (recorded in docs/nat-matrix.md). Needs root, iproute2,
# iptables and conntrack; run by .ci/run. Fails loudly, never skips.
set -euo pipefail
floe=$(realpath "${1:?usage: recovery.sh PATH-TO-floe}")
id=$$
INET=floe-inet-$id SRV=floe-srv-$id RA=floe-ra-$id RA2=floe-ra2-$id HA=floe-ha-$id
RB=floe-rb-$id HB=floe-hb-$id
dir=$(mktemp -d)
pids=()
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$0")/lib.sh"
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    ns_cleanup
    rm -rf "$dir"
}
trap cleanup EXIT

ns $INET $SRV $RA $RA2 $HA $RB $HB
bridge
attach "$SRV" s0 10.200.0.1/24
attach "$RA" wa 10.200.0.10/24
attach "$RA2" wa2 10.200.0.11/24
attach "$RB" wb 10.200.0.20/24
home "$RA" "$HA" wa 192.168.1
home "$RB" "$HB" wb 192.168.2

ip netns exec "$SRV" "$floe" serve --listen 10.200.0.1:3478 --user floe:secret \
    --allow-peer 10.200.0.0/24 >"$dir/serve.out" 2>"$dir/serve.err" &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done

ms() { echo $(($(date +%s%N) / 1000000)); }
# A line with its send time (ms) every 50 ms, forever.
talk() { while :; do echo "$1 $(ms)"; sleep 0.05; done; }
# Each received line with its arrival time in front.
stamp() { while IFS= read -r l; do echo "$(ms) $l"; done; }

mkfifo "$dir/a-to-b" "$dir/b-to-a"
common=(--stun stun:10.200.0.1:3478 --turn turn:10.200.0.1:3478?transport=udp ${RECOVERY_EXTRA:-}
    --turn-user floe --turn-password secret --json --timeout 10)
talk from-a | ip netns exec "$HA" timeout 60 "$floe" connect --offer "${common[@]}" \
    --signal "files:$dir/b-to-a,$dir/a-to-b" 2>"$dir/a.err" | stamp >"$dir/a.out" &
pids+=($!)
talk from-b | ip netns exec "$HB" timeout 60 "$floe" connect --answer "${common[@]}" \
    --signal "files:$dir/a-to-b,$dir/b-to-a" 2>"$dir/b.err" | stamp >"$dir/b.out" &
pids+=($!)

fail() {
    echo "recovery test FAILED: $*"
    for f in a.err b.err serve.err; do echo "--- $f"; tail -40 "$dir/$f"; done
    echo "--- a.out (tail)"; tail -5 "$dir/a.out"
    echo "--- b.out (tail)"; tail -5 "$dir/b.out"
    exit 1
}
for _ in $(seq 100); do
    grep -q '"nominated":true' "$dir/a.err" 2>/dev/null \
        && grep -q '"nominated":true' "$dir/b.err" 2>/dev/null && break
    sleep 0.1
done
grep -q '"nominated":true' "$dir/a.err" || fail "not connected"
sleep 2

# resumed FILE SINCE: ms from SINCE until FILE got a line sent at or after SINCE.
resumed() {
    awk -v t="$2" '$3 >= t { print $1 - t; exit }' "$1"
}
# check NAME SINCE LIMIT_MS: both directions resumed within LIMIT_MS.
check() {
    local to_b to_a
    to_b=$(resumed "$dir/b.out" "$2")
    to_a=$(resumed "$dir/a.out" "$2")
    echo "$1: a->b resumed after ${to_b:-never} ms, b->a after ${to_a:-never} ms"
    [ -n "$to_b" ] && [ -n "$to_a" ] || fail "$1: lines stopped"
    [ "$to_b" -le "$3" ] && [ "$to_a" -le "$3" ] || fail "$1: resumed after more than $3 ms"
}

# 1. Every mapping of A's router gone; new ones on new (random) ports.
ip netns exec "$RA" iptables -t nat -R POSTROUTING 1 -o wa -j MASQUERADE --random-fully
cut=$(ms)
ip netns exec "$RA" conntrack -F >/dev/null 2>&1
sleep 5
check "conntrack flush (--random-fully)" "$cut" 2000
grep '"event":"recovery"' "$dir/a.err" | head -5 || true

# 2. A moves to the second router: new interface and address, route moved, old address
#    removed.
ip link add lan netns "$RA2" type veth peer name eth1 netns "$HA"
ip -n "$RA2" addr add 192.168.3.1/24 dev lan
ip -n "$RA2" link set lan up
ip netns exec "$RA2" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$RA2" iptables -t nat -A POSTROUTING -o wa2 -j MASQUERADE
ip -n "$HA" addr add 192.168.3.2/24 dev eth1
ip -n "$HA" link set eth1 up
ip -n "$HA" route replace default via 192.168.3.1
move=$(ms)
ip -n "$HA" addr del 192.168.1.2/24 dev eth0
sleep 6
check "host moved to another router" "$move" 4000
grep -q '"remote":"10.200.0.11:' "$dir/b.err" || fail "B never selected A's new public address"
echo "recovery tests passed"
