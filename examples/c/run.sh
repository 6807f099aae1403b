#!/usr/bin/env bash
# Installs floe-ffi under a scratch prefix, builds the C examples against it with
# pkg-config, under AddressSanitizer and UndefinedBehaviorSanitizer, and runs them.
#
# usage: examples/c/run.sh        (needs cc and pkg-config)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=${FLOE_PREFIX:-$(mktemp -d)}
"$here/../../crates/ffi/install.sh" "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
export LD_LIBRARY_PATH="$prefix/lib"
out=$(mktemp -d)
for example in sansio_pair; do
    # shellcheck disable=SC2046 # pkg-config output is meant to split
    cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -g -fno-omit-frame-pointer \
        -fsanitize=address,undefined -fno-sanitize-recover=all \
        "$here/$example.c" -o "$out/$example" $(pkg-config --cflags --libs floe)
    echo "== $example (AddressSanitizer, UBSan)"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$out/$example"
done
