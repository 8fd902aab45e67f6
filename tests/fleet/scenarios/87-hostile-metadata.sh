# shellcheck shell=bash
# Hostile instance metadata (issue 13, items 1 and 2): an IMDSv2-compatible server on the
# bridge whose instance tags try to choose what root installs and where data goes
# (release-url pointing at a mirror whose "etcd" leaves a marker when run, release-sha256 of
# that tarball, install-dir, unit-file, env-file, backup-s3-endpoint, backup-s3-url, the
# allow-list itself) and a member name carrying a newline and a unit directive. Three
# machines bootstrap from it: each warns once for each such tag, installs the real release
# from the configured mirror, and they form one cluster that stores a key; the allowed
# backup-on-calendar tag applies; the marker never appears, the evil mirror is never asked,
# and none of the hostile paths exists.

IMDS_PORT=8086  # the fake EC2 instance metadata service
EVIL_PORT=8087  # the attacker's release mirror
EVIL_S3=8088    # the attacker's S3 endpoint (nothing listens)

scenario() {
  fleet_setup || return 1
  fleet_secret imds-token-87 # the IMDS session token (TOKEN below) must appear in no log
  make_ca "$FLEET_RUN/ca" && evil_mirror && imds_start || return 1
  local peers
  peers="[$(fleet_ip 1), $(fleet_ip 2), $(fleet_ip 3)]"
  bootstrap_prepare "$FLEET_RUN/ca" "release-url: $MIRROR_URL
version: $ETCD_VERSION
bootstrap:
  metadata:
    provider: ec2
    base-url: http://10.213.$FLEET_NET.1:$IMDS_PORT
    timeout-seconds: 2
  discovery:
    provider: static
    peers: $peers
" m1 1 m2 2 m3 3 || return 1
  local m
  for m in m1 m2 m3; do
    baseline "$m" >"$FLEET_RUN/$m.before" || return 1
  done
  fleet_start m1 m2 m3 || return 1

  check "all three bootstrap units report ready" all_ready m1 m2 m3
  check "one cluster of three started voters" one_cluster_of 3 m1 m2 m3
  check "a key written through m1 is read back through m3" key_round_trip m1 m3
  check "the metadata service was asked for the hostile tags" imds_served_tags
  for m in m1 m2 m3; do
    check "$m: one warning naming each hostile tag" warned_once_each "$m"
    check "$m: etcd is the real $ETCD_VERSION from the configured mirror" real_etcd "$m"
    check "$m: no marker of the evil etcd or of the injected unit directive" no_marker "$m"
    check "$m: the hostile install-dir, unit-file and env-file do not exist" no_hostile_paths "$m"
    check "$m: only etcdadm's own files were added" only_expected_files "$m"
    check "$m: the allowed tag backup-on-calendar applied" allowed_tag_applied "$m"
    check "$m: the recorded settings name no hostile value" state_is_clean "$m"
  done
  check "the evil mirror was never asked for anything" evil_mirror_untouched
}

# An "etcd" release whose binaries leave /pwned-release when run: what a tag-only attacker
# would like root to install.
evil_mirror() {
  local d=$FLEET_RUN/evil/v$ETCD_VERSION top=etcd-v$ETCD_VERSION-linux-amd64 b
  mkdir -p "$d/$top" || return 1
  for b in etcd etcdctl etcdutl; do
    printf '#!/bin/sh\ntouch /pwned-release\nexec sleep 3600\n' >"$d/$top/$b" && chmod 0755 "$d/$top/$b" || return 1
  done
  tar -C "$d" -czf "$d/$top.tar.gz" "$top" && rm -r "${d:?}/$top" &&
    (cd "$d" && sha256sum "$top.tar.gz" >SHA256SUMS) || return 1
  EVIL_SHA=$(cut -d' ' -f1 <"$d/SHA256SUMS")
  fleet_serve "$FLEET_RUN/evil" "$EVIL_PORT"
}

