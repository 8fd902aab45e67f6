# shellcheck shell=bash
# Rolling upgrade: a 3-member etcd 3.4.23 cluster formed with init/join is upgraded to 3.5.16
# one member at a time with `etcdadm upgrade` while a writer on the host keeps writing
# sequential keys; no acknowledged write is lost. Re-runs are no-ops, unsupported steps are
# refused with nothing changed, and an upgrade to a release whose etcd cannot start is rolled
# back to the previous binaries. Reset of an upgraded member removes the kept binaries. A
# release with a known data inconsistency bug (3.5.1) is refused unless explicitly allowed.

UPGRADE_FROM=3.4.23
UPGRADE_TO=3.5.16
PATCH_TO=3.5.30 # a current patch release, for the interrupted-upgrade case

scenario() {
  ETCD_VERSION=$UPGRADE_FROM # read by fleet_setup and machines (common.sh)
  export ETCD_VERSION
  fleet_setup || return 1
  "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/build-etcd-mirror.sh" "$MIRROR" "$UPGRADE_TO" "$PATCH_TO" >&2 || return 1
  machines m1 1 m2 2 m3 3 || return 1
  local out ep m
  ep="https://$(fleet_ip 1):2379"
  check "init at $UPGRADE_FROM" ea_out out m1 init
  copy_ca m1 m2 && copy_ca m1 m3 || return 1
  check "m2 joins at $UPGRADE_FROM" ea_out out m2 join "$ep"
  check "m3 joins at $UPGRADE_FROM" ea_out out m3 join "$ep"
  check "three started voters, all on $UPGRADE_FROM" versions_are "$UPGRADE_FROM" m1 m2 m3

  check "3.4 -> 3.6 refused: one minor at a time, nothing changed" \
    refused m1 "upgrade one minor at a time: 3.4 → 3.5 → 3.6" upgrade --version 3.6.0 --yes
  check "3.4 -> 3.5.1 refused as a known-bad release, naming the bug and the override, nothing changed" \
    refused m1 "etcd 3.5.1 (--version) is a release etcd's maintainers warn against: under load" upgrade --version 3.5.1 --yes
  check "without --yes and without a terminal: refused, nothing changed" \
    refused m1 "needs confirmation and stdin is not a terminal: pass --yes; nothing was changed" upgrade --version "$UPGRADE_TO"

  writer_start || return 1
  for m in m3 m2 m1; do
    check "upgrade $m to $UPGRADE_TO while the writer writes" upgrade_member "$m"
    [[ $m == m3 ]] && check "mid-roll: $m to 3.6 refused while others run 3.4" \
      refused m3 "runs etcd $UPGRADE_FROM; every member must run 3.5 or newer before any member moves to 3.6.0" upgrade --version 3.6.0 --yes
  done
  check "the writer stops; it had acknowledged writes" writer_stop
  for m in m1 m2 m3; do
    check "every acknowledged write is on $m with its value" acked_keys_on "$m"
  done
  check "all three members run $UPGRADE_TO" versions_are "$UPGRADE_TO" m1 m2 m3
  check "the cluster version becomes 3.5" fleet_retry 90 cluster_version_is m1 3.5
  check "the cluster is healthy" ectl m1 endpoint health --cluster
  check "state files record $UPGRADE_TO" recorded_version "$UPGRADE_TO" m1 m2 m3

  check "upgrading an upgraded member again changes nothing" no_op m2
  check "3.5 -> 3.7 refused, nothing changed" refused m1 "upgrade one minor at a time: 3.5 → 3.6 → 3.7" upgrade --version 3.7.0 --yes
  check "downgrade to $UPGRADE_FROM refused, nothing changed" refused m1 "downgrade" upgrade --version "$UPGRADE_FROM" --yes

  check "a release whose etcd cannot start is rolled back" rolled_back m2
  check "after the rollback m2 runs $UPGRADE_TO, three healthy voters" versions_are "$UPGRADE_TO" m1 m2 m3
  check "after the rollback the cluster is healthy" ectl m2 endpoint health --cluster
  check "after the rollback every acknowledged write is on m2" acked_keys_on m2
  check "after the rollback m2's state file records $UPGRADE_TO" recorded_version "$UPGRADE_TO" m2
  check "a real upgrade SIGKILLed right after its swap (before the restart) completes when run again" interrupted m1
  check "reset of an upgraded member removes the kept binaries too" reset_clean m3
}

