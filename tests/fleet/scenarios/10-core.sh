# shellcheck shell=bash
# The core lifecycle on four real machines: init, join (learner -> voter; one with the
# release baked into the image), data replication, idempotent re-runs, info, reset and its
# quorum guard, a tampered release,
# join without a CA, and init --snapshot (corrupt and good) from a file:// mirror.

scenario() {
  fleet_setup || return 1
  machines m1 1 m2 2 m3 3 m4 4 || return 1
  local out ip1
  ip1=$(fleet_ip 1)

  check "init on m1 prints the join command" init_m1
  check "etcd on m1 is a healthy active unit" healthy_active_unit m1
  check "etcdctl member list in root's login shell lists m1" login_etcdctl m1
  check "private keys are 0600, certs 0644" key_modes m1
  check "data written before joins" ectl m1 put /core/k1 before-join

  check "join without a CA fails and says which files to copy" join_without_ca m2
  copy_ca m1 m2 && copy_ca m1 m3
  check "m2 joins as learner then is promoted (first endpoint dead)" join m2 "https://10.213.$FLEET_NET.99:2379,https://$ip1:2379"
  check "m3 with etcd baked into /opt/bin joins with release-url unreachable, nothing downloaded" baked_join m3 "$ip1"
  check "three started voters" expect_voters m1 3
  check "m3 serves data written before it joined" local_read m3 /core/k1 before-join

  check "re-running init on m1 changes nothing" rerun_changes_nothing m1 init
  check "re-running join on m2 changes nothing" rerun_changes_nothing m2 join "https://$ip1:2379"
  check "info --output json shows 3 voters and a leader" info_json m1
  check "status --output json: 3 members, raft lag each, no alarm, cert expiry" status_json m1

  check "reset m3 removes it and everything etcdadm installed, and keeps its data at the path it prints" reset_member m3
  check "two voters remain" expect_voters m1 2
  check "reset refused on a 2-member cluster without --force" reset_refused m2
  check "cluster still has 2 voters and m2 runs" expect_voters m1 2

  check "tampered tarball is refused and not cached" tampered_release m4
  check "truncated snapshot is refused, nothing changed" bad_snapshot m4
  check "init --snapshot restores the keys" good_snapshot m4
}

init_m1() {
  ea_out out m1 init || return 1
  assert_contains "$out" "etcdadm join https://$ip1:2379" "join command"
}

# The etcd unit is active and enabled, its main process is /opt/bin/etcd, and that etcd
# answers the health check on M's local client URL.
healthy_active_unit() { # M
  local pid health
  assert_eq active "$(fleet_exec "$1" systemctl is-active etcd)" "etcd unit state" &&
    assert_eq enabled "$(fleet_exec "$1" systemctl is-enabled etcd)" "etcd unit enablement" || return 1
  pid=$(fleet_exec "$1" systemctl show -p MainPID --value etcd) || return 1
  assert_eq /opt/bin/etcd "$(fleet_exec "$1" readlink "/proc/$pid/exe")" "the unit's main process" || return 1
  # the wrapper's endpoint is this machine's own etcd (ETCDCTL_ENDPOINTS in etcdctl.env)
  health=$(ectl "$1" endpoint health 2>&1) || { echo "$health" >&2; return 1; }
  assert_contains "$health" "https://127.0.0.1:2379 is healthy" "endpoint health of $1"
}

login_etcdctl() { # M: a login shell's PATH and no ETCDCTL_* variables, as after `ssh root@`
  local list
  list=$(fleet_exec "$1" bash -lc 'etcdctl member list') || return 1
  assert_contains "$list" ", started, $1, https://$ip1:2380, https://$ip1:2379, false" "member list"
}

