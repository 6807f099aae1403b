#!/usr/bin/env bash
# Interop with aioice (an independent Python ICE agent) over real sockets: two network
# namespaces joined by a veth pair, aioice in one and `floe connect` in the other, talking
# floe's JSON-lines signalling over named pipes. Both roles: aioice controlling (it
# nominates aggressively, USE-CANDIDATE on every check) and floe controlling. Each side
# must receive the other's line.
#
# Usage: aioice.sh PATH-TO-floe PATH-TO-python (a python with aioice installed; .ci/run
# makes a venv). Needs root and iproute2. Fails loudly, never skips.
set -euo pipefail
floe=$(realpath "${1:?usage: aioice.sh PATH-TO-floe PATH-TO-python}")
python=${2:?usage: aioice.sh PATH-TO-floe PATH-TO-python}
peer=$(realpath "$(dirname "$0")/../interop/aioice_peer.py")
"$python" -c 'import aioice' # fails loudly without aioice
id=$$
X=floe-aio-x-$id Y=floe-aio-y-$id
dir=$(mktemp -d)
srv_pid=
cleanup() {
    [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null || true
    for n in $X $Y; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$X"
ip netns add "$Y"
ip link add x0 netns "$X" type veth peer name y0 netns "$Y"
for n in $X $Y; do ip -n "$n" link set lo up; done
ip -n "$X" addr add 10.77.0.1/24 dev x0
ip -n "$Y" addr add 10.77.0.2/24 dev y0
ip -n "$X" link set x0 up
ip -n "$Y" link set y0 up

run() { # AIOICE-SIDE FLOE-FLAG [AIOICE-TURN FLOE-ARGS...]
    local aio_side=$1 floe_flag=$2 turn=${3:-} status=0
    shift 3 || shift $#
    rm -f "$dir/to-floe" "$dir/to-aioice"
    mkfifo "$dir/to-floe" "$dir/to-aioice"
    ip netns exec "$X" timeout 30 "$python" "$peer" "$aio_side" "$dir/to-aioice" "$dir/to-floe" $turn \
        >"$dir/aio.out" 2>"$dir/aio.err" &
    local a=$!
    # --linger: floe keeps reading after its own line went out. aioice sends its one
    # datagram only when its connect() returns, which with two TURN relays (Python, a
    # loaded machine) once came more than 3 s after floe had selected and sent: floe
    # had already left (CI, 2026-12-07), so it waits 10 s now.
    echo "from-floe" | ip netns exec "$Y" timeout 30 "$floe" connect "$floe_flag" --json \
        --timeout 15 --linger 10 --signal "files:$dir/to-floe,$dir/to-aioice" "$@" \
        >"$dir/floe.out" 2>"$dir/floe.err" &
    local b=$!
    wait "$a" || status=$?
    wait "$b" || status=$?
    if [ "$status" -ne 0 ] || ! grep -qx from-floe "$dir/aio.out" || ! grep -qx from-aioice "$dir/floe.out"; then
        echo "aioice interop ($aio_side) FAILED (status $status)"
        for f in aio.out aio.err floe.out floe.err; do echo "--- $f"; cat "$dir/$f"; done
        exit 1
    fi
    echo "aioice $aio_side, floe: $(grep '"event":"selected"' "$dir/floe.err" | tail -1)"
}

run offer --answer
run answer --offer

# Both relay-only through floe serve: aioice's TURN client against floe's server, and
# floe's agent against aioice through two relays.
ip netns exec "$Y" "$floe" serve --listen 10.77.0.2:3478 --user floe:secret \
    --allow-peer 10.77.0.0/24 >"$dir/serve.out" 2>"$dir/serve.err" &
srv_pid=$!
for _ in $(seq 50); do grep -q listening "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
run offer --answer 10.77.0.2:3478:floe:secret --relay-only --turn turn:10.77.0.2:3478?transport=udp \
    --turn-user floe --turn-password secret
if ! grep '"event":"selected"' "$dir/floe.err" | tail -1 | grep -q '"type":"relay"'; then
    echo "aioice interop FAILED: relay-only must select a relayed pair"; exit 1
fi
kill "$srv_pid"
echo "aioice interop passed: both roles, and relay-only through floe serve; data both ways"
