# shellcheck shell=bash
# Certificate lifecycle: members issued with a one-day validity show up as due in
# `certs check`, are renewed from the local CA (by hand and through the installed timer's
# service) with exactly one restart each and the CA untouched; the certificate etcd serves
# (read with openssl s_client from the host) is the new one; every write through m3 during
# the renewals succeeds (they are counted, none may fail). The renewal on the leader hands
# leadership over before etcd stops. The timer's service writes the textfile metrics:
# promtool parses them, each certificate's expiry is its notAfter.

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
  local ca1 ca2 served1 served2 starts1 starts2
  ca1=$(ca_sum m1) && ca2=$(ca_sum m2) && served1=$(served_cert 1) && served2=$(served_cert 2) &&
    starts1=$(etcd_starts m1) && starts2=$(etcd_starts m2) || return 1
  writes_during m3 /certs/probe &
  local writer=$!
  check "the writer through m3 has written before the renewals" writes_seen 1
  check "m1 leads before its renewal (etcdctl move-leader)" make_leader m1
  local since
  since=$(date +%s)
  check "certs renew --cert-validity-days 365 on m1" ea_out out m1 certs renew --cert-validity-days 365
  check "m1's etcd handed leadership over before it was stopped (its journal: became follower, then the signal)" \
    handed_over_before_stop m1 "$since"
  check "m1's certificates are valid for a year" cert_days_at_least m1 server.crt 364
  check "m1 serves a certificate with a new serial and notAfter (openssl s_client)" served_changed 1 "$served1"
  check "etcd on m1 was started exactly once by the renewal, never restarted by systemd" started_once m1 "$starts1"
  check "m1's CA certificate is unchanged" assert_eq "$ca1" "$(ca_sum m1)" "sha256 of m1's ca.crt"
  local before
  before=$(fleet_exec m2 sha256sum /etc/etcd/pki/server.crt)
  fleet_exec m2 mkdir -p -m 0755 "$TEXTFILE_DIR" || return 1
  check "the timer's service renews m2's due certificates" fleet_exec m2 systemctl start etcdadm-certs-renew.service
  check "m2's etcdadm-certs.prom: renewal success, each certificate's expiry is its notAfter (openssl)" certs_metrics m2
  check "m2's certificate file is new" changed "$before" "$(fleet_exec m2 sha256sum /etc/etcd/pki/server.crt)"
  check "m2 serves a certificate with a new serial and notAfter (openssl s_client)" served_changed 2 "$served2"
  check "etcd on m2 was started exactly once by the renewal, never restarted by systemd" started_once m2 "$starts2"
  check "m2's CA certificate is unchanged" assert_eq "$ca2" "$(ca_sum m2)" "sha256 of m2's ca.crt"
  local seen
  seen=$(write_count ok)
  check "the writer through m3 kept writing after the renewals" writes_seen $((seen + 3))
  kill "$writer" 2>/dev/null
  wait "$writer" 2>/dev/null
  check "every write through m3 during the renewals succeeded (none failed)" no_write_failures
  check "three healthy voters, data intact" healthy_with_data
  # m3's certificates are still due (one day). With m2's etcd stopped, restarting m3 would
  # leave m1 alone, no quorum of three: renew refuses and changes nothing.
  local m3_cert m3_starts
  m3_cert=$(fleet_exec m3 sha256sum /etc/etcd/pki/server.crt) && m3_starts=$(etcd_starts m3) || return 1
  fleet_exec m2 systemctl stop etcd || return 1
  check "with m2 stopped, certs renew on m3 is refused for quorum" renew_refused m3
  check "the refused renewal left m3's certificate and etcd alone" \
    unchanged_since m3 "$m3_cert" "$m3_starts"
  fleet_exec m2 systemctl start etcd || return 1
  check "with m2 back, the same certs renew on m3 renews and restarts once" \
    renew_then_started_once m3 "$m3_starts"
}

