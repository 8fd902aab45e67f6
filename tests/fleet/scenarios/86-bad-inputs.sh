# shellcheck shell=bash
# shellcheck disable=SC2016 # backticks in single quotes are literal: etcdadm quotes keys with them
# Bad inputs on real machines. Each is refused with ONE error line that names the file, key,
# URL or endpoint at fault (and, where there is one, what to do), says nothing twice, and
# changes nothing under /etc/etcd, /etc/etcdadm, /var/lib/etcd, /opt/bin and
# /etc/systemd/system: malformed YAML, a missing config file, an unknown key (top level and
# nested), a wrong type, an invalid IP and URL, a missing CA, a CA key that does not belong
# to the CA certificate, an expired CA, a tampered tarball, a wrong, missing or malformed
# SHA256SUMS entry, a truncated snapshot, an endpoint that is not etcd, the endpoint of a
# cluster with another CA (neither retried until the timeout: the handshake cannot succeed).
# A snapshot of another cluster restores fine. The reset quorum guard: refused on a
# 3-member cluster with one member down, done with --force.
#
# Machines: m1 (cluster A), m2 (the machine the bad inputs are tried on; holds A's CA),
# m3 (cluster B, its own CA), m4 and m5 (join A, for the reset guard).

scenario() {
  fleet_setup || return 1
  machines m1 1 m2 2 m3 3 m4 4 m5 5 || return 1
  local out ip1 ip3 host=10.213.$FLEET_NET.1
  ip1=$(fleet_ip 1)
  ip3=$(fleet_ip 3)

  check "m1: init (cluster A)" ea_out out m1 init
  check "m3: init (cluster B, another CA)" ea_out out m3 init
  check "data in both clusters" both_clusters_have_data
  # m4 and m5 join A in the background while the bad inputs are tried on m2
  copy_ca m1 m4 && copy_ca m1 m5 || return 1
  (ea m4 join "https://$ip1:2379" && ea m5 join "https://$ip1:2379") >"$FLEET_RUN/joins.log" 2>&1 &
  local joins=$!

  copy_ca m1 m2 && prepare_inputs m2 || return 1
  tree_save m2 && BASELINE=$(tree_fingerprint m2) || return 1

  # --- configuration ---------------------------------------------------------------------
  check_each "malformed YAML: names the file, says fix the syntax" \
    refused m2 '/root/bad-syntax.yaml|invalid YAML|fix the syntax' init --config /root/bad-syntax.yaml
  check_each "missing config file: names it, says it once" \
    refused m2 '/root/missing.yaml|cannot read' init --config /root/missing.yaml
  check_each "unknown key: names the file and the key" \
    refused m2 '/root/unknown-key.yaml|key `data-dri`:|unknown field' init --config /root/unknown-key.yaml
  check_each "unknown key under bootstrap: names the file and the key's path" \
    refused m2 '/root/unknown-nested-key.yaml|key `bootstrap.deadline-secs`:|unknown field' init --config /root/unknown-nested-key.yaml
  check_each "wrong type: names the file and the key" \
    refused m2 '/root/wrong-type.yaml|`client-port`|invalid type' init --config /root/wrong-type.yaml
  check_each "invalid IP: names the key and the value" \
    refused m2 '`advertise-address`|10.0.0.300' init --config /root/bad-ip.yaml
  check_each "invalid bind IP: names the file and the key" \
    refused m2 '/root/bad-bind.yaml|`bind-address`' init --config /root/bad-bind.yaml
  check_each "invalid release URL: names the key and the schemes to use" \
    refused m2 '`release-url`|"ftp"|https://' init --config /root/bad-url.yaml
  check_each "invalid join endpoint URL: names it and shows the form to use" \
    refused m2 '"http://10.213.'"$FLEET_NET"'.11:2379"|not a client URL|https://' join "http://$ip1:2379"

  # --- CA --------------------------------------------------------------------------------
  check_each "join without a CA: names both files and says to copy them" \
    with_ca none refused m2 '/etc/etcd/pki/ca.crt|/etc/etcd/pki/ca.key|Copy' join "https://$ip1:2379"
  check_each "join with a CA key that does not belong to the CA certificate: names both" \
    with_ca mismatched refused m2 '/etc/etcd/pki/ca.key|does not belong|/etc/etcd/pki/ca.crt' join "https://$ip1:2379"
  if python3 -c 'import cryptography' 2>/dev/null; then
    check_each "join with an expired CA: names the certificate, says expired" \
      with_ca expired refused m2 '/etc/etcd/pki/ca.crt|expired' join "https://$ip1:2379"
  else
    check_each "join with an expired CA (needs python3-cryptography on the host to craft the CA)" \
      fleet__fail "cannot craft an expired CA: python3 cannot import cryptography; install python3-cryptography (scripts/install-deps.sh)"
  fi

  # --- release ---------------------------------------------------------------------------
  local tgz=etcd-v$ETCD_VERSION-linux-amd64.tar.gz
  check_each "tampered tarball: checksum mismatch naming the URL, not cached" \
    refused_uncached m2 /root/cache-tampered "checksum mismatch|file:///srv/tampered/v$ETCD_VERSION/$tgz|tampered" \
    init --release-url file:///srv/tampered --cache-dir /root/cache-tampered
  # join writes the units while the release downloads: a release that fails takes them away
  # (its certificates, issued before, stay: the join can be run again)
  check_each "join with a tampered tarball: checksum mismatch naming the URL, no unit left, m2 not in cluster A" \
    join_release_refused m2 /root/cache-tampered-join "checksum mismatch|file:///srv/tampered/v$ETCD_VERSION/$tgz" \
    join "https://$ip1:2379" --release-url file:///srv/tampered --cache-dir /root/cache-tampered-join
  check_each "wrong SHA256SUMS entry: checksum mismatch naming the URL, not cached" \
    refused_uncached m2 /root/cache-wrongsum "checksum mismatch|file:///srv/wrongsum/v$ETCD_VERSION/$tgz" \
    init --release-url file:///srv/wrongsum --cache-dir /root/cache-wrongsum
  check_each "SHA256SUMS without the tarball: names both, says to check version and arch" \
    refused_uncached m2 /root/cache-unlisted "file:///srv/unlisted/v$ETCD_VERSION/SHA256SUMS|does not list $tgz|check version and arch" \
    init --release-url file:///srv/unlisted --cache-dir /root/cache-unlisted
  check_each "malformed SHA256SUMS: names the URL and the line" \
    refused_uncached m2 /root/cache-badsums "file:///srv/badsums/v$ETCD_VERSION/SHA256SUMS|not a valid SHA256SUMS file|line 2" \
    init --release-url file:///srv/badsums --cache-dir /root/cache-badsums

  # --- snapshots -------------------------------------------------------------------------
  check_each "truncated snapshot: names it, corrupt or truncated, no staging left" \
    refused_snapshot m2 '/root/truncated.db|corrupt or truncated|nothing was changed' init --snapshot /root/truncated.db

  # --- endpoints -------------------------------------------------------------------------
  check_each "join an endpoint that is not etcd (the mirror's HTTP port): names the endpoint" \
    refused m2 "https://$host:8080|cannot reach" join "https://$host:8080" --timeout-seconds 5
  check_each "join a cluster with another CA: names the endpoint and the TLS failure" \
    refused_tls m2 "https://$ip3:2379" join "https://$ip3:2379" --timeout-seconds 5
  check_each "join gives up at once on an endpoint that is not etcd, and on one with another CA" \
    gives_up_at_once m2 8 "https://$host:8080" "https://$ip3:2379"

  check_each "init --snapshot of another cluster (B) on a machine holding A's CA: a new cluster with B's data" \
    restore_other_cluster m2

  # --- reset quorum guard ----------------------------------------------------------------
  wait "$joins"
  local rc=$?
  sed 's/^/  joins| /' "$FLEET_RUN/joins.log" >&2
  check "m4 and m5 joined cluster A" test "$rc" = 0
  check "cluster A: three started voters" voters_are m1 3
  check "m5's etcd is down" fleet_exec m5 systemctl stop etcd
  check "reset on m4 refused: m1 alone is not a quorum of three" reset_refused m4
  check_each "reset --force on m4 goes through" reset_forced m4
  check "m5 back: cluster A healthy, every member a started voter" m5_back

  faults_verdict
}

