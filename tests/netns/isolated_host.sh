#!/usr/bin/env bash
# An isolated host: a network namespace with nothing but loopback. floe must gather
# loopback host candidates there (it leaves loopback out only when other interfaces are
# up), so two `floe connect` processes in it connect and exchange lines over files:
# signalling with named pipes. Needs root and iproute2; run by .ci/run.
set -euo pipefail
floe=${1:?usage: isolated_host.sh PATH-TO-floe}
ns=floe-iso-$$
dir=$(mktemp -d)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
mkfifo "$dir/a-to-b" "$dir/b-to-a"
echo "from-a" | ip netns exec "$ns" timeout 20 "$floe" connect --offer --signal "files:$dir/b-to-a,$dir/a-to-b" --json --timeout 15 >"$dir/a.out" 2>"$dir/a.err" &
a=$!
echo "from-b" | ip netns exec "$ns" timeout 20 "$floe" connect --answer --signal "files:$dir/a-to-b,$dir/b-to-a" --json --timeout 15 >"$dir/b.out" 2>"$dir/b.err" &
b=$!
status=0
wait "$a" || status=$?
wait "$b" || status=$?
if [ "$status" -ne 0 ] || ! grep -qx from-b "$dir/a.out" || ! grep -qx from-a "$dir/b.out"; then
    echo "isolated host test FAILED (status $status)"
    for f in a.out a.err b.out b.err; do echo "--- $f"; cat "$dir/$f"; done
    exit 1
fi
grep '"event":"selected"' "$dir/a.err" | head -1
echo "isolated host test passed: two floe connect processes in a loopback-only namespace exchanged lines"
