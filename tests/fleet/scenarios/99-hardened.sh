# shellcheck shell=bash
# etcd runs unprivileged and confined, behind a TLS floor: the etcd process runs as the
# system user `etcd` (created through sysusers.d), which owns the data directory and the
# member keys but cannot read the CA key; `systemd-analyze security` (inside the machine)
# rates etcd.service at most 2.0 (the figures of every unit etcdadm writes and of the
# bootstrap unit are printed); TLS 1.1 and a CBC suite are refused on the client and peer
# ports while TLS 1.2 with AES-GCM is served (openssl s_client from the host); the timers'
# sandboxed services still back up and renew. A member set up the way the previous version
# did (etcd as root, unsandboxed unit, root-owned data) is moved to the etcd user by
# re-running `etcdadm init`, one at etcd 3.4.23 by `etcdadm upgrade`, and one formed by
# `etcdadm bootstrap` at its next boot; all keep their data.

scenario() {
  fleet_setup || return 1
  "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/build-etcd-mirror.sh" "$MIRROR" 3.4.23 >&2 || return 1
  machines m1 1 m2 2 m3 3 || return 1
  local out ip1
  ip1=$(fleet_ip 1)

  # one-day certificates: due at once, so the renewal service below renews them
  check "init on m1" ea_out out m1 init --cert-validity-days 1
  check "m1's etcd process runs as etcd, and etcd's files are etcd's" runs_as_etcd m1
  check "as etcd the CA key cannot be read, the member keys can" ca_key_private m1
  check "systemd-analyze security: etcd.service at most 2.0 (figures printed)" exposure m1
  local p
  for p in 2379 2380; do
    check "TLS 1.1 is refused on port $p" tls_refused m1 "$ip1:$p" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
    check "a CBC suite (TLS 1.2) is refused on port $p" tls_refused m1 "$ip1:$p" -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0'
    check "TLS 1.2 with AES-GCM is served on port $p" tls_served m1 "$ip1:$p"
  done
  check "data written" ectl m1 put /hardened/k v1
  check "the sandboxed backup service takes a snapshot" timer_backup m1
  check "the sandboxed renewal service runs, etcd reads its renewed key" timer_renew m1
  check "m1 still serves the data, as etcd" read_back m1 /hardened/k v1

  check "m2 is set up as the previous version did: etcd as root, unsandboxed" old_style_member m2
  check "data written on the old-style member" ectl m2 put /migrate/k before
  check "re-running init on m2 moves etcd to the etcd user" ea_out out m2 init
  check "m2's etcd process runs as etcd, and etcd's files are etcd's" runs_as_etcd m2
  check "as etcd the CA key cannot be read on m2" ca_key_private m2
  check "m2 keeps the data written before the move" read_back m2 /migrate/k before
  check "a second re-run of init on m2 changes nothing" rerun_unchanged m2

  check "m3 is set up at etcd 3.4.23 as the previous version did" old_style_member m3 --version 3.4.23
  check "data written on the old-style 3.4 member" ectl m3 put /migrate/k3 before
  check "etcdadm upgrade to $ETCD_VERSION moves m3's etcd to the etcd user" \
    ea_out out m3 upgrade --version "$ETCD_VERSION" --yes
  check "m3's etcd process runs as etcd, and etcd's files are etcd's" runs_as_etcd m3
  check "m3 runs $ETCD_VERSION and keeps the data written before" upgraded_with_data m3

  make_ca "$FLEET_RUN/ca" || return 1
  bootstrap_prepare "$FLEET_RUN/ca" "release-url: $MIRROR_URL
version: $ETCD_VERSION
bootstrap:
  discovery:
    provider: static
    peers: [$(fleet_ip 4)]
" m4 4 || return 1
  fleet_start m4 || return 1
  check "bootstrap forms a one-member cluster on m4" all_ready m4
  check "the installed bootstrap unit's exposure (figure printed)" bootstrap_exposure m4
  check "m4's etcd runs as etcd" runs_as_etcd m4
  check "m4 is made to look as the previous version left it" make_old_style m4
  check "data written on the old-style bootstrap member" ectl m4 put /migrate/k4 before
  check "m4 reboots" fleet_reboot m4
  check "bootstrap reports ready again" all_ready m4
  check "bootstrap moved m4's etcd to the etcd user at boot" runs_as_etcd m4
  check "m4 keeps the data written before" read_back m4 /migrate/k4 before
  check "bootstrap's journal says it moved etcd" grep_journal m4 "moving etcd to its own user"
}

