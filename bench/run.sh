#!/usr/bin/env bash
# Runs the benchmarks (bench/<name>.sh, or those named) on real systemd machines and prints
# their figure tables; also saved to bench/results/<name>.md. Root only. Every benchmark
# measures its own baseline in the same run; nothing here asserts a time.
#
#   bench/run.sh                 # all: formation tool download join perf defrag restore recover
#   bench/run.sh formation join  # some
#   BENCH_TRIALS=10 BENCH_SIZES="3" bench/run.sh formation
#
# Each benchmark owns fleet net index 200+k (k: its position in the list below), away from
# the tests (100-199), so benchmarks and tests can share a host (though not its 2 cores:
# figures taken while tests run are noisy; the load average is printed with every table).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.." || exit 1
all=(formation tool download join perf defrag restore recover)
if ((EUID != 0)); then
  echo "bench/run.sh: run as root: it boots systemd-nspawn machines" >&2
  exit 1
fi
names=("$@")
((${#names[@]})) || names=("${all[@]}")
for n in "${names[@]}"; do
  [[ -f $here/$n.sh ]] || { echo "bench/run.sh: no benchmark '$n' (known: ${all[*]})" >&2; exit 1; }
done
scripts/install-deps.sh >&2 || exit 1
"$here/setup.sh" >&2 || exit 1
# BENCH_ETCDADM_BIN measures another build (e.g. of an earlier commit, named by
# BENCH_BINARY_COMMIT) with these scripts; by default the working tree's is built.
if [[ -n ${BENCH_ETCDADM_BIN:-} ]]; then
  ETCDADM_BIN=$BENCH_ETCDADM_BIN
else
  ETCDADM_BIN=$(scripts/build-static.sh) || exit 1
fi
export ETCDADM_BIN SCENARIO=bench FLEET_RESULTS=/dev/null BENCH_RESULTS=$here/results
mkdir -p "$here/results"
status=0
for n in "${names[@]}"; do
  index=200
  for i in "${!all[@]}"; do [[ ${all[i]} == "$n" ]] && index=$((200 + i)); done
  echo "=== bench $n (net index $index)" >&2
  out=$here/results/$n.md
  if FLEET_NET_INDEX=$index bash -c 'set -uo pipefail
    . tests/fleet/lib.sh; . tests/fleet/common.sh; . "$1/lib.sh"; . "$1/$2.sh"
    echo "# bench $2: $(date -u +%Y-%m-%dT%H:%MZ), etcdadm $("$ETCDADM_BIN" version 2>&1 | head -1), commit $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo " + uncommitted src changes")${BENCH_ETCDADM_BIN:+, binary $BENCH_ETCDADM_BIN built from ${BENCH_BINARY_COMMIT:-an unnamed commit}}"
    bench_main' _ "$here" "$n" | tee "$out.tmp"; then
    mv "$out.tmp" "$out"
  else
    echo "=== bench $n: FAILED (partial output in $out.tmp)" >&2
    status=1
  fi
done
exit "$status"
