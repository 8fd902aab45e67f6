# shellcheck shell=bash
# `etcdadm bootstrap` SIGKILLed during discovery, during a join right after its member add,
# and while etcd starts: systemd starts it again and it converges, without a duplicate
# member.

scenario() {
  fleet_setup || return 1
  make_ca "$FLEET_RUN/ca" && dns_start || return 1
  local yaml
  yaml=$(dns_bootstrap_yaml etcd.fleet.test 3)
  dns_set etcd.fleet.test "$(fleet_ip 1)"
  bootstrap_prepare "$FLEET_RUN/ca" "$yaml" m1 1 m2 2 m3 3 m4 4 m5 5 && fleet_start m1 || return 1

  check "m1 waits in discovery (1 of 3 peers)" bootstrap_status_is m1 "discovering peers 1/3"
  check "SIGKILL during discovery" kill_bootstrap m1
  dns_set etcd.fleet.test "$(fleet_ip 1)" "$(fleet_ip 2)" "$(fleet_ip 3)"
  fleet_start m2 m3 || return 1
  check "after the restart, three machines form one cluster" all_ready m1 m2 m3
  check "one cluster of three" one_cluster_of 3 m1 m2 m3

  dns_set etcd.fleet.test "$(fleet_ip 1)" "$(fleet_ip 2)" "$(fleet_ip 3)" "$(fleet_ip 4)" "$(fleet_ip 5)"
  check "SIGKILL of m4's join right after its member add" kill_after_member_add m4
  check "m4 converges after the restart" all_ready m4
  check "SIGKILL of m5's bootstrap while etcd starts" kill_while_etcd_starts m5
  check "m5 converges after the restart" all_ready m5
  check "one cluster of five, no duplicate member" one_cluster_of 5 m1 m2 m3 m4 m5
  check "every member listed once" no_duplicates m1 5
}

kill_after_member_add() { # M
  local peer deadline=$((SECONDS + 120))
  peer="https://$(fleet_ip "${1#m}"):2380"
  fleet_start "$1" || return 1
  until members m1 | grep_all "$peer"; do
    ((SECONDS < deadline)) || fleet__fail "$1 never appeared in the member list" || return 1
    sleep 0.05
  done
  kill_bootstrap "$1"
}

kill_while_etcd_starts() { # M
  local deadline=$((SECONDS + 120)) s
  fleet_start "$1" || return 1
  until s=$(fleet_exec "$1" systemctl is-active etcd 2>/dev/null); [[ $s == activating || $s == active ]]; do
    ((SECONDS < deadline)) || fleet__fail "etcd never started on $1" || return 1
    sleep 0.05
  done
  kill_bootstrap "$1"
}

no_duplicates() { # M N
  assert_eq "$2" "$(members "$1" | wc -l)" "member entries"
}
