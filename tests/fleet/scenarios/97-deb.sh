# shellcheck shell=bash
# The release artifacts: SHA256SUMS verifies them, the .rpm and the tarball hold what they
# should, and the .deb, installed with dpkg on three fresh machines (no other copy of
# etcdadm on them), brings man pages, completions and the bootstrap unit; started from the
# package, bootstrap forms one healthy cluster and writes its metrics file, which
# node_exporter's textfile collector reads. Artifacts: $ETCDADM_PACKAGES (a directory
# scripts/build-packages.sh filled), else built here.

NE_BIN=/opt/etcdadm-test/node-exporter/usr/bin/prometheus-node-exporter
PROM=/var/lib/node_exporter/textfile_collector/etcdadm.prom

scenario() {
  fleet_setup || return 1
  local pkgs
  REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
  pkgs=${ETCDADM_PACKAGES:-}
  if [[ -z $pkgs ]]; then
    pkgs=$FLEET_RUN/pkgs # (teardown looks at every directory there as a machine: short names)
    fleet_log "building packages into $pkgs"
    "$REPO/scripts/build-packages.sh" "$pkgs" >&2 || fleet__fail "scripts/build-packages.sh failed" || return 1
  fi
  DEB=$(artifact "$pkgs" 'etcdadm_*_amd64.deb') && RPM=$(artifact "$pkgs" 'etcdadm-*.x86_64.rpm') &&
    TARBALL=$(artifact "$pkgs" 'etcdadm-*-x86_64-linux.tar.gz') || return 1

  check "SHA256SUMS verifies the .deb, the .rpm and the tarball" sums_ok "$pkgs"
  check "the tarball holds binary, unit, man pages, completions and docs" tarball_ok
  check "the .rpm holds binary, unit, drop-in, man pages, completions and docs" rpm_ok

  # the CA, made with the tarball's binary
  "$TARBALL_DIR/etcdadm" ca create --certs-dir "$FLEET_RUN/ca" >/dev/null || fleet__fail "ca create" || return 1
  local peers m
  peers="[$(fleet_ip 1), $(fleet_ip 2), $(fleet_ip 3)]"
  BOOTSTRAP_NO_BINARY=1 bootstrap_prepare "$FLEET_RUN/ca" "release-url: $MIRROR_URL
version: $ETCD_VERSION
bootstrap:
  discovery:
    provider: static
    peers: $peers
" m1 1 m2 2 m3 3 || return 1
  # m4 waits for a third peer that is never listed: its bootstrap fails at a short deadline
  BOOTSTRAP_NO_BINARY=1 bootstrap_prepare "$FLEET_RUN/ca" "release-url: $MIRROR_URL
version: $ETCD_VERSION
bootstrap:
  deadline-seconds: 4
  cluster-size: 3
  discovery:
    provider: static
    peers: [$(fleet_ip 4), $(fleet_ip 9)]
" m4 4 || return 1
  for m in m1 m2 m3 m4; do
    install -D -m 0644 "$DEB" "$(fleet_root "$m")/root/etcdadm.deb" || return 1
  done
  fleet_start m1 m2 m3 m4 || return 1
  check "no etcdadm on the machines before the package" no_etcdadm m1 m2 m3 m4

  for m in m1 m2 m3 m4; do
    check "dpkg -i installs the .deb on $m" fleet_exec "$m" dpkg -i /root/etcdadm.deb
  done
  check "etcdadm is /usr/bin/etcdadm from the package" from_package m1
  check "man pages installed, one per command" man_pages m1
  check "bash, zsh and fish completions installed; bash completes" completions m1
  check "systemctl cat shows the unit with the package's drop-in" unit_from_package m1
  check "the example alert rules installed, and promtool accepts them" alert_rules_installed m1
  check "the install neither enabled nor started the unit" unit_idle m1

  for m in m1 m2 m3 m4; do
    check "enable and start etcdadm-bootstrap on $m" fleet_exec "$m" sh -c 'systemctl enable etcdadm-bootstrap && systemctl start --no-block etcdadm-bootstrap'
  done
  check "all three bootstrap units report ready" all_ready m1 m2 m3
  check "one cluster of three started voters" one_cluster_of 3 m1 m2 m3
  for m in m1 m2 m3; do
    check "$m wrote its metrics file: success 1, decision form" metrics_ok "$m"
  done
  check "node_exporter's textfile collector reads the file without error" node_exporter_reads m1
  check "a bootstrap that fails at its deadline writes success 0, decision none" failed_metrics m4
  check "dpkg -r removes etcdadm and leaves etcd running" remove_keeps_etcd m3
}

