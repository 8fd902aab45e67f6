# shellcheck shell=bash
# Total loss, restored by bootstrap (bootstrap.restore-from): a 3-machine bootstrap cluster
# backs up to an S3-compatible store (moto on the host); every machine is destroyed; three
# new machines boot with the same configuration plus `restore-from: s3://…/` and form one
# cluster from the newest backup: exactly one of them restores (its journal says so, the
# others' do not), the others join it, every key written before the backup is read back
# through a member that did not restore, a key written after the backup is absent, and the
# cluster id is not the lost cluster's. Repeated five times, each time with three new
# machines at the same addresses. A restore-from prefix that holds no snapshot fails the
# boot clearly and forms no cluster.

S3_PORT=9088
S3_BUCKET=etcd-dr
S3_CREDS=(AWS_ACCESS_KEY_ID=AKIDFLEETEXAMPLE AWS_SECRET_ACCESS_KEY=fleet-secret-not-printed)
RESTORE_ROUNDS=5
KEYS=20

scenario() {
  fleet_setup || return 1
  fleet_secret fleet-secret-not-printed
  S3_ENDPOINT=http://10.213.$FLEET_NET.1:$S3_PORT
  s3_start && s3_py create-bucket "$S3_BUCKET" && make_ca "$FLEET_RUN/ca" || return 1
  BASE_YAML="release-url: $MIRROR_URL
version: $ETCD_VERSION
backup-s3-url: s3://$S3_BUCKET/cluster/
backup-s3-endpoint: $S3_ENDPOINT
bootstrap:
  discovery:
    provider: static
    peers: [$(fleet_ip 1), $(fleet_ip 2), $(fleet_ip 3)]
"
  dr_machines "$BASE_YAML" m1 m2 m3 || return 1
  check "the first fleet forms one cluster without restore-from" all_ready m1 m2 m3
  check "$KEYS keys written" write_keys m1
  check "the backup service uploads a signed snapshot" backup_now m2
  check "a key written after the backup" ectl m1 put /dr/after-backup yes
  local lost_id
  lost_id=$(cluster_id m1) || return 1
  check "every machine destroyed" destroy m1 m2 m3

  local yaml="$BASE_YAML  restore-from: s3://$S3_BUCKET/cluster/
" i
  for ((i = 1; i <= RESTORE_ROUNDS; i++)); do
    dr_machines "$yaml" "r${i}a" "r${i}b" "r${i}c" || return 1
    check "round $i: three new machines with restore-from report ready" all_ready "r${i}a" "r${i}b" "r${i}c"
    check "round $i: one cluster of three started voters" one_cluster_of 3 "r${i}a" "r${i}b" "r${i}c"
    check "round $i: exactly one machine restored, the others joined" one_restorer "r${i}a" "r${i}b" "r${i}c"
    check "round $i: no machine's bootstrap failed on the way (NRestarts 0; two joiners at once are one learner at a time)" \
      no_bootstrap_restarts "r${i}a" "r${i}b" "r${i}c"
    check "round $i: every key of the backup read through a member that did not restore" keys_back "r${i}a" "r${i}b" "r${i}c"
    check "round $i: the key written after the backup is absent" after_backup_absent "r${i}b"
    check "round $i: the cluster id is not the lost cluster's" not_id "r${i}c" "$lost_id"
    check "round $i: every machine destroyed" destroy "r${i}a" "r${i}b" "r${i}c"
  done

  dr_machines "${BASE_YAML%%  discovery:*}  discovery:
    provider: static
    peers: [$(fleet_ip 1)]
  restore-from: s3://$S3_BUCKET/no-such-prefix/
" e1 || return 1
  check "restore-from a prefix without snapshots fails the boot, naming restore-from and the prefix" boot_fails_naming e1 \
    "cannot restore the cluster from bootstrap.restore-from s3://$S3_BUCKET/no-such-prefix/" "no snapshot made by etcdadm backup"
  check "... and forms no cluster" no_cluster e1
}

