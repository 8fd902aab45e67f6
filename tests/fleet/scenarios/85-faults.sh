# shellcheck shell=bash
# Faults on real machines:
# - discovery and metadata endpoints that are down, silent, failing (SERVFAIL, HTTP 500) or
#   answering garbage: bootstrap retries within its deadline and says so in its status,
#   then fails naming the endpoint, and leaves nothing half-written. A garbage answer (DNS
#   that does not decode, a metadata token that is no token) is final for one run: it fails
#   at once naming the endpoint, and systemd runs it again 15 s later (Restart=on-failure);
#   a nameserver that answers garbage and later a valid answer: the server counts queries
#   from more than one run, and the run after the answer became valid forms the cluster;
# - a joining machine cut off the network right after its member add: the join completes,
#   writes through the first member never stop for longer than an election, and no learner
#   is left behind;
# - bootstrap machines crashed (SIGKILL to the machine's PID 1) while waiting in discovery,
#   right after their member add and while etcd starts, then booted again on the same disk:
#   they converge, without a duplicate member.

# Endpoints of the unreachable-discovery cases (on the bridge address).
DEAD_DNS_PORT=5301    # nothing listens
SILENT_DNS_PORT=5302  # reads queries, never answers
SERVFAIL_DNS_PORT=5303
GARBAGE_DNS_PORT=5304
GARBAGE_THEN_VALID_DNS_PORT=5305
MD_500_PORT=8500      # EC2 metadata answering 500 to everything
MD_GARBAGE_PORT=8501  # EC2 metadata answering 200 with garbage to everything
FAULT_DEADLINE=12     # bootstrap.deadline-seconds of those machines

