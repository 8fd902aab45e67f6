# shellcheck shell=bash
# Backups: `etcdadm backup` streams a checked snapshot into backup-dir (0600), keeps the
# newest backup-keep, its timer is installed; `init --snapshot` of one restores the keys.
# The timer's service writes the textfile metrics (promtool parses them; the size is the
# snapshot's on disk); a failed run keeps the last success. With restore-bump-revision the
# restored cluster's revision jumps by that much and the backup's revisions read as
# compacted, as a kube-apiserver watcher would see them; without it, they do not.

scenario() {
  fleet_setup || return 1
  machines m1 1 m2 2 m3 3 || return 1
  check "init on m1" ea_out out m1 init
  check "data to back up" ectl m1 put /backup/k v1
  local i
  for i in 1 2 3; do
    check "backup $i (keep 2)" ea_out out m1 backup --keep 2
  done
  check "two snapshots kept, mode 0600" kept_two m1
  check "the backup timer is installed and enabled" fleet_exec m1 systemctl -q is-enabled etcdadm-backup.timer
  check "the timer's service takes a snapshot too" timer_backup m1
  check "the service wrote etcdadm-backup.prom and etcdadm-db.prom: success, the snapshot's size, the quota" backup_metrics m1
  check "init --snapshot of the newest backup restores the keys on m2" restore_on m2
  check "without restore-bump-revision the restored revision stays below 1000000 and the key's revision reads" revision_kept m2
  check "with restore-bump-revision: 1000000 in config.d, init --snapshot on m3 restores the keys" bumped_restore_on m3
  check "on m3 the revision is at least 1000000 and a read at the key's old revision is refused as compacted" revision_bumped m3
  check "a failed backup run (etcd stopped) reports failure and keeps the last success" failed_backup_metrics m1
}

kept_two() { # M
  assert_eq "600 600" "$(fleet_exec "$1" sh -c 'stat -c %a /var/backups/etcd/m1-*.db' | tr '\n' ' ' | sed 's/ $//')" "snapshots"
}

timer_backup() { # M
  local before
  before=$(fleet_exec "$1" sh -c 'ls /var/backups/etcd | tail -1')
  # the backups by hand created the metrics directory; the sandboxed service writes anew
  fleet_exec "$1" rm -f "$TEXTFILE_DIR/etcdadm-backup.prom" "$TEXTFILE_DIR/etcdadm-db.prom" || return 1
  fleet_exec "$1" systemctl start etcdadm-backup.service || return 1
  [[ $(fleet_exec "$1" sh -c 'ls /var/backups/etcd | tail -1') != "$before" ]] || fleet__fail "no new snapshot"
}

backup_metrics() { # M
  local newest
  newest=$(fleet_exec "$1" sh -c 'ls /var/backups/etcd/m1-*.db | tail -1') || return 1
  textfile_ok "$1" etcdadm-backup.prom && textfile_ok "$1" etcdadm-db.prom &&
    assert_eq 1 "$(metric_value "$1" etcdadm-backup.prom etcdadm_backup_last_run_success)" "last run success" &&
    assert_eq "$(fleet_exec "$1" stat -c %s "$newest")" "$(metric_value "$1" etcdadm-backup.prom etcdadm_backup_last_size_bytes)" "size of $newest" &&
    assert_eq $((2 * 1024 * 1024 * 1024)) "$(metric_value "$1" etcdadm-db.prom etcdadm_db_quota_bytes)" "quota" &&
    (($(metric_value "$1" etcdadm-db.prom etcdadm_db_size_bytes) > 0))
}

failed_backup_metrics() { # M
  local success
  success=$(metric_value "$1" etcdadm-backup.prom etcdadm_backup_last_success_timestamp_seconds)
  [[ -n $success ]] || return 1
  fleet_exec "$1" systemctl stop etcd.service || return 1
  if fleet_exec "$1" systemctl start etcdadm-backup.service; then
    fleet__fail "the backup service succeeded without etcd" || return 1
  fi
  textfile_ok "$1" etcdadm-backup.prom &&
    assert_eq 0 "$(metric_value "$1" etcdadm-backup.prom etcdadm_backup_last_run_success)" "last run success" &&
    assert_eq "$success" "$(metric_value "$1" etcdadm-backup.prom etcdadm_backup_last_success_timestamp_seconds)" "last success timestamp"
}

# The revision of the restored cluster (etcd's header) and of /backup/k (its mod_revision).
revisions() { # M
  ectl "$1" get /backup/k -w json | python3 -c 'import json, sys
r = json.load(sys.stdin)
print(r["header"]["revision"], r["kvs"][0]["mod_revision"])'
}

revision_kept() { # M
  local rev mod
  read -r rev mod < <(revisions "$1") || return 1
  ((rev < 1000000)) || fleet__fail "header revision $rev, expected below 1000000" || return 1
  assert_eq v1 "$(ectl "$1" get /backup/k --rev="$mod" --print-value-only)" "value at revision $mod"
}

bumped_restore_on() { # M
  fleet_exec "$1" sh -c 'mkdir -p /etc/etcdadm/config.d && echo "restore-bump-revision: 1000000" > /etc/etcdadm/config.d/50-bump.yaml' &&
    restore_on "$1"
}

revision_bumped() { # M
  local rev mod out
  read -r rev mod < <(revisions "$1") || return 1
  ((rev >= 1000000)) || fleet__fail "header revision $rev, expected at least 1000000" || return 1
  if out=$(ectl "$1" get /backup/k --rev="$mod" 2>&1); then
    fleet__fail "a read at revision $mod succeeded: $out"
    return 1
  fi
  [[ $out == *"compacted"* ]] || fleet__fail "a read at revision $mod failed, but not as compacted: $out"
}

restore_on() { # M
  local newest
  newest=$(fleet_exec m1 sh -c 'ls /var/backups/etcd/m1-*.db | tail -1') || return 1
  install -D -m 0600 "$(fleet_root m1)$newest" "$(fleet_root "$1")/root/restore.db" || return 1
  ea_out out "$1" init --snapshot /root/restore.db || return 1
  assert_eq v1 "$(ectl "$1" get /backup/k --print-value-only)" "restored value"
}