# The hostile tags (name TAB value; \n in a value is a newline), served by imds_start.
hostile_tags() {
  local host=10.213.$FLEET_NET.1
  printf '%s\t%s\n' \
    etcdadm-release-url "http://$host:$EVIL_PORT" \
    etcdadm-release-sha256 "$EVIL_SHA" \
    etcdadm-install-dir /tmp/evil-bin \
    etcdadm-unit-file /etc/systemd/system/evil.service \
    etcdadm-env-file /etc/evil.env \
    etcdadm-backup-s3-endpoint "http://$host:$EVIL_S3" \
    etcdadm-backup-s3-url s3://evil/etcd/ \
    etcdadm-allowed-keys '[release-url, install-dir]' \
    etcdadm-name 'm1\nExecStartPre=/bin/touch /pwned-name'
}

HOSTILE_TAGS=(etcdadm-release-url etcdadm-release-sha256 etcdadm-install-dir etcdadm-unit-file
  etcdadm-env-file etcdadm-backup-s3-endpoint etcdadm-backup-s3-url etcdadm-allowed-keys etcdadm-name)

# An IMDSv2-compatible service: PUT /latest/api/token gives a session token; every GET must
# carry it (else 401). Each machine is told its own address (the request's source) as
# local-ipv4 and an instance id made from it; the tags are the hostile ones plus the allowed
# etcdadm-backup-on-calendar and an unrelated Name. Requests are logged to imds.log.
imds_start() {
  local py=$FLEET_RUN/imds.py ready=$FLEET_RUN/imds.ready
  { hostile_tags && printf '%s\t%s\n' etcdadm-backup-on-calendar '*-*-* 03:00' Name hostile-test; } >"$FLEET_RUN/imds.tags" || return 1
  cat >"$py" <<'PY'
import http.server, socketserver, sys, urllib.parse
host, port, tags_file, ready, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
TOKEN = "imds-token-87"
tags = {}
for line in open(tags_file):
    k, v = line.rstrip("\n").split("\t", 1)
    tags[k] = v.replace("\\n", "\n")
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, status, body=""):
        b = body.encode()
        self.send_response(status); self.send_header("Content-Length", str(len(b))); self.end_headers()
        self.wfile.write(b)
    def do_PUT(self):
        ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        self.reply(200, TOKEN) if ok else self.reply(403)
    def do_GET(self):
        with open(log, "a") as f:
            f.write(self.client_address[0] + " " + self.path + "\n")
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return self.reply(401)
        ip = self.client_address[0]
        prefix = "/latest/meta-data/"
        key = urllib.parse.unquote(self.path[len(prefix):]) if self.path.startswith(prefix) else None
        values = {
            "instance-id": "i-%017x" % int(ip.split(".")[-1]),
            "local-ipv4": ip,
            "local-hostname": "ip-" + ip.replace(".", "-"),
            "placement/region": "eu-west-1",
            "placement/availability-zone": "eu-west-1a",
            "tags/instance": "\n".join(tags),
        }
        if key in values:
            return self.reply(200, values[key])
        if key and key.startswith("tags/instance/") and key[len("tags/instance/"):] in tags:
            return self.reply(200, tags[key[len("tags/instance/"):]])
        self.reply(404)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
srv = S((host, port), H)
open(ready, "w").close()
srv.serve_forever()
PY
  python3 "$py" "10.213.$FLEET_NET.1" "$IMDS_PORT" "$FLEET_RUN/imds.tags" "$ready" "$FLEET_RUN/imds.log" \
    </dev/null >>"$FLEET_RUN/imds.err" 2>&1 &
  echo $! >>"$FLEET_RUN/servers"
  fleet_retry 10 test -e "$ready" || fleet__fail "fake IMDS did not start: $(cat "$FLEET_RUN/imds.err")"
}

# What is there before the first boot: every file under /, /tmp, /opt and
# /etc/systemd/system (depth 1), read on the host.
baseline() { # M
  local root
  root=$(fleet_root "$1") || return 1
  (cd "$root" && find . ./tmp ./opt ./etc/systemd/system -mindepth 1 -maxdepth 1 2>/dev/null | LC_ALL=C sort -u)
}

