# shellcheck shell=bash
# Helpers the fleet scenarios share (sourced after lib.sh).

ETCD_VERSION=${ETCD_VERSION:-3.5.30}

# `grep -q` for the end of a pipe: reads all its input, so the writer never dies of SIGPIPE
# (which, under pipefail, would fail the pipe or, negated, pass it).
grep_all() { grep "$@" >/dev/null; }
SCENARIO=${SCENARIO:?run scenarios through tests/fleet/run.sh}

# Runs one named check; records it for the summary. A failed check ends the scenario.
check() { # NAME CMD...
  local name=$1
  shift
  if "$@"; then
    echo "pass $SCENARIO: $name" >>"$FLEET_RESULTS"
    fleet_log "ok: $name"
  else
    echo "fail $SCENARIO: $name" >>"$FLEET_RESULTS"
    fleet_log "FAILED: $name"
    exit 1
  fi
}

# Bridge, base rootfs and the local release mirror served on http://<bridge>:8080.
fleet_setup() {
  fleet_base || return 1
  fleet_init "${FLEET_NET_INDEX:?}" || return 1
  MIRROR=$FLEET_CACHE/mirror
  "$(dirname "${BASH_SOURCE[0]}")/../../scripts/build-etcd-mirror.sh" "$MIRROR" "$ETCD_VERSION" >&2 || return 1
  fleet_serve "$MIRROR" 8080 || return 1
  MIRROR_URL=http://10.213.$FLEET_NET.1:8080
}