scenario() {
  fleet_setup || return 1
  local host=10.213.$FLEET_NET.1
  make_ca "$FLEET_RUN/ca" && dns_start || return 1
  fault_server dns-silent "$SILENT_DNS_PORT" && fault_server dns-servfail "$SERVFAIL_DNS_PORT" &&
    fault_server dns-garbage "$GARBAGE_DNS_PORT" && fault_server http-500 "$MD_500_PORT" &&
    fault_server dns-garbage-then-valid "$GARBAGE_THEN_VALID_DNS_PORT" &&
    fault_server http-garbage "$MD_GARBAGE_PORT" || return 1

  # --- endpoints down, slow, failing, garbage --------------------------------------------
  bootstrap_prepare "$FLEET_RUN/ca" "$(dns_fault_yaml "$DEAD_DNS_PORT")" fdead 21 &&
    bootstrap_prepare "$FLEET_RUN/ca" "$(dns_fault_yaml "$SILENT_DNS_PORT")" fslow 22 &&
    bootstrap_prepare "$FLEET_RUN/ca" "$(dns_fault_yaml "$SERVFAIL_DNS_PORT")" fsfail 23 &&
    bootstrap_prepare "$FLEET_RUN/ca" "$(dns_fault_yaml "$GARBAGE_DNS_PORT")" fgarb 24 &&
    bootstrap_prepare "$FLEET_RUN/ca" "$(md_fault_yaml "$MD_500_PORT")" fmd500 25 &&
    bootstrap_prepare "$FLEET_RUN/ca" "$(dns_fault_yaml "$GARBAGE_THEN_VALID_DNS_PORT" 1 180)" fgok 26 &&
    bootstrap_prepare "$FLEET_RUN/ca" "$(md_fault_yaml "$MD_GARBAGE_PORT")" fmdgb 27 &&
    fleet_start fdead fslow fsfail fgarb fmd500 fgok fmdgb || return 1
  watch_status $((FAULT_DEADLINE + 4)) fdead fslow fsfail fmd500
  check_each "DNS nameserver down: status shows bootstrap retrying discovery via it" \
    status_showed_retry fdead "$host:$DEAD_DNS_PORT"
  check_each "DNS nameserver silent: status shows bootstrap retrying discovery via it" \
    status_showed_retry fslow "$host:$SILENT_DNS_PORT"
  check_each "DNS SERVFAIL: status shows bootstrap retrying discovery via the nameserver" \
    status_showed_retry fsfail "$host:$SERVFAIL_DNS_PORT"
  check_each "metadata HTTP 500: status shows bootstrap retrying the metadata service" \
    status_showed_retry fmd500 "$host:$MD_500_PORT"
  check_each "DNS nameserver down: retried within the deadline, then failed naming the nameserver" \
    fails_naming fdead "$host:$DEAD_DNS_PORT" retried
  check_each "DNS nameserver silent: retried within the deadline, then failed naming the nameserver" \
    fails_naming fslow "$host:$SILENT_DNS_PORT" retried
  check_each "DNS SERVFAIL: retried within the deadline, then failed naming the nameserver" \
    fails_naming fsfail "$host:$SERVFAIL_DNS_PORT" retried
  check_each "DNS garbage answer: failed naming the nameserver" \
    fails_naming fgarb "$host:$GARBAGE_DNS_PORT" any
  check_each "metadata garbage answer: failed naming the metadata URL" \
    fails_naming fmdgb "$host:$MD_GARBAGE_PORT" any
  check_each "DNS garbage answer: the nameserver is asked again by systemd's next run" \
    asked_again dns-garbage "$GARBAGE_DNS_PORT" fgarb 24
  check_each "metadata garbage answer: the metadata service is asked again by systemd's next run" \
    asked_again http-garbage "$MD_GARBAGE_PORT" fmdgb 27
  check_each "DNS garbage, then a valid answer: retried by systemd until it is valid, then formed" \
    garbage_then_valid fgok 26
  check_each "metadata HTTP 500: retried within the deadline, then failed naming the metadata URL" \
    fails_naming fmd500 "$host:$MD_500_PORT" retried
  local m
  for m in fdead fslow fsfail fgarb fmd500 fmdgb; do
    check_each "$m: nothing half-written (no state, no etcd unit, env, binaries or data dir)" nothing_written "$m"
  done
  for m in fdead fslow fsfail fgarb fmd500 fmdgb fgok; do fleet_kill "$m" || return 1; done

  # --- a joining machine partitioned after its member add --------------------------------
  machines j1 1 j2 2 j3 3 || return 1
  # shellcheck disable=SC2034 # out is set by ea_out
  local out ipj1
  ipj1=$(fleet_ip 1)
  check "j1: init" ea_out out j1 init
  copy_ca j1 j2 && copy_ca j1 j3 || return 1
  check "j2 joins" ea_out out j2 join "https://$ipj1:2379"
  quorum_probe_start j1
  check_each "j3 cut off right after its member add: the join completes after the heal" partitioned_join j3
  check_each "writes through j1 never stopped for longer than an election" quorum_probe_stop 3000
  check_each "three started voters, no learner left behind, no duplicate" expect_members_exactly j1 3
  check_each "j3 serves data written while it was cut off" j3_has_probe_key

  # --- bootstrap machines crashed at each stage, booted again ----------------------------
  local yaml
  yaml=$(dns_bootstrap_yaml etcd.fleet.test 3)
  dns_set etcd.fleet.test "$(fleet_ip 11)"
  bootstrap_prepare "$FLEET_RUN/ca" "$yaml" b1 11 b2 12 b3 13 b4 14 b5 15 && fleet_start b1 || return 1
  check "b1 waits in discovery (1 of 3 peers)" bootstrap_status_is b1 "discovering peers 1/3"
  check "b1 crashes while waiting in discovery" fleet_kill b1
  dns_set etcd.fleet.test "$(fleet_ip 11)" "$(fleet_ip 12)" "$(fleet_ip 13)"
  check "b1 boots again on the same disk, with b2 and b3" fleet_start b1 b2 b3
  check "the three form one cluster" all_ready b1 b2 b3
  check "one cluster of three" one_cluster_of 3 b1 b2 b3

  dns_set etcd.fleet.test "$(fleet_ip 11)" "$(fleet_ip 12)" "$(fleet_ip 13)" "$(fleet_ip 14)" "$(fleet_ip 15)"
  check "b4 crashes right after its member add" crash_after_member_add b4 b1
  check "b4 boots again and converges" reboot_converges b4
  check "b5 crashes while etcd starts" crash_while_etcd_starts b5
  check "b5 boots again and converges" reboot_converges b5
  check "one cluster of five" one_cluster_of 5 b1 b2 b3 b4 b5
  check "five members, each listed once, no learner" expect_members_exactly b1 5

  faults_verdict
}

# Bootstrap discovering through DNS via 10.213.<i>.1:PORT, by default for a cluster of 3
# with a short deadline.
dns_fault_yaml() { # PORT [CLUSTER_SIZE DEADLINE]
  printf 'release-url: %s\nversion: %s\nbootstrap:\n  cluster-size: %s\n  deadline-seconds: %s\n  discovery:\n    provider: dns\n    name: etcd.fleet.test\n    nameserver: 10.213.%s.1:%s\n' \
    "$MIRROR_URL" "$ETCD_VERSION" "${2:-3}" "${3:-$FAULT_DEADLINE}" "$FLEET_NET" "$1"
}