# Numeric ids of the etcd user in M, from its /etc/passwd.
etcd_uid() { fleet_exec "$1" awk -F: '$1 == "etcd" {print $3}' /etc/passwd; }

runs_as_etcd() { # M
  local pid uid status owner
  uid=$(etcd_uid "$1") && [[ -n $uid ]] || fleet__fail "no etcd user in $1's /etc/passwd" || return 1
  pid=$(fleet_exec "$1" systemctl show -p MainPID --value etcd) || return 1
  [[ $pid != 0 ]] || fleet__fail "etcd is not running on $1" || return 1
  status=$(fleet_exec "$1" awk '/^Uid:|^Gid:/ {print $2, $3, $4, $5}' "/proc/$pid/status") || return 1
  fleet_log "$1: etcd (pid $pid) Uid/Gid: $(tr '\n' ';' <<<"$status"), user $(fleet_exec "$1" stat -c %U "/proc/$pid")"
  assert_eq "$uid $uid $uid $uid" "$(head -1 <<<"$status")" "real, effective, saved, fs uid of etcd" || return 1
  assert_eq etcd "$(fleet_exec "$1" stat -c %U "/proc/$pid")" "user of the etcd process" || return 1
  owner=$(fleet_exec "$1" sh -c 'stat -c "%U %a" /var/lib/etcd; stat -L -c "%U %a" /etc/etcd/pki/server.key /etc/etcd/pki/peer.key /etc/etcd/pki/ca.key; find /var/lib/etcd ! -user etcd | wc -l') || return 1
  assert_eq "etcd 700|etcd 600|etcd 600|root 600|0" "$(tr '\n' '|' <<<"$owner" | sed 's/|$//')" \
    "owner and mode of data dir, server key, peer key, CA key; files in the data dir not etcd's"
}

ca_key_private() { # M
  local err
  if err=$(fleet_exec "$1" setpriv --reuid=etcd --regid=etcd --clear-groups cat /etc/etcd/pki/ca.key 2>&1); then
    fleet__fail "the etcd user read the CA key on $1"
    return 1
  fi
  assert_contains "$err" "Permission denied" "reading the CA key as etcd" || return 1
  fleet_exec "$1" setpriv --reuid=etcd --regid=etcd --clear-groups cat /etc/etcd/pki/server.key >/dev/null ||
    fleet__fail "the etcd user cannot read its own server key"
}

exposure() { # M: prints each unit's figure; etcd.service must be at most 2.0
  local u line figure etcd_figure=
  for u in etcd.service etcdadm-backup.service etcdadm-certs-renew.service; do
    line=$(fleet_exec "$1" systemd-analyze security --no-pager "$u" | grep 'Overall exposure level') || return 1
    figure=$(sed -n 's/.*: \([0-9.]*\) .*/\1/p' <<<"$line")
    fleet_log "systemd-analyze security $u: $figure ($line)"
    [[ $u == etcd.service ]] && etcd_figure=$figure
  done
  # The bootstrap unit as shipped (packaging/), analysed offline in the machine.
  install -D -m 0644 "$(dirname "${BASH_SOURCE[0]}")/../../../packaging/etcdadm-bootstrap.service" \
    "$(fleet_root "$1")/root/etcdadm-bootstrap.service" || return 1
  line=$(fleet_exec "$1" systemd-analyze security --no-pager --offline=true /root/etcdadm-bootstrap.service | grep 'Overall exposure level') || return 1
  fleet_log "systemd-analyze security etcdadm-bootstrap.service (packaging/, offline): $line"
  [[ -n $etcd_figure ]] || fleet__fail "no figure for etcd.service" || return 1
  awk -v f="$etcd_figure" 'BEGIN { exit !(f + 0 <= 2.0) }' || fleet__fail "etcd.service exposure $etcd_figure > 2.0"
}

# openssl on the host with m1's etcdctl client certificate (so only the protocol or suite
# can be what the server refuses), offering only the given protocol and suites.
# SECLEVEL=0 lets this client offer TLS 1.1 and SHA-1 suites at all.
tls_handshake() { # M HOST:PORT OPENSSL-ARGS...
  local pki to=$2
  pki=$(fleet_root "$1")/etc/etcd/pki
  shift 2
  timeout 10 openssl s_client -connect "$to" "$@" -CAfile "$pki/ca.crt" \
    -cert "$pki/etcdctl-etcd-client.crt" -key "$pki/etcdctl-etcd-client.key" </dev/null 2>&1
}

