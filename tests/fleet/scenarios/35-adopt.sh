# shellcheck shell=bash
# A cluster that is still forming is completed, not waited on and not formed around (spec
# fix F3): of three machines only m1's agent runs at first, so it forms the cluster of all
# three and its etcd waits for a quorum, serving no client requests. When the agents of m2
# and m3 start, they read the leaderless member's list from its peer port, find themselves
# in it as initial members that never started, and start exactly that cluster.
# A machine of the peer set that does not answer at all keeps the others from forming (F6).

scenario() {
  fleet_setup || return 1
  make_ca "$FLEET_RUN/ca" || return 1
  bootstrap_prepare "$FLEET_RUN/ca" "release-url: $MIRROR_URL
version: $ETCD_VERSION
bootstrap:
  discovery:
    provider: static
    peers: [$(fleet_ip 1), $(fleet_ip 2), $(fleet_ip 3)]
" m1 1 m2 2 m3 3 || return 1
  hold_agent m2 && hold_agent m3 || return 1
  fleet_start m1 || return 1
  check "m1 waits while m2 and m3 do not answer" bootstrap_status_is m1 "waiting for etcd-"
  fleet_start m2 m3 || return 1
  check "with m2 and m3 up (their agents held), m1 forms: etcd runs without a leader" etcd_running_leaderless m1
  release_agent m2 && release_agent m3 || return 1
  check "m2 and m3 adopt the forming cluster: all three ready" all_ready m1 m2 m3
  check "one cluster of three started voters" one_cluster_of 3 m1 m2 m3
  check "m2 decided to form exactly m1's cluster" grep_journal m2 "forming a new cluster of 3 members"
}

# The agent waits for /run/etcdadm-go before it starts (a drop-in written before boot).
hold_agent() { # M
  local d
  d="$(fleet_root "$1")/etc/systemd/system/etcdadm-bootstrap.service.d"
  mkdir -p "$d" && printf '[Service]\nExecStartPre=/bin/sh -c "until test -e /run/etcdadm-go; do sleep 0.2; done"\n' >"$d/hold.conf"
}

release_agent() { # M
  fleet_exec "$1" touch /run/etcdadm-go
}

# etcd's process runs, its own metrics say it has no leader (etcd_server_has_leader 0), its
# unit is still "activating" (READY=1 needs a leader) and the agent is not ready either.
etcd_running_leaderless() { # M
  local deadline=$((SECONDS + 120)) metrics
  until [[ $(fleet_exec "$1" systemctl show -p MainPID --value etcd) =~ ^[1-9] ]]; do
    ((SECONDS < deadline)) || fleet__fail "etcd never started on $1" || return 1
    sleep 0.5
  done
  metrics=$(fleet_retry 30 fleet_http "$1" http://127.0.0.1:2381/metrics) || fleet__fail "no metrics from etcd on $1" || return 1
  grep_all -x 'etcd_server_has_leader 0' <<<"$metrics" ||
    fleet__fail "etcd on $1 has a leader: $(grep '^etcd_server_has_leader' <<<"$metrics")" || return 1
  assert_eq activating "$(fleet_exec "$1" systemctl show -p ActiveState --value etcd)" "etcd unit state" || return 1
  sleep 2
  fleet_exec "$1" systemctl -q is-active etcdadm-bootstrap && { fleet__fail "$1 is ready without a quorum"; return 1; }
  return 0
}
