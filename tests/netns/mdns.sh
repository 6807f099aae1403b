#!/usr/bin/env bash
# Host candidates under mDNS names, on a real link with multicast: two namespaces on one
# bridge, no STUN or TURN, run `floe connect --mdns`. Each side signals its host
# candidate as `<uuid>.local` (the signalling must never carry an address of the link)
# and answers mDNS queries for it; each resolves the other's name with floe's own
# resolver (no nss-mdns), pairs the host candidates and sends a line across.
#
#      ha (10.201.0.2) ---- br0 ---- hb (10.201.0.3)
#
# With MDNS_IPV6=1 the link has IPv6 only (fd00:201::2, fd00:201::3; no IPv4 at all), so
# names are published and resolved over ff02::fb.
#
# Needs root, iproute2 and python3; run by .ci/run. Fails loudly, never skips.
set -euo pipefail
floe=$(realpath "${1:?usage: mdns.sh PATH-TO-floe}")
id=$$
INET=floe-minet-$id HA=floe-mha-$id HB=floe-mhb-$id
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

ns $INET $HA $HB
bridge
if [ "${MDNS_IPV6:-0}" = 1 ]; then
    A_ADDR=fd00:201::2 B_ADDR=fd00:201::3 LINK_RE='fd00:201::'
    for side in "$HA a0 $A_ADDR" "$HB b0 $B_ADDR"; do
        set -- $side
        ip link add "$2" netns "$1" type veth peer name "p$2" netns "$INET"
        ip -n "$INET" link set "p$2" master br0 up
        ip -n "$1" -6 addr add "$3/64" dev "$2" nodad
        ip -n "$1" link set "$2" up
    done
    # Link-local addresses need a moment (DAD) before multicast goes out.
    sleep 2
else
    A_ADDR=10.201.0.2 B_ADDR=10.201.0.3 LINK_RE='10\.201\.0\.'
    attach "$HA" a0 10.201.0.2/24
    attach "$HB" b0 10.201.0.3/24
fi

# The signalling goes through tee, so the test can read what each side told the other.
mkfifo "$dir/a-out" "$dir/b-out" "$dir/a-in" "$dir/b-in"
tee "$dir/a-signal.log" <"$dir/a-out" >"$dir/b-in" &
pids+=($!)
tee "$dir/b-signal.log" <"$dir/b-out" >"$dir/a-in" &
pids+=($!)

common=(--mdns --json --stats 0.5 --timeout 10 --linger 3)
(echo "hello from a"; sleep 6) | ip netns exec "$HA" timeout 30 "$floe" connect --offer \
    "${common[@]}" --signal "files:$dir/a-in,$dir/a-out" >"$dir/a.out" 2>"$dir/a.err" &
pids+=($!)
(echo "hello from b"; sleep 6) | ip netns exec "$HB" timeout 30 "$floe" connect --answer \
    "${common[@]}" --signal "files:$dir/b-in,$dir/b-out" >"$dir/b.out" 2>"$dir/b.err" &
pids+=($!)

fail() {
    echo "mDNS test FAILED: $*"
    for f in a-signal.log b-signal.log a.err b.err a.out b.out; do
        echo "--- $f"
        tail -c 3000 "$dir/$f" 2>/dev/null || true
        echo
    done
    exit 1
}
for _ in $(seq 150); do
    grep -q "hello from b" "$dir/a.out" 2>/dev/null \
        && grep -q "hello from a" "$dir/b.out" 2>/dev/null && break
    sleep 0.1
done
grep -q "hello from b" "$dir/a.out" || fail "a got nothing from b"
grep -q "hello from a" "$dir/b.out" || fail "b got nothing from a"
sleep 1

# The signalling carried names, never the link's addresses.
for side in a b; do
    grep -q 'typ host' "$dir/$side-signal.log" || fail "$side signalled no host candidate"
    grep -Eq '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.local [0-9]+ typ host' \
        "$dir/$side-signal.log" || fail "$side's host candidate is not a <uuid>.local name"
    if grep -Eq "$LINK_RE" "$dir/$side-signal.log"; then
        fail "$side's signalling carries an address of the link"
    fi
done

# Each side resolved the other's name: its remote candidates hold the other's host
# address as a host candidate (not only a peer-reflexive one learned from checks).
resolved() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
path, want = sys.argv[1], sys.argv[2]
for line in open(path):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    if v.get("event") != "stats":
        continue
    for c in v.get("remoteCandidates", []):
        if c.get("candidateType") == "host" and c.get("address") == want:
            sys.exit(0)
sys.exit(1)
EOF
}
resolved "$dir/a.err" "$B_ADDR" || fail "a never resolved b's name to $B_ADDR"
resolved "$dir/b.err" "$A_ADDR" || fail "b never resolved a's name to $A_ADDR"
grep '"event":"selected"' "$dir/a.err" | tail -1
echo "mDNS test passed: both sides connected over host candidates signalled as .local names"