# --- inputs ---------------------------------------------------------------------------------

# Writes the bad inputs into M: config files in /root, mirrors in /srv, CAs in /root/cas,
# snapshots in /root (none of it under the fingerprinted trees).
prepare_inputs() { # M
  local root v=v$ETCD_VERSION tgz=etcd-v$ETCD_VERSION-linux-amd64.tar.gz d
  root=$(fleet_root "$1")
  printf 'release-url: %s\nname: [unclosed\n' "$MIRROR_URL" >"$root/root/bad-syntax.yaml" &&
    printf 'release-url: %s\ndata-dri: /srv/etcd\n' "$MIRROR_URL" >"$root/root/unknown-key.yaml" &&
    printf 'release-url: %s\nbootstrap:\n  deadline-secs: 3\n' "$MIRROR_URL" >"$root/root/unknown-nested-key.yaml" &&
    printf 'release-url: %s\nclient-port: lots\n' "$MIRROR_URL" >"$root/root/wrong-type.yaml" &&
    printf 'release-url: %s\nadvertise-address: 10.0.0.300\n' "$MIRROR_URL" >"$root/root/bad-ip.yaml" &&
    printf 'release-url: %s\nbind-address: 10.0.0.300\n' "$MIRROR_URL" >"$root/root/bad-bind.yaml" &&
    printf 'release-url: ftp://mirror.example/etcd\n' >"$root/root/bad-url.yaml" || return 1
  # mirrors: one byte of the tarball flipped; SHA256SUMS with another digest, without the
  # tarball, with a malformed line
  for d in tampered wrongsum unlisted badsums; do
    mkdir -p "$root/srv/$d/$v" && cp "$MIRROR/$v/$tgz" "$MIRROR/$v/SHA256SUMS" "$root/srv/$d/$v/" || return 1
  done
  printf '\x00' | dd of="$root/srv/tampered/$v/$tgz" bs=1 seek=1000 conv=notrunc status=none &&
    sed -i "s/^[0-9a-f]\{64\}\( .*$tgz\)\$/$(printf '%064d' 0)\1/" "$root/srv/wrongsum/$v/SHA256SUMS" &&
    grep -q "^0\{64\} " "$root/srv/wrongsum/$v/SHA256SUMS" &&
    sed -i "/$tgz/d" "$root/srv/unlisted/$v/SHA256SUMS" &&
    printf '%s  etcd-v0.0.0-linux-riscv.tar.gz\nnot a digest  %s\n' "$(printf '%064d' 1)" "$tgz" >"$root/srv/badsums/$v/SHA256SUMS" ||
    return 1
  # CAs: B's key (for A's certificate), and an expired CA
  mkdir -p "$root/root/cas/mismatched" "$root/root/cas/expired" &&
    install -m 0644 "$(fleet_root m1)/etc/etcd/pki/ca.crt" "$root/root/cas/mismatched/ca.crt" &&
    install -m 0600 "$(fleet_root m3)/etc/etcd/pki/ca.key" "$root/root/cas/mismatched/ca.key" || return 1
  if python3 -c 'import cryptography' 2>/dev/null; then
    expired_ca "$root/root/cas/expired" || return 1
  fi
  # snapshots: a truncated one of A, a good one of B
  ectl m1 snapshot save /root/a.db >/dev/null && ectl m3 snapshot save /root/b.db >/dev/null &&
    head -c 20000 "$(fleet_root m1)/root/a.db" >"$root/root/truncated.db" &&
    cp "$(fleet_root m3)/root/b.db" "$root/root/b.db"
}