# A real `etcdadm upgrade --version $PATCH_TO` killed (SIGKILL) right after it swapped the
# binaries, before it restarts etcd: a `systemctl` shim earlier on its PATH (/usr/local/sbin)
# SIGKILLs its caller, etcdadm, on the first `systemctl reset-failed|restart etcd`, which
# etcdadm runs only once the swap is done. Then the live files are $PATCH_TO's while etcd
# still runs $UPGRADE_TO. Running it again uses the copy of $UPGRADE_TO kept by then,
# restarts, and records $PATCH_TO; binaries older than the previous version are removed.
interrupted() { # M
  local root rc
  root=$(fleet_root "$1")
  install -D -m 0755 /dev/stdin "$root/usr/local/sbin/systemctl" <<'SH' || return 1
#!/bin/sh
# test shim (98-upgrade): SIGKILL the caller at its first reset-failed/restart of etcd
case "$1 $2" in
"reset-failed etcd" | "reset-failed etcd.service" | "restart etcd" | "restart etcd.service")
  echo "$PPID $1" >/run/upgrade-killed-at
  kill -KILL "$PPID"
  exit 1
  ;;
esac
exec /usr/bin/systemctl "$@"
SH
  ea_out out "$1" upgrade --version "$PATCH_TO" --yes
  rc=$?
  rm -f "$root/usr/local/sbin/systemctl"
  assert_eq 137 "$rc" "exit status of the interrupted upgrade (128 + SIGKILL)" &&
    assert_contains "$(fleet_exec "$1" cat /run/upgrade-killed-at)" "reset-failed" "the shim killed etcdadm at" || return 1
  assert_contains "$(fleet_exec "$1" /opt/bin/etcd --version)" "etcd Version: $PATCH_TO" "live binary after the kill: swapped" &&
    assert_contains "$(ectl "$1" endpoint status)" ", $UPGRADE_TO, " "member still runs $UPGRADE_TO" &&
    recorded_version "$UPGRADE_TO" "$1" || return 1
  ea_out out "$1" upgrade --version "$PATCH_TO" --yes || return 1
  assert_contains "$out" "upgraded from etcd $UPGRADE_TO to $PATCH_TO" "says what it did" &&
    assert_contains "$(ectl "$1" endpoint status)" ", $PATCH_TO, " "member version of $1" &&
    recorded_version "$PATCH_TO" "$1" &&
    assert_eq "etcd-v$UPGRADE_TO etcd-v$PATCH_TO" "$(cd "$root/opt/bin" && echo etcd-v*)" "kept binaries on $1" &&
    ectl "$1" endpoint health --cluster >/dev/null &&
    acked_keys_on "$1"
}

reset_clean() { # M
  ea_out out "$1" reset || return 1
  assert_eq "" "$(fleet_exec "$1" sh -c 'ls -A /opt/bin 2>/dev/null')" "left in /opt/bin on $1"
}

# Every machine's etcd binary and its member (status API, through etcdctl) report VERSION.
versions_are() { # VERSION M...
  local v=$1 m
  shift
  assert_eq 3 "$(started_voters m1)" "started voters" || return 1
  for m; do
    assert_contains "$(fleet_exec "$m" /opt/bin/etcd --version)" "etcd Version: $v" "binary on $m" || return 1
    assert_contains "$(ectl "$m" endpoint status)" ", $v, " "member version of $m" || return 1
  done
}

# etcd's main PID on M: a refused upgrade must not have restarted it.
etcd_pid() { fleet_exec "$1" systemctl show -p MainPID --value etcd; }