# Machines at addresses 1, 2, 3 (in order) with YAML and the S3 credentials in a drop-in of
# the bootstrap and backup services, booted at once.
dr_machines() { # YAML M1 M2 M3
  local yaml=$1 m n=1 root d
  shift
  for m; do
    bootstrap_prepare "$FLEET_RUN/ca" "$yaml" "$m" "$n" || return 1
    root=$(fleet_root "$m")
    for d in etcdadm-bootstrap.service.d etcdadm-backup.service.d; do
      mkdir -p "$root/etc/systemd/system/$d" &&
        printf '[Service]\nEnvironment=%s\nEnvironment=%s\n' "${S3_CREDS[@]}" >"$root/etc/systemd/system/$d/s3.conf" || return 1
    done
    n=$((n + 1))
  done
  fleet_start "$@"
}

write_keys() { # M
  local i
  for ((i = 1; i <= KEYS; i++)); do ectl "$1" put "/dr/k$i" "v$i" >/dev/null || return 1; done
}

backup_now() { # M
  fleet_exec "$1" systemctl start etcdadm-backup.service || {
    fleet_journal "$1" -u etcdadm-backup.service | tail -20 >&2
    return 1
  }
  [[ $(s3_py keys "$S3_BUCKET" cluster/) == cluster/*.db ]] || fleet__fail "no snapshot under cluster/"
}

destroy() { # M...
  local m
  for m; do fleet_kill "$m" || return 1; done
}

cluster_id() { # M
  ea "$1" info --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster"]["id"])'
}

not_id() { # M ID
  local id
  id=$(cluster_id "$1") || return 1
  [[ $id != "$2" ]] || fleet__fail "the restored cluster has the lost cluster's id $2"
}

# RESTORER is set to the one machine whose bootstrap journal says it restored.
one_restorer() { # M...
  local m restorers=()
  for m; do
    if fleet_journal "$m" -u etcdadm-bootstrap | grep_all "restoring the cluster from the newest backup"; then
      restorers+=("$m")
    fi
  done
  assert_eq 1 "${#restorers[@]}" "machines that restored (${restorers[*]})" || return 1
  RESTORER=${restorers[0]}
  for m; do
    [[ $m == "$RESTORER" ]] && continue
    fleet_journal "$m" -u etcdadm-bootstrap | grep_all 'event="Decided" to="Joining"' ||
      fleet__fail "$m did not join: $(fleet_journal "$m" -u etcdadm-bootstrap | grep 'bootstrap state' | tail -3)" || return 1
  done
}

keys_back() { # M...
  local m reader="" i got
  for m; do [[ $m != "$RESTORER" ]] && reader=$m; done
  for ((i = 1; i <= KEYS; i++)); do
    got=$(ectl "$reader" get "/dr/k$i" --print-value-only) || return 1
    assert_eq "v$i" "$got" "/dr/k$i read through $reader" || return 1
  done
}

after_backup_absent() { # M
  local got
  got=$(ectl "$1" get /dr/after-backup --print-value-only) || return 1
  assert_eq "" "$got" "/dr/after-backup (written after the backup)"
}

boot_fails_naming() { # M TEXT...: each TEXT on the failure's line
  local m=$1 deadline=$((SECONDS + 120)) line t
  shift
  until fleet_journal "$m" -u etcdadm-bootstrap | grep_all 'to="Failed"'; do
    ((SECONDS < deadline)) || fleet__fail "bootstrap on $m did not fail: $(fleet_journal "$m" -u etcdadm-bootstrap | tail -5)" || return 1
    sleep 1
  done
  line=$(fleet_journal "$m" -u etcdadm-bootstrap | grep -F "$1" | tail -1)
  for t; do
    assert_contains "$line" "$t" "the failure on $m" || return 1
  done
}

no_cluster() { # M
  ! fleet_exec "$1" test -e /var/lib/etcd/member || fleet__fail "$1 has member data"
  [[ $(fleet_exec "$1" systemctl is-active etcd.service) != active ]] || fleet__fail "etcd runs on $1"
}

no_bootstrap_restarts() { # M...
  local m n
  for m; do
    n=$(fleet_exec "$m" systemctl show -p NRestarts --value etcdadm-bootstrap) || return 1
    [[ $n == 0 ]] || {
      echo "$m: etcdadm-bootstrap was restarted $n time(s); its errors:" >&2
      fleet_journal "$m" -u etcdadm-bootstrap -o cat | grep -E '^error|failed' | tail -n 5 >&2
      return 1
    }
  done
}
