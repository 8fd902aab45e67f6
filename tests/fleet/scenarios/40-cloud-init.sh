# shellcheck shell=bash
# Real cloud-init (Debian's, NoCloud datasource) carrying the shipped
# cloud-init/static-3-members.yaml with only its placeholders filled in: three machines
# whose image holds nothing but /opt/bin/etcdadm boot at once; cloud-init brings up the
# network, writes the configuration, the CA and the unit, and its runcmd starts
# `etcdadm bootstrap`, which forms one cluster.

EXAMPLES=$(dirname "${BASH_SOURCE[0]}")/../../../cloud-init
USER_DATA_EXAMPLE=$EXAMPLES/static-3-members.yaml

scenario() {
  # shellcheck disable=SC2034 # read by fleet_base through fleet_setup: the base with cloud-init
  FLEET_VARIANT=cloud-init
  fleet_setup || return 1
  [[ $("$ETCDADM_BIN" version) == *"installs etcd $ETCD_VERSION "* ]] ||
    fleet__fail "the example pins no version: ETCD_VERSION ($ETCD_VERSION) must be etcdadm's default" || return 1
  make_ca "$FLEET_RUN/ca" || return 1
  render_user_data >"$FLEET_RUN/user-data" || return 1
  local n
  for n in 1 2 3; do
    seed_machine "m$n" "$n" "$FLEET_RUN/user-data" || return 1
  done

  local t0=${EPOCHREALTIME//[^0-9]/}
  fleet_start m1 m2 m3 || return 1
  check "cloud-init is done from the NoCloud seed on every machine" cloud_init_done m1 m2 m3
  check "host0 is configured from cloud-init's network-config" network_from_cloud_init m1 m2 m3
  check "the user-data passes cloud-init's schema" schema_ok m1 --system
  check "all three bootstrap units report ready" all_ready m1 m2 m3
  fleet_log "boot to ready (3 machines): $(((${EPOCHREALTIME//[^0-9]/} - t0) / 1000)) ms"
  check "one cluster of three started voters" one_cluster_of 3 m1 m2 m3
  check "runcmd enabled the unit cloud-init wrote" unit_enabled m1 m2 m3
  check "the CA key landed intact with mode 0600" ca_key_landed m1 m2 m3
  check "the CA key is in no log" key_not_logged m1 m2 m3
  check "the shipped asg.yaml passes cloud-init's schema and etcdadm's config check" example_valid m1 asg.yaml aws-asg
  check "the shipped gce-mig.yaml passes cloud-init's schema and etcdadm's config check" example_valid m1 gce-mig.yaml gce-mig
  check "the shipped azure-vmss.yaml passes cloud-init's schema and etcdadm's config check" example_valid m1 azure-vmss.yaml azure-vmss
}

# etcdadm where the user-data's unit runs it (the image has no other copy).
ea() { # M ARGS...
  local m=$1
  shift
  fleet_exec "$m" /opt/bin/etcdadm "$@"
}

# The shipped example with its placeholders filled in: the machines' addresses, the CA
# (indented like its placeholder) and, on the air-gapped-site line, the harness mirror.
render_user_data() {
  local out
  out=$(awk -v p1="$(fleet_ip 1)" -v p2="$(fleet_ip 2)" -v p3="$(fleet_ip 3)" -v url="$MIRROR_URL" \
    -v crt="$FLEET_RUN/ca/ca.crt" -v key="$FLEET_RUN/ca/ca.key" '
    /^#/ { print; next } # the example'\''s own documentation
    /^ *@CA_(CERT|KEY)@$/ {
      indent = $0; sub(/@.*/, "", indent)
      file = /@CA_CERT@/ ? crt : key
      while ((getline line < file) > 0) print indent line
      close(file); next
    }
    /^ *# release-url: @RELEASE_URL@$/ { sub(/# release-url: @RELEASE_URL@/, "release-url: " url) }
    { gsub(/@PEER1@/, p1); gsub(/@PEER2@/, p2); gsub(/@PEER3@/, p3); print }' "$USER_DATA_EXAMPLE") ||
    return 1
  grep -v '^#' <<<"$out" | grep_all "^ *release-url: $MIRROR_URL\$" ||
    fleet__fail "$USER_DATA_EXAMPLE: no '# release-url: @RELEASE_URL@' line to fill in" || return 1
  ! grep -v '^#' <<<"$out" | grep -E '@[A-Z0-9_]+@' >&2 ||
    fleet__fail "$USER_DATA_EXAMPLE: placeholders left unfilled (above)" || return 1
  printf '%s\n' "$out"
}

# Machine M at address N with an image that carries only /opt/bin/etcdadm, and a NoCloud
# seed: meta-data, the given user-data, and a network-config for host0 (fleet_create's own
# network file is removed: the address comes from cloud-init).
seed_machine() { # M N USER_DATA
  local root seed
  fleet_create "$1" "$2" || return 1
  root=$(fleet_root "$1")
  seed=$root/var/lib/cloud/seed/nocloud
  rm -f "$root/etc/systemd/network/10-host0.network" &&
    install -D -m 0755 "$ETCDADM_BIN" "$root/opt/bin/etcdadm" &&
    mkdir -p "$seed" &&
    printf 'instance-id: iid-%s\nlocal-hostname: %s\n' "$(systemd-id128 new)" "$1" >"$seed/meta-data" &&
    printf 'version: 2\nethernets:\n  host0:\n    addresses: [%s/24]\n' "$(fleet_ip "$2")" >"$seed/network-config" &&
    install -m 0600 "$3" "$seed/user-data"
}

cloud_init_done() { # M...
  local m out
  for m; do
    out=$(fleet_exec "$m" timeout 60 cloud-init status --wait --long) ||
      { printf '%s\n' "$out" >&2; fleet__fail "cloud-init status on $m"; return 1; }
    assert_contains "$out" "status: done" "cloud-init status on $m" &&
      assert_contains "$out" "DataSourceNoCloud" "cloud-init datasource on $m" || return 1
  done
}

network_from_cloud_init() { # M...
  local m
  for m; do
    assert_contains "$(fleet_exec "$m" networkctl status host0)" "/etc/systemd/network/10-cloud-init-host0.network" \
      "network file of host0 on $m" || return 1
  done
}

# `cloud-init schema ARGS` in M accepts the cloud-config (--system: the user-data M booted
# with). Debian 12's cloud-init (22.4) calls `locale: false` a type error yet honours it
# (status stays done); cloud-init 24.4 accepts it (upstream #5647). Any other error fails.
schema_ok() { # M ARGS...
  local out
  out=$(fleet_exec "$1" cloud-init schema "${@:2}" 2>&1) && return 0
  [[ $(sed -n 's/^Cloud config schema errors: //p' <<<"$out") == "locale: False is not of type 'string'" ]] ||
    { printf '%s\n' "$out" >&2; fleet__fail "cloud-init schema on $1"; }
}

unit_enabled() { # M...
  local m
  for m; do
    assert_eq enabled "$(fleet_exec "$m" systemctl is-enabled etcdadm-bootstrap)" "etcdadm-bootstrap on $m" || return 1
  done
}

ca_key_landed() { # M...
  local m
  for m; do
    assert_eq "600 root" "$(fleet_exec "$m" stat -c '%a %U' /etc/etcd/pki/ca.key)" "mode of ca.key on $m" || return 1
    fleet_exec "$m" cat /etc/etcd/pki/ca.key | cmp -s - "$FLEET_RUN/ca/ca.key" ||
      fleet__fail "ca.key on $m differs from the CA's key" || return 1
  done
}

# Neither the journal nor cloud-init's logs contain the key's secret (its base64 body).
key_not_logged() { # M...
  local m secret logs
  secret=$(sed -n 2p "$FLEET_RUN/ca/ca.key")
  [[ ${#secret} -ge 40 ]] || fleet__fail "unexpected ca.key layout" || return 1
  for m; do
    logs=$(fleet_journal "$m" -o cat && cat "$(fleet_root "$m")"/var/log/cloud-init*.log) || return 1
    [[ $logs == *"cloud-init"* && $logs == *"etcdadm"* && $logs != *"$secret"* ]] ||
      fleet__fail "the CA key is in a log of $m (or the logs are missing)" || return 1
  done
}

# The ASG example (placeholders and all: they sit in strings and comments) is valid
# cloud-config for M's cloud-init, and the etcdadm configuration it writes loads.
example_valid() { # M FILE PROVIDER
  local dir=/root/example-${2%.yaml}
  install -D -m 0600 "$EXAMPLES/$2" "$(fleet_root "$1")$dir/user-data" &&
    schema_ok "$1" -c "$dir/user-data" &&
    fleet_exec "$1" python3 -c 'import sys, yaml
files = yaml.safe_load(open(sys.argv[1]))["write_files"]
open(sys.argv[2], "w").write(next(f["content"] for f in files if f["path"] == "/etc/etcdadm/config.yaml"))' \
      "$dir/user-data" "$dir/config.yaml" &&
    assert_contains "$(ea "$1" config view --config "$dir/config.yaml")" "provider: $3" "$2 example config"
}
