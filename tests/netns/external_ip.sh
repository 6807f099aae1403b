#!/usr/bin/env bash
# `floe serve --external-ip` behind a real 1:1 NAT (iptables DNAT + SNAT in a router
# namespace, as on a cloud VM), with two `floe connect --relay-only` on the "internet"
# relaying through it:
#
#   ha (198.18.0.10) --+
#                      +-- br0 (internet, 198.18.0.0/24) -- nat (wan 198.18.0.5; DNAT/SNAT) -- srv (10.9.0.5)
#   hb (198.18.0.20) --+
#
#   1. With --external-ip 198.18.0.5: both sides select a relayed pair, their relayed
#      candidates carry the public 198.18.0.5, and lines go both ways (the server hands
#      relay-to-relay traffic over locally, so the NAT need not hairpin).
#   2. Without it the server advertises 10.9.0.5, which nobody can reach: relay-only
#      fails, which shows case 1 is the option's doing.
#
# Needs root, iproute2 and iptables; run by .ci/run. Fails loudly, never skips.
set -euo pipefail
floe=$(realpath "${1:?usage: external_ip.sh PATH-TO-floe}")
id=$$
INET=floe-xinet-$id NAT=floe-xnat-$id SRV=floe-xsrv-$id HA=floe-xha-$id HB=floe-xhb-$id
dir=$(mktemp -d)
srv_pid=
cleanup() {
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null || true
    for n in $INET $NAT $SRV $HA $HB; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

for n in $INET $NAT $SRV $HA $HB; do
    ip netns add "$n"
    ip -n "$n" link set lo up
done
ip -n "$INET" link add br0 type bridge
ip -n "$INET" link set br0 up
attach() { # NS IFACE ADDR
    ip link add "$2" netns "$1" type veth peer name "p$2" netns "$INET"
    ip -n "$INET" link set "p$2" master br0 up
    ip -n "$1" addr add "$3" dev "$2"
    ip -n "$1" link set "$2" up
}
attach "$NAT" wan 198.18.0.5/24
attach "$HA" ea 198.18.0.10/24
attach "$HB" eb 198.18.0.20/24
ip link add lan netns "$NAT" type veth peer name eth0 netns "$SRV"
ip -n "$NAT" addr add 10.9.0.1/24 dev lan
ip -n "$NAT" link set lan up
ip -n "$SRV" addr add 10.9.0.5/24 dev eth0
ip -n "$SRV" link set eth0 up
ip -n "$SRV" route add default via 10.9.0.1
ip netns exec "$NAT" sysctl -qw net.ipv4.ip_forward=1
# The cloud's 1:1 NAT: everything for the public address goes to the VM, and the VM's
# traffic leaves from the public address.
ip netns exec "$NAT" iptables -t nat -A PREROUTING -i wan -d 198.18.0.5 -j DNAT --to-destination 10.9.0.5
ip netns exec "$NAT" iptables -t nat -A POSTROUTING -o wan -s 10.9.0.5 -j SNAT --to-source 198.18.0.5

serve() { # extra floe serve args...
    [ -n "$srv_pid" ] && { kill "$srv_pid" 2>/dev/null || true; wait "$srv_pid" 2>/dev/null || true; }
    : >"$dir/serve.out"
    ip netns exec "$SRV" "$floe" serve --listen 10.9.0.5:3478 --user floe:secret \
        --drain-seconds 0 "$@" >"$dir/serve.out" 2>"$dir/serve.err" &
    srv_pid=$!
    for _ in $(seq 50); do grep -q listening "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
    grep -q listening "$dir/serve.out" || { echo "floe serve did not start"; cat "$dir/serve.err"; exit 1; }
}

run_pair() { # NAME TIMEOUT -> status in $pair_status, logs in $dir/NAME-{a,b}.{out,err}
    local name=$1 limit=$2
    pair_status=0
    rm -f "$dir/a-to-b" "$dir/b-to-a"
    mkfifo "$dir/a-to-b" "$dir/b-to-a"
    local common=(--turn turn:198.18.0.5:3478?transport=udp --turn-user floe
        --turn-password secret --relay-only --json --timeout "$limit" --linger 1)
    echo "from-a" | ip netns exec "$HA" timeout 20 "$floe" connect --offer "${common[@]}" \
        --signal "files:$dir/b-to-a,$dir/a-to-b" >"$dir/$name-a.out" 2>"$dir/$name-a.err" &
    local a=$!
    echo "from-b" | ip netns exec "$HB" timeout 20 "$floe" connect --answer "${common[@]}" \
        --signal "files:$dir/a-to-b,$dir/b-to-a" >"$dir/$name-b.out" 2>"$dir/$name-b.err" &
    local b=$!
    wait "$a" || pair_status=$?
    wait "$b" || pair_status=$?
}
dump() {
    for f in "$@" serve.err; do echo "--- $f"; cat "$dir/$f"; done
}
selected() { grep '"event":"selected"' "$1" | grep '"nominated":true' | tail -1; }

# 1. With --external-ip: relayed through the public address, both ways.
serve --external-ip 198.18.0.5
run_pair external 10
if [ "$pair_status" -ne 0 ] || ! grep -qx from-b "$dir/external-a.out" || ! grep -qx from-a "$dir/external-b.out"; then
    echo "external-ip test FAILED (status $pair_status)"
    dump external-a.out external-a.err external-b.out external-b.err
    exit 1
fi
for side in a b; do
    s=$(selected "$dir/external-$side.err")
    echo "external-ip, $side: $s"
    if ! echo "$s" | grep -q '"type":"relay"' || ! echo "$s" | grep -q '198\.18\.0\.5:'; then
        echo "external-ip test FAILED: $side must select a relayed pair on 198.18.0.5"
        dump "external-$side.err"
        exit 1
    fi
done

# 2. Without it: the private relayed address is useless, relay-only fails.
serve
run_pair private 3
if [ "$pair_status" -eq 0 ] && grep -qx from-b "$dir/private-a.out"; then
    echo "external-ip test FAILED: without --external-ip the relay must not work through the NAT"
    dump private-a.err private-b.err
    exit 1
fi
echo "without --external-ip, a: $(grep -E '"event":"(failed|relay|server-failed)"|error' "$dir/private-a.err" | tail -2 | tr '\n' ' ')"
echo "external-ip tests passed: relayed through a real 1:1 NAT with --external-ip, and not without it"
