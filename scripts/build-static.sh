#!/usr/bin/env bash
# Builds the one statically linked etcdadm binary and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(uname -m)-unknown-linux-gnu"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" cargo build --release --locked --target "$target" >&2
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/$target/release/etcdadm"
if ldd "$bin" 2>&1 | grep '=>' >/dev/null; then
  echo "build-static: $bin is dynamically linked" >&2
  exit 1
fi
echo "$bin"
