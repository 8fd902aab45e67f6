# shellcheck shell=bash
# Restore after total loss (issue 15): three new machines booted at once, none with member
# data, all with the same snapshot of about BENCH_RESTORE_MB MB (default 100) on their disk,
# until a 3-member cluster holding the snapshot's keys serves. Per trial, in turn:
#   etcdadm   `etcdadm bootstrap` (static discovery) with `bootstrap.restore-from:` naming
#             the snapshot file: one machine restores it as a one-member cluster, the other
#             two join it (etcd sends them the data); it downloads and installs etcd too.
#             Timed from the start of the machines to the last READY=1 of etcdadm-bootstrap.
#   floor     etcd's documented multi-member restore by hand: the binaries and certificates
#             in place before boot, a hand-written unit whose ExecStartPre runs
#             `etcdutl snapshot restore` with the member's name, the predetermined initial
#             cluster and a token when the data directory is absent; every member restores
#             its own copy. Timed from the start to the last etcd.service active (etcd's
#             READY=1).
# After each trial the keys are counted through the second machine (a trial whose count is
# wrong is reported as failed and left out of the figures, and counted).
# BENCH_TRIALS (default 5) trials per variant, interleaved.

RESTORE_PATH=/var/lib/etcdadm-restore/snapshot.db

bench_main() {
  local trials=${BENCH_TRIALS:-5} mb=${BENCH_RESTORE_MB:-100} t
  fleet_setup || return 1
  bench_clock_init
  make_ca "$FLEET_RUN/ca" || return 1
  floor_materials "$FLEET_RUN/ca" 1 2 3 || return 1
  make_snapshot "$((mb * 100 / 113))" || return 1
  local results=$FLEET_RUN/restore.tsv
  : >"$results"
  for ((t = 1; t <= trials; t++)); do
    trial_etcdadm "$t" >>"$results" || { echo "etcdadm $t failed" >>"$results"; fleet_log "bench: restore etcdadm trial $t failed"; }
    trial_floor "$t" >>"$results" || { echo "floor $t failed" >>"$results"; fleet_log "bench: restore floor trial $t failed"; }
  done
  report "$results"
}

# $FLEET_RUN/snapshot.db: N values of 1 MB under /bench/ (the file: about 1.13 MB a value), saved by `etcdctl snapshot save`
# from a one-member cluster made with etcdadm init on a machine destroyed afterwards.
make_snapshot() { # N
  local n=$1
  if ! { machines s1 9 >/dev/null 2>&1 && copy_ca_from_dir "$FLEET_RUN/ca" s1 && ea s1 init >/dev/null 2>&1; }; then
    fleet__fail "restore: the snapshot's cluster could not be made"
    return 1
  fi
  fleet_exec s1 sh -c "for i in \$(seq 1 $n); do head -c 750000 /dev/urandom | base64 -w0 | etcdctl put /bench/\$i >/dev/null || exit 1; done" ||
    { fleet__fail "restore: writing $n values failed"; return 1; }
  if ! { fleet_exec s1 etcdctl snapshot save /root/snapshot.db >/dev/null 2>&1 &&
    cp "$(fleet_root s1)/root/snapshot.db" "$FLEET_RUN/snapshot.db"; }; then
    fleet__fail "restore: snapshot save failed"
    return 1
  fi
  RESTORE_KEYS=$n
  RESTORE_BYTES=$(stat -c %s "$FLEET_RUN/snapshot.db")
  bench_destroy s1
  fleet_log "restore: snapshot of $n keys, $RESTORE_BYTES bytes"
}

put_snapshot() { # M
  install -D -m 0600 "$FLEET_RUN/snapshot.db" "$(fleet_root "$1")$RESTORE_PATH"
}

keys_seen() { # M: the number of /bench/ keys read through M
  ectl "$1" get /bench/ --prefix --keys-only | grep -c '^/bench/'
}