artifact() { # DIR GLOB: the one file matching GLOB in DIR
  # shellcheck disable=SC2206 # GLOB is meant to expand
  local found=("$1"/$2)
  [[ ${#found[@]} == 1 && -f ${found[0]} ]] || fleet__fail "expected one $2 in $1, found: ${found[*]}" || return 1
  echo "${found[0]}"
}

sums_ok() { # DIR
  (cd "$1" && sha256sum --strict -c SHA256SUMS >&2) || return 1
  assert_eq 3 "$(wc -l <"$1/SHA256SUMS")" "artifacts in SHA256SUMS"
}

tarball_ok() {
  local t name
  t=$FLEET_RUN/tgz/$(basename "$TARBALL" .tar.gz)
  mkdir -p "$FLEET_RUN/tgz" && tar -C "$FLEET_RUN/tgz" -xzf "$TARBALL" || return 1
  TARBALL_DIR=$t
  for name in etcdadm etcdadm-bootstrap.service README.md LICENSE man/etcdadm.8.gz man/etcdadm-bootstrap.8.gz \
    completions/etcdadm.bash completions/_etcdadm completions/etcdadm.fish prometheus/etcdadm-alerts.yml; do
    [[ -s $t/$name ]] || fleet__fail "$name missing in $TARBALL" || return 1
  done
  [[ -x $t/etcdadm ]] && "$t/etcdadm" --version >&2 || return 1
  cmp "$t/etcdadm-bootstrap.service" "$REPO/packaging/etcdadm-bootstrap.service"
}

rpm_ok() {
  local list f
  list=$(rpm -qlp "$RPM") || return 1
  for f in /usr/bin/etcdadm /usr/lib/systemd/system/etcdadm-bootstrap.service \
    /usr/lib/systemd/system/etcdadm-bootstrap.service.d/10-package.conf /usr/share/man/man8/etcdadm.8.gz \
    /usr/share/man/man8/etcdadm-bootstrap.8.gz /usr/share/man/man8/etcdadm-join-phase.8.gz \
    /usr/share/bash-completion/completions/etcdadm /usr/share/zsh/site-functions/_etcdadm \
    /usr/share/fish/vendor_completions.d/etcdadm.fish /usr/share/doc/etcdadm/README.md /usr/share/licenses/etcdadm/LICENSE \
    /usr/share/etcdadm/prometheus/etcdadm-alerts.yml; do
    grep_all -x "$f" <<<"$list" || fleet__fail "$f not in $(basename "$RPM"): $list" || return 1
  done
  assert_eq 0 "$(grep -c '^/opt' <<<"$list")" "files under /opt in the .rpm (etcd is not packaged)"
}

alert_rules_installed() { # M
  local f=/usr/share/etcdadm/prometheus/etcdadm-alerts.yml
  assert_contains "$(fleet_exec "$1" dpkg -S "$f")" "etcdadm: $f" "owner of $f" &&
    cmp "$(fleet_root "$1")$f" "$REPO/packaging/prometheus/etcdadm-alerts.yml" &&
    "$PROMTOOL" check rules "$(fleet_root "$1")$f" >&2
}

no_etcdadm() { # M...
  local m
  for m; do
    fleet_exec "$m" sh -c '! command -v etcdadm && [ ! -e /opt/bin/etcdadm ] && [ ! -e /usr/lib/systemd/system/etcdadm-bootstrap.service ]' >/dev/null ||
      fleet__fail "$m already has etcdadm" || return 1
  done
}

from_package() { # M
  assert_eq /usr/bin/etcdadm "$(fleet_exec "$1" sh -c 'command -v etcdadm')" "etcdadm on PATH" &&
    assert_contains "$(fleet_exec "$1" dpkg -S /usr/bin/etcdadm)" "etcdadm: /usr/bin/etcdadm" "owner of /usr/bin/etcdadm" &&
    assert_contains "$(fleet_exec "$1" etcdadm --version)" "etcdadm " "etcdadm --version"
}

man_pages() { # M
  local page
  for page in etcdadm etcdadm-init etcdadm-join etcdadm-join-phase etcdadm-reset etcdadm-bootstrap etcdadm-certs-renew etcdadm-backup; do
    # what `man -w etcdadm` finds (man-db is not in the minimal root): section 8, compressed
    fleet_exec "$1" sh -c "zcat /usr/share/man/man8/$page.8.gz | grep -q '^\.TH $page 8 '" ||
      fleet__fail "$page.8.gz missing or not a section 8 page" || return 1
  done
}

completions() { # M
  fleet_exec "$1" test -s /usr/share/zsh/vendor-completions/_etcdadm &&
    fleet_exec "$1" test -s /usr/share/fish/vendor_completions.d/etcdadm.fish || return 1
  # bash-completion loads /usr/share/bash-completion/completions/<command> on first TAB
  # shellcheck disable=SC2016 # expanded in the machine
  assert_eq "bootstrap" "$(fleet_exec "$1" bash -c '. /usr/share/bash-completion/completions/etcdadm
    COMP_WORDS=(etcdadm boot); COMP_CWORD=1; _etcdadm etcdadm boot etcdadm; echo "${COMPREPLY[*]}"')" "bash completion of 'etcdadm boot'"
}

unit_from_package() { # M
  local cat
  cat=$(fleet_exec "$1" systemctl cat etcdadm-bootstrap.service) || return 1
  assert_contains "$cat" "# /usr/lib/systemd/system/etcdadm-bootstrap.service" "systemctl cat" &&
    assert_contains "$cat" "# /usr/lib/systemd/system/etcdadm-bootstrap.service.d/10-package.conf" "systemctl cat" &&
    assert_contains "$(fleet_exec "$1" systemctl show -p ExecStart --value etcdadm-bootstrap)" "path=/usr/bin/etcdadm " "ExecStart"
}

unit_idle() { # M
  assert_eq disabled "$(fleet_exec "$1" systemctl is-enabled etcdadm-bootstrap)" "is-enabled" &&
    assert_eq inactive "$(fleet_exec "$1" systemctl is-active etcdadm-bootstrap)" "is-active"
}

metrics_ok() { # M: the file appears right after READY=1
  fleet_retry 10 fleet_exec "$1" test -s "$PROM" || fleet__fail "$1: no $PROM" || return 1
  local text
  text=$(fleet_exec "$1" cat "$PROM") || return 1
  printf '%s\n' "$text" | sed "s/^/  $1| /" >&2
  assert_contains "$text" $'\netcdadm_bootstrap_success{decision="form"} 1\n' "$PROM" &&
    assert_contains "$text" "# TYPE etcdadm_bootstrap_duration_seconds gauge" "$PROM" &&
    assert_contains "$text" 'etcdadm_bootstrap_stage_duration_seconds{stage="form"} ' "$PROM" &&
    assert_eq 644 "$(fleet_exec "$1" stat -c %a "$PROM")" "mode of $PROM"
}

# Debian's node_exporter on the host's loopback, reading M's textfile directory.
node_exporter_reads() { # M
  [[ -x $NE_BIN ]] || fleet__fail "$NE_BIN missing: run scripts/install-deps.sh" || return 1
  local addr=127.0.0.1:$((19000 + FLEET_NET)) scrape
  "$NE_BIN" --web.listen-address="$addr" --collector.disable-defaults --collector.textfile \
    --collector.textfile.directory="$(fleet_root "$1")${PROM%/*}" </dev/null >>"$FLEET_RUN/node-exporter.log" 2>&1 &
  echo $! >>"$FLEET_RUN/servers"
  fleet_retry 10 curl -sf -o /dev/null "http://$addr/metrics" || fleet__fail "node_exporter did not answer on $addr" || return 1
  scrape=$(curl -sf "http://$addr/metrics") || return 1
  assert_contains "$scrape" $'\nnode_textfile_scrape_error 0\n' "node_exporter's verdict on the file" &&
    assert_contains "$scrape" $'\netcdadm_bootstrap_success{decision="form"} 1\n' "the scraped metric"
}

failed_metrics() { # M
  fleet_retry 30 fleet_exec "$1" test -s "$PROM" || fleet__fail "$1: no $PROM after a failed bootstrap" || return 1
  assert_contains "$(fleet_exec "$1" cat "$PROM")" $'\netcdadm_bootstrap_success{decision="none"} 0\n' "$PROM of $1" &&
    assert_contains "$(fleet_exec "$1" systemctl show -p StatusText --value etcdadm-bootstrap)" "failed: " "bootstrap status of $1"
}

remove_keeps_etcd() { # M
  fleet_exec "$1" dpkg -r etcdadm >&2 || return 1
  fleet_exec "$1" sh -c '[ ! -e /usr/bin/etcdadm ] && [ ! -e /usr/share/man/man8/etcdadm.8.gz ]' || fleet__fail "files left after dpkg -r" || return 1
  assert_eq active "$(fleet_exec "$1" systemctl is-active etcd)" "etcd after dpkg -r" &&
    assert_eq 3 "$(started_voters m1)" "started voters after removing the package from $1"
}