key_modes() {
  local modes
  # -L: the mode of the file etcd reads (member certificates are links, src/pair_files.rs)
  modes=$(fleet_exec "$1" stat -L -c '%n %a' /etc/etcd/pki/ca.key /etc/etcd/pki/server.key /etc/etcd/pki/peer.key /etc/etcd/pki/etcdctl-etcd-client.key /etc/etcd/pki/server.crt /etc/etcd/pki/ca.crt) || return 1
  assert_eq "/etc/etcd/pki/ca.key 600
/etc/etcd/pki/server.key 600
/etc/etcd/pki/peer.key 600
/etc/etcd/pki/etcdctl-etcd-client.key 600
/etc/etcd/pki/server.crt 644
/etc/etcd/pki/ca.crt 644" "$modes" "file modes"
}

join_without_ca() {
  ! ea_out out "$1" join "https://$ip1:2379" || return 1
  assert_contains "$out" "/etc/etcd/pki/ca.crt" "names the CA cert" &&
    assert_contains "$out" "/etc/etcd/pki/ca.key" "names the CA key" &&
    ! fleet_exec "$1" test -e /etc/etcdadm/state.json &&
    ! fleet_exec "$1" test -e /etc/systemd/system/etcd.service
}

join() { # M ENDPOINTS
  ea_out out "$1" join "$2" || return 1
  assert_contains "$out" "added as learner" "joined as learner" &&
    assert_contains "$out" "promoted to voting member" "promoted" &&
    assert_eq active "$(fleet_exec "$1" systemctl is-active etcd)" "etcd unit"
}

# The image already holds the release's binaries (m1's): join uses them as they are. The
# mirror is unreachable, so any download would fail the join; nothing lands in the cache.
baked_join() { # M ENDPOINTS
  local b
  for b in etcd etcdctl etcdutl; do
    install -D -m 0755 "$(fleet_root m1)/opt/bin/$b" "$(fleet_root "$1")/opt/bin/$b" || return 1
  done
  ea_out out "$1" join "$2" --release-url "http://10.213.$FLEET_NET.99:9/unreachable" || return 1
  assert_contains "$out" "promoted to voting member" "promoted" &&
    assert_eq active "$(fleet_exec "$1" systemctl is-active etcd)" "etcd unit" &&
    assert_eq 0 "$(fleet_exec "$1" sh -c "find /var/cache/etcdadm -type f 2>/dev/null | wc -l")" "files in the cache"
}

expect_voters() { # M N
  local n
  n=$(started_voters "$1")
  assert_eq "$2" "$n" "started voters" || { members "$1" >&2; return 1; }
  assert_eq 0 "$(members "$1" | grep -vc ', started, .*, false$')" "unstarted or learner members"
}

local_read() { # M KEY VALUE: serializable read answered by M itself
  local v
  v=$(ectl "$1" get "$2" --print-value-only --consistency=s) || return 1
  assert_eq "$3" "$v" "value of $2 on $1"
}

rerun_changes_nothing() { # M VERB [ARGS]
  local m=$1 before after list_before
  shift
  before=$(fingerprint "$m") && list_before=$(members "$m") || return 1
  ea_out out "$m" "$@" || return 1
  assert_contains "$out" "nothing to do" "says so" || return 1
  after=$(fingerprint "$m") || return 1
  assert_eq "$before" "$after" "managed files" && assert_eq "$list_before" "$(members "$m")" "member list"
}

info_json() {
  local j
  j=$(ea "$1" info --output json) || return 1
  printf '%s' "$j" | python3 -c '
import json, sys
i = json.load(sys.stdin)
c = i["cluster"]
voters = [m for m in c["members"] if not m["is_learner"] and m["status"]]
assert len(voters) == 3, voters
assert c["leader"] and c["healthy"], c
assert i["local"]["name"] == "m1" and i["local"]["phase"] == "member", i["local"]
' && ea "$1" info | grep_all "leader"
}

status_json() { # M
  ea "$1" status --output json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert len(s["cluster"]["members"]) == 3 and s["cluster"]["healthy"], s["cluster"]
assert len(s["raft_lag"]) == 3 and all(lag < 1000 for _, lag in s["raft_lag"]), s["raft_lag"]
assert s["alarms"] == [], s["alarms"]
assert s["cert_days_left"] and all(d >= 360 for _, d in s["cert_days_left"]), s["cert_days_left"]
' && ea "$1" status | grep_all "alarms: none"
}

