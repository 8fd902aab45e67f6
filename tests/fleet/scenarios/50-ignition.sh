# shellcheck shell=bash
# The shipped Ignition config (ignition/etcdadm.ign), applied by real Ignition (Debian's
# ignition 2.14, `-platform=file -root=ROOT` from the host) to three machine roots, which
# then boot at once and form one cluster by themselves. Only the site-specific values are
# substituted in a copy: peer addresses, the CA, the release mirror, and the binary's URL and
# sha256 (the real static etcdadm, served from the host; Ignition verifies it). A wrong hash
# must make Ignition fail without writing the binary.

IGN_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
IGNITION=${IGNITION:-/usr/lib/dracut/modules.d/30ignition/ignition}

scenario() {
  local shipped=$IGN_REPO/ignition/etcdadm.ign m t0 peers=()
  command -v ignition-validate >/dev/null && [[ -x $IGNITION ]] ||
    fleet__fail "Ignition missing: run scripts/install-deps.sh (package ignition)" || return 1
  for m in /usr/lib/ignition/base.d /usr/lib/ignition/user.ign; do # the host's would be merged in
    [[ ! -e $m ]] || fleet__fail "$m exists on the host; Ignition would merge it into every run" || return 1
  done
  check "etcdadm.ign is etcdadm.bu rendered (render.py --check)" python3 "$IGN_REPO/ignition/render.py" --check
  check "ignition-validate accepts the shipped config" ignition-validate "$shipped"

  fleet_setup || return 1
  make_ca "$FLEET_RUN/ca" || return 1
  local www=$FLEET_RUN/www bin_url sum
  mkdir -p "$www" && cp "$ETCDADM_BIN" "$www/etcdadm-x86_64-linux" || return 1
  fleet_serve "$www" 8081 || return 1
  bin_url=http://10.213.$FLEET_NET.1:8081/etcdadm-x86_64-linux
  sum=$(sha256sum <"$www/etcdadm-x86_64-linux") && sum=sha256-${sum%% *}
  peers=("$(fleet_ip 1)" "$(fleet_ip 2)" "$(fleet_ip 3)")
  ign_site "$shipped" "$FLEET_RUN/site.ign" "$bin_url" "$sum" "${peers[@]}" || return 1
  ign_site "$shipped" "$FLEET_RUN/wrong-hash.ign" "$bin_url" keep "${peers[@]}" || return 1
  check "ignition-validate accepts the site config" ignition-validate "$FLEET_RUN/site.ign"

  # Three roots as a provisioning system hands them to Ignition: first boot still to come.
  for m in m1 m2 m3 m4; do
    fleet_create "$m" "${m#m}" || return 1
    echo uninitialized >"$(fleet_root "$m")/etc/machine-id" # so the first boot applies presets
  done
  mkdir -p "$FLEET_RUN/ign/bin" &&
    printf '#!/bin/sh\n# no-op: the roots have no SELinux policy to relabel with\ncat >/dev/null\n' >"$FLEET_RUN/ign/bin/setfiles" &&
    chmod 0755 "$FLEET_RUN/ign/bin/setfiles" || return 1

  check "a wrong binary hash: Ignition fails and writes no binary" wrong_hash_fails m4
  t0=$(ms_now)
  local pids=() rcs=()
  for m in m1 m2 m3; do
    ign_apply "$FLEET_RUN/site.ign" "$m" &
    pids+=($!)
  done
  for m in "${pids[@]}"; do
    wait "$m"
    rcs+=($?)
  done
  local nets=0 # fetch-offline asks for the network (the binary's http source): fetch runs
  for m in m1 m2 m3; do [[ -e $FLEET_RUN/ign/$m/neednet ]] && nets=$((nets + 1)); done
  fleet_log "ignition: m1 m2 m3 in parallel took $(($(ms_now) - t0)) ms (exit ${rcs[*]}; fetch stage ran on $nets/3)"
  check "Ignition exits 0 on every root" ign_all_ok "${rcs[@]}"
  for m in m1 m2 m3; do
    check "$m: files, modes and the enabled unit are as configured" ign_files_ok "$m"
    # Not part of the config: the harness runs `etcdadm` through PATH (/opt/bin is in
    # Flatcar's PATH, not Debian's).
    ln -s /opt/bin/etcdadm "$(fleet_root "$m")/usr/local/bin/etcdadm" || return 1
  done

  t0=$(ms_now)
  fleet_start m1 m2 m3 || return 1
  for m in m1 m2 m3; do
    check "$m: first boot enabled etcdadm-bootstrap.service" first_boot_enabled "$m"
  done
  check "all three bootstrap units report ready" all_ready m1 m2 m3
  fleet_log "bootstrap: all ready $(($(ms_now) - t0)) ms after the boot began"
  check "one cluster of three started voters" one_cluster_of 3 m1 m2 m3
}