# An ECDSA P-256 CA (basicConstraints CA:TRUE, keyCertSign) valid from 30 days ago until
# yesterday, as ca.crt and a PKCS#8 ca.key in DIR.
expired_ca() { # DIR
  python3 - "$1" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
d = sys.argv[1]
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-ca")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256()))
open(d + "/ca.crt", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(d + "/ca.key", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
PY
  chmod 0600 "$1/ca.key"
}

both_clusters_have_data() {
  ectl m1 put /a/key from-cluster-a >/dev/null && ectl m3 put /b/key from-cluster-b >/dev/null
}

# --- cases ----------------------------------------------------------------------------------

# etcdadm ARGS on M fails with exactly one `error:` line that contains every WORD, and
# changes nothing under the trees etcdadm manages. Afterwards M is back at the baseline.
refused() { # M 'WORD|WORD...' ARGS...
  local m=$1 words=$2 before after err rc=0 w ws
  shift 2
  before=$(tree_fingerprint "$m") || return 1
  if ea_out out "$m" "$@"; then
    fleet__fail "etcdadm $* succeeded on $m"
    rc=1
  fi
  err=$(grep '^error: ' <<<"$out")
  assert_eq 1 "$(grep -c '^error: ' <<<"$out")" "number of error lines" || rc=1
  no_repeated_clause "$err" || rc=1
  IFS='|' read -ra ws <<<"$words"
  for w in "${ws[@]}"; do
    assert_contains "$err" "$w" "the error" || rc=1
  done
  after=$(tree_fingerprint "$m") || return 1
  if [[ $before != "$after" ]]; then
    fleet__fail "etcdadm $* changed files on $m:"
    diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") | grep '^[<>]' | sed 's/^/    /' >&2
    rc=1
  fi
  back_to_baseline "$m" || return 1
  return "$rc"
}

# Puts M's trees back to the baseline when a case (or its set-up) changed them.
back_to_baseline() { # M
  [[ $(tree_fingerprint "$1") == "$BASELINE" ]] && return 0
  tree_restore "$1" && assert_eq "$BASELINE" "$(tree_fingerprint "$1")" "trees of $1 after restoring them"
}

# Runs CMD... with the CA KIND (none, mismatched, expired) in M's /etc/etcd/pki.
with_ca() { # KIND CMD... (M is the CMD's first argument)
  local kind=$1 m=$3 pki
  shift
  pki=$(fleet_root "$m")/etc/etcd/pki
  rm -f "$pki/ca.crt" "$pki/ca.key" || return 1
  if [[ $kind != none ]]; then
    install -m 0644 "$(fleet_root "$m")/root/cas/$kind/ca.crt" "$pki/ca.crt" &&
      install -m 0600 "$(fleet_root "$m")/root/cas/$kind/ca.key" "$pki/ca.key" || return 1
  fi
  "$@"
}

# refused, and the release cache CACHE holds no tarball afterwards.
refused_uncached() { # M CACHE WORDS ARGS...
  local m=$1 cache=$2 rc=0 left
  shift 2
  refused "$m" "$@" || rc=1
  left=$(fleet_exec "$m" sh -c "ls '$cache'/v*/*.tar.gz '$cache'/v*/.download-* 2>/dev/null")
  assert_eq "" "$left" "tarballs left in $cache" || rc=1
  return "$rc"
}

# etcdadm ARGS (a join whose release fails) on M fails with one `error:` line holding every
# WORD; afterwards /etc/systemd/system holds what it held before (no etcd or timer unit), the
# cache CACHE no tarball, and cluster A (m1) does not list M's peer URL. M goes back to the
# baseline.
join_release_refused() { # M CACHE 'WORD|WORD...' ARGS...
  local m=$1 cache=$2 words=$3 rc=0 before after err w ws listed
  shift 3
  before=$(fleet_exec "$m" find /etc/systemd/system -printf '%p %y\n' | LC_ALL=C sort) || return 1
  if ea_out out "$m" "$@"; then
    fleet__fail "etcdadm $* succeeded on $m"
    rc=1
  fi
  err=$(grep '^error: ' <<<"$out")
  assert_eq 1 "$(grep -c '^error: ' <<<"$out")" "number of error lines" || rc=1
  IFS='|' read -ra ws <<<"$words"
  for w in "${ws[@]}"; do
    assert_contains "$err" "$w" "the error" || rc=1
  done
  after=$(fleet_exec "$m" find /etc/systemd/system -printf '%p %y\n' | LC_ALL=C sort) || return 1
  assert_eq "$before" "$after" "/etc/systemd/system on $m" || rc=1
  assert_eq "" "$(fleet_exec "$m" sh -c "ls '$cache'/v*/*.tar.gz '$cache'/v*/.download-* 2>/dev/null")" \
    "tarballs left in $cache" || rc=1
  listed=$(ectl m1 member list | grep -F "https://$(fleet_ip "${m#m}"):2380")
  assert_eq "" "$listed" "cluster A's member list entry for $m" || rc=1
  back_to_baseline "$m" || return 1
  return "$rc"
}

# refused, and no restore staging directory is left beside the data directory.
refused_snapshot() { # M WORDS ARGS...
  local rc=0
  refused "$@" || rc=1
  assert_eq "" "$(fleet_exec "$1" sh -c 'ls -d /var/lib/.etcdadm-restore-* 2>/dev/null')" "staging left in /var/lib" || rc=1
  return "$rc"
}

# refused naming ENDPOINT, and the error says TLS or certificate is what failed.
refused_tls() { # M ENDPOINT ARGS...
  local m=$1 ep=$2 rc=0 err
  shift 2
  refused "$m" "$ep" "$@" || rc=1
  err=$(grep '^error: ' <<<"$out")
  [[ ${err,,} == *tls* || ${err,,} == *certificate* ]] ||
    fleet__fail "the error does not say TLS or certificate: $err" || rc=1
  return "$rc"
}

# join ENDPOINT (with a 15 s timeout) fails within SECONDS for each ENDPOINT: a TLS handshake
# that cannot succeed is not retried until the timeout.
gives_up_at_once() { # M SECONDS ENDPOINT...
  local m=$1 limit=$2 ep t0 took rc=0
  shift 2
  for ep; do
    t0=$SECONDS
    if ea "$m" join "$ep" --timeout-seconds 15 >"$FLEET_RUN/give-up.log" 2>&1; then
      fleet__fail "join $ep succeeded"
      rc=1
    fi
    took=$((SECONDS - t0))
    fleet_log "join $ep failed after ${took}s: $(grep '^error: ' "$FLEET_RUN/give-up.log" | cut -c1-160)"
    ((took < limit)) || { fleet__fail "join $ep retried for ${took}s (limit ${limit}s) although its TLS handshake cannot succeed"; rc=1; }
    back_to_baseline "$m" || return 1
  done
  return "$rc"
}

restore_other_cluster() { # M
  local v id_b id_new
  ea_out out "$1" init --snapshot /root/b.db || return 1
  v=$(ectl "$1" get /b/key --print-value-only --consistency=s) || return 1
  assert_eq from-cluster-b "$v" "B's key on $1" || return 1
  assert_eq 1 "$(started_voters "$1")" "started voters of the restored cluster" || return 1
  id_b=$(cluster_id m3) && id_new=$(cluster_id "$1") || return 1
  [[ $id_b != "$id_new" ]] || fleet__fail "the restored cluster has B's id $id_b"
}

cluster_id() { # M
  ea "$1" info --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster"]["id"])'
}

voters_are() { # M N
  assert_eq "$2" "$(started_voters "$1")" "started voters" &&
    assert_eq "$2" "$(members "$1" | wc -l)" "members"
}

reset_refused() { # M
  local before err
  before=$(fingerprint "$1") || return 1
  ! ea_out out "$1" reset || fleet__fail "reset succeeded" || return 1
  err=$(grep '^error: ' <<<"$out")
  assert_eq 1 "$(grep -c '^error: ' <<<"$out")" "number of error lines" &&
    assert_contains "$err" "quorum" "says why" &&
    assert_contains "$err" "--force" "says what to do" &&
    assert_contains "$err" "Nothing was changed" "says nothing changed" &&
    assert_eq "$before" "$(fingerprint "$1")" "files of $1" &&
    assert_eq active "$(fleet_exec "$1" systemctl is-active etcd)" "etcd on $1" &&
    assert_eq 3 "$(members m1 | wc -l)" "members of A"
}

# reset --force finishes within 45 s, uninstalls, and either removed the member or says
# that it is still listed.
reset_forced() { # M
  local left rc
  out=$(fleet_exec "$1" timeout 45 etcdadm reset --force 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -v ' retrying ' | sed "s/^/  $1| /" >&2
  ((rc != 124)) || fleet__fail "reset --force still running after 45 s ($(grep -c ' retrying ' <<<"$out") retries: $(grep -m1 -o 'message: "[^"]*"' <<<"$out"))" || return 1
  ((rc == 0)) || fleet__fail "reset --force failed (exit $rc)" || return 1
  left=$(fleet_exec "$1" sh -c 'ls /opt/bin /var/lib/etcd /etc/etcd/etcd.env /etc/systemd/system/etcd.service /etc/etcdadm/state.json 2>/dev/null; systemctl is-active etcd 2>/dev/null | grep -v inactive')
  assert_eq "" "$left" "left on $1" || return 1
  if members m1 | grep_all "https://$(fleet_ip "${1#m}"):2380"; then
    assert_contains "$out" "still listed" "output of reset --force, $1 being still a member"
  fi
}

# m5 starts again: cluster A is healthy, every listed member a started voter.
m5_back() {
  fleet_exec m5 systemctl start etcd || return 1
  fleet_retry 30 ectl m1 endpoint health >/dev/null || return 1
  fleet_retry 30 all_started_voters m1
}

all_started_voters() { # M
  local list
  list=$(members "$1") || return 1
  assert_eq "$(wc -l <<<"$list")" "$(grep -c ', started, .*, false$' <<<"$list")" "started voters among: $list"
}
