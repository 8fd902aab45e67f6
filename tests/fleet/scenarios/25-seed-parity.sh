# shellcheck shell=bash
# Seed parity: init and join driven phase by phase end where one init/join ends; a re-run
# with different settings is refused with the diff and changes nothing; --disk-priorities
# reach the unit; reset --skip-remove-member leaves the member listed; info keeps the
# seed's JSON fields.

scenario() {
  fleet_setup || return 1
  machines m1 1 m2 2 m3 3 || return 1
  local out p
  for p in install certificates snapshot configure start etcdctl health; do
    check "m1: init phase $p" ea_out out m1 init phase "$p"
  done
  check "m2: one init" ea_out out m2 init
  check "phase by phase ends where one init ends" same_end_state m1 m2

  copy_ca m1 m3 || return 1
  for p in stop certificates install membership configure start etcdctl health; do
    check "m3: join phase $p" ea_out out m3 join phase "$p" "https://$(fleet_ip 1):2379"
  done
  check "m3 is a started voter of m1's cluster" expect_two_voters m1

  check "re-init with another data-dir is refused with the diff, nothing changed" refused_with m1 'data-dir: "/var/lib/etcd" -> "/srv/other"' init --data-dir /srv/other
  check "re-init with another version is refused with the diff, nothing changed, and says it is an upgrade" refused_as_upgrade m1
  check "disk priorities reach the etcd unit" disk_priorities m1
  check "info --output json keeps the seed's member fields" seed_info m1
  # A third voter first, so the cluster keeps quorum while m3 is gone from the machine.
  check "m2 leaves its own one-member cluster (--force: last member)" ea_out out m2 reset --force --remove-ca
  copy_ca m1 m2 || return 1
  check "m2 joins m1's cluster" ea_out out m2 join "https://$(fleet_ip 1):2379"
  check "reset --skip-remove-member uninstalls but leaves the member listed" skip_remove m3
}

# Names, modes and (address-neutral) contents of what etcdadm manages, plus the unit state.
end_state() { # M
  fleet_exec "$1" sh -c '
    for f in /etc/etcd/etcd.env /etc/etcd/etcdctl.env /etc/systemd/system/etcd.service /opt/bin/etcdctl.sh; do
      echo "== $f $(stat -c %a "$f")"; sed "s/10\.213\.[0-9]*\.[0-9]*/IP/g; s/\bm[0-9]\b/NAME/g" "$f"
    done
    stat -c "%n %a" /etc/etcd/pki/* /opt/bin/etcd /opt/bin/etcdctl /opt/bin/etcdutl /var/lib/etcd
    systemctl is-active etcd; systemctl is-enabled etcd
    grep -o "\"phase\": \"[a-z]*\"" /etc/etcdadm/state.json'
}

same_end_state() { # A B
  assert_eq "$(end_state "$2")" "$(end_state "$1")" "end state of $1 vs $2"
}

expect_two_voters() {
  assert_eq 2 "$(started_voters "$1")" "started voters" && assert_eq 2 "$(members "$1" | wc -l)" "members"
}

refused_with() { # M TEXT ARGS...
  local m=$1 text=$2 before
  shift 2
  before=$(fingerprint "$m") || return 1
  ! ea_out out "$m" "$@" || fleet__fail "'$*' was accepted" || return 1
  assert_contains "$out" "$text" "diff in the error" &&
    assert_contains "$out" "nothing was changed" "says nothing changed" &&
    assert_eq "$before" "$(fingerprint "$m")" "managed files"
}

refused_as_upgrade() { # M
  refused_with "$1" 'version: "3.5.30" -> "3.5.16"' init --version 3.5.16 &&
    assert_contains "$out" "a version change is an upgrade, not a re-init" "the pointer to upgrade"
}

disk_priorities() { # M
  local shown
  shown=$(fleet_exec "$1" systemctl show etcd -p Nice -p IOSchedulingPriority)
  assert_contains "$shown" "Nice=-10" "Nice" && assert_contains "$shown" "IOSchedulingPriority=2" "IO priority"
}

seed_info() { # M
  ea "$1" info --output json | python3 -c '
import json, sys
i = json.load(sys.stdin)
assert isinstance(i["ID"], int) and i["ID"] > 0, i.get("ID")
assert i["name"] == "m1", i["name"]
assert i["peerURLs"] and i["clientURLs"], i
'
}

skip_remove() { # M
  local peer
  peer="https://$(fleet_ip "${1#m}"):2380"
  ea_out out "$1" reset --skip-remove-member || return 1
  assert_contains "$(members m1)" "$peer" "member still listed" &&
    assert_eq "" "$(fleet_exec "$1" sh -c 'ls /opt/bin /var/lib/etcd /etc/etcdadm/state.json 2>/dev/null')" "leftovers"
}
