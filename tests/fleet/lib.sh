# shellcheck shell=bash
# Fleet harness: real systemd machines (systemd-nspawn on an overlay of one cached Debian
# rootfs), networked on a private bridge and driven from bash. Root only; host packages come
# from scripts/install-deps.sh. Facts behind it: ../shared/testbed.md.
#
#   . tests/fleet/lib.sh
#   fleet_base; fleet_init 3                        # bridge br-ea3, 10.213.3.0/24
#   fleet_create m1 1; fleet_create m2 2; fleet_start m1 m2   # boot in parallel
#   fleet_exec m1 systemctl is-active etcd
#
# Base variants, each built and cached on its own: `fleet_base` (or FLEET_VARIANT unset) is
# the plain base; `fleet_base cloud-init` (or FLEET_VARIANT=cloud-init, which also reaches
# fleet_base through callers such as fleet_setup) adds Debian's cloud-init for NoCloud seeds.
#
# NET_INDEX i (0-255) owns bridge br-ea<i>, subnet 10.213.<i>.0/24, nspawn machine names
# ea<i>-<M> (host veth vb-ea<i>-<M>) and run dirs /var/tmp/etcdadm-fleet.<i>.*: runs with
# different indexes can share a host; fleet_init reclaims whatever a crashed run of the same
# index left. Per-machine state lives in files under $FLEET_RUN/<M>/ (not in shell
# variables), so every function also works from subshells and background jobs.
# Sourcing changes no shell option; fleet_init sets EXIT/INT/TERM traps.

