# shellcheck shell=bash
# The binary is one static executable that never uses libc's name service switch: host
# names are resolved by hickory (/etc/hosts, /etc/resolv.conf), never through
# /etc/nsswitch.conf or libnss_* modules, whose behaviour differs per distribution.
# The look-ups run in an empty network namespace, so no query leaves this machine.

scenario() {
  local tmp
  tmp=$(mktemp -d /tmp/etcdadm-static.XXXXXX)
  "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/build-etcd-mirror.sh" "$FLEET_CACHE/mirror" "$ETCD_VERSION" >&2 || return 1
  check "statically linked" static_linked
  check "a download from a host name opens no NSS file" no_nss download \
    --release-url https://etcd-mirror.invalid/ --cache-dir "$tmp/cache1"
  make_ca "$tmp/pki" || return 1
  check "join with a host-name endpoint opens no NSS file" no_nss join https://etcd-peer.invalid:2379 \
    --retry=false --state-file "$tmp/state.json" --certs-dir "$tmp/pki" --install-dir "$tmp/bin" \
    --cache-dir "$tmp/cache2" --release-url "file://$FLEET_CACHE/mirror" --version "$ETCD_VERSION" \
    --advertise-address 127.0.0.9 --unit-file "$tmp/etcd.service" --data-dir "$tmp/data"
  rm -rf "$tmp"
}

static_linked() {
  local out
  out=$(ldd "$ETCDADM_BIN" 2>&1)
  [[ $out == *"statically linked"* || $out == *"not a dynamic executable"* ]] || fleet__fail "ldd: $out"
}

no_nss() { # ETCDADM ARGS...: may fail (nothing answers), but must resolve without NSS
  local trace opened
  trace=$(mktemp)
  unshare -n strace -f -qq -e trace=openat,open -o "$trace" "$ETCDADM_BIN" "$@" >/dev/null 2>&1
  grep -q '"/etc/resolv.conf"' "$trace" || fleet__fail "no name look-up happened: $(grep -c . "$trace") syscalls traced" || return 1
  opened=$(grep -E 'nsswitch|libnss_|"/etc/(passwd|group)"' "$trace")
  rm -f "$trace"
  assert_eq "" "$opened" "NSS files opened"
}
