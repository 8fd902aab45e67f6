# shellcheck shell=bash
# Backups to an S3-compatible store: moto's S3 runs on the host at this test's bridge
# address. A 3-member cluster with data; `etcdadm backup --upload s3://…` on a member (a
# missing bucket fails clearly and keeps the local snapshot), then the timer's service with
# the backup-s3-* keys and credentials from a unit drop-in (remote retention: keep 1); a
# fresh machine restores the newest genuinely signed snapshot with `init --snapshot s3://…/`
# past planted unsigned, wrongly signed and future-stamped objects; without the cluster CA,
# or for a tampered or planted object, restore is refused on another fresh machine before
# anything changes. A store named by host name is resolved by hickory, never through libc's
# NSS.

S3_PORT=9094
S3_BUCKET=etcd-backups
S3_CREDS=(AWS_ACCESS_KEY_ID=AKIDFLEETEXAMPLE AWS_SECRET_ACCESS_KEY=fleet-secret-not-printed)

scenario() {
  fleet_setup || return 1
  fleet_secret fleet-secret-not-printed
  s3_start || return 1
  machines m1 1 m2 2 m3 3 m4 4 m5 5 || return 1
  local out ep
  ep="https://$(fleet_ip 1):2379"
  S3_ENDPOINT=http://10.213.$FLEET_NET.1:$S3_PORT
  check "init on m1" ea_out out m1 init
  copy_ca m1 m2 && copy_ca m1 m3 || return 1
  check "m2 joins" ea_out out m2 join "$ep"
  check "m3 joins" ea_out out m3 join "$ep"
  check "data written" ectl m1 put /s3/k v1
  check "upload to a missing bucket fails clearly and keeps the local snapshot" upload_missing_bucket m2
  check "create the bucket" s3_py create-bucket "$S3_BUCKET"
  check "backup --upload on m2 uploads the checked snapshot with its sha256" backup_upload m2
  check "newer data" ectl m1 put /s3/k v2
  check "the timer's service uploads with backup-s3-* keys and prunes to backup-s3-keep 1" timer_upload m2
  check "restore without the cluster CA is refused on m4 and nothing changed there" no_ca m4
  check "a tampered object is refused on m4 and nothing changed there" tampered m4
  check "planted objects are skipped: init --snapshot s3://…/ on m5 restores the newest signed data" restore m5
  check "a planted object named directly is refused on m4 and nothing changed there" planted_named m4
  check "an S3 endpoint's host name is resolved without NSS" s3_no_nss
}

ea_s3_out() { # VAR M ARGS...: etcdadm in M with S3 credentials in its environment
  local __var=$1 __m=$2 __out __rc
  shift 2
  __out=$(fleet_exec "$__m" env "${S3_CREDS[@]}" etcdadm "$@" 2>&1)
  __rc=$?
  printf -v "$__var" '%s' "$__out"
  printf '%s\n' "$__out" | sed "s/^/  $__m| /" >&2
  return "$__rc"
}

local_snapshots() { # M
  fleet_exec "$1" sh -c 'ls /var/backups/etcd/ | grep -c "\.db$"'
}

upload_missing_bucket() { # M
  ! ea_s3_out out "$1" backup --upload "s3://$S3_BUCKET/cluster/" --backup-s3-endpoint "$S3_ENDPOINT" || return 1
  assert_contains "$out" "NoSuchBucket" "S3 error code" &&
    assert_contains "$out" "s3://$S3_BUCKET/cluster/" "bucket and prefix" &&
    assert_contains "$out" "$S3_ENDPOINT" "endpoint" &&
    assert_contains "$out" "create it" "what to do" &&
    assert_contains "$out" "local snapshot /var/backups/etcd/m2-" "the kept local snapshot" &&
    assert_eq 1 "$(local_snapshots "$1")" "local snapshots" || return 1
  if grep_all fleet-secret <<<"$out"; then fleet__fail "the secret key was printed"; fi
}

