# shellcheck shell=bash
# Helpers the benchmarks share (sourced by bench/run.sh after tests/fleet/lib.sh and
# tests/fleet/common.sh). Benchmarks print figures; they never assert times.

# --- clocks -------------------------------------------------------------------------------

# systemd inside a machine stamps unit state changes with CLOCK_MONOTONIC, which nspawn
# machines share with the host (no time namespace). bash only has the wall clock
# ($EPOCHREALTIME), so the offset between the two clocks is sampled once here (python3,
# which the fleet harness needs anyway) and every monotonic stamp is turned into wall time.
bench_clock_init() {
  BENCH_MONO_OFFSET_US=$(python3 -c 'import time
r = []
for _ in range(5):
    a = time.clock_gettime_ns(time.CLOCK_REALTIME); m = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    b = time.clock_gettime_ns(time.CLOCK_REALTIME); r.append((b - a, (a + b) // 2 - m))
print(min(r)[1] // 1000)')
}

bench_now_us() { echo "${EPOCHREALTIME/./}"; }

# ActiveEnterTimestampMonotonic of UNIT in M, as host wall-clock microseconds, once UNIT is
# active (0 while it is not); fails when M is down.
bench__active_at() { # M UNIT
  local out state mono
  out=$(fleet__in "$1" systemctl show -p ActiveState -p ActiveEnterTimestampMonotonic "$2") || return 1
  state=$(sed -n 's/^ActiveState=//p' <<<"$out")
  mono=$(sed -n 's/^ActiveEnterTimestampMonotonic=//p' <<<"$out")
  if [[ $state == active && ${mono:-0} -gt 0 ]]; then
    echo $((mono + BENCH_MONO_OFFSET_US))
  else
    echo 0
  fi
}

# Waits until UNIT is active in every machine and prints the latest activation time (host
# wall-clock microseconds). Polls every 0.3 s; the figure comes from systemd's own
# timestamp, so the polling interval does not change it.
bench_wait_active() { # SECONDS UNIT M...
  local deadline=$((SECONDS + $1)) unit=$2 m t last=0
  shift 2
  for m; do
    while t=$(bench__active_at "$m" "$unit") && ((t == 0)); do
      if ((SECONDS >= deadline)); then
        fleet_log "bench: $unit on $m not active after $1 s"
        fleet__in "$m" systemctl status --no-pager "$unit" >&2
        return 1
      fi
      sleep 0.3
    done
    [[ -n $t ]] || { fleet_log "bench: $m is down"; return 1; }
    ((t > last)) && last=$t
  done
  echo "$last"
}

# When UNIT in M first logged a line matching the extended regex PATTERN, as host
# wall-clock microseconds (journald's monotonic stamp); "-" when it never did.
bench_logged_at() { # M UNIT PATTERN
  local journal line mono
  # read whole, then searched: grep -m1 in the pipe would end journalctl with SIGPIPE, which
  # pipefail turns into a failure
  journal=$(fleet__in "$1" journalctl -q -b -u "$2" -o short-monotonic --no-pager) || { echo -; return 0; }
  line=$(grep -m1 -E "$3" <<<"$journal") || { echo -; return 0; }
  mono=$(sed -E 's/^\[ *([0-9]+)\.([0-9]{6})\].*/\1\2/' <<<"$line")
  [[ $mono =~ ^[0-9]+$ ]] || { echo -; return 0; }
  echo $((10#$mono + BENCH_MONO_OFFSET_US))
}

# The latest bench_logged_at over the machines; "-" when one of them never logged it.
bench_latest_logged() { # UNIT PATTERN M...
  local unit=$1 pattern=$2 m v last=0
  shift 2
  for m; do
    v=$(bench_logged_at "$m" "$unit" "$pattern")
    [[ $v == - ]] && { echo -; return 0; }
    ((v > last)) && last=$v
  done
  echo "$last"
}

# The latest PROP (a *TimestampMonotonic property of UNIT) over the machines, as host
# wall-clock microseconds; 0 when a machine has no such stamp.
bench_latest() { # UNIT PROP M...
  local unit=$1 prop=$2 m v last=0
  shift 2
  for m; do
    v=$(fleet__in "$m" systemctl show -p "$prop" --value "$unit") || return 1
    ((v == 0)) && { echo 0; return 0; }
    v=$((v + BENCH_MONO_OFFSET_US))
    ((v > last)) && last=$v
  done
  echo "$last"
}

# Seconds (3 decimals) between two microsecond stamps.
bench_secs() { # FROM_US TO_US
  python3 -c 'import sys; print("%.3f" % ((int(sys.argv[2]) - int(sys.argv[1])) / 1e6))' "$1" "$2"
}

# bench_secs, or "-" when TO_US is "-".
bench_secs_or_dash() { # FROM_US TO_US
  if [[ $2 == - ]]; then echo -; else bench_secs "$1" "$2"; fi
}

# --- machines -----------------------------------------------------------------------------

# Crashes M (if it runs) and removes it entirely, so its name and address can be used again
# and its overlay does not fill the disk.
bench_destroy() { # M...
  local m d name
  for m; do
    d=$FLEET_RUN/$m
    [[ -d $d ]] || continue
    touch "$d/stop"
    fleet_running "$m" && fleet_kill "$m" >/dev/null 2>&1
    fleet__umount_under "$d/"
    name=$(fleet__name "$m") && fleet__rm_cgroups "$name"
    rm -rf --one-file-system "$d"
  done
}

# --- statistics ---------------------------------------------------------------------------

# Reads numbers (one per line) on stdin; prints "median min max n".
bench_stats() {
  python3 -c 'import statistics, sys
v = [float(x) for x in sys.stdin.read().split()]
print("%.3f %.3f %.3f %d" % (statistics.median(v), min(v), max(v), len(v)) if v else "nan nan nan 0")'
}

# "median (min-max)" with UNIT, from "median min max n".
bench_fmt() { # "MEDIAN MIN MAX N" [UNIT] [DIGITS]
  local -a s
  read -ra s <<<"$1"
  python3 -c 'import sys
m, lo, hi, u, d = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
print("%.*f %s (%.*f-%.*f)" % (d, m, u, d, lo, d, hi))' "${s[0]}" "${s[1]}" "${s[2]}" "${2:-s}" "${3:-2}"
}

bench_fmt_stdin() { bench_fmt "$(cat)" "$@"; } # [UNIT] [DIGITS]

bench_ratio() { # A B: A/B with 2 decimals
  python3 -c 'import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print("%.2f" % (a / b) if b else "n/a")' "$1" "$2"
}

# One line about the host's load, printed with every figure table: the figures mean little
# when other jobs share the 2 cores.
bench_load() {
  local l
  read -r l _ </proc/loadavg
  echo "host: $(nproc) cores, load average (1 min) $l at $(date -u +%H:%M:%SZ)"
}

# The table of a benchmark with two variants, "etcdadm" and "floor", whose RESULTS lines
# are "VARIANT TRIAL SECONDS" or "VARIANT TRIAL failed" (failed trials counted, not timed).
bench_report_pair() { # RESULTS TITLE ETCDADM_LABEL FLOOR_LABEL
  local f=$1 e h
  e=$(awk '$1 == "etcdadm" && $3 != "failed" { print $3 }' "$f" | bench_stats)
  h=$(awk '$1 == "floor" && $3 != "failed" { print $3 }' "$f" | bench_stats)
  echo
  echo "## $2"
  bench_load
  echo
  echo "| variant | time | vs floor (median/median) | trials ok | failed |"
  echo "|---|---|---|---|---|"
  printf '| %s | %s | %s | %s | %s |\n' "$3" \
    "$(bench_fmt "$e")" "$(bench_ratio "${e%% *}" "${h%% *}")" "${e##* }" "$(grep -c '^etcdadm .* failed$' "$f")"
  printf '| %s | %s | 1.00 | %s | %s |\n' "$4" "$(bench_fmt "$h")" "${h##* }" "$(grep -c '^floor .* failed$' "$f")"
  echo
  echo "raw trials (variant trial seconds):"
  sed 's/^/  /' "$f"
}

# --- the floor: hand-prepared etcd members -------------------------------------------------

# The etcd flags etcdadm writes, hand-written for member K of N (address fleet_ip K) with a
# predetermined initial cluster: what an operator writes without etcdadm.
floor_env() { # K N TOKEN
  local k=$1 n=$2 token=$3 i ip cluster=() name
  ip=$(fleet_ip "$k")
  for ((i = 1; i <= n; i++)); do
    cluster+=("etcd-${FLEET_IP_PREFIX:-10-213-$FLEET_NET}-$((10 + i))=https://$(fleet_ip "$i"):2380")
  done
  name=etcd-${FLEET_IP_PREFIX:-10-213-$FLEET_NET}-$((10 + k))
  local IFS=,
  cat <<EOF
ETCD_NAME=$name
ETCD_DATA_DIR=/var/lib/etcd
ETCD_LISTEN_CLIENT_URLS=https://$ip:2379,https://127.0.0.1:2379
ETCD_ADVERTISE_CLIENT_URLS=https://$ip:2379
ETCD_LISTEN_PEER_URLS=https://$ip:2380
ETCD_INITIAL_ADVERTISE_PEER_URLS=https://$ip:2380
ETCD_INITIAL_CLUSTER=${cluster[*]}
ETCD_INITIAL_CLUSTER_STATE=new
ETCD_INITIAL_CLUSTER_TOKEN=$token
ETCD_LISTEN_METRICS_URLS=http://127.0.0.1:2381
ETCD_CERT_FILE=/etc/etcd/pki/server.crt
ETCD_KEY_FILE=/etc/etcd/pki/server.key
ETCD_TRUSTED_CA_FILE=/etc/etcd/pki/ca.crt
ETCD_CLIENT_CERT_AUTH=true
ETCD_PEER_CERT_FILE=/etc/etcd/pki/peer.crt
ETCD_PEER_KEY_FILE=/etc/etcd/pki/peer.key
ETCD_PEER_TRUSTED_CA_FILE=/etc/etcd/pki/ca.crt
ETCD_PEER_CLIENT_CERT_AUTH=true
ETCD_STRICT_RECONFIG_CHECK=true
EOF
}

floor_unit() {
  cat <<'EOF'
[Unit]
Description=etcd (hand-written, benchmark floor)
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
EnvironmentFile=/etc/etcd/etcd.env
ExecStart=/opt/bin/etcd
Restart=on-failure
RestartSec=5s
TimeoutStartSec=infinity
LimitNOFILE=65536
Nice=-10
IOSchedulingClass=best-effort
IOSchedulingPriority=2

[Install]
WantedBy=multi-user.target
EOF
}

# Once per run: machines at addresses K... (stopped afterwards) get their member
# certificates from CA_DIR with `etcdadm init phase certificates`, and the etcd binaries and
# etcdctl wrapper with `init phase install` and `init phase etcdctl`, exactly as etcdadm
# would make them; the files are kept in $FLEET_RUN/floor/<K>/ for floor_prepare.
floor_materials() { # CA_DIR K...
  local ca=$1 k m names=() args=() root d pids=()
  shift
  for k; do
    names+=("p$k")
    args+=("p$k" "$k")
  done
  machines "${args[@]}" || return 1
  for m in "${names[@]}"; do
    copy_ca_from_dir "$ca" "$m" || return 1
    (ea "$m" init phase install >/dev/null && ea "$m" init phase certificates >/dev/null &&
      ea "$m" init phase etcdctl >/dev/null) 2>"$FLEET_RUN/prep-$m.log" &
    pids+=($!)
  done
  wait "${pids[@]}" # not a bare wait: the mirror's HTTP server is a child too
  for k; do
    root=$(fleet_root "p$k")
    d=$FLEET_RUN/floor/$k
    mkdir -p "$d" || return 1
    cp -a "$root/etc/etcd/pki" "$root/etc/etcd/etcdctl.env" "$root/opt/bin" "$d/" ||
      { cat "$FLEET_RUN/prep-p$k.log" >&2; return 1; }
    [[ -x $d/bin/etcd && -s $d/pki/server.crt && -s $d/pki/peer.crt ]] ||
      { fleet__fail "floor: p$k lacks etcd or certificates: $(cd "$d" && echo bin/* pki/*)"; return 1; }
  done
  bench_destroy "${names[@]}"
  fleet_log "floor: materials for addresses $* in $FLEET_RUN/floor"
}

copy_ca_from_dir() { # CA_DIR M
  install -D -m 0644 "$1/ca.crt" "$(fleet_root "$2")/etc/etcd/pki/ca.crt" &&
    install -D -m 0600 "$1/ca.key" "$(fleet_root "$2")/etc/etcd/pki/ca.key"
}

# Creates (does not start) machine M at address K as member K of an N-member cluster started
# by the hand-written unit: binaries, certificates, environment, unit enabled.
floor_prepare() { # M K N TOKEN
  local m=$1 k=$2 n=$3 root src=$FLEET_RUN/floor/$2
  fleet_create "$m" "$k" || return 1
  root=$(fleet_root "$m")
  mkdir -p "$root/opt/bin" "$root/etc/etcd" "$root/etc/systemd/system/multi-user.target.wants" &&
    cp -a "$src/bin/." "$root/opt/bin/" && cp -a "$src/pki" "$root/etc/etcd/" &&
    cp -a "$src/etcdctl.env" "$root/etc/etcd/" &&
    floor_env "$k" "$n" "$4" >"$root/etc/etcd/etcd.env" &&
    floor_unit >"$root/etc/systemd/system/etcd.service" &&
    ln -sf ../etcd.service "$root/etc/systemd/system/multi-user.target.wants/etcd.service"
}

floor_voters() { # N M...: every floor machine sees N started voters
  local n=$1 m
  shift
  for m; do
    assert_eq "$n" "$(fleet_exec "$m" /opt/bin/etcdctl.sh member list | grep -c ', started, .*, false$')" "started voters seen by $m" || return 1
  done
}

# The bootstrap configuration for static discovery of members 1..N.
static_yaml() { # N
  local n=$1 i peers=()
  for ((i = 1; i <= n; i++)); do peers+=("$(fleet_ip "$i")"); done
  local IFS=,
  printf 'release-url: %s\nversion: %s\nbootstrap:\n  discovery:\n    provider: static\n    peers: [%s]\n' \
    "$MIRROR_URL" "$ETCD_VERSION" "${peers[*]}"
}

# A 3-member cluster on m1..m3, made with etcdadm init and join (the trials' starting point).
bench_cluster3() {
  local v
  fleet_setup || return 1
  machines m1 1 m2 2 m3 3 || return 1
  ea m1 init >/dev/null 2>&1 || { fleet__fail "etcdadm init failed"; return 1; }
  for v in m2 m3; do
    if ! { copy_ca m1 "$v" && ea "$v" join "https://$(fleet_ip 1):2379" >/dev/null 2>&1; }; then
      fleet__fail "etcdadm join $v failed"
      return 1
    fi
  done
  assert_eq 3 "$(started_voters m1)" "voters before the trials"
}
