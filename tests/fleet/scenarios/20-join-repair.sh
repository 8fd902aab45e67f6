# shellcheck shell=bash
# Re-running join completes or repairs and never adds a second member: a machine already
# listed as an unstarted learner, and a join killed (SIGKILL) right after its member add.

scenario() {
  fleet_setup || return 1
  machines m1 1 m2 2 m3 3 || return 1
  local out ip1
  ip1=$(fleet_ip 1)
  check "init on m1" ea_out out m1 init
  copy_ca m1 m2 && copy_ca m1 m3

  check "m2 listed as unstarted learner before its join" ectl m1 member add m2 --learner --peer-urls "https://$(fleet_ip 2):2380"
  check "join on m2 finds itself instead of adding again" join_completes m2
  check "two started voters, no duplicate" expect_members m1 2

  check "join on m3 killed right after member add" killed_join m3
  check "re-run of join on m3 completes" join_completes m3
  check "three started voters, no duplicate" expect_members m1 3
}

join_completes() { # M
  ea_out out "$1" join "https://$ip1:2379" || return 1
  [[ $out != *"added as learner"* ]] || fleet__fail "$1 was added a second time" || return 1
  assert_eq active "$(fleet_exec "$1" systemctl is-active etcd)" "etcd on $1"
}

killed_join() { # M: start join, SIGKILL etcdadm once the cluster lists the new learner
  local peer deadline=$((SECONDS + 60))
  peer="https://$(fleet_ip "${1#m}"):2380"
  ea "$1" join "https://$ip1:2379" >"$FLEET_RUN/$1-join.log" 2>&1 &
  local bg=$!
  until members m1 | grep_all "$peer"; do
    ((SECONDS < deadline)) || fleet__fail "$1 never appeared in the member list" || return 1
    sleep 0.05
  done
  pkill -9 -f "^etcdadm join https://$ip1:2379" || fleet__fail "no etcdadm join to kill (it finished first)" || return 1
  wait "$bg" 2>/dev/null
  members m1 >&2
  # The member is listed exactly once, whatever state the kill left it in.
  assert_eq 1 "$(members m1 | grep -c "$peer")" "entries for $1"
}

expect_members() { # M N: N members, all started voters
  assert_eq "$2" "$(members "$1" | wc -l)" "members" &&
    assert_eq "$2" "$(started_voters "$1")" "started voters"
}