# After a garbage answer failed M's run, the fault server KIND PORT is asked again: it
# counts requests from M (index N) from a second run of the bootstrap unit (systemd restarts
# it 15 s after the failure), i.e. more after the first failure than before it.
asked_again() { # KIND PORT M N
  local ip first deadline=$((SECONDS + 60))
  ip=$(fleet_ip "$4")
  until [[ $(fleet_exec "$3" systemctl show -p NRestarts --value etcdadm-bootstrap) -ge 1 ]] &&
    first=$(fault_requests "$1" "$2" "$ip") && ((first >= 1)); do
    ((SECONDS < deadline)) || fleet__fail "$3: the bootstrap unit was not run again within 60 s" || return 1
    sleep 0.5
  done
  # the restarted run's requests: wait until the count grows
  until (($(fault_requests "$1" "$2" "$ip") > first)); do
    ((SECONDS < deadline)) || fleet__fail "$3: the $1 server got no request from the restarted run ($first in all)" || return 1
    sleep 0.5
  done
  fleet_log "$3: $(fault_requests "$1" "$2" "$ip") request(s) at the $1 server over $(($(fleet_exec "$3" systemctl show -p NRestarts --value etcdadm-bootstrap) + 1)) runs"
}

# M discovers through a nameserver that answers garbage: M's bootstrap run fails and
# systemd runs it again (NRestarts >= 1, the server counted queries); then the answer
# becomes valid (M's own address, a cluster of 1) and a later run forms the cluster.
garbage_then_valid() { # M N
  local ip deadline=$((SECONDS + 60)) n text
  ip=$(fleet_ip "$2")
  until (($(fault_requests dns-garbage-then-valid "$GARBAGE_THEN_VALID_DNS_PORT" "$ip") >= 1)) &&
    [[ $(fleet_exec "$1" systemctl show -p NRestarts --value etcdadm-bootstrap) -ge 1 ]]; do
    ((SECONDS < deadline)) || fleet__fail "$1: not failed and restarted within 60 s" || return 1
    sleep 0.5
  done
  n=$(fault_requests dns-garbage-then-valid "$GARBAGE_THEN_VALID_DNS_PORT" "$ip")
  fleet_log "$1: $n garbage answer(s) so far; the nameserver now answers $ip"
  fleet_journal "$1" -u etcdadm-bootstrap -o cat | grep -m1 '^error: ' >&2
  echo "$ip" >"$FLEET_RUN/fault-dns-garbage-then-valid-$GARBAGE_THEN_VALID_DNS_PORT.valid" || return 1
  text=$(bootstrap_ready "$1" 120) || return 1
  assert_contains "$text" "healthy" "StatusText of $1" &&
    assert_eq 1 "$(started_voters "$1")" "started voters on $1"
}

# Bootstrap reading EC2 metadata from 10.213.<i>.1:PORT, static discovery of itself.
md_fault_yaml() { # PORT
  printf 'release-url: %s\nversion: %s\nbootstrap:\n  deadline-seconds: %s\n  metadata:\n    provider: ec2\n    base-url: http://10.213.%s.1:%s\n    timeout-seconds: 1\n  discovery:\n    provider: static\n    peers: [ADDRESS]\n' \
    "$MIRROR_URL" "$ETCD_VERSION" "$FAULT_DEADLINE" "$FLEET_NET" "$1"
}

# Samples the bootstrap unit's status line of each machine every 0.2 s for SECONDS; the
# distinct lines, in order, go to $FLEET_RUN/<M>.status.
watch_status() { # SECONDS M...
  local end=$((SECONDS + $1)) m s
  shift
  for m; do : >"$FLEET_RUN/$m.status"; done
  while ((SECONDS < end)); do
    for m; do
      s=$(fleet__in "$m" systemctl show -p StatusText --value etcdadm-bootstrap 2>/dev/null)
      [[ -n $s ]] && ! grep -qxF -- "$s" "$FLEET_RUN/$m.status" && printf '%s\n' "$s" >>"$FLEET_RUN/$m.status"
    done
    sleep 0.2
  done
}

# Before it failed, the status line said that it retries, naming ENDPOINT.
status_showed_retry() { # M ENDPOINT
  local s
  s=$(grep -v '^failed: ' "$FLEET_RUN/$1.status" | grep -i 'retry' | grep -F -m1 -- "$2") && fleet_log "$1 status: $s" && return 0
  fleet__fail "$1: before failing, the status never said it retries via $2; status lines seen: $(sed 's/.*/[&]/' "$FLEET_RUN/$1.status" | tr '\n' ' ')"
}

