# shellcheck shell=bash
# Helpers the fleet scenarios share (sourced after lib.sh).

ETCD_VERSION=${ETCD_VERSION:-3.5.30}
SCENARIO=${SCENARIO:?run scenarios through tests/fleet/run.sh}

# Runs one named check; records it for the summary. A failed check ends the scenario.
check() { # NAME CMD...
  local name=$1
  shift
  if "$@"; then
    echo "pass $SCENARIO: $name" >>"$FLEET_RESULTS"
    fleet_log "ok: $name"
  else
    echo "fail $SCENARIO: $name" >>"$FLEET_RESULTS"
    fleet_log "FAILED: $name"
    exit 1
  fi
}

# Bridge, base rootfs and the local release mirror served on http://<bridge>:8080.
fleet_setup() {
  fleet_base || return 1
  fleet_init "${FLEET_NET_INDEX:?}" || return 1
  MIRROR=$FLEET_CACHE/mirror
  "$(dirname "${BASH_SOURCE[0]}")/../../scripts/build-etcd-mirror.sh" "$MIRROR" "$ETCD_VERSION" >&2 || return 1
  fleet_serve "$MIRROR" 8080 || return 1
  MIRROR_URL=http://10.213.$FLEET_NET.1:8080
}

# Creates machines (name index pairs), installs etcdadm and a config pointing at the
# mirror in each, then boots them together.
machines() { # M N [M N ...]
  local names=()
  while (($#)); do
    fleet_create "$1" "$2" || return 1
    install -D -m 0755 "$ETCDADM_BIN" "$(fleet_root "$1")/usr/local/bin/etcdadm" || return 1
    write_config "$1" "release-url: $MIRROR_URL"$'\n'"version: $ETCD_VERSION"$'\n' || return 1
    names+=("$1")
    shift 2
  done
  fleet_start "${names[@]}"
}

write_config() { # M YAML
  install -D -m 0644 /dev/stdin "$(fleet_root "$1")/etc/etcdadm/config.yaml" <<<"$2"
}

ea() { # M ARGS...: etcdadm inside M
  local m=$1
  shift
  fleet_exec "$m" etcdadm "$@"
}

ectl() { # M ARGS...: etcdctl on M through the wrapper etcdadm wrote
  local m=$1
  shift
  fleet_exec "$m" /opt/bin/etcdctl.sh "$@"
}

# `etcdctl member list` lines: id, status, name, peer, client, is_learner
members() { ectl "$1" member list; }

started_voters() { # M: number of started, non-learner members
  members "$1" | grep -c ', started, .*, false$'
}

copy_ca() { # FROM TO
  local f
  for f in ca.crt ca.key; do
    install -D -m "$([[ $f == *.key ]] && echo 0600 || echo 0644)" \
      "$(fleet_root "$1")/etc/etcd/pki/$f" "$(fleet_root "$2")/etc/etcd/pki/$f" || return 1
  done
}

# Output (stdout+stderr) of etcdadm in M, saved for later assertions; returns its status.
ea_out() { # VAR M ARGS...
  local __var=$1 __out __rc
  shift
  __out=$(ea "$@" 2>&1)
  __rc=$?
  printf -v "$__var" '%s' "$__out"
  printf '%s\n' "$__out" | sed "s/^/  $1| /" >&2
  return "$__rc"
}

# Fingerprint of everything etcdadm manages on M, to prove re-runs change nothing.
fingerprint() { # M
  fleet_exec "$1" sh -c 'sha256sum /etc/etcd/etcd.env /etc/etcd/etcdctl.env /etc/systemd/system/etcd.service /etc/etcd/pki/* /opt/bin/* /etc/etcdadm/state.json 2>&1; stat -c "%n %a" /etc/etcd/pki/*'
}