backup_upload() { # M
  ea_s3_out out "$1" backup --upload "s3://$S3_BUCKET/cluster/" --backup-s3-endpoint "$S3_ENDPOINT" || return 1
  local object key local_file
  object=$(grep '^s3://' <<<"$out") || fleet__fail "no s3:// URL printed" || return 1
  local_file=$(grep '^/var/backups/etcd/' <<<"$out") || return 1
  key=${object#"s3://$S3_BUCKET/"}
  assert_eq "cluster/$(basename "$local_file")" "$key" "object key" || return 1
  FIRST_KEY=$key
  # kept on the host: restore() puts this older snapshot (value v1) back as a decoy
  cp "$(fleet_root "$1")$local_file" "$FLEET_RUN/v1.db" || return 1
  assert_eq "$(fleet_exec "$1" sha256sum "$local_file" | cut -d' ' -f1)" "$(s3_py sha256 "$S3_BUCKET" "$key")" "recorded sha256" || return 1
  [[ $(s3_py mac "$S3_BUCKET" "$key") =~ ^[0-9a-f]{64}$ ]] || fleet__fail "no x-amz-meta-etcdadm-mac recorded"
}

timer_upload() { # M
  local root dropin
  root=$(fleet_root "$1")
  cat >>"$root/etc/etcdadm/config.yaml" <<EOF || return 1
backup-s3-url: s3://$S3_BUCKET/cluster/
backup-s3-endpoint: $S3_ENDPOINT
backup-s3-keep: 1
EOF
  dropin=$root/etc/systemd/system/etcdadm-backup.service.d
  mkdir -p "$dropin" && printf '[Service]\nEnvironment=%s\nEnvironment=%s\n' "${S3_CREDS[@]}" >"$dropin/s3.conf" || return 1
  fleet_exec "$1" systemctl daemon-reload || return 1
  fleet_exec "$1" systemctl start etcdadm-backup.service || {
    fleet_journal "$1" -u etcdadm-backup.service | tail -20 >&2
    return 1
  }
  local keys
  keys=$(s3_py keys "$S3_BUCKET" cluster/) || return 1
  [[ $(wc -l <<<"$keys") == 1 && $keys != "$FIRST_KEY" && $keys == cluster/m2-*.db ]] ||
    fleet__fail "expected one newer snapshot under cluster/, got: $keys" || return 1
  if fleet_journal "$1" -u etcdadm-backup.service | grep_all fleet-secret; then fleet__fail "the secret key was logged"; fi
}

nothing_installed() { # M
  local f
  for f in /etc/etcdadm/state.json /var/lib/etcd /opt/bin/etcd /etc/systemd/system/etcd.service /etc/etcd/etcd.env; do
    ! fleet_exec "$1" test -e "$f" || fleet__fail "$f exists on $1" || return 1
  done
  [[ -z $(fleet_exec "$1" sh -c 'ls -A /var/lib | grep "^\.etcdadm"') ]] || fleet__fail "temporary files left in /var/lib"
}

no_ca() { # M: no ca.crt/ca.key in certs-dir
  ! ea_s3_out out "$1" init --snapshot "s3://$S3_BUCKET/cluster/" --backup-s3-endpoint "$S3_ENDPOINT" || return 1
  assert_contains "$out" "needs the CA of the cluster that made the backups" "refusal" &&
    assert_contains "$out" "copy its ca.crt and ca.key into /etc/etcd/pki" "what to do" &&
    nothing_installed "$1"
}

tampered() { # M
  local newest
  copy_ca m1 "$1" || return 1
  newest=$(s3_py keys "$S3_BUCKET" cluster/) || return 1
  s3_py tampered-copy "$S3_BUCKET" "$newest" "tampered/${newest#cluster/}" || return 1
  ! ea_s3_out out "$1" init --snapshot "s3://$S3_BUCKET/tampered/" --backup-s3-endpoint "$S3_ENDPOINT" || return 1
  assert_contains "$out" "altered or damaged" "refusal" &&
    assert_contains "$out" "s3://$S3_BUCKET/tampered/m2-" "the object" &&
    nothing_installed "$1"
}

# Beside the newest snapshot (m2's, value v2) the prefix holds an older one (value v1) that
# was uploaded last and whose key sorts last: only the time stamp in the names says which is
# the newest, so a restore by upload time or by key order restores v1.
# Planted by a writer to the prefix, all newer than the genuine newest (value v2) and holding
# v1 with a matching recorded sha256: unsigned, signed with no cluster's key, and stamped far
# in the future.
restore() { # M
  local now planted
  s3_py put-snapshot "$S3_BUCKET" cluster/zz-20000101T000000.000Z.db "$FLEET_RUN/v1.db" || return 1
  now=$(date -u +%Y%m%dT%H%M%S)
  s3_py put-snapshot "$S3_BUCKET" "cluster/yy-$now.999Z.db" "$FLEET_RUN/v1.db" &&
    s3_py put-wrongly-signed "$S3_BUCKET" "cluster/xx-$now.998Z.db" "$FLEET_RUN/v1.db" &&
    s3_py put-snapshot "$S3_BUCKET" cluster/ww-99991231T235959.000Z.db "$FLEET_RUN/v1.db" || return 1
  copy_ca m1 "$1" || return 1
  write_config "$1" "release-url: $MIRROR_URL"$'\n'"version: $ETCD_VERSION"$'\n'"backup-s3-endpoint: $S3_ENDPOINT"$'\n' || return 1
  ea_s3_out out "$1" init --snapshot "s3://$S3_BUCKET/cluster/" || return 1
  assert_eq v2 "$(ectl "$1" get /s3/k --print-value-only)" "restored value" || return 1
  for planted in "yy-$now.999Z.db|unsigned" "xx-$now.998Z.db|does not match" "ww-99991231T235959.000Z.db|in the future"; do
    grep -F "s3://$S3_BUCKET/cluster/${planted%|*}" <<<"$out" | grep -qF "${planted#*|}" ||
      fleet__fail "init does not say it skipped ${planted%|*} (${planted#*|})" || return 1
  done
  [[ -z $(fleet_exec "$1" sh -c 'ls -A /var/lib | grep "^\.etcdadm"') ]] || fleet__fail "temporary files left in /var/lib"
}

planted_named() { # M (holds the CA since tampered)
  ! ea_s3_out out "$1" init --snapshot "s3://$S3_BUCKET/cluster/ww-99991231T235959.000Z.db" --backup-s3-endpoint "$S3_ENDPOINT" || return 1
  assert_contains "$out" "in the future" "refusal" &&
    assert_contains "$out" "refusing to restore it, nothing was changed" "nothing changed" &&
    nothing_installed "$1"
}

# Like 05-static-binary: in an empty network namespace (nothing leaves the host), a
# download from a store named by host name fails, having read /etc/resolv.conf itself and
# opened no NSS file. Every path points into a temporary directory.
s3_no_nss() {
  local tmp trace opened
  tmp=$(mktemp -d /tmp/etcdadm-s3-nss.XXXXXX) && trace=$tmp/trace || return 1
  # restore checks for the cluster CA before it asks the store
  "$ETCDADM_BIN" ca create --certs-dir "$tmp/pki" >/dev/null || return 1
  if env "${S3_CREDS[@]}" unshare -n strace -f -qq -e trace=openat,open -o "$trace" "$ETCDADM_BIN" init \
    --snapshot "s3://$S3_BUCKET/cluster/" --backup-s3-endpoint http://s3-store.invalid:9000 \
    --state-file "$tmp/state.json" --certs-dir "$tmp/pki" --install-dir "$tmp/bin" --cache-dir "$tmp/cache" \
    --data-dir "$tmp/data/etcd" --unit-file "$tmp/etcd.service" --env-file "$tmp/etcd.env" \
    --etcdctl-env-file "$tmp/etcdctl.env" --advertise-address 127.0.0.9 --timeout-seconds 2 >"$tmp/out" 2>&1; then
    fleet__fail "init from an unreachable store succeeded"
    return 1
  fi
  grep_all "s3-store.invalid" "$tmp/out" || fleet__fail "the error does not name the endpoint: $(cat "$tmp/out")" || return 1
  grep_all '"/etc/resolv.conf"' "$trace" || fleet__fail "no name look-up happened" || return 1
  opened=$(grep -E 'nsswitch|libnss_|"/etc/(passwd|group)"' "$trace")
  [[ ! -e $tmp/state.json && ! -e $tmp/bin ]] || fleet__fail "init changed something" || return 1
  rm -rf "$tmp"
  assert_eq "" "$opened" "NSS files opened"
}
