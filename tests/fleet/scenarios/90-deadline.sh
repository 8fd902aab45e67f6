# shellcheck shell=bash
# A peer set that never completes: bootstrap reports what it waits for, then gives up at
# bootstrap.deadline-seconds with a non-zero exit and a clear status, and changes nothing:
# the units it wrote ahead of the decision while it waited are removed again.

scenario() {
  fleet_setup || return 1
  make_ca "$FLEET_RUN/ca" || return 1
  bootstrap_prepare "$FLEET_RUN/ca" "release-url: $MIRROR_URL
version: $ETCD_VERSION
bootstrap:
  cluster-size: 4
  deadline-seconds: 4
  discovery:
    provider: static
    peers: [$(fleet_ip 1), $(fleet_ip 2), $(fleet_ip 3)]
" m1 1 && fleet_start m1 || return 1
  check "status says what it waits for" bootstrap_status_is m1 "discovering peers 3/4"
  check "while it waits, etcd.service is there (written ahead of the decision)" \
    fleet_retry 10 fleet_exec m1 test -e /etc/systemd/system/etcd.service
  check "gives up at the deadline with a non-zero exit" failed_at_deadline m1
  check "no etcd was set up" fleet_exec m1 sh -c '! test -e /etc/etcdadm/state.json && ! test -e /var/lib/etcd && ! systemctl -q is-active etcd'
  check "the units written ahead are gone again: no etcd.service, no timer unit, systemd does not know etcd.service" units_gone m1
}

units_gone() { # M: checked before systemd's next run (15 s after the failure)
  local left
  left=$(fleet_exec "$1" sh -c 'ls /etc/systemd/system/etcd.service /etc/systemd/system/etcdadm-*.service /etc/systemd/system/etcdadm-*.timer /etc/etcd/etcd.env 2>/dev/null | grep -v etcdadm-bootstrap; systemctl show -p LoadState --value etcd.service')
  assert_eq not-found "$left" "units left on $1"
}

failed_at_deadline() { # M: the error is logged and systemd saw a failed start
  local deadline=$((SECONDS + 60))
  until fleet_journal "$1" -u etcdadm-bootstrap | grep_all "error: no healthy member within the deadline of 4s"; do
    ((SECONDS < deadline)) || fleet__fail "no deadline error in the journal of $1" || return 1
    sleep 0.5
  done
  assert_eq exit-code "$(fleet_exec "$1" systemctl show -p Result --value etcdadm-bootstrap)" "unit result"
}
