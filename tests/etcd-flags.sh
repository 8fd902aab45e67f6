#!/usr/bin/env bash
# Every etcd flag etcdadm renders is accepted by the etcd of every release the local mirror
# supports, as that etcd's own `--help` lists it (no hand-kept list of flags). The rendered
# flags are read from the golden environment files and pod manifest (tests/golden.rs proves
# them equal to the renderer's output). Builds the mirror first (cached in
# ${ETCDADM_TEST_CACHE:-/var/tmp/etcdadm-test-cache}/mirror); fails, never skips, when a
# release or its etcd cannot be had. Usage: tests/etcd-flags.sh [VERSION...]
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
die() { echo "etcd-flags: error: $*" >&2; exit 1; }
(($#)) || set -- 3.4.23 3.5.0 3.5.1 3.5.16 3.5.30
mirror=${ETCDADM_TEST_CACHE:-/var/tmp/etcdadm-test-cache}/mirror
scripts/build-etcd-mirror.sh "$mirror" "$@" >&2 || die "cannot build the etcd mirror for $*"
tmp=$(mktemp -d /tmp/etcd-flags.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ETCD_FOO_BAR=... in the environment files is --foo-bar; "- --foo-bar=..." in the pod.
env_flags() { sed -n 's/^ETCD_\([A-Z0-9_]*\)=.*/\1/p' "$@" | tr 'A-Z_' 'a-z-'; }
# The default release's files (init, join, pod) and, per release V, what etcdadm renders
# for V (tests/golden/etcd.env.vV: the TLS floor flags differ between releases).
default_version=$(sed -n 's/^ *image: .*:v\([0-9.]*\)$/\1/p' tests/golden/etcd-pod.yaml)
[[ -n $default_version ]] || die "no image tag in tests/golden/etcd-pod.yaml"
mapfile -t default_flags < <(
  {
    env_flags tests/golden/etcd.env.init-ipv4 tests/golden/etcd.env.join-ipv6
    sed -n 's/^ *- --\([a-z0-9-]*\)=.*/\1/p' tests/golden/etcd-pod.yaml
  } | sort -u
)
# the init file alone carries 21 (tests/golden/etcd.env.init-ipv4)
((${#default_flags[@]} >= 21)) || die "only ${#default_flags[@]} rendered flags found in tests/golden: ${default_flags[*]}"

failed=0
for v in "$@"; do
  dir=etcd-v$v-linux-amd64
  tar -xzf "$mirror/v$v/$dir.tar.gz" -C "$tmp" "$dir/etcd" || die "no etcd in $mirror/v$v/$dir.tar.gz"
  help=$("$tmp/$dir/etcd" --help 2>&1) || die "etcd $v --help failed: $help"
  [[ $help == *"--name "* ]] || die "etcd $v --help printed no flag list: $help"
  version=$("$tmp/$dir/etcd" --version 2>&1) || die "etcd $v --version failed"
  [[ $version == *"etcd Version: $v"* ]] || die "the mirror's $dir/etcd is not etcd $v: $version"
  [[ -f tests/golden/etcd.env.v$v ]] || die "no tests/golden/etcd.env.v$v (what etcdadm renders for etcd $v; tests/golden.rs writes it)"
  mapfile -t flags < <(env_flags "tests/golden/etcd.env.v$v" | sort -u)
  [[ $v != "$default_version" ]] || mapfile -t flags < <(printf '%s\n' "${flags[@]}" "${default_flags[@]}" | sort -u)
  unknown=()
  for f in "${flags[@]}"; do
    grep -qE -- "^[[:space:]]+--$f( |$)" <<<"$help" || unknown+=("--$f")
  done
  if ((${#unknown[@]})); then
    echo "etcd-flags: etcd $v does not accept ${unknown[*]} (not in its --help)" >&2
    failed=1
  else
    echo "etcd-flags: etcd $v accepts all ${#flags[@]} rendered flags" >&2
  fi
done
exit "$failed"