# etcdadm ARGS on M fails, says TEXT, and changes nothing (files, member list, etcd process).
refused() { # M TEXT ARGS...
  local m=$1 text=$2 before pid list
  shift 2
  before=$(fingerprint "$m") && pid=$(etcd_pid "$m") && list=$(members "$m") || return 1
  ! ea_out out "$m" "$@" || return 1
  assert_contains "$out" "$text" "the refusal explains" &&
    assert_eq "$before" "$(fingerprint "$m")" "files on $m" &&
    assert_eq "$pid" "$(etcd_pid "$m")" "etcd process on $m" &&
    assert_eq "$list" "$(members "$m")" "member list"
}

# Host-side writer: etcdctl (from the $UPGRADE_TO release) with m1's client certificate
# writes /up/k00001, /up/k00002, ... through all three members' client URLs; every
# acknowledged write is appended to writer.acked as "KEY VALUE".
writer_start() {
  local w=$FLEET_RUN/writer pki eps
  pki=$(fleet_root m1)/etc/etcd/pki
  tar -xzf "$MIRROR/v$UPGRADE_TO/etcd-v$UPGRADE_TO-linux-amd64.tar.gz" -O "etcd-v$UPGRADE_TO-linux-amd64/etcdctl" >"$w.etcdctl" &&
    chmod 0755 "$w.etcdctl" &&
    cp "$pki/ca.crt" "$w.ca.crt" && cp "$pki/etcdctl-etcd-client.crt" "$w.crt" && cp "$pki/etcdctl-etcd-client.key" "$w.key" || return 1
  eps=https://$(fleet_ip 1):2379,https://$(fleet_ip 2):2379,https://$(fleet_ip 3):2379
  : >"$w.acked"
  : >"$w.failed"
  rm -f "$w.stop"
  (
    i=0
    while [[ ! -e $w.stop ]]; do
      i=$((i + 1))
      printf -v k '/up/k%05d' "$i"
      if env -i "$w.etcdctl" --endpoints="$eps" --cacert="$w.ca.crt" --cert="$w.crt" --key="$w.key" \
        --dial-timeout=2s --command-timeout=3s put "$k" "v$i" >/dev/null 2>>"$w.errors"; then
        echo "$k v$i" >>"$w.acked"
      else
        echo "$k" >>"$w.failed"
      fi
      sleep 0.05
    done
  ) </dev/null &
  echo $! >"$w.pid"
  echo $! >>"$FLEET_RUN/servers"
  fleet_retry 30 test -s "$w.acked"
}

acked() { wc -l <"$FLEET_RUN/writer.acked"; }

writer_stop() {
  local w=$FLEET_RUN/writer
  touch "$w.stop"
  fleet__wait_gone 15 "$(<"$w.pid")" || return 1
  fleet_log "writer: $(acked) writes acknowledged, $(wc -l <"$w.failed") not"
  (($(acked) >= 20)) || fleet__fail "only $(acked) writes acknowledged"
}

