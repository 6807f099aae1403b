#!/usr/bin/env bash
# Real Linux NATs (iptables MASQUERADE in network namespaces) between two `floe connect`
# processes, with `floe serve` (STUN/TURN over UDP and TCP) on the "internet":
#
#   1. Both homes behind MASQUERADE, routers dropping unsolicited traffic to themselves as
#      home routers do: a direct (server-reflexive) path must be selected, never the relay.
#   2. The same with routers that accept unsolicited traffic to their own WAN address:
#      the first check to arrive before the other side has sent leaves a conntrack entry
#      that makes MASQUERADE give the other host's flow a different port, so hole punching
#      may fail (see docs/nat-matrix.md); floe must still connect (directly or through the
#      relay).
#   3. A's network also drops all UDP it forwards (hotel Wi-Fi): A reaches the relay over
#      TCP (a plain turn: URI races UDP and TCP), and both sides are connected within 2 s
#      (`--timeout 2`), with A's selected pair relayed over TCP.
#
#      srv (10.200.0.1, floe serve) ---- br0 (internet, 10.200.0.0/24) ---- rb -- hb
#                                              |
#                                             ra (MASQUERADE [+ UDP DROP]) -- ha
#
# Needs root, iproute2 and iptables; run by .ci/run. Fails loudly, never skips.
set -euo pipefail
floe=$(realpath "${1:?usage: kernel_nat.sh PATH-TO-floe}")
id=$$
INET=floe-inet-$id SRV=floe-srv-$id RA=floe-ra-$id HA=floe-ha-$id RB=floe-rb-$id HB=floe-hb-$id
dir=$(mktemp -d)
srv_pid=
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$0")/lib.sh"
cleanup() {
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null || true
    ns_cleanup
    rm -rf "$dir"
}
trap cleanup EXIT

ns $INET $SRV $RA $HA $RB $HB
bridge
attach "$SRV" s0 10.200.0.1/24
attach "$RA" wa 10.200.0.10/24
attach "$RB" wb 10.200.0.20/24
home "$RA" "$HA" wa 192.168.1
home "$RB" "$HB" wb 192.168.2

ip netns exec "$SRV" "$floe" serve --listen 10.200.0.1:3478 --tcp --user floe:secret \
    --allow-peer 10.200.0.0/24 >"$dir/serve.out" 2>"$dir/serve.err" &
srv_pid=$!
for _ in $(seq 50); do grep -q listening "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done

run_pair() { # NAME TIMEOUT -> $dir/NAME-{a,b}.{out,err}
    local name=$1 limit=$2 status=0
    rm -f "$dir/a-to-b" "$dir/b-to-a"
    mkfifo "$dir/a-to-b" "$dir/b-to-a"
    local common=(--stun stun:10.200.0.1:3478 --turn turn:10.200.0.1:3478
        --turn-user floe --turn-password secret --json --timeout "$limit" --linger 1)
    echo "from-a" | ip netns exec "$HA" timeout 20 "$floe" connect --offer "${common[@]}" \
        --signal "files:$dir/b-to-a,$dir/a-to-b" >"$dir/$name-a.out" 2>"$dir/$name-a.err" &
    local a=$!
    echo "from-b" | ip netns exec "$HB" timeout 20 "$floe" connect --answer "${common[@]}" \
        --signal "files:$dir/a-to-b,$dir/b-to-a" >"$dir/$name-b.out" 2>"$dir/$name-b.err" &
    local b=$!
    wait "$a" || status=$?
    wait "$b" || status=$?
    if [ "$status" -ne 0 ] || ! grep -qx from-b "$dir/$name-a.out" || ! grep -qx from-a "$dir/$name-b.out"; then
        echo "kernel NAT test '$name' FAILED (status $status)"
        for f in "$name-a.out" "$name-a.err" "$name-b.out" "$name-b.err" serve.err; do
            echo "--- $f"; cat "$dir/$f"
        done
        exit 1
    fi
}
selected() { grep '"event":"selected"' "$1" | grep '"nominated":true' | tail -1; }

# 1. Two MASQUERADE homes: direct.
run_pair direct 10
for side in a b; do
    s=$(selected "$dir/direct-$side.err")
    echo "direct, $side: $s"
    if [ -z "$s" ] || echo "$s" | grep -q '"type":"relay"'; then
        echo "kernel NAT test FAILED: two MASQUERADE homes must connect directly"
        for f in direct-a.err direct-b.err; do echo "--- $f"; cat "$dir/$f"; done
        exit 1
    fi
done

# 2. Routers that accept unsolicited traffic to themselves: connected either way.
for r in "$RA" "$RB"; do ip netns exec "$r" iptables -F INPUT; done
run_pair open-routers 10
echo "routers accepting unsolicited input, a: $(selected "$dir/open-routers-a.err")"
ip netns exec "$RA" iptables -F INPUT
ip netns exec "$RA" iptables -A INPUT -i wa -m conntrack --ctstate NEW -j DROP
ip netns exec "$RB" iptables -F INPUT
ip netns exec "$RB" iptables -A INPUT -i wb -m conntrack --ctstate NEW -j DROP

# 3. A's network drops UDP: the relay over TCP, within 2 s.
ip netns exec "$RA" iptables -A FORWARD -i lan -p udp -j DROP
run_pair udp-blocked 2
s=$(selected "$dir/udp-blocked-a.err")
echo "UDP blocked, a: $s"
grep '"event":"turn-transport"' "$dir/udp-blocked-a.err" || true
if ! echo "$s" | grep -q '"type":"relay"' || ! echo "$s" | grep -q '"turn_transport":"tcp"'; then
    echo "kernel NAT test FAILED: behind a UDP-blocking firewall A must relay over TCP"; exit 1
fi
echo "UDP blocked, b: $(selected "$dir/udp-blocked-b.err")"
echo "kernel NAT tests passed: direct through two MASQUERADE NATs; relay over TCP within 2 s where UDP is dropped"
