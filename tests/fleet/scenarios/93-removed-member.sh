# shellcheck shell=bash
# A removed member that comes back (issue 15 point 4): machine m3 of a 3-member bootstrap
# cluster is powered off, its member removed from m1, keys written meanwhile. Started again,
# its bootstrap finds the member removed, moves the old data directory aside (kept, named
# in the journal and the status line), joins as a new member, and etcd does not crash-loop.
# Then the same with m3 outside its peer set: it stays out, says so with READY=1, runs no
# etcd (also after a reboot), and the cluster is unchanged. Last, peers of another cluster
# (m3's state file records another cluster id): refused naming both ids, nothing touched.

scenario() {
  fleet_setup || return 1
  make_ca "$FLEET_RUN/ca" || return 1
  local yaml
  yaml="release-url: $MIRROR_URL
version: $ETCD_VERSION
bootstrap:
  discovery:
    provider: static
    peers: [$(fleet_ip 1), $(fleet_ip 2), $(fleet_ip 3)]
"
  bootstrap_prepare "$FLEET_RUN/ca" "$yaml" m1 1 m2 2 m3 3 && fleet_start m1 m2 m3 || return 1
  check "three machines form one cluster of three voters" all_ready m1 m2 m3
  check "one cluster of three" one_cluster_of 3 m1 m2 m3
  check "a key written before m3 goes away" fleet_retry 30 ectl m1 put before-removal kept
  local old_id
  old_id=$(member_id_of "$(fleet_ip 3)") || return 1
  fleet_log "m3's member id before its removal: $old_id"

  # --- removed while powered off; in the peer set: joins as a new member ---
  check "m3 powered off" fleet_poweroff m3
  check "m3's member $old_id removed through m1 while m3 is off" fleet_retry 60 ectl m1 member remove "$old_id"
  check "a key written while m3 is away" fleet_retry 30 ectl m1 put while-away written-meanwhile
  check "m3 started again" fleet_start m3
  local status
  check "m3's bootstrap reports ready (READY=1) after rejoining" ready_text status m3
  check "m3's status line says it joined as a new member and names the kept data directory" \
    assert_contains "$status" "it joined as a new member, the removed member's data is kept in /var/lib/etcd.removed-" "StatusText of m3"
  check "m3 is a member again under a new member id (member list through m1)" new_member_id "$(fleet_ip 3)" "$old_id"
  check "one cluster of three started voters again" one_cluster_of 3 m1 m2 m3
  check "the key written while m3 was away reads back through m3" value_through m3 while-away written-meanwhile
  check "the key written before the removal reads back through m3" value_through m3 before-removal kept
  local kept
  kept=$(fleet_exec m3 sh -c 'ls -d /var/lib/etcd.removed-*') || return 1
  check "exactly one old data directory kept aside at /var/lib/etcd.removed-<stamp> ($kept)" \
    assert_eq 1 "$(wc -l <<<"$kept")" "directories moved aside"
  check "the kept directory holds the old member's database (member/snap/db)" fleet_exec m3 test -s "$kept/member/snap/db"
  check "the state file of the removed member is kept aside too" fleet_exec m3 sh -c 'ls /etc/etcdadm/state.json.removed-*'
  check "m3's bootstrap journal names the kept path" grep_journal m3 "kept=$kept"
  check "m3's bootstrap journal says the member was removed" grep_journal m3 "was removed from cluster"
  check "etcd on m3 did not crash-loop (at most 2 automatic restarts and 2 'permanently removed' lines in its journal)" etcd_restarts_at_most m3 2
  check "m3's bootstrap unit was not restarted (NRestarts 0)" bootstrap_restarts_are m3 0

  # --- removed again; m3 not in its peer set: stays out ---
  local new_id
  new_id=$(member_id_of "$(fleet_ip 3)") || return 1
  check "m3 powered off again" fleet_poweroff m3
  check "m3's new member $new_id removed through m1" fleet_retry 60 ectl m1 member remove "$new_id"
  # m3's own peer list no longer names it (a fourth address stands in, so the set is complete).
  write_config m3 "${yaml//$(fleet_ip 3)/$(fleet_ip 4)}" || return 1
  local before
  before=$(members m1 | sort)
  check "m3 started again outside its peer set" fleet_start m3
  check "m3's bootstrap reports ready (READY=1) and says it stays out, not in the peer set" stays_out m3
  check "no etcd runs on m3 and its unit is disabled" etcd_off m3
  check "etcd on m3 did not crash-loop this time either (at most 4 automatic restarts and 4 'permanently removed' lines over both removals)" etcd_restarts_at_most m3 4
  check "m3's data directory is left in place (member/snap/db)" fleet_exec m3 test -s /var/lib/etcd/member/snap/db
  check "no second directory was moved aside" assert_eq "$kept" "$(fleet_exec m3 sh -c 'ls -d /var/lib/etcd.removed-*')" "directories moved aside"
  check "the cluster is unchanged: m1 and m2, m3 absent" same_members_without m1 "$before" "$(fleet_ip 3)"
  check "two healthy voters" assert_eq 2 "$(started_voters m1)" "started voters"
  sleep 20
  check "20 s later: m3's bootstrap still active, never restarted, etcd still off" still_out m3
  check "m3 rebooted outside its peer set" fleet_reboot m3
  check "after the reboot m3 stays out again (READY=1, no etcd)" stays_out m3
  check "after the reboot no etcd runs on m3" etcd_off m3
  check "the cluster is still unchanged" same_members_without m1 "$before" "$(fleet_ip 3)"

  # --- the peers run another cluster (m3's state file records another cluster id, as when
  # its cluster was re-created): refused, nothing touched ---
  check "m3 powered off a third time" fleet_poweroff m3
  local state=$FLEET_RUN/m3/root/etc/etcdadm/state.json cluster_id sum
  cluster_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cluster-id"])' "$state") || return 1
  python3 -c 'import json,sys; p=sys.argv[1]; s=json.load(open(p)); s["cluster-id"]="feedface"; json.dump(s, open(p, "w"), indent=2)' "$state" || return 1
  sum=$(sha256sum <"$state")
  check "m3 started again with cluster feedface recorded" fleet_start m3
  check "m3's bootstrap fails naming both cluster ids and what to do" bootstrap_status_is m3 \
    "failed: this machine's member $new_id belongs to cluster feedface, but its peers answer as members of cluster $cluster_id; nothing was changed. If that cluster was re-created or restored, move /var/lib/etcd and /etc/etcdadm/state.json aside" 60
  check "nothing was touched: the state file is unchanged" assert_eq "$sum" "$(sha256sum <"$state")" "state file checksum"
  check "nothing was touched: the data directory is in place" fleet_exec m3 test -s /var/lib/etcd/member/snap/db
  check "nothing was touched: no directory moved aside" assert_eq "$kept" "$(fleet_exec m3 sh -c 'ls -d /var/lib/etcd.removed-*')" "directories moved aside"
  check "nothing was touched: etcd still off" etcd_off m3
  check "the cluster is unchanged by the refusal" same_members_without m1 "$before" "$(fleet_ip 3)"
}

