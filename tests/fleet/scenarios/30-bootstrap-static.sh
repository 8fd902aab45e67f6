# shellcheck shell=bash
# `etcdadm bootstrap` under systemd with static discovery: three identical machines booted
# at once form one cluster by themselves; READY=1 reaches systemd; every later boot
# changes nothing and reports ready again.

scenario() {
  fleet_setup || return 1
  make_ca "$FLEET_RUN/ca" || return 1
  local peers
  peers="[$(fleet_ip 1), $(fleet_ip 2), $(fleet_ip 3)]"
  bootstrap_prepare "$FLEET_RUN/ca" "release-url: $MIRROR_URL
version: $ETCD_VERSION
bootstrap:
  discovery:
    provider: static
    peers: $peers
" m1 1 m2 2 m3 3 || return 1
  fleet_start m1 m2 m3 || return 1

  check "all three bootstrap units report ready" all_ready m1 m2 m3
  check "one cluster of three started voters" one_cluster_of 3 m1 m2 m3
  check "members are named after their addresses" name_is m1 "etcd-${FLEET_IP_PREFIX:-10-213-$FLEET_NET}-11"
  local before
  before=$(members m1 | sort)
  check "all machines rebooted at once" reboot_all m1 m2 m3
  check "after the reboot every unit reports ready again" all_ready m1 m2 m3
  check "the reboot changed no member" same_members m1 "$before"
  check "the second boot found its member instead of deciding again" grep_journal m2 "set up on an earlier boot"
}

name_is() { # M NAME
  assert_contains "$(members "$1")" ", started, $2, " "member name"
}

reboot_all() {
  local m
  for m; do fleet_poweroff "$m" || return 1; done
  fleet_start "$@"
}

same_members() { # M EXPECTED
  assert_eq "$2" "$(members "$1" | sort)" "member list"
}