upgrade_member() { # M
  local before after
  before=$(acked)
  ea_out out "$1" upgrade --version "$UPGRADE_TO" --yes || return 1
  after=$(acked)
  assert_contains "$out" "upgraded from etcd $UPGRADE_FROM to $UPGRADE_TO" "says what it did" &&
    assert_contains "$out" "snapshot of member $1 before the upgrade: /var/backups/etcd/$1-" "says where the snapshot is" || return 1
  local snap=${out#*before the upgrade: }
  snap=${snap%%$'\n'*}
  fleet_exec "$1" test -s "$snap" || fleet__fail "snapshot $snap missing on $1" || return 1
  assert_contains "$(fleet_exec "$1" /opt/bin/etcd --version)" "etcd Version: $UPGRADE_TO" "binary on $1" &&
    fleet_exec "$1" test -x "/opt/bin/etcd-v$UPGRADE_FROM/etcd" || return 1
  ((after > before)) || fleet__fail "no write was acknowledged while $1 was upgraded ($before before, $after after)"
}

# Every write the writer saw acknowledged is on M (read through M's own endpoint).
acked_keys_on() { # M
  ectl "$1" get /up/ --prefix >"$FLEET_RUN/keys.$1" || return 1
  python3 - "$FLEET_RUN/writer.acked" "$1" "$FLEET_RUN/keys.$1" <<'PY'
import sys
lines = open(sys.argv[3]).read().split("\n")
have = dict(zip(lines[0::2], lines[1::2]))
acked = [l.split(" ", 1) for l in open(sys.argv[1]).read().splitlines()]
missing = [(k, v, have.get(k)) for k, v in acked if have.get(k) != v]
print(f"{sys.argv[2]}: {len(acked)} acknowledged writes, {len(have)} keys, {len(missing)} missing or wrong", file=sys.stderr)
sys.exit(f"missing or wrong on {sys.argv[2]}: {missing[:10]}" if missing or not acked else 0)
PY
}

cluster_version_is() { # M MAJOR.MINOR: etcd_cluster_version on the member's metrics port
  local metrics
  metrics=$(fleet_http "$1" http://127.0.0.1:2381/metrics) || return 1
  grep_all "^etcd_cluster_version{cluster_version=\"$2\"} 1" <<<"$metrics"
}

recorded_version() { # VERSION M...
  local v=$1 m
  shift
  for m; do
    python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["config"]["version"] != sys.argv[2])' \
      "$(fleet_root "$m")/etc/etcdadm/state.json" "$v" || fleet__fail "state file of $m does not record $v" || return 1
  done
}

no_op() { # M
  local before pid
  before=$(fingerprint "$1") && pid=$(etcd_pid "$1") || return 1
  ea_out out "$1" upgrade --version "$UPGRADE_TO" --yes || return 1
  assert_contains "$out" "already runs etcd $UPGRADE_TO and the cluster is healthy; nothing to do" "says so" &&
    assert_eq "$before" "$(fingerprint "$1")" "files on $1" &&
    assert_eq "$pid" "$(etcd_pid "$1")" "etcd process on $1"
}

# A mirror of etcd 3.5.99 whose etcd reports its version but exits 1 when started (etcdctl
# and etcdutl from $UPGRADE_TO), with a correct SHA256SUMS, as file:///srv/bogus on M.
rolled_back() { # M
  local b=$FLEET_RUN/bogus name=etcd-v3.5.99-linux-amd64
  mkdir -p "$b/$name" "$b/v3.5.99" &&
    tar -xzf "$MIRROR/v$UPGRADE_TO/etcd-v$UPGRADE_TO-linux-amd64.tar.gz" -C "$b/$name" --strip-components=1 \
      "etcd-v$UPGRADE_TO-linux-amd64/etcdctl" "etcd-v$UPGRADE_TO-linux-amd64/etcdutl" || return 1
  cat >"$b/$name/etcd" <<'SH'
#!/bin/sh
# A broken etcd for the rollback test: it reports its version, and cannot start.
if [ "$1" = --version ]; then echo "etcd Version: 3.5.99"; exit 0; fi
echo "etcd 3.5.99 (test build): cannot start" >&2
exit 1
SH
  chmod 0755 "$b/$name/etcd" &&
    tar -C "$b" -czf "$b/v3.5.99/$name.tar.gz" "$name" &&
    (cd "$b/v3.5.99" && sha256sum "$name.tar.gz" >SHA256SUMS) &&
    mkdir -p "$(fleet_root "$1")/srv" && cp -r "$b" "$(fleet_root "$1")/srv/bogus" || return 1
  ! ea_out out "$1" upgrade --version 3.5.99 --yes --release-url file:///srv/bogus || return 1
  assert_contains "$out" "upgrade of member $1 to etcd 3.5.99 failed; rolled back to etcd $UPGRADE_TO, which runs and is healthy" "says it rolled back" &&
    assert_contains "$out" "etcd 3.5.99 did not start" "says what failed" &&
    assert_contains "$(fleet_exec "$1" /opt/bin/etcd --version)" "etcd Version: $UPGRADE_TO" "binary on $1" &&
    assert_eq active "$(fleet_exec "$1" systemctl is-active etcd)" "etcd unit on $1"
}
