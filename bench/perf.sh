# shellcheck shell=bash
# The formed cluster under load: `etcdctl check perf` (etcd's own 60 s write benchmark,
# load BENCH_PERF_LOAD, default s) against a 3-member cluster formed by `etcdadm bootstrap`
# and against one formed by the hand-written floor unit (same binaries, certificates and
# flags; see formation.sh). The clusters run one at a time, never together, on the same
# addresses; BENCH_PERF_RUNS (default 2) rounds, alternating etcdadm, floor.

bench_main() {
  local runs=${BENCH_PERF_RUNS:-2} r
  fleet_setup || return 1
  bench_clock_init
  make_ca "$FLEET_RUN/ca" || return 1
  floor_materials "$FLEET_RUN/ca" 1 2 3 || return 1
  local results=$FLEET_RUN/perf.tsv
  : >"$results"
  for ((r = 1; r <= runs; r++)); do
    perf_etcdadm "$r" >>"$results" || fleet_log "bench: perf etcdadm round $r failed (left out)"
    perf_floor "$r" >>"$results" || fleet_log "bench: perf floor round $r failed (left out)"
  done
  report "$results"
}

# etcdctl check perf from member 1 against all three members; prints
# "VARIANT ROUND WRITES_PER_S SLOWEST_S STDDEV_S VERDICT".
check_perf() { # VARIANT ROUND M
  local out eps=() k tput slow sd verdict
  for k in 1 2 3; do eps+=("https://$(fleet_ip "$k"):2379"); done
  local IFS=,
  out=$(fleet_exec "$3" /opt/bin/etcdctl --endpoints="${eps[*]}" --cacert=/etc/etcd/pki/ca.crt \
    --cert=/etc/etcd/pki/etcdctl-etcd-client.crt --key=/etc/etcd/pki/etcdctl-etcd-client.key \
    check perf --load="${BENCH_PERF_LOAD:-s}" 2>&1)
  unset IFS
  tput=$(sed -n 's/.*Throughput is \([0-9.]*\) writes\/s.*/\1/p' <<<"$out")
  slow=$(sed -n 's/.*Slowest request took \([0-9.]*\)s.*/\1/p' <<<"$out")
  sd=$(sed -n 's/.*Stddev is \([0-9.]*\)s.*/\1/p' <<<"$out")
  verdict=$(grep -xE 'PASS|FAIL' <<<"$out" | tail -1)
  [[ -n $tput && -n $slow ]] || { echo "check perf printed: $out" >&2; return 1; }
  echo "$1 $2 $tput $slow $sd ${verdict:-?}"
  fleet_log "bench: perf $1 round $2: $tput writes/s, slowest $slow s, stddev $sd s, $verdict"
}

perf_etcdadm() { # ROUND
  local names=(b1 b2 b3) rc=0
  bootstrap_prepare "$FLEET_RUN/ca" "$(static_yaml 3)" b1 1 b2 2 b3 3 || { bench_destroy "${names[@]}"; return 1; }
  fleet_start "${names[@]}" >/dev/null 2>&1 && all_ready "${names[@]}" && check_perf etcdadm "$1" b1 || rc=1
  bench_destroy "${names[@]}"
  return "$rc"
}

perf_floor() { # ROUND
  local names=(h1 h2 h3) k rc=0
  for k in 1 2 3; do floor_prepare "h$k" "$k" 3 "bench-perf-$1" || { bench_destroy "${names[@]}"; return 1; }; done
  fleet_start "${names[@]}" >/dev/null 2>&1 && bench_wait_active 120 etcd "${names[@]}" >/dev/null &&
    check_perf floor "$1" h1 || rc=1
  bench_destroy "${names[@]}"
  return "$rc"
}

report() { # RESULTS
  local f=$1 v e h
  echo
  echo "## perf: \`etcdctl check perf --load=${BENCH_PERF_LOAD:-s}\` on a 3-member cluster (median (min-max) over rounds)"
  bench_load
  echo
  echo "| cluster formed by | throughput | slowest request | stddev | verdicts |"
  echo "|---|---|---|---|---|"
  for v in etcdadm floor; do
    printf '| %s | %s | %s | %s | %s |\n' "$([[ $v == floor ]] && echo "floor (hand-written unit)" || echo "etcdadm bootstrap")" \
      "$(awk -v v="$v" '$1 == v { print $3 }' "$f" | bench_stats | bench_fmt_stdin writes/s 0)" \
      "$(awk -v v="$v" '$1 == v { print $4 }' "$f" | bench_stats | bench_fmt_stdin s 3)" \
      "$(awk -v v="$v" '$1 == v { print $5 }' "$f" | bench_stats | bench_fmt_stdin s 3)" \
      "$(awk -v v="$v" '$1 == v { print $6 }' "$f" | paste -sd' ')"
  done
  e=$(awk '$1 == "etcdadm" { print $3 }' "$f" | bench_stats)
  h=$(awk '$1 == "floor" { print $3 }' "$f" | bench_stats)
  echo
  echo "throughput ratio etcdadm/floor (median/median): $(bench_ratio "${e%% *}" "${h%% *}")"
  echo
  echo "check perf drives a fixed write rate (load s: 150 writes/s from 50 clients) and passes when the"
  echo "cluster keeps up; equal throughput means both kept up. Latency (slowest request) is what can differ."
  echo
  echo "raw rounds (variant round writes/s slowest stddev verdict):"
  sed 's/^/  /' "$f"
}

