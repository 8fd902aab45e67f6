#!/usr/bin/env bash
# What the benchmarks need beyond scripts/install-deps.sh: hyperfine (start-up time),
# GNU time (peak RSS), curl (the download baseline). Installs only what is missing.
set -euo pipefail
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
[[ -x /usr/bin/time ]] || need+=(time)
command -v curl >/dev/null || need+=(curl)
((${#need[@]})) || exit 0
echo "bench/setup.sh: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