# The unit failed (exit code) after retrying (RETRIED: retried|any), with one `error:` line in
# the journal naming ENDPOINT.
fails_naming() { # M ENDPOINT RETRIED
  local deadline=$((SECONDS + FAULT_DEADLINE + 30)) j err retries
  until j=$(fleet_journal "$1" -u etcdadm-bootstrap -o cat) && [[ $j == *"error: "* ]]; do
    ((SECONDS < deadline)) || fleet__fail "$1: no error in the journal after $((FAULT_DEADLINE + 30)) s" || return 1
    sleep 0.5
  done
  err=$(grep -m1 '^error: ' <<<"$j")
  retries=$(grep -c 'retrying' <<<"$j")
  fleet_log "$1: $retries retry line(s); $err"
  if [[ $3 == retried ]] && ((retries < 2)); then
    fleet__fail "$1: expected at least 2 retries before giving up, journal has $retries" || return 1
  fi
  # systemd saw the run fail: its result, or (once it tried again 15 s later) a restart
  local result restarts
  result=$(fleet_exec "$1" systemctl show -p Result --value etcdadm-bootstrap)
  restarts=$(fleet_exec "$1" systemctl show -p NRestarts --value etcdadm-bootstrap)
  [[ $result == exit-code || ${restarts:-0} -ge 1 ]] ||
    fleet__fail "$1: the unit did not fail (result $result, restarts $restarts)" || return 1
  assert_contains "$err" "$2" "the error line of $1 names the endpoint" && no_repeated_clause "$err"
}

nothing_written() { # M
  local left
  left=$(fleet_exec "$1" sh -c 'ls -d /etc/etcdadm/state.json /etc/systemd/system/etcd.service /etc/etcd/etcd.env /etc/etcd/etcdctl.env /opt/bin/etcd /opt/bin/etcdctl /var/lib/etcd 2>/dev/null
    find /etc/etcd /etc/etcdadm /opt/bin /var/lib -name ".*" 2>/dev/null; systemctl is-active etcd 2>/dev/null | grep -v inactive')
  assert_eq "" "$left" "files left on $1"
}

partitioned_join() { # M
  local peer deadline=$((SECONDS + 120)) rc
  peer="https://$(fleet_ip "${1#j}"):2380"
  ea "$1" join "https://$ipj1:2379" --timeout-seconds 90 >"$FLEET_RUN/$1-join.log" 2>&1 &
  local bg=$!
  until members j1 | grep_all "$peer"; do
    ((SECONDS < deadline)) || { kill "$bg"; fleet__fail "$1 never appeared in the member list"; return 1; }
    sleep 0.05
  done
  fleet_partition "$1" || return 1
  fleet_log "partition: $1 cut off ($(members j1 | grep "$peer"))"
  sleep 8
  fleet_heal "$1" || return 1
  fleet_log "partition: $1 healed"
  wait "$bg"
  rc=$?
  sed "s/^/  $1| /" "$FLEET_RUN/$1-join.log" >&2
  if ((rc != 0)); then
    # a failed join must not leave its learner behind
    ! members j1 | grep_all "$peer" || fleet__fail "join failed (exit $rc) and left $(members j1 | grep "$peer")"
    return 1
  fi
  assert_eq active "$(fleet_exec "$1" systemctl is-active etcd)" "etcd on $1"
}

expect_members_exactly() { # M N: N members, every one a started voter
  local list
  list=$(members "$1") || return 1
  if ! assert_eq "$2" "$(wc -l <<<"$list")" "member entries" ||
    ! assert_eq "$2" "$(grep -c ', started, .*, false$' <<<"$list")" "started voters"; then
    printf '%s\n' "$list" >&2
    return 1
  fi
}

j3_has_probe_key() {
  local v
  v=$(ectl j3 get /faults/probe --print-value-only --consistency=s) || return 1
  [[ -n $v ]] || fleet__fail "j3 has no /faults/probe"
}

crash_after_member_add() { # M VIA
  local peer deadline=$((SECONDS + 120))
  peer="https://$(fleet_ip "$(machine_index "$1")"):2380"
  fleet_start "$1" || return 1
  until members "$2" | grep_all "$peer"; do
    ((SECONDS < deadline)) || fleet__fail "$1 never appeared in the member list" || return 1
    sleep 0.05
  done
  fleet_kill "$1" && fleet_log "crashed $1 with: $(members "$2" | grep "$peer")"
}

crash_while_etcd_starts() { # M
  local deadline=$((SECONDS + 120)) s
  fleet_start "$1" || return 1
  until s=$(fleet__in "$1" systemctl is-active etcd 2>/dev/null); [[ $s == activating || $s == active ]]; do
    ((SECONDS < deadline)) || fleet__fail "etcd never started on $1" || return 1
    sleep 0.05
  done
  fleet_kill "$1" && fleet_log "crashed $1 with etcd $s"
}

reboot_converges() { # M
  fleet_start "$1" && all_ready "$1"
}

machine_index() { # M: the N it was created with, from its network file
  sed -n 's|^Address=10\.213\.[0-9]*\.\([0-9]*\)/24$|\1|p' "$(fleet_root "$1")/etc/systemd/network/10-host0.network" |
    awk '{ print $1 - 10 }'
}
