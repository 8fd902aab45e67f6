# shellcheck shell=bash
# Certificate lifecycle: members issued with a one-day validity show up as due in
# `certs check`, are renewed from the local CA (by hand and through the installed timer's
# service) with one restart each, and the cluster keeps serving writes throughout.

scenario() {
  fleet_setup || return 1
  machines m1 1 m2 2 m3 3 || return 1
  local ep
  ep="https://$(fleet_ip 1):2379"
  check "init with one-day certificates" ea_out out m1 init --cert-validity-days 1
  copy_ca m1 m2 && copy_ca m1 m3 || return 1
  check "m2 joins" ea_out out m2 join "$ep" --cert-validity-days 1
  check "m3 joins" ea_out out m3 join "$ep" --cert-validity-days 1
  check "data written before renewal" ectl m1 put /certs/k before
  check "certs check shows the server certificate due" cert_status m1 server.crt renew
  check "the renewal timer is installed and enabled" fleet_exec m1 systemctl -q is-enabled etcdadm-certs-renew.timer
  writes_during m3 &
  local writer=$!
  check "certs renew --cert-validity-days 365 on m1" ea_out out m1 certs renew --cert-validity-days 365
  check "m1's certificates are valid for a year" cert_days_at_least m1 server.crt 364
  local before
  before=$(fleet_exec m2 sha256sum /etc/etcd/pki/server.crt)
  check "the timer's service renews m2's due certificates" fleet_exec m2 systemctl start etcdadm-certs-renew.service
  check "m2 serves a new certificate" changed "$before" "$(fleet_exec m2 sha256sum /etc/etcd/pki/server.crt)"
  kill "$writer" 2>/dev/null
  wait "$writer" 2>/dev/null
  check "writes through m3 never failed during the renewals" no_write_failures
  check "three healthy voters, data intact" healthy_with_data
}

cert_status() { # M FILE STATUS
  local row
  row=$(ea "$1" certs check | grep "/$2 ") || return 1
  assert_contains "$row" "$3" "status of $2"
}

cert_days_at_least() { # M FILE DAYS
  ea "$1" certs check --output json | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["file"].endswith("/" + sys.argv[1])]
assert rows and rows[0]["days_left"] >= int(sys.argv[2]) and rows[0]["status"] == "ok", rows
' "$2" "$3"
}

changed() { [[ $1 != "$2" ]] || fleet__fail "certificate unchanged"; }

# Writes a key through m3 every 0.2 s; a write that fails for longer than 5 s straight
# (beyond an election) is recorded.
writes_during() { # M
  local i=0 failing_since=
  : >"$FLEET_RUN/write-failures"
  while :; do
    if ectl "$1" put /certs/probe "$i" >/dev/null 2>&1; then
      failing_since=
    else
      failing_since=${failing_since:-$SECONDS}
      ((SECONDS - failing_since > 5)) && echo "write $i failing since ${failing_since}s" >>"$FLEET_RUN/write-failures"
    fi
    i=$((i + 1))
    sleep 0.2
  done
}

no_write_failures() { assert_eq "" "$(cat "$FLEET_RUN/write-failures")" "sustained write failures"; }

healthy_with_data() {
  assert_eq 3 "$(started_voters m1)" "started voters" &&
    assert_eq before "$(ectl m2 get /certs/k --print-value-only)" "data" &&
    fleet_exec m1 /opt/bin/etcdctl.sh endpoint health --cluster >/dev/null
}