ms_now() { echo $((${EPOCHREALTIME/./} / 1000)); }

# Copy of the shipped config with the site's values: binary URL and hash ("keep" keeps the
# shipped placeholder hash), peer addresses, the harness mirror, the CA from $FLEET_RUN/ca.
ign_site() { # SHIPPED OUT BIN_URL HASH PEER1 PEER2 PEER3
  python3 - "$@" "$FLEET_RUN/ca" "$MIRROR_URL" "$ETCD_VERSION" <<'EOF'
import base64, gzip, json, pathlib, sys, urllib.parse
src, dst, bin_url, bin_hash, p1, p2, p3, ca_dir, mirror, version = sys.argv[1:]
cfg = json.loads(pathlib.Path(src).read_text())
files = {f["path"]: f for f in cfg["storage"]["files"]}

def data_url(b):
    return "data:," + urllib.parse.quote(b, safe="")

def decode(contents):  # URL-escaped or base64, gzipped or not (render.py or Butane)
    meta, data = contents["source"].removeprefix("data:").split(",", 1)
    b = base64.b64decode(data) if meta.endswith(";base64") else urllib.parse.unquote_to_bytes(data)
    return gzip.decompress(b) if contents.get("compression") == "gzip" else b

binary = files["/opt/bin/etcdadm"]["contents"]
binary["source"] = bin_url
if bin_hash != "keep":
    binary["verification"]["hash"] = bin_hash
conf = files["/etc/etcdadm/config.yaml"]["contents"]
text = decode(conf).decode()
for old, new in [("192.0.2.11", p1), ("192.0.2.12", p2), ("192.0.2.13", p3),
                 ("# release-url: http://mirror.example.internal/etcd",
                  f"release-url: {mirror}\nversion: {version}")]:
    if text.count(old) != 1:
        sys.exit(f"ign_site: {old!r} is not in the shipped config.yaml exactly once:\n{text}")
    text = text.replace(old, new)
conf.update(source=data_url(text.encode()), compression="")
for name in ("ca.crt", "ca.key"):
    files[f"/etc/etcd/pki/{name}"]["contents"].update(source=data_url(pathlib.Path(ca_dir, name).read_bytes()), compression="")
pathlib.Path(dst).write_text(json.dumps(cfg, indent=2) + "\n")
EOF
}