renew_refused() { # M
  local out
  if out=$(ea "$1" certs renew 2>&1); then
    fleet__fail "certs renew succeeded: $out"
    return 1
  fi
  assert_contains "$out" "quorum is 2, and only 1 other healthy voter(s) would keep it" "refusal"
}

unchanged_since() { # M CERT_SUM STARTS
  assert_eq "$2" "$(fleet_exec "$1" sha256sum /etc/etcd/pki/server.crt)" "server.crt of $1" &&
    assert_eq "$3" "$(etcd_starts "$1")" "starts of etcd on $1"
}

renew_then_started_once() { # M STARTS
  local out
  fleet_retry 60 ectl m1 endpoint health --cluster >/dev/null || return 1
  ea_out out "$1" certs renew && started_once "$1" "$2"
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

certs_metrics() { # M
  local name file not_after
  textfile_ok "$1" etcdadm-certs.prom &&
    assert_eq 1 "$(metric_value "$1" etcdadm-certs.prom etcdadm_certs_renew_last_run_success)" "renewal success" || return 1
  for name in ca server peer client; do
    case $name in
      client) file=etcdctl-etcd-client.crt ;;
      *) file=$name.crt ;;
    esac
    not_after=$(fleet_exec "$1" cat "/etc/etcd/pki/$file" | openssl x509 -noout -enddate | cut -d= -f2) || return 1
    not_after=$(date -u -d "$not_after" +%s) || return 1
    assert_eq "$not_after" "$(metric_value "$1" etcdadm-certs.prom "etcdadm_certificate_expiry_timestamp_seconds{certificate=\"$name\",file=\"/etc/etcd/pki/$file\"}")" "$name expiry" || return 1
  done
}

changed() { [[ $1 != "$2" ]] || fleet__fail "certificate unchanged"; }

ca_sum() { # M
  fleet_exec "$1" sha256sum /etc/etcd/pki/ca.crt
}

# Serial and notAfter of the certificate etcd serves on machine N's client port, read from
# the host by openssl s_client (etcd wants a client certificate: m3's etcdctl one).
served_cert() { # N
  local pki out
  pki=$(fleet_root m3)/etc/etcd/pki
  out=$(openssl s_client -connect "$(fleet_ip "$1"):2379" -CAfile "$pki/ca.crt" \
    -cert "$pki/etcdctl-etcd-client.crt" -key "$pki/etcdctl-etcd-client.key" </dev/null 2>/dev/null |
    openssl x509 -noout -serial -enddate) || fleet__fail "no certificate served on $(fleet_ip "$1"):2379" || return 1
  [[ $out == serial=*notAfter=* ]] || fleet__fail "unexpected openssl output: $out" || return 1
  printf '%s\n' "$out"
}

served_changed() { # N BEFORE: both serial and notAfter differ from BEFORE
  local now
  now=$(served_cert "$1") || return 1
  fleet_log "served by $(fleet_ip "$1"): before [${2//$'\n'/ }] now [${now//$'\n'/ }]"
  [[ $(grep serial= <<<"$now") != $(grep serial= <<<"$2") ]] || fleet__fail "same serial served: $now" || return 1
  [[ $(grep notAfter= <<<"$now") != $(grep notAfter= <<<"$2") ]] || fleet__fail "same notAfter served: $now"
}

# How often systemd has started etcd on M ("Started etcd.service ..." in its journal).
etcd_starts() { # M
  fleet_exec "$1" journalctl -u etcd -o cat --no-pager | grep -c '^Started etcd'
}

started_once() { # M STARTS_BEFORE
  local now
  now=$(etcd_starts "$1")
  assert_eq $(($2 + 1)) "$now" "starts of etcd on $1 (before: $2)" &&
    assert_eq 0 "$(fleet_exec "$1" systemctl show -p NRestarts --value etcd)" "NRestarts of etcd on $1"
}

healthy_with_data() {
  assert_eq 3 "$(started_voters m1)" "started voters" &&
    assert_eq before "$(ectl m2 get /certs/k --print-value-only)" "data" &&
    fleet_exec m1 /opt/bin/etcdctl.sh endpoint health --cluster >/dev/null
}
