#!/usr/bin/env bash
# ICE-TCP (RFC 6544) between two real processes: hosts A (10.201.0.1) and B (10.201.0.2)
# on one link, in namespaces; A's firewall drops every UDP packet (in and out), and
# there is no STUN or TURN server. Two `floe connect --ice-tcp` must connect over TCP
# candidates within 5 s, both sides select and nominate a TCP pair, and lines cross
# both ways. Run twice, so that each host is once the controlling (offering) side.
# A third run without --ice-tcp must fail: nothing but ICE-TCP can cross.
#
# Needs root, iproute2 and iptables; run by .ci/run. Fails loudly, never skips.
set -euo pipefail
floe=$(realpath "${1:?usage: ice_tcp.sh PATH-TO-floe}")
id=$$
A=floe-tcpa-$id B=floe-tcpb-$id
dir=$(mktemp -d)
# shellcheck source=tests/netns/lib.sh
source "$(dirname "$0")/lib.sh"
cleanup() {
    ns_cleanup
    rm -rf "$dir"
}
trap cleanup EXIT

ns "$A" "$B"
ip link add eth0 netns "$A" type veth peer name eth0 netns "$B"
ip -n "$A" addr add 10.201.0.1/24 dev eth0
ip -n "$B" addr add 10.201.0.2/24 dev eth0
ip -n "$A" link set eth0 up
ip -n "$B" link set eth0 up
ip netns exec "$A" iptables -A INPUT -p udp -j DROP
ip netns exec "$A" iptables -A OUTPUT -p udp -j DROP

# run NAME OFFERER(A|B) EXTRA-ARGS... -> status; output in $dir/NAME-{a,b}.{out,err}
run() {
    local name=$1 offer=$2 status=0
    shift 2
    rm -f "$dir/a-to-b" "$dir/b-to-a"
    mkfifo "$dir/a-to-b" "$dir/b-to-a"
    local side_a=--answer side_b=--offer
    [ "$offer" = A ] && side_a=--offer side_b=--answer
    local common=(--json --timeout 5 --linger 1 "$@")
    (echo "from-a"; sleep 1) | ip netns exec "$A" timeout 20 "$floe" connect "$side_a" "${common[@]}" \
        --signal "files:$dir/b-to-a,$dir/a-to-b" >"$dir/$name-a.out" 2>"$dir/$name-a.err" &
    local a=$!
    (echo "from-b"; sleep 1) | ip netns exec "$B" timeout 20 "$floe" connect "$side_b" "${common[@]}" \
        --signal "files:$dir/a-to-b,$dir/b-to-a" >"$dir/$name-b.out" 2>"$dir/$name-b.err" &
    local b=$!
    wait "$a" || status=$?
    wait "$b" || status=$?
    return "$status"
}

fail() {
    echo "ICE-TCP test FAILED: $1"
    for f in "$dir"/*.out "$dir"/*.err; do echo "--- $f"; cat "$f"; done
    exit 1
}

for offer in A B; do
    name=offer-$offer
    run "$name" "$offer" --ice-tcp || fail "$name: floe connect exited non-zero"
    grep -qx from-b "$dir/$name-a.out" || fail "$name: A did not receive B's line"
    grep -qx from-a "$dir/$name-b.out" || fail "$name: B did not receive A's line"
    for side in a b; do
        sel=$(grep '"event":"selected"' "$dir/$name-$side.err" | grep '"nominated":true' | tail -1)
        [ -n "$sel" ] || fail "$name: side $side never nominated a pair"
        echo "$sel" | grep -q '"transport":"tcp"' || fail "$name: side $side nominated a non-TCP pair: $sel"
        echo "$name side $side: $sel"
    done
done

if run no-ice-tcp A; then
    fail "without --ice-tcp the peers connected, so UDP was not blocked"
fi
echo "ICE-TCP test passed: with A's UDP dropped and no TURN server, floe connect --ice-tcp connected over TCP in both roles (and failed without it)"
