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
  check "the first boot never reloaded systemd: it loaded the new units when they started" \
    no_reload m1 m2 m3
  check "etcd started first on m1 (the lowest peer URL), on m2 and m3 only once m1's served" \
    first_then_others m1 m2 m3
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

no_reload() { # M...: systemd logs "Reloading." for every daemon-reload
  local m n rc=0
  for m; do
    n=$(fleet_journal "$m" -b -o cat _PID=1 | grep -cx 'Reloading\.')
    assert_eq 0 "$n" "daemon-reloads on $m" || rc=1
  done
  return "$rc"
}

# FIRST owns the lowest peer URL (10.213.<net>.11 sorts before .12 and .13), the one every
# other etcd asks first. FIRST's etcd started without waiting; every other's started only
# after FIRST's etcd logged that it serves peer traffic (one monotonic clock: the host's),
# and its agent says it waited for that.
first_then_others() { # FIRST OTHER...
  local journal line served m t rc=0
  journal=$(fleet_journal "$1" -b -u etcd -o short-monotonic) || return 1
  line=$(grep -m1 'serving peer traffic' <<<"$journal") ||
    fleet__fail "etcd on $1 never logged 'serving peer traffic'" || return 1
  served=$(sed -E 's/^\[ *([0-9]+)\.([0-9]{6})\].*/\1\2/' <<<"$line")
  grep_journal "$1" "sorts first in the initial cluster: starting etcd at once" || rc=1
  for m in "${@:2}"; do
    t=$(fleet_exec "$m" systemctl show -p ExecMainStartTimestampMonotonic --value etcd)
    ((10#$t > 10#$served)) ||
      fleet__fail "etcd on $m started at $t, before etcd on $1 served its peer port ($served)" || rc=1
    grep_journal "$m" "the member etcd asks first serves its peer port; starting etcd" || rc=1
  done
  return "$rc"
}

same_members() { # M EXPECTED
  assert_eq "$2" "$(members "$1" | sort)" "member list"
}

