# shellcheck shell=bash
# A member's machine dies for good and the group replaces it with a machine at a new
# address, same configuration (DNS discovery, departed members removed): the dead member
# is removed while quorum holds, the replacement joins, three healthy voters remain.

scenario() {
  fleet_setup || return 1
  make_ca "$FLEET_RUN/ca" && dns_start || return 1
  dns_set etcd.fleet.test "$(fleet_ip 1)" "$(fleet_ip 2)" "$(fleet_ip 3)"
  local yaml
  yaml=$(dns_bootstrap_yaml etcd.fleet.test 3 "  remove-departed-members: true
")
  bootstrap_prepare "$FLEET_RUN/ca" "$yaml" m1 1 m2 2 m3 3 && fleet_start m1 m2 m3 || return 1
  check "three machines discovered through DNS form one cluster" all_ready m1 m2 m3
  check "one cluster of three" one_cluster_of 3 m1 m2 m3

  fleet_kill m3 || return 1
  dns_set etcd.fleet.test "$(fleet_ip 1)" "$(fleet_ip 2)" "$(fleet_ip 4)"
  bootstrap_prepare "$FLEET_RUN/ca" "$yaml" m4 4 && fleet_start m4 || return 1
  check "the replacement reports ready" all_ready m4
  check "the dead member was removed" dead_member_gone "$(fleet_ip 3)"
  check "three healthy voters again, one cluster" one_cluster_of 3 m1 m2 m4
}

dead_member_gone() { # IP
  ! members m1 | grep_all "https://$1:2380" || fleet__fail "member at $1 still listed: $(members m1)"
}
