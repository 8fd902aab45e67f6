# shellcheck shell=bash
# Five machines discover each other through DNS SRV records that are published one by one
# while they boot (staggered group membership): machine i's record appears, machine i boots
# and sees i of 5 peers, then 0-3 s pass before the next. Ten trials; every one must end in
# exactly one cluster of five started voters, every machine ready, no learner left. In trial
# 1 the first machine, while it still waits for its peers, already has the etcd user and its
# units and the member certificates (bootstrap's head start) but no environment file (which
# holds the decision).
# STAGGERED_TRIALS overrides the count.

scenario() {
  fleet_setup || return 1
  make_ca "$FLEET_RUN/ca" || return 1
  local t trials=${STAGGERED_TRIALS:-10}
  for ((t = 1; t <= trials; t++)); do
    check "trial $t: 5 machines booted while their SRV records appear form one 5-voter cluster" staggered_trial "$t"
  done
}

staggered_trial() { # T: machines s<T>a..s<T>e with addresses .(10+5T-4) .. .(10+5T)
  local t=$1 names=() records=() k n m ms rc=0
  local domain=t$t.fleet.test
  for k in a b c d e; do
    n=$((5 * t - 4 + ${#names[@]}))
    names+=("s$t$k")
    bootstrap_prepare "$FLEET_RUN/ca" "$(dns_srv_bootstrap_yaml "$domain" 5)" "s$t$k" "$n" || return 1
  done
  for m in "${names[@]}"; do
    n=$((5 * t - 4 + ${#records[@]}))
    records+=("$m=$(fleet_ip "$n")")
    if ! { dns_srv_set "$domain" "${records[@]}" && fleet_start "$m"; }; then
      rc=1
      break
    fi
    # The last one finds the set complete at once; the others wait, having seen fewer.
    ((${#records[@]} == 5)) && break
    bootstrap_status_is "$m" "discovering peers ${#records[@]}/5" 60 || { rc=1; break; }
    if ((t == 1 && ${#records[@]} == 1)); then
      check "a machine still waiting for its peers has the etcd user, etcd.service loaded by systemd, disabled and inactive, peer and server certificates from the CA, and no etcd.env (written only once it decides)" \
        fleet_retry 10 units_before_decision "$m"
    fi
    ms=$((RANDOM % 3001))
    fleet_log "trial $t: $m saw ${#records[@]}/5; next record in ${ms} ms"
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
  done
  if ((rc == 0)); then
    all_ready "${names[@]}" && one_cluster_of 5 "${names[@]}" && no_learners "${names[0]}" || rc=1
  fi
  for m in "${names[@]}"; do fleet_kill "$m" >/dev/null 2>&1; done
  return "$rc"
}

# Bootstrap's head start (issue 16): what does not depend on the decision is done while the
# machine waits for its peers.
units_before_decision() { # M
  local m=$1 show
  show=$(fleet_exec "$m" systemctl show -p LoadState -p UnitFileState -p ActiveState etcd.service) || return 1
  [[ $show == *LoadState=loaded* && $show == *UnitFileState=disabled* && $show == *ActiveState=inactive* ]] ||
    fleet__fail "$m: etcd.service is not loaded, disabled and inactive: ${show//$'\n'/ }" || return 1
  fleet_exec "$m" getent passwd etcd >/dev/null || fleet__fail "$m: no etcd user" || return 1
  local crt
  for crt in peer server; do
    openssl verify -CAfile "$FLEET_RUN/ca/ca.crt" "$(fleet_root "$m")/etc/etcd/pki/$crt.crt" >/dev/null 2>&1 ||
      fleet__fail "$m: no $crt certificate issued by the CA before the decision" || return 1
  done
  ! fleet_exec "$m" test -e /etc/etcd/etcd.env || fleet__fail "$m: /etc/etcd/etcd.env exists before the decision"
}
