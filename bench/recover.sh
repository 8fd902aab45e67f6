# shellcheck shell=bash
# Quorum loss (issue 15): a 3-member cluster holding about BENCH_RECOVER_MB MB (default 100)
# loses two machines for good; the survivor is made a writable one-member cluster. Per
# trial, on a new cluster each time (not timed: built, filled, two members destroyed), in
# turn:
#   etcdadm   the cluster made with `etcdadm init` / `join`; timed: `etcdadm recover --yes`
#             on the survivor (preflight, snapshot, restore, etcd restarted as one member);
#   floor     the cluster started by the hand-written unit with predetermined members;
#             timed: etcd's documented path by hand: `etcdctl snapshot save` from the
#             survivor, `systemctl stop etcd`, the data directory moved aside,
#             `etcdutl snapshot restore` as a one-member cluster with a new token, the
#             environment file's initial cluster and token rewritten, `systemctl start etcd`.
# Each timed from the command's start until a put through the survivor succeeds (tried
# every 0.1 s after the command returned). Then the keys are counted; a wrong count is a
# failed trial, counted. BENCH_TRIALS (default 5) trials per variant, interleaved.

bench_main() {
  local trials=${BENCH_TRIALS:-5} mb=${BENCH_RECOVER_MB:-100} t
  fleet_setup || return 1
  bench_clock_init
  make_ca "$FLEET_RUN/ca" || return 1
  floor_materials "$FLEET_RUN/ca" 1 2 3 || return 1
  RECOVER_KEYS=$((mb * 100 / 113)) # values of 1 MB, about 1.13 MB of database each
  local results=$FLEET_RUN/recover.tsv
  : >"$results"
  for ((t = 1; t <= trials; t++)); do
    trial_etcdadm "$t" >>"$results" || { echo "etcdadm $t failed" >>"$results"; fleet_log "bench: recover etcdadm trial $t failed"; }
    trial_floor "$t" >>"$results" || { echo "floor $t failed" >>"$results"; fleet_log "bench: recover floor trial $t failed"; }
  done
  report "$results"
}

fill() { # M: RECOVER_KEYS values of 1 MB under /bench/, through M
  fleet_exec "$1" sh -c "for i in \$(seq 1 $RECOVER_KEYS); do head -c 750000 /dev/urandom | base64 -w0 | /opt/bin/etcdctl.sh put /bench/\$i >/dev/null || exit 1; done"
}

keys_seen() { # M
  ectl "$1" get /bench/ --prefix --keys-only | grep -c '^/bench/'
}

# Runs CMD... in M and prints the seconds from its start until a put through M succeeds.
until_writable() { # M CMD...
  local m=$1 t0 deadline=$((SECONDS + 300))
  shift
  t0=$(bench_now_us)
  "$@" >/dev/null 2>"$FLEET_RUN/recover.err" || { tail -5 "$FLEET_RUN/recover.err" >&2; return 1; }
  until ectl "$m" put /bench-written yes >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "$m not writable after 300 s" >&2; return 1; }
    sleep 0.1
  done
  bench_secs "$t0" "$(bench_now_us)"
}

trial_etcdadm() { # T
  local t=$1 s rc=0 v
  machines e1 1 e2 2 e3 3 >/dev/null 2>&1 || { bench_destroy e1 e2 e3; return 1; }
  if ! { copy_ca_from_dir "$FLEET_RUN/ca" e1 && ea e1 init >/dev/null 2>&1; }; then
    bench_destroy e1 e2 e3
    return 1
  fi
  for v in e2 e3; do
    if ! { copy_ca_from_dir "$FLEET_RUN/ca" "$v" && ea "$v" join "https://$(fleet_ip 1):2379" >/dev/null 2>&1; }; then
      bench_destroy e1 e2 e3
      return 1
    fi
  done
  fill e1 || { bench_destroy e1 e2 e3; return 1; }
  bench_destroy e2 e3
  if s=$(until_writable e1 ea e1 recover --yes) &&
    assert_eq "$RECOVER_KEYS" "$(keys_seen e1)" "keys read through e1 after etcdadm recover"; then
    echo "etcdadm $t $s"
    cp "$FLEET_RUN/recover.err" "$BENCH_RESULTS/recover-etcdadm-trial$t.log" # its log: where the time goes
    fleet_log "bench: recover etcdadm trial $t: writable after $s s"
  else
    rc=1
  fi
  bench_destroy e1
  return "$rc"
}

# etcd's disaster-recovery steps, by hand, on a member started by the hand-written unit.
manual_recover() { # M TOKEN
  fleet_exec "$1" sh -ec '
    set -a; . /etc/etcd/etcd.env; set +a
    self="$ETCD_NAME=$ETCD_INITIAL_ADVERTISE_PEER_URLS"
    /opt/bin/etcdctl.sh snapshot save /root/recover.db
    systemctl stop etcd
    mv /var/lib/etcd /var/lib/etcd.old
    /opt/bin/etcdutl snapshot restore /root/recover.db --name "$ETCD_NAME" --initial-cluster "$self" \
      --initial-cluster-token "$0" --initial-advertise-peer-urls "$ETCD_INITIAL_ADVERTISE_PEER_URLS" --data-dir /var/lib/etcd
    sed -i -e "s|^ETCD_INITIAL_CLUSTER=.*|ETCD_INITIAL_CLUSTER=$self|" \
      -e "s|^ETCD_INITIAL_CLUSTER_TOKEN=.*|ETCD_INITIAL_CLUSTER_TOKEN=$0|" /etc/etcd/etcd.env
    systemctl start etcd' "$2"
}

trial_floor() { # T
  local t=$1 s rc=0 k names=(h1 h2 h3)
  for k in 1 2 3; do
    floor_prepare "h$k" "$k" 3 "bench-recover-$t" || { bench_destroy "${names[@]}"; return 1; }
  done
  if ! { fleet_start "${names[@]}" >/dev/null 2>&1 && bench_wait_active 120 etcd "${names[@]}" >/dev/null &&
    fill h1; }; then
    bench_destroy "${names[@]}"
    return 1
  fi
  bench_destroy h2 h3
  if s=$(until_writable h1 manual_recover h1 "bench-recovered-$t") &&
    assert_eq "$RECOVER_KEYS" "$(keys_seen h1)" "keys read through h1 after the hand recovery"; then
    echo "floor $t $s"
    fleet_log "bench: recover floor trial $t: writable after $s s"
  else
    rc=1
  fi
  bench_destroy h1
  return "$rc"
}

report() { # RESULTS
  bench_report_pair "$1" \
    "recover after quorum loss: command started -> the survivor takes a write ($RECOVER_KEYS values of 1 MB; seconds, median (min-max))" \
    '`etcdadm recover --yes`' \
    'floor: snapshot save, stop, move aside, `etcdutl snapshot restore`, env rewritten, start'
}