# Creates machines (name index pairs), installs etcdadm and a config pointing at the
# mirror in each, then boots them together.
machines() { # M N [M N ...]
  local names=()
  while (($#)); do
    fleet_create "$1" "$2" || return 1
    install -D -m 0755 "$ETCDADM_BIN" "$(fleet_root "$1")/usr/local/bin/etcdadm" || return 1
    write_config "$1" "release-url: $MIRROR_URL"$'\n'"version: $ETCD_VERSION"$'\n' || return 1
    names+=("$1")
    shift 2
  done
  fleet_start "${names[@]}"
}

write_config() { # M YAML
  install -D -m 0644 /dev/stdin "$(fleet_root "$1")/etc/etcdadm/config.yaml" <<<"$2"
}

ea() { # M ARGS...: etcdadm inside M
  local m=$1
  shift
  fleet_exec "$m" etcdadm "$@"
}

ectl() { # M ARGS...: etcdctl on M through the wrapper etcdadm wrote
  local m=$1
  shift
  fleet_exec "$m" /opt/bin/etcdctl.sh "$@"
}

# `etcdctl member list` lines: id, status, name, peer, client, is_learner
members() { ectl "$1" member list; }

started_voters() { # M: number of started, non-learner members
  members "$1" | grep -c ', started, .*, false$'
}

copy_ca() { # FROM TO
  local f
  for f in ca.crt ca.key; do
    install -D -m "$([[ $f == *.key ]] && echo 0600 || echo 0644)" \
      "$(fleet_root "$1")/etc/etcd/pki/$f" "$(fleet_root "$2")/etc/etcd/pki/$f" || return 1
  done
}

# Output (stdout+stderr) of etcdadm in M, saved for later assertions; returns its status.
ea_out() { # VAR M ARGS...
  local __var=$1 __out __rc
  shift
  __out=$(ea "$@" 2>&1)
  __rc=$?
  printf -v "$__var" '%s' "$__out"
  printf '%s\n' "$__out" | sed "s/^/  $1| /" >&2
  return "$__rc"
}

# Fingerprint of everything etcdadm manages on M, to prove re-runs change nothing.
fingerprint() { # M
  fleet_exec "$1" sh -c 'sha256sum /etc/etcd/etcd.env /etc/etcd/etcdctl.env /etc/systemd/system/etcd.service /etc/etcd/pki/* /opt/bin/* /etc/etcdadm/state.json 2>&1; stat -c "%n %a" /etc/etcd/pki/*'
}

# --- bootstrap --------------------------------------------------------------------------

# A cluster CA made on the host, as an operator would before writing user-data.
make_ca() { # DIR
  "$ETCDADM_BIN" ca create --certs-dir "$1" >/dev/null
}

# Prepares machines for `etcdadm bootstrap` the way a provisioning system would: binary at
# /opt/bin/etcdadm, the packaged unit enabled, the CA from CA_DIR, and YAML as config
# (NAME and ADDRESS in it are replaced per machine). Does not start them. With
# BOOTSTRAP_NO_BINARY=1 neither binary nor unit is put in (a package installs them).
bootstrap_prepare() { # CA_DIR YAML M N [M N ...]
  local ca=$1 yaml=$2 root here
  here=$(dirname "${BASH_SOURCE[0]}")
  shift 2
  while (($#)); do
    fleet_create "$1" "$2" || return 1
    root=$(fleet_root "$1")
    if [[ ${BOOTSTRAP_NO_BINARY:-} != 1 ]]; then
      install -D -m 0755 "$ETCDADM_BIN" "$root/opt/bin/etcdadm" &&
        ln -sf /opt/bin/etcdadm "$root/usr/local/bin/etcdadm" &&
        install -D -m 0644 "$here/../../packaging/etcdadm-bootstrap.service" "$root/etc/systemd/system/etcdadm-bootstrap.service" &&
        mkdir -p "$root/etc/systemd/system/multi-user.target.wants" &&
        ln -sf ../etcdadm-bootstrap.service "$root/etc/systemd/system/multi-user.target.wants/etcdadm-bootstrap.service" || return 1
    fi
    install -D -m 0644 "$ca/ca.crt" "$root/etc/etcd/pki/ca.crt" &&
      install -D -m 0600 "$ca/ca.key" "$root/etc/etcd/pki/ca.key" &&
      write_config "$1" "${yaml//ADDRESS/$(fleet_ip "$2")}" || return 1
    shift 2
  done
}

# StatusText of the bootstrap unit once it is active (READY=1 seen by systemd).
bootstrap_ready() { # M [SECONDS]
  local deadline=$((SECONDS + ${2:-180})) state
  while :; do
    state=$(fleet_exec "$1" systemctl show -p ActiveState --value etcdadm-bootstrap 2>/dev/null)
    [[ $state == active ]] && break
    if ((SECONDS >= deadline)); then
      fleet_exec "$1" systemctl status --no-pager etcdadm-bootstrap >&2
      fleet_journal "$1" -u etcdadm-bootstrap | tail -30 >&2
      fleet__fail "bootstrap on $1 not ready after ${2:-180}s (state $state)"
      return 1
    fi
    sleep 0.5
  done
  fleet_exec "$1" systemctl show -p StatusText --value etcdadm-bootstrap
}

all_ready() { # M...
  local m text
  for m; do
    text=$(bootstrap_ready "$m") || return 1
    assert_contains "$text" "healthy" "StatusText of $m" || return 1
  done
}

# Every machine sees the same cluster id and the same N started voters.
one_cluster_of() { # N M...
  local n=$1 m ids=() lists=()
  shift
  for m; do
    ids+=("$(ea "$m" info --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster"]["id"])')") || return 1
    lists+=("$(members "$m" | sort)")
    assert_eq "$n" "$(started_voters "$m")" "started voters seen by $m" || return 1
  done
  assert_eq 1 "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" "distinct cluster ids (${ids[*]})" || return 1
  local l
  for l in "${lists[@]}"; do
    assert_eq "${lists[0]}" "$l" "member lists seen by different machines" || return 1
  done
}

# --- DNS on the bridge ------------------------------------------------------------------

# A real DNS server (dnsmasq) on the bridge address, authoritative for fleet.test (names
# must end in .fleet.test), answering from a hosts file that
# dns_set rewrites (SIGHUP makes dnsmasq re-read it).
dns_start() {
  DNS_HOSTS=$FLEET_RUN/dns-hosts
  : >"$DNS_HOSTS"
  dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --user=root \
    --listen-address="10.213.$FLEET_NET.1" --port=53 --addn-hosts="$DNS_HOSTS" --local-ttl=0 --local=/fleet.test/ \
    --pid-file="$FLEET_RUN/dnsmasq.pid" </dev/null >>"$FLEET_RUN/dnsmasq.log" 2>&1 &
  echo $! >>"$FLEET_RUN/servers"
  DNS_PID=$!
  fleet_retry 10 test -s "$FLEET_RUN/dnsmasq.pid" || fleet__fail "dnsmasq did not start: $(cat "$FLEET_RUN/dnsmasq.log")"
}

dns_set() { # NAME IP...: NAME resolves to exactly these addresses
  local name=$1 ip
  shift
  for ip; do printf '%s %s\n' "$ip" "$name"; done >"$DNS_HOSTS"
  kill -HUP "$DNS_PID"
}

# SRV records _etcd-server-ssl._tcp.DOMAIN on the bridge's address, one per NAME=IP (target
# NAME.DOMAIN, port 2380, with an A record for IP), served by a dnsmasq of its own (not
# dns_start's). dnsmasq reads SRV records only when it starts (SIGHUP does not reload
# them), so each call restarts it on the same address; queries in between fail and are
# retried by the machines, as with a real zone update.
dns_srv_set() { # DOMAIN NAME=IP...
  local domain=$1 e args=()
  shift
  for e; do
    args+=("--srv-host=_etcd-server-ssl._tcp.$domain,${e%%=*}.$domain,2380,0,10" "--host-record=${e%%=*}.$domain,${e#*=}")
  done
  if [[ -n ${DNS_SRV_PID:-} ]]; then
    kill "$DNS_SRV_PID" 2>/dev/null
    fleet__wait_gone 5 "$DNS_SRV_PID" || fleet__fail "dnsmasq $DNS_SRV_PID does not exit" || return 1
  fi
  rm -f "$FLEET_RUN/dnsmasq-srv.pid"
  dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --user=root \
    --listen-address="10.213.$FLEET_NET.1" --port=53 --local-ttl=0 --local=/fleet.test/ "${args[@]}" \
    --pid-file="$FLEET_RUN/dnsmasq-srv.pid" </dev/null >>"$FLEET_RUN/dnsmasq.log" 2>&1 &
  DNS_SRV_PID=$!
  echo "$DNS_SRV_PID" >>"$FLEET_RUN/servers"
  fleet_retry 10 test -s "$FLEET_RUN/dnsmasq-srv.pid" || fleet__fail "dnsmasq did not start: $(tail -5 "$FLEET_RUN/dnsmasq.log")"
}

# Bootstrap configuration discovering the SRV records of DOMAIN through the bridge's DNS server.
dns_srv_bootstrap_yaml() { # DOMAIN SIZE
  printf 'release-url: %s\nversion: %s\nbootstrap:\n  cluster-size: %s\n  discovery:\n    provider: dns\n    domain: %s\n    nameserver: 10.213.%s.1:53\n' \
    "$MIRROR_URL" "$ETCD_VERSION" "$2" "$1" "$FLEET_NET"
}

# No member of M's cluster is a learner.
no_learners() { # M
  local list
  list=$(members "$1") || return 1
  assert_eq 0 "$(grep -c ', true$' <<<"$list")" "learners in the member list of $1"
}

# Bootstrap configuration discovering NAME through the bridge's DNS server.
dns_bootstrap_yaml() { # NAME SIZE [EXTRA YAML under bootstrap]
  printf 'release-url: %s\nversion: %s\nbootstrap:\n  cluster-size: %s\n  discovery:\n    provider: dns\n    name: %s\n    nameserver: 10.213.%s.1:53\n%s' \
    "$MIRROR_URL" "$ETCD_VERSION" "$2" "$1" "$FLEET_NET" "${3:-}"
}

# Waits until the bootstrap unit's status line contains TEXT.
# TEXT is in the bootstrap agent's journal.
grep_journal() { # M TEXT
  fleet_journal "$1" -u etcdadm-bootstrap | grep_all "$2" || fleet__fail "'$2' not in the journal of $1"
}

bootstrap_status_is() { # M TEXT [SECONDS]
  local deadline=$((SECONDS + ${3:-60})) s
  until s=$(fleet_exec "$1" systemctl show -p StatusText --value etcdadm-bootstrap 2>/dev/null) && [[ $s == *"$2"* ]]; do
    ((SECONDS < deadline)) || fleet__fail "$1: bootstrap status never showed '$2' (last: '$s')" || return 1
    sleep 0.2
  done
}

# SIGKILLs the bootstrap agent (the unit's processes; etcd is its own unit).
kill_bootstrap() { # M
  fleet_exec "$1" systemctl kill -s KILL etcdadm-bootstrap
}

# --- faults (issue 4) ---
# Helpers of the fault and bad-input scenarios (85-faults, 86-bad-inputs).

# Like check, but a failure does not end the scenario: for cases that do not depend on each
# other, so one product bug does not hide the next. The result is recorded by check itself;
# faults_verdict, last in the scenario, fails it when any such check failed.
check_each() { # NAME CMD...
  (check "$@") || FAULTS_FAILED=$((${FAULTS_FAILED:-0} + 1))
}

faults_verdict() {
  ((${FAULTS_FAILED:-0} == 0)) || fleet__fail "${FAULTS_FAILED} check(s) failed (see FAILED above)"
}

# A misbehaving server on 10.213.<i>.1:PORT until teardown. KIND: dns-silent (UDP and TCP:
# reads queries, never answers), dns-servfail (answers every query with SERVFAIL),
# dns-garbage (the query's id, then bytes that are not DNS), dns-garbage-then-valid
# (garbage until the file fault-KIND-PORT.valid holds an IPv4 address, then that address
# for every A query), http-500 (every request: 500), http-garbage (every request: 200 with
# bytes that are no metadata). Every request's source address is appended to
# $FLEET_RUN/fault-KIND-PORT.requests (see fault_requests).
fault_server() { # KIND PORT
  local py=$FLEET_RUN/fault-server.py ready=$FLEET_RUN/fault-$1-$2.ready
  cat >"$py" <<'PY'
import http.server, os, socket, socketserver, sys, threading
kind, host, port, ready = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
base = ready[: -len(".ready")]
log_lock = threading.Lock()
def logged(peer):
    with log_lock, open(base + ".requests", "a") as f:
        f.write(peer + "\n")
def question_end(q):
    i = 12
    while i < len(q) and q[i]:
        i += 1 + q[i]
    return min(i + 5, len(q))
def valid_ip():
    try:
        return open(base + ".valid").read().strip() or None
    except OSError:
        return None
def answer(q):
    if kind == "dns-servfail":   # same id and question, QR=1, RD copied, RA=1, RCODE=2
        return q[:2] + bytes([0x80 | (q[2] & 0x79), 0x82]) + q[4:6] + b"\0" * 6 + q[12:question_end(q)]
    ip = valid_ip() if kind == "dns-garbage-then-valid" else None
    if ip:                       # QR=1 AA=1, RD copied, RA=1; the A record, or no data
        end = question_end(q)
        flags = bytes([0x84 | (q[2] & 0x01), 0x80])
        if q[end - 4:end - 2] != b"\x00\x01":
            return q[:2] + flags + b"\x00\x01\x00\x00\x00\x00\x00\x00" + q[12:end]
        rr = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x05\x00\x04" + socket.inet_aton(ip)
        return q[:2] + flags + b"\x00\x01\x00\x01\x00\x00\x00\x00" + q[12:end] + rr
    if kind.startswith("dns-garbage"):  # claims 1 question and 5 answers, then noise
        return q[:2] + b"\x81\x80\x00\x01\x00\x05\x00\x00\x00\x00" + os.urandom(37)
    return None
if kind.startswith("dns-"):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((host, port))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((host, port)); tcp.listen(16)
    def tcp_loop():
        held = []
        while True:
            c, peer = tcp.accept()
            logged(peer[0])
            held.append(c)   # never closed: a slow server
            try:
                n = int.from_bytes(c.recv(2), "big"); q = c.recv(n); a = answer(q)
                if a is not None:
                    c.sendall(len(a).to_bytes(2, "big") + a)
            except OSError:
                pass
    threading.Thread(target=tcp_loop, daemon=True).start()
    open(ready, "w").close()
    while True:
        q, peer = udp.recvfrom(4096)
        logged(peer[0])
        a = answer(q) if len(q) >= 12 else None
        if a is not None:
            udp.sendto(a, peer)
elif kind in ("http-500", "http-garbage"):
    class H(http.server.BaseHTTPRequestHandler):
        def fail(self):
            logged(self.client_address[0])
            status, body = (500, b"internal error\n") if kind == "http-500" else (200, b"\x00\xff{[<garbage ]]\n")
            self.send_response(status); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body)
        do_GET = do_PUT = do_POST = fail
        def log_message(self, *a):
            pass
    srv = socketserver.ThreadingTCPServer((host, port), H)
    open(ready, "w").close()
    srv.serve_forever()
else:
    sys.exit("unknown kind " + kind)
PY
  python3 "$py" "$1" "10.213.$FLEET_NET.1" "$2" "$ready" </dev/null >>"$FLEET_RUN/fault-$1-$2.log" 2>&1 &
  echo $! >>"$FLEET_RUN/servers"
  fleet_retry 10 test -e "$ready" || fleet__fail "fault_server $1 on port $2 did not start: $(cat "$FLEET_RUN/fault-$1-$2.log")"
}

# How many requests fault_server KIND PORT got from IP.
fault_requests() { # KIND PORT IP
  local f=$FLEET_RUN/fault-$1-$2.requests
  [[ -e $f ]] || { echo 0; return 0; }
  grep -cxF -- "$3" "$f" || true
}

# Writes a key through M every 0.2 s (etcdctl, 2 s command timeout) in the background until
# quorum_probe_stop; each attempt is logged as "START_MS END_MS ok|fail".
quorum_probe_start() { # M
  rm -f "$FLEET_RUN/probe.stop" "$FLEET_RUN/probe.log"
  (
    local s
    while [[ ! -e $FLEET_RUN/probe.stop ]]; do
      s=$((${EPOCHREALTIME/./} / 1000))
      if fleet__in "$1" /opt/bin/etcdctl.sh --command-timeout=2s put /faults/probe "$s" >/dev/null 2>&1; then
        echo "$s $((${EPOCHREALTIME/./} / 1000)) ok"
      else
        echo "$s $((${EPOCHREALTIME/./} / 1000)) fail"
      fi
      sleep 0.2
    done
  ) >>"$FLEET_RUN/probe.log" 2>/dev/null &
  echo $! >"$FLEET_RUN/probe.pid"
}

# Stops the probe; fails when, at any time while it ran, no write had succeeded for longer
# than MAX_MS (the first attempt's start and the last attempt's end count as bounds).
quorum_probe_stop() { # MAX_MS
  local pid
  touch "$FLEET_RUN/probe.stop"
  pid=$(<"$FLEET_RUN/probe.pid")
  fleet__wait_gone 10 "$pid" || kill "$pid" 2>/dev/null
  awk -v max="$1" '
    NR == 1 { last = $1; first = $1 }
    { n++; if ($3 == "ok") { ok++; if ($2 - last > gap) gap = $2 - last; last = $2 } else bad++; end = $2 }
    END {
      if (end - last > gap) gap = end - last
      printf "quorum probe: %d writes in %.1f s, %d failed, longest time without a successful write %d ms (limit %d ms)\n", n, (end - first) / 1000, bad, gap, max > "/dev/stderr"
      exit !(n > 0 && gap <= max)
    }' "$FLEET_RUN/probe.log"
}

# What etcdadm may touch on M: every path under /etc/etcd, /etc/etcdadm, /var/lib/etcd,
# /opt/bin and /etc/systemd/system with its type, mode, size and link target, and the
# SHA-256 of every file ("DIR absent" for a missing tree).
tree_fingerprint() { # M
  # shellcheck disable=SC2016 # expanded by the machine's shell
  fleet_exec "$1" sh -c '
    for d in /etc/etcd /etc/etcdadm /var/lib/etcd /opt/bin /etc/systemd/system; do
      if [ -e "$d" ]; then
        find "$d" -printf "%p %y %m %s %l\n"
        find "$d" -type f -exec sha256sum {} +
      else
        echo "$d absent"
      fi
    done | LC_ALL=C sort'
}

# Saves those trees on M (in /root/trees.tar) to put them back after a case that changed them.
tree_save() { # M
  # shellcheck disable=SC2016 # expanded by the machine's shell
  fleet_exec "$1" sh -c 'cd / && set -- && for d in etc/etcd etc/etcdadm var/lib/etcd opt/bin etc/systemd/system; do [ -e "$d" ] && set -- "$@" "$d"; done; tar -cpf /root/trees.tar "$@"'
}

# Stops etcd and puts the trees saved by tree_save back exactly (trees absent then are removed).
tree_restore() { # M
  fleet_exec "$1" sh -c 'systemctl stop etcd 2>/dev/null; systemctl reset-failed etcd 2>/dev/null
    rm -rf /etc/etcd /etc/etcdadm /var/lib/etcd /opt/bin /etc/systemd/system &&
    tar -C / -xpf /root/trees.tar && systemctl daemon-reload'
}

# Fails when TEXT says a clause twice in a row (`...: S: S`), as an error does whose message
# already holds its cause and is then chained with the cause again.
no_repeated_clause() { # TEXT
  python3 - "$1" <<'PY'
import sys
s = sys.argv[1]
bounds = [i for i in range(len(s)) if s.startswith(": ", i)] + [len(s)]
for n, i in enumerate(bounds):
    for j in bounds[n + 1:]:
        seg = s[i + 2:j]
        if len(seg) >= 12 and s[:i].endswith(seg):
            sys.exit("FAIL: the error says %r twice: %s" % (seg, s))
PY
}

# --- writers --------------------------------------------------------------------------------
# A client that keeps writing while an operation runs (certificate renewals, defragmentation).

# Writes KEY (default /probe) through M every 0.2 s; each success appends "ok", each failure
# "fail I: error" to $FLEET_RUN/writes.
# Runs in the background; it stops when killed, when the scenario's shell ($$) is gone (a
# failed check returns without killing it), and after 10 minutes at the most.
writes_during() { # M [KEY]: a failed write is recorded with the time it was started
  local i=0 err started deadline=$((SECONDS + 600))
  : >"$FLEET_RUN/writes"
  while kill -0 "$$" 2>/dev/null && ((SECONDS < deadline)); do
    started=$EPOCHREALTIME
    if err=$(ectl "$1" put "${2:-/probe}" "$i" 2>&1); then
      echo ok >>"$FLEET_RUN/writes"
    else
      echo "fail $i started $started: ${err//$'\n'/ }" >>"$FLEET_RUN/writes"
    fi
    i=$((i + 1))
    sleep 0.2
  done
}

write_count() { # ok|fail
  grep -c "^$1" "$FLEET_RUN/writes"
}

writes_at_least() { # N
  local n
  n=$(write_count ok)
  ((n >= $1)) || { echo "only $n successful writes, expected at least $1" >&2; return 1; }
}

writes_seen() { # N: waits up to 30 s until at least N writes succeeded
  fleet_retry 30 writes_at_least "$1"
}

no_write_failures() {
  local ok
  ok=$(write_count ok)
  fleet_log "writes: $ok succeeded, $(write_count fail) failed"
  ((ok > 0)) || fleet__fail "no write succeeded: the writer did not run" || return 1
  assert_eq "" "$(grep '^fail' "$FLEET_RUN/writes")" "failed writes"
}

# --- leadership ---------------------------------------------------------------------------

leader_name() { # M: the leader's machine name, from etcd's status API through M
  ectl "$1" endpoint status --cluster -w json | python3 -c '
import json, sys
st = json.load(sys.stdin)
leader = st[0]["Status"]["leader"]
mine = [s for s in st if s["Status"]["header"]["member_id"] == leader]
print(mine[0]["Endpoint"])' | sed -E 's|https://10\.213\.[0-9]+\.1([0-9]):2379|m\1|'
}

# Makes M the leader (etcdctl move-leader sent to the current leader), waiting for it.
make_leader() { # M
  local leader id
  leader=$(leader_name "$1") || return 1
  [[ $leader == "$1" ]] && return 0
  id=$(ectl "$1" endpoint status -w json | python3 -c 'import json, sys; print("%x" % json.load(sys.stdin)[0]["Status"]["header"]["member_id"])') &&
    ectl "$leader" move-leader "$id" >/dev/null &&
    fleet_retry 30 leader_is "$1"
}

leader_is() { [[ $(leader_name "$1") == "$1" ]]; }

# M's etcd gave up leadership ("became follower", raft's own log line) after SINCE and
# before it received the stop signal: the leader was handed over, not lost to the stop.
handed_over_before_stop() { # M SINCE
  local log follower signal
  log=$(fleet_journal "$1" -u etcd -o short-unix --since "@${2%.*}") || return 1
  follower=$(grep -m1 'became follower at term' <<<"$log" | awk '{print $1}')
  signal=$(grep -m1 -F '"msg":"received signal; shutting down"' <<<"$log" | awk '{print $1}')
  [[ -n $follower && -n $signal ]] ||
    { echo "$1's etcd logged no 'became follower' ($follower) or no stop signal ($signal) since $2" >&2; return 1; }
  fleet_log "$1: became follower at $follower, stop signal at $signal"
  python3 -c "import sys; sys.exit(0 if $follower < $signal else 1)" ||
    { echo "$1 was still the leader when etcd was stopped (follower $follower, signal $signal)" >&2; return 1; }
}

# The textfile metrics etcdadm writes (default metrics-textfile-dir), read on the host.
TEXTFILE_DIR=/var/lib/node_exporter/textfile_collector
PROMTOOL=${PROMTOOL:-/opt/etcdadm-test/prometheus/usr/bin/promtool}

textfile_ok() { # M FILE: M's TEXTFILE_DIR/FILE exists, mode 0644, and `promtool check metrics` accepts it
  local f
  f="$(fleet_root "$1")$TEXTFILE_DIR/$2"
  [[ -x $PROMTOOL ]] || fleet__fail "$PROMTOOL missing: run scripts/install-deps.sh" || return 1
  [[ -s $f ]] || fleet__fail "$1: no $TEXTFILE_DIR/$2" || return 1
  "$PROMTOOL" check metrics <"$f" >&2 || fleet__fail "promtool check metrics rejects $1:$TEXTFILE_DIR/$2: $(cat "$f")" || return 1
  assert_eq 644 "$(stat -c %a "$f")" "mode of $1:$TEXTFILE_DIR/$2"
}

metric_value() { # M FILE SERIES: the value of SERIES (name and labels, exactly as written) in M's TEXTFILE_DIR/FILE
  awk -v s="$3" '$1 == s { print $2 }' "$(fleet_root "$1")$TEXTFILE_DIR/$2"
}

# --- S3 (moto) on the bridge ------------------------------------------------------------

# moto_server on the bridge address until teardown (S3_PORT; S3_ENDPOINT for s3_py).
s3_start() {
  local ip=10.213.$FLEET_NET.1 deadline=$((SECONDS + 30))
  [[ -x /opt/etcdadm-test/moto/bin/moto_server ]] || fleet__fail "moto missing: run scripts/install-deps.sh" || return 1
  /opt/etcdadm-test/moto/bin/moto_server -H "$ip" -p "$S3_PORT" </dev/null >>"$FLEET_RUN/moto.log" 2>&1 &
  echo $! >>"$FLEET_RUN/servers"
  until (: <>"/dev/tcp/$ip/$S3_PORT") 2>/dev/null; do
    ((SECONDS < deadline)) || fleet__fail "moto_server does not answer on $ip:$S3_PORT: $(tail -5 "$FLEET_RUN/moto.log")" || return 1
    sleep 0.2
  done
  fleet_log "s3: moto_server at http://$ip:$S3_PORT"
}

# Set-up and inspection of the store from the host, with moto's own boto3.
s3_py() { # ACTION ARGS...
  AWS_ACCESS_KEY_ID=setup AWS_SECRET_ACCESS_KEY=setup /opt/etcdadm-test/moto/bin/python - "$S3_ENDPOINT" "$@" <<'PY'
import sys, boto3
endpoint, action, *args = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
if action == "create-bucket":
    s3.create_bucket(Bucket=args[0])
elif action == "keys":            # BUCKET PREFIX: one key per line
    for o in s3.list_objects_v2(Bucket=args[0], Prefix=args[1]).get("Contents", []):
        print(o["Key"])
elif action == "sha256":          # BUCKET KEY: the recorded x-amz-meta-sha256
    print(s3.head_object(Bucket=args[0], Key=args[1])["Metadata"].get("sha256", ""))
elif action == "mac":             # BUCKET KEY: the recorded x-amz-meta-etcdadm-mac
    print(s3.head_object(Bucket=args[0], Key=args[1])["Metadata"].get("etcdadm-mac", ""))
elif action == "put-snapshot":    # BUCKET KEY FILE: uploaded with its sha256 recorded
    import hashlib
    body = open(args[2], "rb").read()
    s3.put_object(Bucket=args[0], Key=args[1], Body=body, Metadata={"sha256": hashlib.sha256(body).hexdigest()})
elif action == "put-wrongly-signed":  # BUCKET KEY FILE: with its sha256 and a MAC of no CA
    import hashlib
    body = open(args[2], "rb").read()
    s3.put_object(Bucket=args[0], Key=args[1], Body=body, Metadata={"sha256": hashlib.sha256(body).hexdigest(), "etcdadm-mac": "00" * 32})
elif action == "tampered-copy":   # BUCKET FROM TO: one byte changed, same recorded sha256
    o = s3.get_object(Bucket=args[0], Key=args[1])
    body = bytearray(o["Body"].read())
    body[len(body) // 2] ^= 0x01
    s3.put_object(Bucket=args[0], Key=args[2], Body=bytes(body), Metadata=o["Metadata"])
else:
    sys.exit("unknown action " + action)
PY
}

# --- fake clouds on the bridge (examples/cloud_api_server.rs) ---------------------------

# The discovery tests' fake GCE (Compute API and metadata server, tests/discovery/
# gce_server.rs) or Azure (ARM and IMDS, tests/discovery/azure_server.rs), built from this
# checkout and run on the bridge address until teardown. It holds what the JSON fixture says
# (see examples/cloud_api_server.rs; cloud_set changes it) and answers each machine's
# metadata requests for the instance at the machine's address. CLOUD_URL is its URL, both
# the API endpoint and the metadata source's base-url.
cloud_start() { # gce|azure PORT FIXTURE
  local repo target bin ip=10.213.$FLEET_NET.1
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd) &&
    target=$(cd "$repo" && realpath "${CARGO_TARGET_DIR:-target}") || return 1
  (cd "$repo" && cargo build --locked --quiet --example cloud_api_server) >&2 ||
    fleet__fail "cannot build examples/cloud_api_server" || return 1
  bin=$target/debug/examples/cloud_api_server
  cloud_set "$3" || return 1
  "$bin" "$1" "$ip:$2" "$FLEET_RUN/cloud.json" </dev/null >"$FLEET_RUN/cloud.out" 2>>"$FLEET_RUN/cloud.log" &
  echo $! >>"$FLEET_RUN/servers"
  fleet_retry 10 grep -q '^listening on ' "$FLEET_RUN/cloud.out" ||
    fleet__fail "cloud_api_server $1 did not start: $(tail -5 "$FLEET_RUN/cloud.log")" || return 1
  CLOUD_URL=http://$ip:$2
  fleet_log "cloud: fake $1 at $CLOUD_URL"
}

# What the fake cloud holds from now on (a fixture that differs from the current one); once
# the server runs, waits until it has loaded the change.
cloud_set() { # FIXTURE
  local f=$FLEET_RUN/cloud.json loaded
  loaded=$(grep -c '^cloud_api_server: loaded ' "$FLEET_RUN/cloud.log" 2>/dev/null)
  printf '%s\n' "$1" >"$f.new" && mv -f "$f.new" "$f" || return 1
  [[ -n ${CLOUD_URL:-} ]] || return 0
  fleet_retry 10 cloud__loaded_more_than "$loaded" ||
    fleet__fail "cloud_api_server did not load the new fixture: $(tail -3 "$FLEET_RUN/cloud.log")"
}

# The fake cloud's fixture grows one machine at a time, 2 s apart: WORLD_FN 1, then
# WORLD_FN 1 2, then WORLD_FN 1 2 3 (the machines the cloud counts so far).
cloud_one_by_one() { # WORLD_FN
  local n grown=()
  for n in 1 2 3; do
    grown+=("$n")
    cloud_set "$("$1" "${grown[@]}")" || return 1
    sleep 2
  done
}

cloud__loaded_more_than() { # N
  (($(grep -c '^cloud_api_server: loaded ' "$FLEET_RUN/cloud.log") > $1))
}

# Every machine decided to wait at least once (its peer set did not hold it, or was short).
each_waited() { # M...
  local m deadline=$((SECONDS + 60))
  for m; do
    until fleet_journal "$m" -u etcdadm-bootstrap | grep_all 'event="Decided" to="Waiting"'; do
      ((SECONDS < deadline)) || fleet__fail "$m never waited: $(fleet_journal "$m" -u etcdadm-bootstrap | tail -5)" || return 1
      sleep 0.5
    done
  done
}

# A machine that decides after the first one started etcd adopts its forming cluster (F3):
# it must compute the same list and token, or a second cluster starts.
same_initial_cluster() { # M...
  local m first="" this
  for m; do
    this=$(grep -E '^ETCD_INITIAL_CLUSTER(_TOKEN)?=' "$(fleet_root "$m")/etc/etcd/etcd.env") || return 1
    [[ -n $first ]] || first=$this
    assert_eq "$first" "$this" "initial cluster and token of $m" || return 1
  done
}

# M's member list is exactly these started members (name and peer URL), nothing else.
members_exactly() { # M NAME=IP...
  local list m=$1 pair
  shift
  list=$(members "$m") || return 1
  for pair; do
    assert_contains "$list" ", started, ${pair%%=*}, https://${pair#*=}:2380" "member list" || return 1
  done
  assert_eq "$#" "$(grep -c . <<<"$list")" "members ($list)"
}

# A key written through one member is read back through another.
key_round_trip() { # FROM TO
  local key=/fleet/$SCENARIO value=written-through-$1
  ectl "$1" put "$key" "$value" >/dev/null || return 1
  assert_eq "$value" "$(ectl "$2" get "$key" --print-value-only)" "$key read through $2"
}

# `etcdadm discover --once --output json` on M names exactly these peers (one of them this
# machine), from PROVIDER, complete, authoritative or not as given.
discover_shows() { # M PROVIDER true|false NAME=IP...
  local json m=$1
  json=$(fleet_exec "$m" etcdadm discover --once --output json) || return 1
  python3 - "$json" "${@:2}" <<'PY' || fleet__fail "discover on $m: $json"
import json, sys
r = json.loads(sys.argv[1])
provider, authoritative, want = sys.argv[2], sys.argv[3] == "true", sys.argv[4:]
peers = sorted("%s=%s" % (p["name"], p["peer-url"]) for p in r["peers"])
assert peers == sorted("%s=https://%s:2380" % tuple(w.split("=", 1)) for w in want), peers
assert r["provider"] == provider and r["expected"] == len(want) and r["complete"] is True, r
assert r["authoritative"] is authoritative, r
assert sum(p["this-machine"] for p in r["peers"]) == 1, r
PY
}