# Runs Ignition's first-boot stages against M's root, as its initrd units would; the log
# goes to $FLEET_RUN/ign/M/ignition.log. Returns Ignition's exit status.
ign_apply() { # CONFIG M
  local root w rc sel
  root=$(fleet_root "$2")
  w=$FLEET_RUN/ign/$2
  sel=$root/etc/selinux/config
  mkdir -p "$w" "$root/etc/selinux" || return 1
  # Debian's build relabels at the end of `files` unless SELinux is off in the root.
  [[ ! -e $sel ]] || fleet__fail "$sel exists in the base" || return 1
  printf 'SELINUX=disabled\nSELINUXTYPE=default\n' >"$sel" || return 1
  (
    export IGNITION_CONFIG_FILE=$1 PATH=$FLEET_RUN/ign/bin:$PATH
    c=(-platform=file -root="$root" -log-to-stdout -config-cache="$w/ignition.json"
      -state-file="$w/state" -neednet="$w/neednet")
    "$IGNITION" "${c[@]}" -stage=fetch-offline || exit
    if [[ -e $w/neednet ]]; then "$IGNITION" "${c[@]}" -stage=fetch || exit; fi
    "$IGNITION" "${c[@]}" -stage=files
  ) >"$w/ignition.log" 2>&1
  rc=$?
  rm -f "$sel"
  ((rc == 0)) || { tail -n 15 "$w/ignition.log" | sed "s/^/  ignition $2| /" >&2; }
  return "$rc"
}

ign_all_ok() { # EXIT...
  local rc
  for rc; do [[ $rc == 0 ]] || fleet__fail "an Ignition run exited $rc (logs: $FLEET_RUN/ign/m*/ignition.log)" || return 1; done
}

wrong_hash_fails() { # M
  local root log
  root=$(fleet_root "$1")
  log=$FLEET_RUN/ign/$1/ignition.log
  if ign_apply "$FLEET_RUN/wrong-hash.ign" "$1" 2>/dev/null; then
    fleet__fail "Ignition accepted a binary whose sha256 does not match"
    return 1
  fi
  grep -q 'hash verification failed' "$log" ||
    fleet__fail "Ignition failed, but not for the hash (log: $log)" || return 1
  [[ ! -e $root/opt/bin/etcdadm ]] || fleet__fail "the unverified binary was written" || return 1
  [[ -z $(find "$root/opt" -type f 2>/dev/null) ]] ||
    fleet__fail "files left under /opt: $(find "$root/opt" -type f)" || return 1
}

ign_files_ok() { # M
  local r f want mode
  r=$(fleet_root "$1")
  for f in /opt/bin/etcdadm:755 /etc/etcdadm/config.yaml:644 /etc/etcd/pki/ca.crt:644 /etc/etcd/pki/ca.key:600 \
    /etc/systemd/system/etcdadm-bootstrap.service:644; do
    want=${f##*:}
    f=${f%:*}
    mode=$(stat -c '%a %U' "$r$f" 2>&1)
    assert_eq "$want root" "$mode" "mode and owner of $f on $1" || return 1
  done
  cmp -s "$ETCDADM_BIN" "$r/opt/bin/etcdadm" || fleet__fail "$1: /opt/bin/etcdadm differs from the served binary" || return 1
  cmp -s "$FLEET_RUN/ca/ca.key" "$r/etc/etcd/pki/ca.key" && cmp -s "$FLEET_RUN/ca/ca.crt" "$r/etc/etcd/pki/ca.crt" ||
    fleet__fail "$1: the CA differs from the one in the config" || return 1
  cmp -s "$IGN_REPO/packaging/etcdadm-bootstrap.service" "$r/etc/systemd/system/etcdadm-bootstrap.service" ||
    fleet__fail "$1: the unit differs from packaging/etcdadm-bootstrap.service" || return 1
  assert_contains "$(cat "$r/etc/etcdadm/config.yaml")" "peers: [$(fleet_ip 1), $(fleet_ip 2), $(fleet_ip 3)]" "$1: config.yaml" &&
    assert_contains "$(cat "$r/etc/systemd/system-preset/20-ignition.preset" 2>&1)" "enable etcdadm-bootstrap.service" "$1: Ignition's preset"
}

first_boot_enabled() { # M
  local id
  id=$(fleet_exec "$1" cat /etc/machine-id) || return 1
  [[ $id =~ ^[0-9a-f]{32}$ ]] || fleet__fail "$1: /etc/machine-id is '$id' after the first boot" || return 1
  assert_eq enabled "$(fleet_exec "$1" systemctl is-enabled etcdadm-bootstrap.service 2>&1)" "is-enabled on $1"
}