member_id_of() { # IP: the member id listed for IP's peer URL, read through m1
  local id
  id=$(members m1 | awk -F', ' -v u="https://$1:2380" '$4 == u {print $1}')
  [[ -n $id ]] || fleet__fail "no member at $1 in: $(members m1)" || return 1
  echo "$id"
}

ready_text() { # VAR M: VAR = StatusText once bootstrap is active
  local __t
  __t=$(bootstrap_ready "$2") || return 1
  printf -v "$1" '%s' "$__t"
  fleet_log "$2 status: $__t"
}

new_member_id() { # IP OLD_ID
  local id
  id=$(member_id_of "$1") || return 1
  [[ $id != "$2" ]] || fleet__fail "member at $1 still has the old id $2" || return 1
  fleet_log "new member id at $1: $id (was $2)"
  members m1 | grep_all "^$id, started, .*, false$" || fleet__fail "member $id is not a started voter: $(members m1)"
}

value_through() { # M KEY VALUE
  assert_eq "$3" "$(ectl "$1" get "$2" --print-value-only)" "value of $2 read through $1"
}

etcd_restarts_at_most() { # M N: automatic restarts of etcd.service and its "permanently removed" lines in M's journal
  local n removed
  n=$(fleet_journal "$1" -u etcd.service | grep -c 'Scheduled restart job')
  removed=$(fleet_journal "$1" -u etcd.service | grep -c 'permanently removed')
  fleet_log "$1: $n automatic restart(s) of etcd.service; $removed 'permanently removed' line(s); how it ended:"
  fleet_journal "$1" -u etcd.service -o cat | grep -E 'permanently removed|Main process exited|Failed with result|Scheduled restart|Stopped|Deactivated' | cut -c1-200 | sed 's/^/    /' >&2
  ((n <= $2)) || fleet__fail "$n automatic restarts of etcd on $1 (at most $2)" || return 1
  ((removed <= $2)) || fleet__fail "etcd on $1 logged 'permanently removed' $removed times (at most $2)"
}

bootstrap_restarts_are() { # M N
  assert_eq "$2" "$(fleet_exec "$1" systemctl show -p NRestarts --value etcdadm-bootstrap)" "NRestarts of etcdadm-bootstrap on $1"
}

stays_out() { # M
  local t
  t=$(bootstrap_ready "$1") || return 1
  fleet_log "$1 status: $t"
  assert_contains "$t" "was removed from cluster" "StatusText of $1" &&
    assert_contains "$t" "this machine is not in the discovered peer set: staying out" "StatusText of $1"
}

etcd_off() { # M
  local active enabled
  active=$(fleet_exec "$1" systemctl is-active etcd)
  enabled=$(fleet_exec "$1" systemctl is-enabled etcd)
  assert_eq "inactive disabled" "$active $enabled" "etcd unit state on $1"
}

still_out() { # M
  assert_eq active "$(fleet_exec "$1" systemctl show -p ActiveState --value etcdadm-bootstrap)" "bootstrap on $1" &&
    bootstrap_restarts_are "$1" 0 && etcd_off "$1"
}

same_members_without() { # M EXPECTED IP
  assert_eq "$2" "$(members "$1" | sort)" "member list" || return 1
  if members "$1" | grep_all "https://$3:2380"; then fleet__fail "a member at $3 is listed"; fi
}
