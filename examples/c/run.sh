#!/usr/bin/env bash
# Installs floe-ffi under a scratch prefix, builds the C examples against it with
# pkg-config, under AddressSanitizer and UndefinedBehaviorSanitizer, and runs them:
# sansio_pair alone, peer_chat against `floe connect` over named pipes.
#
# usage: examples/c/run.sh        (needs cc and pkg-config; builds floe-cli for floe)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prefix=${FLOE_PREFIX:-$(mktemp -d)}
"$root/crates/ffi/install.sh" "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
export LD_LIBRARY_PATH="$prefix/lib"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
out=$(mktemp -d)
for example in sansio_pair peer_chat; do
    # shellcheck disable=SC2046 # pkg-config output is meant to split
    cc -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -g -fno-omit-frame-pointer \
        -fsanitize=address,undefined -fno-sanitize-recover=all \
        "$here/$example.c" -o "$out/$example" $(pkg-config --cflags --libs floe)
done

echo "== sansio_pair (AddressSanitizer, UBSan)"
"$out/sansio_pair"

echo "== peer_chat (AddressSanitizer, UBSan) against floe connect, both roles"
(cd "$root" && cargo build -q -p floe-cli)
floe="$root/target/debug/floe"
for role in offer answer; do
    other=$([ "$role" = offer ] && echo --answer || echo --offer)
    mkfifo "$out/c2f.$role" "$out/f2c.$role"
    echo "line from floe connect" | timeout 20 "$floe" connect "$other" --bind 127.0.0.1:0 \
        --signal "files:$out/c2f.$role,$out/f2c.$role" --linger 3 >"$out/floe.$role" 2>"$out/floe.err.$role" &
    pid=$!
    timeout 20 "$out/peer_chat" "$role" "$out/f2c.$role" "$out/c2f.$role" "line from C" | tee "$out/c.$role"
    wait "$pid" || { echo "floe connect failed:"; cat "$out/floe.err.$role"; exit 1; }
    grep -qx "received: line from floe connect" "$out/c.$role"
    grep -q "line from C" "$out/floe.$role" || { echo "floe connect got nothing:"; cat "$out/floe.$role" "$out/floe.err.$role"; exit 1; }
    echo "peer_chat $role <-> floe connect $other: ok"
done