key_round_trip() { # M1 M2
  ectl "$1" put /hostile/probe written-by-"$1" >/dev/null &&
    assert_eq "written-by-$1" "$(ectl "$2" get --print-value-only /hostile/probe)" "value read through $2"
}

imds_served_tags() {
  local t
  for t in "${HOSTILE_TAGS[@]}"; do
    grep_all -F "/latest/meta-data/tags/instance/$t" "$FLEET_RUN/imds.log" ||
      fleet__fail "no machine asked the metadata service for tag $t" || return 1
  done
}

warned_once_each() { # M
  local j t n
  j=$(fleet_journal "$1" -u etcdadm-bootstrap -o cat) || return 1
  for t in "${HOSTILE_TAGS[@]}"; do
    n=$(grep -cF "ignoring instance tag \"$t\"" <<<"$j")
    assert_eq 1 "$n" "warnings naming tag $t on $1" || return 1
  done
  grep -F -m1 'ignoring instance tag "etcdadm-name"' <<<"$j" >&2
  # Values are never logged: neither the evil mirror nor the injected directive.
  if grep -F -e "10.213.$FLEET_NET.1:$EVIL_PORT" -e pwned-name -e evil-bin <<<"$j" >&2; then
    fleet__fail "$1: a hostile value reached the journal"
  fi
}

real_etcd() { # M
  assert_contains "$(fleet_exec "$1" /opt/bin/etcd --version)" "etcd Version: $ETCD_VERSION" "etcd --version on $1"
}

no_marker() { # M
  local f
  for f in /pwned-release /pwned-name; do
    if fleet_exec "$1" test -e "$f"; then fleet__fail "$1: $f exists"; return 1; fi
  done
}

no_hostile_paths() { # M
  local f
  for f in /tmp/evil-bin /etc/systemd/system/evil.service /etc/evil.env; do
    if fleet_exec "$1" test -e "$f"; then fleet__fail "$1: $f exists"; return 1; fi
  done
}

# Compared with the baseline: /, /tmp (but systemd's private directories) and /opt gained
# nothing, /etc/systemd/system only the etcd unit, the renewal, backup and defrag units and timers
# (and timers.target.wants, where the timers are enabled).
only_expected_files() { # M
  local added
  added=$(LC_ALL=C comm -13 "$FLEET_RUN/$1.before" <(baseline "$1")) || return 1
  assert_eq "./etc/systemd/system/etcd.service
./etc/systemd/system/etcdadm-backup.service
./etc/systemd/system/etcdadm-backup.timer
./etc/systemd/system/etcdadm-certs-renew.service
./etc/systemd/system/etcdadm-certs-renew.timer
./etc/systemd/system/etcdadm-defrag.service
./etc/systemd/system/etcdadm-defrag.timer" \
    "$(grep -v -e '^\./etc/systemd/system/timers\.target\.wants$' -e '^\./tmp/systemd-private-' <<<"$added")" "entries added on $1"
}

allowed_tag_applied() { # M
  assert_contains "$(fleet_exec "$1" cat /etc/systemd/system/etcdadm-backup.timer)" "OnCalendar=*-*-* 03:00" "backup timer of $1"
}

state_is_clean() { # M
  local s
  s=$(fleet_exec "$1" cat /etc/etcdadm/state.json) || return 1
  if grep -F -e "10.213.$FLEET_NET.1:$EVIL_PORT" -e "10.213.$FLEET_NET.1:$EVIL_S3" -e evil -e pwned <<<"$s" >&2; then
    fleet__fail "$1: the state file records a hostile value"
    return 1
  fi
  assert_contains "$s" "$MIRROR_URL" "release-url in the state file of $1"
}

evil_mirror_untouched() {
  if grep -F -e 'GET ' -e 'HEAD ' "$FLEET_RUN/http-$EVIL_PORT.log" >&2; then
    fleet__fail "the evil mirror was asked for something"
    return 1
  fi
}
