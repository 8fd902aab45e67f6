#!/usr/bin/env bash
# Installs every host package the build and the test suite need (Debian 12, root).
# Idempotent: packages already present are not fetched again.
set -euo pipefail
need=(protobuf-compiler libprotobuf-dev debootstrap systemd-container iproute2 curl xz-utils ca-certificates python3)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