# Prints "etcdadm T READY".
trial_etcdadm() { # T
  local t=$1 k names=() args=() t0 ready rc=0 yaml
  yaml="$(static_yaml 3)"$'\n'"  restore-from: $RESTORE_PATH"
  for k in 1 2 3; do
    names+=("b$k")
    args+=("b$k" "$k")
  done
  bootstrap_prepare "$FLEET_RUN/ca" "$yaml" "${args[@]}" || { bench_destroy "${names[@]}"; return 1; }
  for k in "${names[@]}"; do put_snapshot "$k" || { bench_destroy "${names[@]}"; return 1; }; done
  t0=$(bench_now_us)
  fleet_start "${names[@]}" >/dev/null 2>&1 || rc=1
  if ((rc == 0)) && ready=$(bench_wait_active 600 etcdadm-bootstrap "${names[@]}") &&
    one_cluster_of 3 "${names[@]}" >/dev/null &&
    assert_eq "$RESTORE_KEYS" "$(keys_seen b2)" "keys read through b2 after the etcdadm restore"; then
    printf 'etcdadm %s %s\n' "$t" "$(bench_secs "$t0" "$ready")"
    if ((t == 1)); then # where the time goes
      for k in "${names[@]}"; do
        fleet_journal "$k" -o short-monotonic | grep -E 'etcdadm\[|etcd\[|systemd\[1\]: (Starting|Started) (etcd|etcdadm)' >"$BENCH_RESULTS/restore-journal-$k.txt" 2>&1
      done
    fi
    fleet_log "bench: restore etcdadm trial $t: ready after $(bench_secs "$t0" "$ready") s"
  else
    rc=1
  fi
  bench_destroy "${names[@]}"
  return "$rc"
}

# The hand-written unit with etcd's documented restore in front of etcd.
floor_restore_unit() {
  floor_unit | sed "/^ExecStart=/i ExecStartPre=/bin/sh -c 'test -d /var/lib/etcd/member || /opt/bin/etcdutl snapshot restore $RESTORE_PATH --name \"\$ETCD_NAME\" --initial-cluster \"\$ETCD_INITIAL_CLUSTER\" --initial-cluster-token \"\$ETCD_INITIAL_CLUSTER_TOKEN\" --initial-advertise-peer-urls \"\$ETCD_INITIAL_ADVERTISE_PEER_URLS\" --data-dir /var/lib/etcd'"
}

# Prints "floor T ETCD_ACTIVE".
trial_floor() { # T
  local t=$1 k names=() t0 ready rc=0
  for k in 1 2 3; do
    names+=("h$k")
    if ! { floor_prepare "h$k" "$k" 3 "bench-restore-$t" && put_snapshot "h$k" &&
      floor_restore_unit >"$(fleet_root "h$k")/etc/systemd/system/etcd.service"; }; then
      bench_destroy "${names[@]}"
      return 1
    fi
  done
  t0=$(bench_now_us)
  fleet_start "${names[@]}" >/dev/null 2>&1 || rc=1
  if ((rc == 0)) && ready=$(bench_wait_active 600 etcd "${names[@]}") && floor_voters 3 "${names[@]}" &&
    assert_eq "$RESTORE_KEYS" "$(keys_seen h2)" "keys read through h2 after the hand restore"; then
    printf 'floor %s %s\n' "$t" "$(bench_secs "$t0" "$ready")"
    fleet_log "bench: restore floor trial $t: etcd active after $(bench_secs "$t0" "$ready") s"
  else
    rc=1
  fi
  bench_destroy "${names[@]}"
  return "$rc"
}

report() { # RESULTS
  bench_report_pair "$1" \
    "restore after total loss: 3 machines started -> 3-member cluster serving a snapshot of $RESTORE_KEYS keys, $((RESTORE_BYTES / 1000000)) MB (seconds, median (min-max))" \
    '`etcdadm bootstrap` with `restore-from` (downloads etcd; one restores, two join)' \
    'floor: hand-written unit, `etcdutl snapshot restore` on every member'
}
