#!/usr/bin/env bash
# The whole test suite: unit and golden tests, then the fleet tests on real systemd
# machines. Needs root (it boots systemd-nspawn machines). Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "tests/run-all.sh: run as root: the fleet tests boot systemd-nspawn machines" >&2
  exit 1
fi
scripts/install-deps.sh
# The fast gates first (formatting, clippy, shellcheck): they fail in a minute, not in 40.
scripts/lint.sh
cargo test --locked
# Every rendered etcd flag against each mirrored release's own `etcd --help`.
tests/etcd-flags.sh
# One static release build serves every fleet machine.
ETCDADM_BIN=$(scripts/build-static.sh)
export ETCDADM_BIN
spec/check.sh
tests/fleet/selftest.sh
tests/fleet/run.sh
