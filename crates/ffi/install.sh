#!/usr/bin/env bash
# Builds floe-ffi in release mode and installs libfloe.{a,so}, include/floe.h and a
# pkg-config file floe.pc under PREFIX (default /usr/local).
#
# usage: crates/ffi/install.sh [PREFIX]
set -euo pipefail
prefix=${1:-/usr/local}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --release -p floe-ffi
target=${CARGO_TARGET_DIR:-$root/target}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
install -d "$prefix/lib/pkgconfig" "$prefix/include"
install -m 644 "$target/release/libfloe.a" "$prefix/lib/"
install -m 755 "$target/release/libfloe.so" "$prefix/lib/"
install -m 644 crates/ffi/include/floe.h "$prefix/include/"
cat > "$prefix/lib/pkgconfig/floe.pc" <<PC
prefix=$prefix
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: floe
Description: ICE (RFC 8445) for C: floe's sans-IO agent
Version: $version
Libs: -L\${libdir} -lfloe
Libs.private: -lpthread -ldl -lm
Cflags: -I\${includedir}
PC
echo "installed floe $version under $prefix"