FLEET_CACHE=${ETCDADM_TEST_CACHE:-/var/tmp/etcdadm-test-cache}
FLEET_PACKAGES=systemd,systemd-sysv,dbus,iproute2,ca-certificates
FLEET_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
FLEET_RUN=${FLEET_RUN:-}
_fleet_t0=${EPOCHREALTIME//[^0-9]/}

fleet_log() {
  local ms=$(((${EPOCHREALTIME//[^0-9]/} - _fleet_t0) / 1000))
  printf '[fleet %4d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*" >&2
}
fleet__fail() { fleet_log "FAIL: $*"; return 1; }

assert_eq() { # EXPECTED ACTUAL MSG
  [[ $2 == "$1" ]] || fleet__fail "$3: expected '$1', got '$2'"
}
assert_contains() { # HAYSTACK NEEDLE MSG
  [[ $1 == *"$2"* ]] || fleet__fail "$3: '$2' not found in: $1"
}
assert_fails() { # MSG CMD...: CMD must exit non-zero
  local msg=$1
  shift
  if "$@"; then fleet__fail "$msg: command succeeded: $*"; fi
}

# Runs CMD every 0.2 s until it succeeds, for at most SECONDS; only the stderr of the last
# failed attempt is shown.
fleet_retry() { # SECONDS CMD...
  local deadline=$((SECONDS + $1)) out err
  shift
  exec {out}>&1
  until err=$("$@" 2>&1 >&"$out"); do
    if ((SECONDS >= deadline)); then
      printf '%s\n' "$err" >&2
      exec {out}>&-
      return 1
    fi
    sleep 0.2
  done
  exec {out}>&-
}

# --- base rootfs --------------------------------------------------------------------------

fleet__build_base() { # DIR: debootstraps into DIR.tmp, then renames it to DIR
  local tmp=$1.tmp mirror
  fleet__umount_under "$tmp/" # an interrupted debootstrap can leave /proc and /sys mounted
  rm -rf --one-file-system "$tmp"
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fleet_log "base: debootstrap bookworm ($FLEET_PACKAGES) from $mirror"
  debootstrap --variant=minbase --include="$FLEET_PACKAGES" bookworm "$tmp" "$mirror" >"$1.log" 2>&1 ||
    { tail -n 20 "$1.log" >&2; fleet__fail "debootstrap failed, log: $1.log"; return 1; }
  # an empty machine-id per clone (fleet_create writes a fresh one), networkd, persistent journal
  : >"$tmp/etc/machine-id" && rm -f "$tmp/var/lib/dbus/machine-id" "$tmp/etc/hostname" &&
    mkdir -p "$tmp/var/log/journal" &&
    systemctl --root="$tmp" enable systemd-networkd >>"$1.log" 2>&1 &&
    mv -T "$tmp" "$1"
}

# Packages and extra recipe step of a base variant ("" is the plain base).
fleet__variant() { # VARIANT: sets _pkgs and _extra (a function name or "")
  case $1 in
  '') _pkgs=$FLEET_PACKAGES _extra= ;;
  # cloud-init needs python3-cffi-backend named explicitly (a virtual dependency otherwise)
  cloud-init) _pkgs=$FLEET_PACKAGES,python3,python3-cffi-backend,cloud-init _extra=fleet__extra_cloud_init ;;
  *) fleet__fail "fleet_base: unknown variant '$1' (known: cloud-init)" ;;
  esac
}

fleet__extra_cloud_init() { # ROOTFS
  # the network cloud-init writes for host0 from a NoCloud network-config: without these two
  # settings systemd-networkd-wait-online stalls on IPv6 (as for fleet_create's own file)
  mkdir -p "$1/etc/systemd/network/10-cloud-init-host0.network.d" &&
    printf '[Network]\nIPv6AcceptRA=no\nLinkLocalAddressing=no\n' \
      >"$1/etc/systemd/network/10-cloud-init-host0.network.d/50-fleet.conf"
}

# Ensures the cached base rootfs of VARIANT (default $FLEET_VARIANT, else the plain base),
# keyed on its package list and recipe, and exports FLEET_BASE.
fleet_base() { # [VARIANT]
  local variant=${1-${FLEET_VARIANT:-}} key old prefix=base- _pkgs _extra
  fleet__variant "$variant" || return 1
  if [[ -z $variant ]]; then
    key=$(printf '%s\n' "$FLEET_PACKAGES" "$(declare -f fleet__build_base)" | sha256sum)
  else
    prefix=base-$variant-
    key=$(printf '%s\n' "$_pkgs" "$(declare -f fleet__build_base "$_extra")" | sha256sum)
  fi
  export FLEET_BASE=$FLEET_CACHE/$prefix${key:0:12}
  if [[ -d $FLEET_BASE ]]; then
    fleet_log "base: cached $FLEET_BASE"
    return 0
  fi
  command -v debootstrap >/dev/null || fleet__fail "debootstrap missing: run scripts/install-deps.sh" || return 1
  mkdir -p "$FLEET_CACHE" || return 1
  (
    flock 9 || exit 1
    [[ -d $FLEET_BASE ]] && exit 0
    if [[ -z $_extra ]]; then
      fleet__build_base "$FLEET_BASE" || exit 1
    else # the plain recipe into a staging name, the variant's step, then the final rename
      rm -rf --one-file-system "$FLEET_BASE.stage"
      FLEET_PACKAGES=$_pkgs fleet__build_base "$FLEET_BASE.stage" || exit 1
      mv -f "$FLEET_BASE.stage.log" "$FLEET_BASE.log"
      "$_extra" "$FLEET_BASE.stage" && mv -T "$FLEET_BASE.stage" "$FLEET_BASE" || exit 1
    fi
    # older recipes of the same variant (base-<key>, base-<variant>-<key>, with leftovers
    # such as .tmp), unless an overlay still uses them
    for old in "$FLEET_CACHE/$prefix"*; do
      [[ ${old#"$FLEET_CACHE/$prefix"} =~ ^[0-9a-f]{12} ]] || continue
      [[ $old == "$FLEET_BASE"* || ! -d $old ]] && continue
      grep -q "lowerdir=${old}[,:]" /proc/mounts || rm -rf --one-file-system "$old" "$old.log"
    done
  ) 9>"$FLEET_CACHE/${prefix%-}.lock" || return 1
  fleet_log "base: built $FLEET_BASE ($(du -sh "$FLEET_BASE" | cut -f1))"
}

# --- processes --------------------------------------------------------------------------

fleet__alive() { # PID: running (not a zombie)
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) && [[ ${stat##*) } != Z* ]]
}

fleet__pgrep() { # GLOB: pids whose space-joined argv matches GLOB
  local f pid args
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    mapfile -d '' args 2>/dev/null <"$f" || continue
    # shellcheck disable=SC2053 # GLOB is a pattern
    [[ $pid != "$BASHPID" && "${args[*]}" == $1 ]] && echo "$pid"
  done
  return 0
}

fleet__wait_gone() { # SECONDS PID...
  local deadline=$((SECONDS + $1)) pid
  shift
  for pid; do
    while fleet__alive "$pid"; do
      ((SECONDS < deadline)) || return 1
      sleep 0.1
    done
  done
}

fleet__children() { # PID
  cat "/proc/$1"/task/*/children 2>/dev/null
}

# --- network index, run dir, teardown ----------------------------------------------------

fleet__name() { # M: nspawn machine name; the host veth vb-<name> must fit in 15 characters
  local name=ea${FLEET_NET:?fleet_init first}-$1
  [[ $1 =~ ^[a-z][a-z0-9]*$ && ${#name} -le 12 ]] ||
    fleet__fail "bad machine name '$1' (lower-case alphanumeric, at most $((12 - ${#name} + ${#1})) characters)" || return 1
  echo "$name"
}

fleet__cgroups() { # NAME: the machine's cgroup directories
  local root
  for root in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
    [[ -d $root ]] && echo "$root/fleet/$1"
  done
}

fleet__rm_cgroups() { # NAME
  local cg
  for cg in $(fleet__cgroups "$1"); do
    [[ -d $cg ]] && { find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null ||
      fleet_log "warning: cannot remove cgroup $cg"; }
  done
  return 0
}

fleet__umount_under() { # PREFIX: unmounts every mount point starting with PREFIX, deepest first
  local mnt
  awk -v p="$1" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
    umount "$mnt" 2>/dev/null || { sleep 0.5 && umount "$mnt" 2>/dev/null; } || umount -l "$mnt" ||
      fleet_log "warning: cannot unmount $mnt"
  done
}

# Removes what an earlier (crashed) run of NET_INDEX left: machines, mounts, cgroups, servers, bridge.
fleet__reclaim() { # NET_INDEX
  local i=$1 pids pid cg
  # shellcheck disable=SC2046,SC2086 # pid lists
  {
    kill -9 $(fleet__pgrep "bash -c *fleet__supervise* fleet-ea$i-*") # first, so nothing reboots
    pids=$(fleet__pgrep "*systemd-nspawn * -M ea$i-* *")
    if [[ -n $pids ]]; then
      fleet_log "init: stopping $(wc -w <<<"$pids") stale machine(s) of index $i" 2>&3
      for pid in $pids; do kill -9 $(fleet__children "$pid"); done
      fleet__wait_gone 10 $pids || kill -9 $pids
      fleet__wait_gone 5 $pids || fleet__fail "stale nspawn processes $pids do not exit" || return 1
    fi
    kill $(fleet__pgrep "*http.server*--bind 10.213.$i.1 *")
    ip link del "br-ea$i"
  } 3>&2 2>/dev/null || true
  fleet__umount_under "/var/tmp/etcdadm-fleet.$i."
  for cg in /sys/fs/cgroup/*/fleet/"ea$i"-*; do
    [[ -d $cg ]] && fleet__rm_cgroups "${cg##*/}"
  done
  rm -rf --one-file-system /var/tmp/etcdadm-fleet."$i".*
  return 0
}

# Sets up FLEET_RUN and the bridge br-ea<NET_INDEX> (10.213.<i>.1/24); teardown runs at EXIT.
fleet_init() { # NET_INDEX
  local i=$1 c
  [[ $i =~ ^[0-9]+$ ]] && ((i <= 255)) || fleet__fail "fleet_init: NET_INDEX must be 0-255, got '$i'" || return 1
  ((EUID == 0)) || fleet__fail "fleet_init: must run as root" || return 1
  for c in systemd-nspawn nsenter ip bridge python3 systemd-id128 journalctl flock; do
    command -v "$c" >/dev/null || fleet__fail "$c missing: run scripts/install-deps.sh" || return 1
  done
  [[ -z $FLEET_RUN ]] || fleet__fail "fleet_init: already initialised ($FLEET_RUN)" || return 1
  FLEET_NET=$i
  FLEET_BR=br-ea$i
  fleet__reclaim "$i" || return 1
  FLEET_RUN=$(mktemp -d "/var/tmp/etcdadm-fleet.$i.XXXXXX") || return 1
  trap fleet_teardown EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  ip link add "$FLEET_BR" type bridge && ip addr add "10.213.$i.1/24" dev "$FLEET_BR" &&
    ip link set "$FLEET_BR" up || fleet__fail "cannot create bridge $FLEET_BR" || return 1
  fleet_log "init: bridge $FLEET_BR 10.213.$i.1/24, run dir $FLEET_RUN"
}

# Stops every machine and server of this run, unmounts, removes cgroups and the bridge.
# Idempotent. Keeps $FLEET_RUN (console logs, overlay upper dirs) when the run failed.
fleet_teardown() {
  local rc=$? - d name pid pids=() leader
  set +e
  [[ -n $FLEET_RUN && -d $FLEET_RUN ]] || return 0
  for d in "$FLEET_RUN"/*/; do
    touch "$d/stop" 2>/dev/null
    [[ -s $d/nspawn.pid && ! -e $d/exit ]] || continue
    pid=$(<"$d/nspawn.pid")
    # crash the machine; one that has no PID 1 yet gets nspawn's own shutdown
    if leader=$(fleet__leader "$(basename "$d")"); then kill -9 "$leader"; else kill "$pid"; fi
    pids+=("$pid")
  done
  if ((${#pids[@]})) && ! fleet__wait_gone 30 "${pids[@]}"; then
    fleet_log "warning: nspawn still running after 30 s, killing it"
    kill -9 "${pids[@]}"
    fleet__wait_gone 5 "${pids[@]}"
  fi
  fleet__umount_under "$FLEET_RUN/"
  for d in "$FLEET_RUN"/*/; do
    [[ -d $d ]] || continue
    name=$(fleet__name "$(basename "$d")") && fleet__rm_cgroups "$name"
  done
  fleet__leak_verdict
  if [[ -s $FLEET_RUN/servers ]]; then
    mapfile -t pids <"$FLEET_RUN/servers"
    kill "${pids[@]}" 2>/dev/null
    fleet__wait_gone 5 "${pids[@]}"
  fi
  ip link del "$FLEET_BR" 2>/dev/null
  if ((rc == 0)); then
    rm -rf --one-file-system "$FLEET_RUN"
    fleet_log "teardown: done"
  else
    fleet_log "teardown: done; kept $FLEET_RUN (console.log, upper/ per machine)"
  fi
  FLEET_RUN=
  trap - EXIT INT TERM
  return 0
}

# --- secrets ------------------------------------------------------------------------------
# No run may print a secret: teardown searches every machine's journal and console for a PEM
# private-key header, for the body of every private key found under the machines' /etc and
# for each value given to fleet_secret (an AWS secret key, an IMDS token). The values are
# collected in FLEET_SECRETS (run.sh shares one file across scenarios and also searches the
# scenarios' own output with it).

fleet_secret() { # VALUE...: a value no journal, console or output may contain
  printf '%s\n' "$@" >>"${FLEET_SECRETS:-$FLEET_RUN/secrets}"
}

fleet__key_bodies() { # DIR...: the first base64 line of each PEM private key under DIR
  local f
  { grep -rlIs -e '-----BEGIN [A-Z ]*PRIVATE KEY-----' "$@" || :; } | while read -r f; do
    sed -n '/-----BEGIN [A-Z ]*PRIVATE KEY-----/{n;p;}' "$f"
  done | awk 'length($0) >= 40' | sort -u
}

fleet_leaks() { # FILE...: prints each line of FILEs holding a private key or a secret
  local secrets=${FLEET_SECRETS:-$FLEET_RUN/secrets}
  grep -Hn -e '-----BEGIN [A-Z ]*PRIVATE KEY-----' "$@" 2>/dev/null || :
  if [[ -s $secrets ]]; then grep -HnF -f <(grep -v '^$' "$secrets") "$@" 2>/dev/null || :; fi
}

# Records one check per scenario (when FLEET_RESULTS is set): no secret in the machines'
# journals and consoles. Runs in teardown, after the machines stopped.
fleet__leak_verdict() {
  local d text=$FLEET_RUN/leak-scan.txt leaks
  [[ -n ${FLEET_RESULTS:-} ]] || return 0
  : >"$text"
  for d in "$FLEET_RUN"/*/; do
    [[ -d $d/upper ]] || continue
    fleet__key_bodies "$d/upper/etc" >>"${FLEET_SECRETS:-$FLEET_RUN/secrets}"
    { journalctl -D "$d/upper/var/log/journal" --no-pager -o cat 2>/dev/null || :
      cat "$d/console.log" 2>/dev/null || :; } | sed "s|^|$(basename "$d"): |" >>"$text"
  done
  leaks=$(fleet_leaks "$text" | head -5)
  if [[ -z $leaks ]]; then
    echo "pass ${SCENARIO:-fleet}: no private key, AWS secret or IMDS token in any machine's journal or console" >>"$FLEET_RESULTS"
  else
    echo "fail ${SCENARIO:-fleet}: no private key, AWS secret or IMDS token in any machine's journal or console" >>"$FLEET_RESULTS"
    fleet_log "FAILED: secrets in journals or consoles:"$'\n'"$leaks"
  fi
}

fleet_ip() { # N
  echo "10.213.${FLEET_NET:?fleet_init first}.$((10 + $1))"
}

fleet_root() { # M
  echo "$FLEET_RUN/$1/root"
}

# --- machines ----------------------------------------------------------------------------

# Creates machine M with address fleet_ip N: an overlay on the base, hostname, fresh machine-id.
fleet_create() { # M N
  local m=$1 n=$2 d=$FLEET_RUN/$1
  fleet__name "$m" >/dev/null || return 1
  [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 240)) || fleet__fail "fleet_create: N must be 1-240, got '$n'" || return 1
  [[ -d ${FLEET_BASE:-} ]] || fleet__fail "fleet_create: run fleet_base first" || return 1
  [[ ! -e $d ]] || fleet__fail "fleet_create: $m exists" || return 1
  if mkdir -p "$d/upper" "$d/work" "$d/root" &&
    mount -t overlay overlay -o "lowerdir=$FLEET_BASE,upperdir=$d/upper,workdir=$d/work" "$d/root" &&
    echo "$m" >"$d/root/etc/hostname" &&
    systemd-id128 new >"$d/root/etc/machine-id" &&
    mkdir -p "$d/root/etc/systemd/network" &&
    printf '[Match]\nName=host0\n\n[Network]\nAddress=%s/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' \
      "$(fleet_ip "$n")" >"$d/root/etc/systemd/network/10-host0.network"; then
    return 0
  fi
  fleet__fail "fleet_create: cannot create $m"
}

# Runs detached (own session): boots the machine, boots it again when it asks to reboot
# (nspawn exit 133), then records nspawn's exit code in DIR/exit.
fleet__supervise() { # DIR NAME HOSTNAME BRIDGE CGROUP...
  local d=$1 name=$2 host=$3 br=$4 rc
  shift 4
  while :; do
    (
      for cg; do echo "$BASHPID" >"$cg/cgroup.procs" || exit 1; done
      exec systemd-nspawn -D "$d/root" -M "$name" --hostname="$host" --boot --register=no \
        --keep-unit --network-bridge="$br" --console=read-only
    ) &
    echo $! >"$d/nspawn.pid"
    wait $!
    rc=$?
    [[ $rc == 133 && ! -e $d/stop ]] || break
    echo "fleet: $host reboots" >&2
  done
  echo "$rc" >"$d/exit"
}

fleet__leader() { # M: prints the PID 1 of running machine M
  local d=$FLEET_RUN/$1 kids
  [[ -s $d/nspawn.pid && ! -e $d/exit ]] || return 1
  kids=$(fleet__children "$(<"$d/nspawn.pid")") || return 1
  [[ -n $kids ]] && echo "${kids%% *}"
}

fleet_running() { # M: true while M's container runs
  fleet__leader "$1" >/dev/null
}

fleet__in() { # M CMD...: run CMD in M with a clean environment, quietly fail when M is down
  local leader
  leader=$(fleet__leader "$1") || return 1
  shift
  nsenter -t "$leader" -a env -i PATH="$FLEET_PATH" HOME=/root "$@"
}

fleet_exec() { # M CMD...
  fleet_running "$1" || fleet__fail "fleet_exec: $1 is not running" || return 1
  fleet__in "$@"
}

fleet__console_tail() { # M
  tail -n 25 "$FLEET_RUN/$1/console.log" 2>/dev/null | sed "s/^/  $1| /" >&2
}

fleet_wait() { # M [SECONDS]: waits until multi-user.target is active in M (default 60 s)
  local deadline=$((SECONDS + ${2:-60}))
  until fleet__in "$1" systemctl -q is-active multi-user.target 2>/dev/null; do
    if [[ -e $FLEET_RUN/$1/exit ]] || ((SECONDS >= deadline)); then
      fleet__console_tail "$1"
      fleet__fail "$1 did not reach multi-user.target (console: $FLEET_RUN/$1/console.log)"
      return 1
    fi
    sleep 0.1
  done
}

# Boots the given machines in parallel and waits until each has reached multi-user.target.
fleet_start() { # M...
  local m d name cgs
  for m; do
    d=$FLEET_RUN/$m
    name=$(fleet__name "$m") || return 1
    [[ -d $d/root ]] || fleet__fail "fleet_start: $m not created" || return 1
    ! fleet_running "$m" || fleet__fail "fleet_start: $m already running" || return 1
    rm -f "$d/exit" "$d/stop" "$d/nspawn.pid"
    mapfile -t cgs < <(fleet__cgroups "$name")
    mkdir -p "${cgs[@]}" || return 1
    # shellcheck disable=SC2016 # expanded by the child shell
    (setsid bash -c "$(declare -f fleet__supervise); fleet__supervise \"\$@\"" "fleet-$name" \
      "$d" "$name" "$m" "$FLEET_BR" "${cgs[@]}" </dev/null >>"$d/console.log" 2>&1 &)
  done
  for m; do fleet_wait "$m" || return 1; done
  fleet_log "start: $* up"
}

fleet_boot() { # M N
  fleet_create "$1" "$2" && fleet_start "$1"
}

fleet__wait_exit() { # M SECONDS
  local deadline=$((SECONDS + $2))
  until [[ -e $FLEET_RUN/$1/exit ]]; do
    ((SECONDS < deadline)) || fleet__fail "$1 did not stop within $2 s" || return 1
    sleep 0.1
  done
}

fleet_kill() { # M: hard crash (SIGKILL to the container's PID 1)
  local leader
  leader=$(fleet__leader "$1") || fleet__fail "fleet_kill: $1 is not running" || return 1
  kill -9 "$leader" && fleet__wait_exit "$1" 30 &&
    fleet_log "kill: $1 crashed (nspawn exit $(<"$FLEET_RUN/$1/exit"))"
}

fleet_poweroff() { # M: clean shutdown
  fleet_exec "$1" systemctl poweroff && fleet__wait_exit "$1" 60 &&
    fleet_log "poweroff: $1 down (nspawn exit $(<"$FLEET_RUN/$1/exit"))"
}

fleet_reboot() { # M: clean reboot, waits until it is up again
  local old deadline=$((SECONDS + 60))
  fleet_running "$1" || fleet__fail "fleet_reboot: $1 is not running" || return 1
  old=$(<"$FLEET_RUN/$1/nspawn.pid")
  fleet_exec "$1" systemctl reboot || return 1
  while [[ $(<"$FLEET_RUN/$1/nspawn.pid") == "$old" ]]; do
    [[ ! -e $FLEET_RUN/$1/exit ]] || fleet__fail "$1 stopped instead of rebooting" || return 1
    ((SECONDS < deadline)) || fleet__fail "$1 did not reboot" || return 1
    sleep 0.1
  done
  fleet_wait "$1" && fleet_log "reboot: $1 up again"
}

fleet_partition() { # M: silently cut M off the bridge (both directions)
  bridge link set dev "vb-$(fleet__name "$1")" state 0
}

fleet_heal() { # M
  bridge link set dev "vb-$(fleet__name "$1")" state 3
}

fleet_journal() { # M [journalctl args...]: M's persistent journal, read on the host
  journalctl -D "$(fleet_root "$1")/var/log/journal" --no-pager "${@:2}"
}

# --- HTTP ---------------------------------------------------------------------------------

# Serves DIR on 10.213.<i>.1:PORT until teardown.
fleet_serve() { # DIR PORT
  local ip=10.213.$FLEET_NET.1 deadline=$((SECONDS + 10))
  python3 -m http.server --bind "$ip" --directory "$1" "$2" </dev/null >>"$FLEET_RUN/http-$2.log" 2>&1 &
  echo $! >>"$FLEET_RUN/servers"
  until (: <>"/dev/tcp/$ip/$2") 2>/dev/null; do
    ((SECONDS < deadline)) || fleet__fail "fleet_serve: nothing answers on $ip:$2" || return 1
    sleep 0.1
  done
  fleet_log "serve: $1 at http://$ip:$2/"
}

# GET http://HOST[:PORT]/PATH from inside M with bash's /dev/tcp (minbase has no curl);
# the body goes to stdout; fails on a status other than 200 or after ${FLEET_HTTP_TIMEOUT:-10} s.
fleet_http() { # M URL
  # shellcheck disable=SC2016 # expanded by bash inside the machine
  fleet_exec "$1" timeout "${FLEET_HTTP_TIMEOUT:-10}" bash -c '
    u=${1#http://} hp=${u%%/*} port=80
    path=${u#"$hp"} host=${hp%:*}
    [[ $hp == *:* ]] && port=${hp##*:}
    exec 3<>"/dev/tcp/$host/$port" || exit 1
    printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "${path:-/}" "$hp" >&3
    IFS= read -r status <&3
    [[ $status == "HTTP/1."?" 200 "* ]] || { echo "GET $1: ${status%$'\''\r'\''}" >&2; exit 1; }
    while IFS= read -r line <&3 && [[ $line != $'\''\r'\'' ]]; do :; done
    cat <&3' fleet_http "$2"
}
