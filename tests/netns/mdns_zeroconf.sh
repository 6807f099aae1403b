#!/usr/bin/env bash
# floe's mDNS responder and resolver against an independent implementation,
# python-zeroconf, on a real link with multicast:
#
#   1. `floe connect --mdns --offer` publishes its host candidate as `<uuid>.local`;
#      zeroconf (AddressResolver) resolves that name from the offer to floe's address.
#   2. zeroconf publishes a host name (a service's server name); the answer given to floe
#      carries a candidate under that name, and floe resolves it (its stats list the
#      remote host candidate at zeroconf's address).
#
#      ha: floe (10.201.1.2) ---- br0 ---- hc: python-zeroconf (10.201.1.3)
#
# usage: mdns_zeroconf.sh PATH-TO-floe PATH-TO-python-with-zeroconf
# Needs root and iproute2; run by .ci/run. Fails loudly, never skips.
set -euo pipefail
floe=$(realpath "${1:?usage: mdns_zeroconf.sh PATH-TO-floe PYTHON}")
python=${2:?usage: mdns_zeroconf.sh PATH-TO-floe PYTHON}
# Absolute, but not through the venv's symlink (which would leave the venv).
python=$(cd "$(dirname "$python")" && pwd)/$(basename "$python")
"$python" -c 'import zeroconf' || { echo "python-zeroconf missing for $python" >&2; exit 1; }
id=$$
INET=floe-zinet-$id HA=floe-zha-$id HC=floe-zhc-$id
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
fail() {
    echo "mDNS interop (python-zeroconf) FAILED: $*"
    for f in signal-out.log b-signal.log floe.err floe-b.err zc-publish.log zc-resolve.log; do
        echo "--- $f"
        tail -c 3000 "$dir/$f" 2>/dev/null || true
        echo
    done
    exit 1
}

ns $INET $HA $HC
bridge
attach "$HA" a0 10.201.1.2/24
attach "$HC" c0 10.201.1.3/24

# zeroconf publishes a host name for 10.201.1.3 (as a service's server) until killed.
zname=$("$python" -c 'import uuid; print(uuid.uuid4())').local
ip netns exec "$HC" "$python" - "$zname" >"$dir/zc-publish.log" 2>&1 <<'EOF' &
import socket, sys, time
from zeroconf import IPVersion, ServiceInfo, Zeroconf
name = sys.argv[1]
zc = Zeroconf(interfaces=["10.201.1.3"], ip_version=IPVersion.V4Only)
info = ServiceInfo("_floe-interop._udp.local.", "probe._floe-interop._udp.local.",
                   port=9, addresses=[socket.inet_aton("10.201.1.3")], server=name + ".")
zc.register_service(info)
print("published", name, flush=True)
time.sleep(60)
EOF
pids+=($!)
for _ in $(seq 100); do grep -q published "$dir/zc-publish.log" && break; sleep 0.1; done
grep -q published "$dir/zc-publish.log" || fail "zeroconf did not publish"

# The signalling between floe A (ha) and floe B (hc, no --mdns) goes through a filter:
# A's offer reaches B with no candidates at all, so B never checks first; B's answer
# reaches A with B's address replaced by zeroconf's name for it. A can then only reach B
# by resolving that name through python-zeroconf's responder.
cat >"$dir/filter.py" <<'EOF'
import json, sys
src, dst, log, mode, zname = sys.argv[1:6]
with open(src) as fin, open(dst, "w") as fout, open(log, "w") as flog:
    for line in fin:
        flog.write(line)
        flog.flush()
        msg = json.loads(line)
        if mode == "strip":
            if msg["type"] == "candidate":
                continue
            if msg["type"] in ("offer", "answer"):
                msg["candidates"] = []
        else:
            rename = lambda c: c.replace(" 10.201.1.3 ", " " + zname + " ")
            if msg["type"] == "candidate":
                msg["candidate"] = rename(msg["candidate"])
            if msg["type"] in ("offer", "answer"):
                msg["candidates"] = [rename(c) for c in msg["candidates"]]
        fout.write(json.dumps(msg) + "\n")
        fout.flush()
EOF
mkfifo "$dir/a-out" "$dir/a-in" "$dir/b-out" "$dir/b-in"
"$python" "$dir/filter.py" "$dir/a-out" "$dir/b-in" "$dir/signal-out.log" strip "$zname" &
pids+=($!)
"$python" "$dir/filter.py" "$dir/b-out" "$dir/a-in" "$dir/b-signal.log" rename "$zname" &
pids+=($!)
(sleep 20) | ip netns exec "$HA" timeout 30 "$floe" connect --offer --mdns --json \
    --timeout 12 --signal "files:$dir/a-in,$dir/a-out" >/dev/null 2>"$dir/floe.err" &
pids+=($!)
(sleep 20) | ip netns exec "$HC" timeout 30 "$floe" connect --answer --json \
    --timeout 12 --signal "files:$dir/b-in,$dir/b-out" >/dev/null 2>"$dir/floe-b.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '"type":"offer"' "$dir/signal-out.log" 2>/dev/null && break; sleep 0.1; done
fname=$(grep -Eo '[0-9a-f-]{36}\.local' "$dir/signal-out.log" 2>/dev/null | head -1 || true)
[ -n "$fname" ] || fail "floe's offer has no .local host candidate"
if grep -q '10\.201\.1\.' "$dir/signal-out.log"; then fail "floe signalled an address of the link"; fi

# 1. zeroconf resolves floe's name.
ip netns exec "$HC" "$python" - "$fname" >"$dir/zc-resolve.log" 2>&1 <<'EOF' || fail "zeroconf could not resolve floe's name"
import sys
from zeroconf import AddressResolver, IPVersion, Zeroconf
zc = Zeroconf(interfaces=["10.201.1.3"], ip_version=IPVersion.V4Only)
r = AddressResolver(sys.argv[1] + ".")
ok = r.request(zc, 5000)
addrs = r.parsed_addresses()
print("resolved", sys.argv[1], ok, addrs, flush=True)
zc.close()
sys.exit(0 if "10.201.1.2" in addrs else 1)
EOF
cat "$dir/zc-resolve.log"

# 2. floe A resolved zeroconf's name for B and connected to B's host candidate.
for _ in $(seq 150); do
    grep -q '"event":"selected".*"remote":"10.201.1.3:' "$dir/floe.err" 2>/dev/null && break
    sleep 0.1
done
grep -q "$zname" "$dir/b-signal.log" && fail "B itself signalled zeroconf's name"
grep -q '"event":"selected".*"remote":"10.201.1.3:' "$dir/floe.err" \
    || fail "floe never reached B through zeroconf's name $zname"
grep '"event":"selected"' "$dir/floe.err" | tail -1
echo "floe resolved $zname (published by python-zeroconf) to 10.201.1.3 and connected"
echo "mDNS interop with python-zeroconf passed: both ways"