reset_member() { # M
  ea_out out "$1" reset || return 1
  local left
  left=$(fleet_exec "$1" sh -c 'ls /opt/bin /usr/local/bin/etcdctl /var/lib/etcd /etc/etcd/etcd.env /etc/systemd/system/etcd.service /etc/etcdadm/state.json /etc/etcd/pki/server.key 2>/dev/null; systemctl is-enabled etcd 2>/dev/null') 
  assert_eq "" "$left" "leftovers on $1" &&
    fleet_exec "$1" test -e /etc/etcd/pki/ca.key || return 1
  # the data directory, moved aside: etcd's database and write-ahead log are there
  local kept
  kept=$(sed -n 's|^its etcd data directory was moved to \(/var/lib/etcd\.reset-[0-9]\{8\}T[0-9]\{6\}Z\) .*|\1|p' <<<"$out")
  [[ -n $kept ]] || fleet__fail "reset printed no /var/lib/etcd.reset-<stamp> path: $out" || return 1
  if ! fleet_exec "$1" test -s "$kept/member/snap/db" ||
    [[ -z $(fleet_exec "$1" find "$kept/member/wal" -name '*.wal') ]]; then
    fleet__fail "$1: no member/snap/db or WAL in $kept: $(fleet_exec "$1" find "$kept" | head)"
  fi
}

reset_refused() { # M
  local before
  before=$(fingerprint "$1") || return 1
  ! ea_out out "$1" reset || return 1
  assert_contains "$out" "quorum" "explains why" &&
    assert_eq "$before" "$(fingerprint "$1")" "nothing changed" &&
    assert_eq active "$(fleet_exec "$1" systemctl is-active etcd)" "etcd unit"
}

tampered_release() { # M: a mirror whose tarball has one flipped byte
  local bad
  bad=$(fleet_root "$1")/srv/bad
  mkdir -p "$bad" && cp -r "$MIRROR/v$ETCD_VERSION" "$bad/" || return 1
  local tgz=$bad/v$ETCD_VERSION/etcd-v$ETCD_VERSION-linux-amd64.tar.gz
  printf '\x00' | dd of="$tgz" bs=1 seek=1000 conv=notrunc status=none || return 1
  ! ea_out out "$1" download --release-url file:///srv/bad || return 1
  assert_contains "$out" "checksum mismatch" "explains the mismatch" &&
    ! fleet_exec "$1" sh -c "ls /var/cache/etcdadm/v$ETCD_VERSION/*.tar.gz" 2>/dev/null
}

bad_snapshot() { # M
  ectl m1 snapshot save /root/snap.db >/dev/null || return 1
  install -D "$(fleet_root m1)/root/snap.db" "$(fleet_root "$1")/root/snap.db" || return 1
  head -c 20000 "$(fleet_root m1)/root/snap.db" >"$(fleet_root "$1")/root/truncated.db"
  mkdir -p "$(fleet_root "$1")/srv" && cp -r "$MIRROR" "$(fleet_root "$1")/srv/mirror" || return 1
  ! ea_out out "$1" init --snapshot /root/truncated.db --release-url file:///srv/mirror || return 1
  assert_contains "$out" "corrupt or truncated" "explains" &&
    assert_eq "" "$(fleet_exec "$1" sh -c 'ls -A /var/lib | grep etcd; ls /etc/etcdadm/state.json /opt/bin /etc/etcd 2>/dev/null')" "nothing installed" &&
    assert_eq inactive "$(fleet_exec "$1" systemctl is-active etcd)" "etcd not started"
}

good_snapshot() { # M
  ea_out out "$1" init --snapshot /root/snap.db --release-url file:///srv/mirror || return 1
  local_read "$1" /core/k1 before-join && expect_voters "$1" 1
}
