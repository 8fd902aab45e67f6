#!/usr/bin/env bash
# Local demo fleet: boots three real systemd machines (systemd-nspawn) on a private bridge,
# serves a local etcd release mirror, and runs the main job on them: `etcdadm init` on m1,
# `etcdadm join` on m2 and m3, then shows `etcdadm info` and a key replicated to every
# member. Root only; installs what it needs (not the test suite's tools). DEMO_KEEP=1 keeps the machines running until
# you press Enter (drive them with `nsenter -t <pid> -a`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "scripts/demo.sh: run as root: it boots systemd-nspawn machines" >&2
  exit 1
fi
scripts/install-deps.sh --demo
ETCDADM_BIN=$(scripts/build-static.sh)
export ETCDADM_BIN SCENARIO=demo FLEET_RESULTS=/dev/null FLEET_NET_INDEX=${DEMO_NET_INDEX:-5}
# shellcheck source=tests/fleet/lib.sh
. tests/fleet/lib.sh
# shellcheck source=tests/fleet/common.sh
. tests/fleet/common.sh

fleet_setup
machines m1 1 m2 2 m3 3
step() { printf '\n\033[1m## %s\033[0m\n' "$*"; }

step "m1: etcdadm init"
ea m1 init
for m in m2 m3; do
  step "$m: copy the CA from m1, then etcdadm join https://$(fleet_ip 1):2379"
  copy_ca m1 "$m"
  ea "$m" join "https://$(fleet_ip 1):2379"
done
step "m1: etcdadm info"
ea m1 info
step "write on m1, read on m3"
ectl m1 put /demo/hello "written on m1" >/dev/null
ectl m3 get /demo/hello --consistency=s
step "etcdctl member list (from m2)"
ectl m2 member list -w table
if [[ ${DEMO_KEEP:-} == 1 ]]; then
  step "machines are running; press Enter to tear down"
  read -r
fi
