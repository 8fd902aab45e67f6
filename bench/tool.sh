# shellcheck shell=bash
# The tool itself: size of the stripped static binary; peak RSS of `etcdadm bootstrap`
# (three machines forming a cluster), of a manual `etcdadm init` and of `etcdadm join`,
# each under GNU time inside its machine; start-up time of `etcdadm version` (hyperfine,
# on the host), next to /bin/true (process start-up floor) and etcd's own `etcdctl version`.
# Targets (from the issue): <= 15 MB, <= 30 MB RSS, <= 5 ms.
# BENCH_RUNS (default 300): hyperfine runs per command.

bench_main() {
  local bin=$ETCDADM_BIN size stripped
  size=$(stat -c %s "$bin")
  stripped=$(file -b "$bin" | grep -o 'not stripped\|stripped' | head -1)
  fleet_setup || return 1
  make_ca "$FLEET_RUN/ca" || return 1

  # peak RSS, bootstrap: GNU time as the unit's main process (it passes etcd's READY on,
  # NotifyAccess=all), -o into a file per machine
  local k names=() args=() m root
  for k in 1 2 3; do names+=("b$k"); args+=("b$k" "$k"); done
  bootstrap_prepare "$FLEET_RUN/ca" "$(static_yaml 3)" "${args[@]}" || return 1
  for m in "${names[@]}"; do
    root=$(fleet_root "$m")
    install -D -m 0755 /usr/bin/time "$root/usr/local/bin/gnu-time" &&
      install -D -m 0644 /dev/stdin "$root/etc/systemd/system/etcdadm-bootstrap.service.d/50-bench-time.conf" <<'EOF' || return 1
[Service]
NotifyAccess=all
ExecStart=
ExecStart=/usr/local/bin/gnu-time -v -o /var/lib/bench-bootstrap.time /opt/bin/etcdadm bootstrap
EOF
  done
  fleet_start "${names[@]}" || return 1
  all_ready "${names[@]}" || return 1
  local rss_boot=()
  for m in "${names[@]}"; do
    fleet_retry 30 test -s "$(fleet_root "$m")/var/lib/bench-bootstrap.time" || return 1
    rss_boot+=("$(maxrss "$(fleet_root "$m")/var/lib/bench-bootstrap.time")")
  done

  # peak RSS, init and join: etcdadm run by hand under GNU time
  machines i1 11 i2 12 || return 1
  for m in i1 i2; do install -D -m 0755 /usr/bin/time "$(fleet_root "$m")/usr/local/bin/gnu-time" || return 1; done
  fleet_exec i1 gnu-time -v -o /root/init.time etcdadm init >/dev/null 2>&1 || { fleet__fail "etcdadm init failed"; return 1; }
  copy_ca i1 i2 || return 1
  fleet_exec i2 gnu-time -v -o /root/join.time etcdadm join "https://$(fleet_ip 11):2379" >/dev/null 2>&1 ||
    { fleet__fail "etcdadm join failed"; return 1; }
  local rss_init rss_join
  rss_init=$(maxrss "$(fleet_root i1)/root/init.time")
  rss_join=$(maxrss "$(fleet_root i2)/root/join.time")
  local etcdctl=$FLEET_RUN/etcdctl
  cp "$(fleet_root i1)/opt/bin/etcdctl" "$etcdctl"

  # start-up: hyperfine on the host (no shell in between)
  local runs=${BENCH_RUNS:-300} json=$FLEET_RUN/hyperfine.json
  hyperfine -N --warmup 20 --runs "$runs" --export-json "$json" \
    "$bin version" "/bin/true" "$etcdctl version" >/dev/null 2>&1 || { fleet__fail "hyperfine failed"; return 1; }

  echo
  echo "## tool: size, memory, start-up"
  bench_load
  echo
  echo "| figure | measured | target | context |"
  echo "|---|---|---|---|"
  printf '| static binary size (%s) | %s | <= 15 MB | %s bytes |\n' "$stripped" "$(mb "$size")" "$size"
  printf '| peak RSS, `etcdadm bootstrap` (3 machines forming) | %s | <= 30 MB | per machine: %s |\n' \
    "$(mb "$(printf '%s\n' "${rss_boot[@]}" | sort -n | tail -1)")" "$(for r in "${rss_boot[@]}"; do printf '%s ' "$(mb "$r")"; done)"
  printf '| peak RSS, `etcdadm init` | %s | <= 30 MB | |\n' "$(mb "$rss_init")"
  printf '| peak RSS, `etcdadm join` (3.5.30 release download, learner, promote) | %s | <= 30 MB | |\n' "$(mb "$rss_join")"
  python3 - "$json" "$runs" <<'PY'
import json, sys
r = {x["command"].split("/")[-1]: x for x in json.load(open(sys.argv[1]))["results"]}
def f(x): return "%.2f ms (min %.2f, sd %.2f)" % (x["median"] * 1e3, x["min"] * 1e3, x["stddev"] * 1e3)
e = next(v for k, v in r.items() if k.startswith("etcdadm"))
t = r["true"]; c = next(v for k, v in r.items() if k.startswith("etcdctl"))
print("| start-up, `etcdadm version` (median of %s runs) | %s | <= 5 ms | `/bin/true`: %s; `etcdctl version` (Go): %s |"
      % (sys.argv[2], f(e), f(t), f(c)))
PY
  echo
  echo "RSS is GNU time's 'Maximum resident set size': the largest single process of the command"
  echo "(etcdadm itself; the systemctl it runs is smaller). MB = 10^6 bytes."
}

maxrss() { # GNU time -v output file: bytes
  awk -F': ' '/Maximum resident set size/ { print $2 * 1024 }' "$1"
}

mb() { python3 -c 'import sys; print("%.1f MB" % (int(sys.argv[1]) / 1e6))' "$1"; }
