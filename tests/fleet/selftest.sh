#!/usr/bin/env bash
# Self-test of the fleet harness (tests/fleet/lib.sh) and of scripts/build-etcd-mirror.sh:
# two real systemd machines on NET_INDEX 9 fetch etcd from the local mirror over HTTP, run it,
# reach each other, get partitioned, crashed, rebooted and powered off; teardown leaves nothing.
# Root only (run scripts/install-deps.sh first). Exits non-zero on any failure.
set -euo pipefail
shopt -s inherit_errexit
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

net=9 port=8080 v=3.5.30
mirror=$FLEET_CACHE/mirror
tarball=etcd-v$v-linux-amd64.tar.gz
ms() { echo $((${EPOCHREALTIME//[^0-9]/} / 1000)); }
secs() { local d=$(($(ms) - $1)); printf '%d.%01d s' $((d / 1000)) $((d % 1000 / 100)); }
leftovers() { # what a run of index $net may have left on the host
  fleet__pgrep "*systemd-nspawn * -M ea$net-* *"
  fleet__pgrep "*http.server*--bind 10.213.$net.1 *"
  grep -o " /var/tmp/etcdadm-fleet\.$net\.[^ ]*" /proc/mounts || true
  ls -d /sys/fs/cgroup/*/fleet/"ea$net"-* /var/tmp/etcdadm-fleet."$net".* 2>/dev/null || true
  ip -br link show "br-ea$net" 2>/dev/null || true
}

t=$(ms)
# shellcheck disable=SC2119 # the plain base: no variant argument
fleet_base
t_base=$(secs "$t")

t=$(ms)
"$here/../../scripts/build-etcd-mirror.sh" "$mirror" "$v"
t_mirror=$(secs "$t")

fleet_log "selftest: a run that crashes with a machine up leaves it behind"
# shellcheck disable=SC2016
(bash -c '. "$1"; fleet_base && fleet_init "$2" && fleet_boot m1 1 && kill -9 $$' \
  crashed "$here/lib.sh" "$net" || true) 2>/dev/null
[[ -n $(leftovers) ]] || fleet__fail "the crashed run left nothing to reclaim"

fleet_init "$net"
assert_eq "" "$(leftovers | grep -v "$FLEET_RUN\|br-ea$net" || true)" "fleet_init reclaims a crashed run"
fleet_serve "$mirror" "$port"
url=http://10.213.$net.1:$port/v$v

t=$(ms)
fleet_create m1 1
fleet_create m2 2
fleet_start m1 m2
t_boot=$(secs "$t")

assert_eq m2 "$(fleet_exec m2 hostname)" "hostname"
assert_eq "10.213.$net.12" "$(fleet_ip 2)" "fleet_ip"
assert_eq $'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOME=/root' \
  "$(fleet_exec m1 env)" "fleet_exec environment"
assert_eq 3 "$(fleet_exec m1 sh -c 'echo oops >&2; exit 3' 2>/dev/null || echo $?)" "fleet_exec exit code"
[[ $(fleet_exec m1 cat /etc/machine-id) != "$(fleet_exec m2 cat /etc/machine-id)" ]] ||
  fleet__fail "machines share a machine-id"

fleet_log "selftest: m1 and m2 fetch etcd v$v from the mirror, verify and run it"
assert_eq "$(<"$mirror/v$v/SHA256SUMS")" "$(fleet_http m1 "$url/SHA256SUMS")" "SHA256SUMS served to m1"
for m in m1 m2; do
  fleet_http "$m" "$url/SHA256SUMS" >"$(fleet_root "$m")/var/tmp/SHA256SUMS"
  fleet_http "$m" "$url/$tarball" >"$(fleet_root "$m")/var/tmp/$tarball"
  fleet_exec "$m" sh -c "cd /var/tmp && sha256sum --quiet -c SHA256SUMS && tar -C /opt -xzf $tarball"
done
etcd=/opt/etcd-v$v-linux-amd64/etcd
assert_contains "$(fleet_exec m2 "$etcd" --version)" "etcd Version: $v" "etcd --version in m2"

fleet_log "selftest: each machine reaches the other's etcd"
for n in 1 2; do
  ip=$(fleet_ip "$n")
  fleet_exec "m$n" systemd-run -q --unit=etcd-selftest "$etcd" --name "m$n" --data-dir /var/lib/etcd-selftest \
    --listen-client-urls "http://$ip:2379" --advertise-client-urls "http://$ip:2379" \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "m$n=http://127.0.0.1:2380"
done
fleet_retry 20 fleet_http m1 "http://$(fleet_ip 2):2379/health" >/dev/null
fleet_retry 20 fleet_http m2 "http://$(fleet_ip 1):2379/health" >/dev/null
assert_contains "$(fleet_http m1 "http://$(fleet_ip 2):2379/version")" "\"etcdserver\":\"$v\"" "m1 -> m2"
assert_contains "$(fleet_http m2 "http://$(fleet_ip 1):2379/version")" "\"etcdserver\":\"$v\"" "m2 -> m1"

fleet_log "selftest: partition and heal m2"
fleet_partition m2
FLEET_HTTP_TIMEOUT=2 assert_fails "m1 reaches partitioned m2" fleet_http m1 "http://$(fleet_ip 2):2379/version" 2>/dev/null
fleet_heal m2
fleet_retry 10 fleet_http m1 "http://$(fleet_ip 2):2379/version" >/dev/null

fleet_log "selftest: the leak scan passes clean journals, then finds a key's body and a registered secret"
results=$(mktemp)
FLEET_RESULTS=$results SCENARIO=selftest fleet__leak_verdict
assert_contains "$(<"$results")" "pass selftest: no private key" "verdict on clean journals"
body=MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCselftestbody
fleet_exec m1 sh -c "mkdir -p /etc/selftest && printf '%s\n' '-----BEGIN PRIVATE KEY-----' $body '-----END PRIVATE KEY-----' >/etc/selftest/x.key"
fleet_exec m1 logger "leaked $body"
fleet_secret selftest-secret-value
fleet_exec m2 logger "leaked selftest-secret-value"
fleet_exec m1 journalctl --sync
fleet_exec m2 journalctl --sync
: >"$results"
FLEET_RESULTS=$results SCENARIO=selftest fleet__leak_verdict 2>/dev/null
assert_contains "$(<"$results")" "fail selftest: no private key" "verdict on journals with secrets"
leaks=$(fleet_leaks "$FLEET_RUN/leak-scan.txt")
assert_contains "$leaks" "m1: leaked $body" "leak scan names the key body in m1's journal"
assert_contains "$leaks" "m2: leaked selftest-secret-value" "leak scan names the secret in m2's journal"
rm -f "$results"

fleet_log "selftest: crash m1 and boot it again"
token=$(systemd-id128 new)
fleet_exec m1 sh -c "echo $token >/var/lib/fleet-selftest"
mid=$(fleet_exec m1 cat /etc/machine-id)
fleet_kill m1
assert_fails "m1 still running after fleet_kill" fleet_running m1
fleet_start m1
assert_eq "$token" "$(fleet_exec m1 cat /var/lib/fleet-selftest)" "file in /var/lib survives the crash"
assert_eq "$mid" "$(fleet_exec m1 cat /etc/machine-id)" "machine-id survives the crash"
assert_eq 2 "$(fleet_journal m1 -q --list-boots | wc -l)" "boots in m1's journal"
assert_contains "$(fleet_journal m1 -b -1 -o cat)" "Reached target multi-user.target" "journal of the crashed boot"

fleet_reboot m2
assert_eq 2 "$(fleet_journal m2 -q --list-boots | wc -l)" "boots in m2's journal after a reboot"
fleet_poweroff m2
assert_fails "m2 still running after fleet_poweroff" fleet_running m2
assert_eq 0 "$(<"$FLEET_RUN/m2/exit")" "nspawn exit code after poweroff"

t=$(ms)
fleet_teardown
t_teardown=$(secs "$t")
assert_eq "" "$(leftovers)" "leftovers after teardown"

fleet_log "selftest: PASS (base $t_base, mirror $t_mirror, boot of 2 machines $t_boot, teardown $t_teardown)"