tls_refused() { # M HOST:PORT OPENSSL-ARGS...
  local out
  out=$(tls_handshake "$@")
  if grep -E '^New, .*Cipher is [^(]' <<<"$out"; then
    fleet__fail "$2 accepted openssl ${*:3}"
    return 1
  fi
  assert_contains "$out" "Cipher is (NONE)" "openssl ${*:3} against $2" || return 1
  fleet_log "$2 refused openssl ${*:3}: $(grep -m1 -iE 'alert|error' <<<"$out")"
}

tls_served() { # M HOST:PORT: TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256
  local out
  out=$(tls_handshake "$1" "$2" -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256)
  assert_contains "$out" "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" "handshake with $2" || return 1
  assert_contains "$out" "Protocol  : TLSv1.2" "protocol of the session with $2" || return 1
  assert_contains "$out" "Verify return code: 0 (ok)" "server certificate of $2"
}

timer_backup() { # M
  local before
  before=$(fleet_exec "$1" sh -c 'ls /var/backups/etcd | tail -1')
  fleet_exec "$1" systemctl start etcdadm-backup.service || { fleet_exec "$1" journalctl -u etcdadm-backup.service --no-pager | tail -20 >&2; return 1; }
  [[ $(fleet_exec "$1" sh -c 'ls /var/backups/etcd | tail -1') != "$before" ]] || fleet__fail "no new snapshot"
}

# The renewal service renews the one-day certificates: a new key, still etcd's, and etcd
# restarted on it.
timer_renew() { # M
  local before
  before=$(fleet_exec "$1" sha256sum /etc/etcd/pki/server.key) || return 1
  fleet_exec "$1" systemctl start etcdadm-certs-renew.service ||
    { fleet_exec "$1" journalctl -u etcdadm-certs-renew.service --no-pager | tail -20 >&2; return 1; }
  [[ $(fleet_exec "$1" sha256sum /etc/etcd/pki/server.key) != "$before" ]] || fleet__fail "the server key was not renewed" || return 1
  runs_as_etcd "$1" && fleet_retry 30 ectl "$1" endpoint health >/dev/null
}

read_back() { # M KEY VALUE
  assert_eq "$3" "$(ectl "$1" get "$2" --print-value-only)" "value of $2 on $1"
}

# What the previous version left on a member: the unit without user and sandbox, etcd
# running as root, every file root's.
old_style_member() { # M [INIT ARGS...]
  ea_out out "$1" init "${@:2}" || return 1
  make_old_style "$1"
}

make_old_style() { # M
  local unit=/etc/systemd/system/etcd.service
  fleet_exec "$1" sh -c "systemctl stop etcd && sed -i '/^User=etcd\$/,/^SystemCallErrorNumber=/d' $unit &&
    chown -R root:root /var/lib/etcd && chown root:root /etc/etcd/pki/server.key /etc/etcd/pki/peer.key &&
    chmod 0644 /etc/etcd/pki/ca.key &&
    systemctl daemon-reload && systemctl start etcd" || return 1
  if fleet_exec "$1" grep -E '^(User|ProtectSystem|SystemCallFilter)=' "$unit"; then
    fleet__fail "the old-style unit still has a user or sandbox"
    return 1
  fi
  local pid
  pid=$(fleet_exec "$1" systemctl show -p MainPID --value etcd) || return 1
  assert_eq root "$(fleet_exec "$1" stat -c %U "/proc/$pid")" "user of the old-style etcd" || return 1
  fleet_retry 30 ectl "$1" endpoint health >/dev/null
}

upgraded_with_data() { # M
  read_back "$1" /migrate/k3 before || return 1
  assert_contains "$(fleet_exec "$1" /opt/bin/etcd --version)" "etcd Version: $ETCD_VERSION" "installed etcd"
}

bootstrap_exposure() { # M
  local line
  line=$(fleet_exec "$1" systemd-analyze security --no-pager etcdadm-bootstrap.service | grep 'Overall exposure level') || return 1
  fleet_log "systemd-analyze security etcdadm-bootstrap.service (installed on $1): $line"
}

rerun_unchanged() { # M
  local pid1 pid2
  pid1=$(fleet_exec "$1" systemctl show -p MainPID --value etcd) || return 1
  ea_out out "$1" init || return 1
  assert_contains "$out" "nothing to do" "second re-run" || return 1
  pid2=$(fleet_exec "$1" systemctl show -p MainPID --value etcd) || return 1
  assert_eq "$pid1" "$pid2" "etcd's pid across the second re-run (not restarted)"
}
