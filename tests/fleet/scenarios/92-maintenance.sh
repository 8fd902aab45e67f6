# shellcheck shell=bash
# Maintenance of a formed cluster (issue 14), on three members with a 64 MiB space quota:
# - the quota and compaction settings reach etcd (its own metrics say so);
# - a writer fills the quota until etcd refuses writes with NOSPACE; the installed
#   etcdadm-defrag.service, started by hand, recovers: alarm gone (etcdctl alarm list), writes
#   accepted again, every key written before the alarm readable through another member;
# - `etcdadm defrag` while a writer writes every 0.2 s: no write fails, the leader's etcd logs
#   its defragmentation after every follower's finished, every member's DB shrinks;
# - the defrag services of two members started at the same instant defragment one after the
#   other (etcd's own log lines do not interleave), and with a third member stopped neither
#   defragments;
# - the services write the textfile metrics (promtool parses them): what the recovery
#   reclaimed, the DB below its quota; a failed run keeps the last success.

MIB=$((1024 * 1024))

scenario() {
  fleet_setup || return 1
  machines m1 1 m2 2 m3 3 || return 1
  local m ep
  ep="https://$(fleet_ip 1):2379"
  for m in m1 m2 m3; do
    write_config "$m" "release-url: $MIRROR_URL
version: $ETCD_VERSION
quota-backend-bytes: $((64 * MIB))
auto-compaction-retention: '0'
defrag-min-free-bytes: 0
defrag-min-free-percent: 0
timeout-seconds: 120" || return 1
  done
  check "init m1" ea_out out m1 init
  copy_ca m1 m2 && copy_ca m1 m3 || return 1
  check "m2 joins" ea_out out m2 join "$ep"
  check "m3 joins" ea_out out m3 join "$ep"
  # the metrics directory node_exporter's package would create: the services' sandbox writes it
  for m in m1 m2 m3; do fleet_exec "$m" mkdir -p -m 0755 "$TEXTFILE_DIR" || return 1; done
  check "etcd reports the 64 MiB quota it was given (etcd_server_quota_backend_bytes)" quota_is m1 $((64 * MIB))
  check "the defragmentation timer is installed and enabled on every member" \
    fleet_exec m3 systemctl -q is-enabled etcdadm-defrag.timer
  local k
  for k in 1 2 3 4 5; do ectl m1 put "/keep/$k" "value-$k" >/dev/null || return 1; done

  check "a writer fills the quota until etcd refuses writes with NOSPACE" fill_until_nospace m1
  check "etcdctl alarm list shows NOSPACE" nospace_raised m2
  check "etcdadm-defrag.service started by hand on m2 completes" fleet_exec m2 systemctl start etcdadm-defrag.service
  check "m2's defrag metrics: success, 3 members defragmented, bytes reclaimed, DB below its 64 MiB quota" \
    defrag_metrics m2 $((64 * MIB))
  check "etcdctl alarm list shows no alarm after the recovery" no_alarm m3
  check "writes are accepted again" ectl m3 put /after-recovery yes
  check "every key written before the alarm reads back through m3" keys_intact m3
  check "every member's database is below the quota again" all_db_below m1 $((64 * MIB))

  make_free_space m1 || return 1
  local leader before
  leader=$(leader_name m1) && before=$(db_sizes m1) || return 1
  fleet_log "leader before defrag: $leader; DB sizes: $before"
  writes_during m3 /maint/probe &
  local writer=$!
  check "the writer through m3 has written before the defragmentation" writes_seen 3
  check "etcdadm defrag on m1 defragments all three members" ea_out out m1 defrag
  local seen
  seen=$(write_count ok)
  check "the writer kept writing after the defragmentation" writes_seen $((seen + 3))
  kill "$writer" 2>/dev/null
  wait "$writer" 2>/dev/null
  check "every write through m3 during the defragmentation succeeded, but one started within the leader's ~0.1 s hand-over (etcd's log)" \
    no_write_failures_but_in_transfer "$leader"
  check "the leader ($leader) was defragmented after every follower finished (etcd's logs)" \
    leader_last "$leader"
  check "every member's DB is smaller than before" all_shrunk m1 "$before"

  make_free_space m1 || return 1
  local mark
  mark=$(date +%s.%N)
  fleet_exec m1 systemctl start --no-block etcdadm-defrag.service &&
    fleet_exec m2 systemctl start --no-block etcdadm-defrag.service || return 1
  check "both defrag services finish" fleet_retry 120 services_done m1 m2
  check "the two members' defragmentations did not overlap (etcd's logs)" not_overlapping m1 m2 "$mark"
  local success
  success=$(metric_value m1 etcdadm-defrag.prom etcdadm_defrag_last_success_timestamp_seconds)

  fleet_exec m3 systemctl stop etcd || return 1
  mark=$(date +%s.%N)
  check "with m3 stopped, m1's defrag service fails" defrag_service_fails m1
  check "with m3 stopped, m1's etcd did not defragment" no_defrag_since m1 "$mark"
  check "m1's defrag metrics say the run failed and keep the last success" defrag_failed_metrics m1 "$success"
  fleet_exec m3 systemctl start etcd || return 1
}

defrag_metrics() { # M QUOTA
  local size
  textfile_ok "$1" etcdadm-defrag.prom && textfile_ok "$1" etcdadm-db.prom &&
    assert_eq 1 "$(metric_value "$1" etcdadm-defrag.prom etcdadm_defrag_last_run_success)" "last run success" &&
    assert_eq 3 "$(metric_value "$1" etcdadm-defrag.prom etcdadm_defrag_last_defragmented_members)" "members defragmented" &&
    (($(metric_value "$1" etcdadm-defrag.prom etcdadm_defrag_last_reclaimed_bytes) > 0)) &&
    assert_eq "$2" "$(metric_value "$1" etcdadm-db.prom etcdadm_db_quota_bytes)" "quota" || return 1
  size=$(metric_value "$1" etcdadm-db.prom etcdadm_db_size_bytes)
  ((size > 0 && size < $2)) || fleet__fail "etcdadm_db_size_bytes $size, quota $2"
}

defrag_failed_metrics() { # M LAST_SUCCESS
  [[ -n $2 ]] || fleet__fail "no last success recorded before the failed run" || return 1
  textfile_ok "$1" etcdadm-defrag.prom &&
    assert_eq 0 "$(metric_value "$1" etcdadm-defrag.prom etcdadm_defrag_last_run_success)" "last run success" &&
    assert_eq "$2" "$(metric_value "$1" etcdadm-defrag.prom etcdadm_defrag_last_success_timestamp_seconds)" "last success timestamp"
}

quota_is() { # M BYTES
  local v
  v=$(fleet_http "$1" "http://127.0.0.1:2381/metrics" | awk '/^etcd_server_quota_backend_bytes /{print $2}')
  assert_eq "$2" "$(printf '%.0f' "$v")" "etcd_server_quota_backend_bytes on $1"
}

# Puts ~1 MB values under five keys (history keeps every version) until a put is refused.
fill_until_nospace() { # M
  fleet_exec "$1" sh -c '
    head -c 700000 /dev/urandom | base64 -w0 >/tmp/big
    i=0
    while [ $i -lt 400 ]; do
      if ! out=$(/opt/bin/etcdctl.sh put /fill/$((i % 5)) </tmp/big 2>&1); then
        echo "put $i refused: $out"
        case $out in *"database space exceeded"*) exit 0 ;; esac
        exit 1
      fi
      i=$((i + 1))
    done
    echo "400 puts accepted"; exit 1'
}

nospace_raised() { # M
  assert_contains "$(ectl "$1" alarm list)" "alarm:NOSPACE" "etcdctl alarm list"
}

no_alarm() { # M
  assert_eq "" "$(ectl "$1" alarm list)" "etcdctl alarm list"
}

keys_intact() { # M
  local k
  for k in 1 2 3 4 5; do
    assert_eq "value-$k" "$(ectl "$1" get "/keep/$k" --print-value-only)" "/keep/$k" || return 1
  done
}

# "endpoint dbSize" per member, one per line, sorted by endpoint.
db_sizes() { # M
  ectl "$1" endpoint status --cluster -w json |
    python3 -c 'import json,sys; [print(s["Endpoint"], s["Status"]["dbSize"]) for s in sorted(json.load(sys.stdin), key=lambda s: s["Endpoint"])]'
}

all_db_below() { # M BYTES
  local ep size ok=0
  while read -r ep size; do
    ((size < $2)) || { echo "$ep: dbSize $size is not below $2" >&2; ok=1; }
  done < <(db_sizes "$1")
  return "$ok"
}

all_shrunk() { # M BEFORE
  local ep size old ok=0 n=0
  while read -r ep size; do
    old=$(awk -v e="$ep" '$1 == e {print $2}' <<<"$2")
    n=$((n + 1))
    ((size < old)) || { echo "$ep: dbSize $size, before $old" >&2; ok=1; }
  done < <(db_sizes "$1")
  ((n == 3)) || { echo "$n members answered" >&2; return 1; }
  return "$ok"
}

# Writes and deletes ~10 MB, then compacts physically: space the next defragmentation frees.
make_free_space() { # M
  fleet_exec "$1" sh -c '
    head -c 700000 /dev/urandom | base64 -w0 >/tmp/big
    for i in 1 2 3 4 5 6 7 8 9 10; do /opt/bin/etcdctl.sh put /junk/$i </tmp/big >/dev/null || exit 1; done
    /opt/bin/etcdctl.sh del --prefix /junk/ >/dev/null || exit 1
    rev=$(/opt/bin/etcdctl.sh endpoint status -w json | sed -E "s/.*\"revision\":([0-9]+).*/\1/")
    /opt/bin/etcdctl.sh compact "$rev" --physical >/dev/null'
}

# etcd drops a proposal that a follower forwards to a leader while it transfers leadership
# (raft's stepLeader), and the follower's request then times out (etcdctl: after 5 s). So a
# write through a follower that starts inside the hand-over may fail; any other failed
# write, or more than one, fails the check. The window is etcd's own, from the old leader's
# log (its last "leadership transfer starting" .. "finished"), widened by 0.05 s each side.
no_write_failures_but_in_transfer() { # OLD_LEADER
  local ok failed window
  ok=$(write_count ok)
  fleet_log "writes: $ok succeeded, $(write_count fail) failed"
  ((ok > 0)) || fleet__fail "no write succeeded: the writer did not run" || return 1
  failed=$(grep '^fail' "$FLEET_RUN/writes")
  [[ -z $failed ]] && return 0
  local journal
  journal=$(fleet_journal "$1" -u etcd -o short-unix) || return 1
  window="$(grep -F '"msg":"leadership transfer starting"' <<<"$journal" | tail -1 | awk '{print $1}') $(grep -F '"msg":"leadership transfer finished"' <<<"$journal" | tail -1 | awk '{print $1}')"
  python3 -c 'import sys
stamps = [float(x) for x in sys.argv[1].split()]
fails = [l for l in sys.argv[2].splitlines() if l.startswith("fail")]
if len(stamps) != 2:
    sys.exit("the old leader logged no leadership transfer: %s" % stamps)
start, end = stamps[0] - 0.05, stamps[1] + 0.05
outside = [l for l in fails if not start <= float(l.split()[3].rstrip(":")) <= end]
print("transfer window %.3f-%.3f; failed writes started in it: %d of %d"
      % (stamps[0], stamps[1], len(fails) - len(outside), len(fails)), file=sys.stderr)
sys.exit(1 if outside or len(fails) > 1 else 0)' "$window" "$failed" ||
    { echo "failed writes: $failed" >&2; return 1; }
}

# Unix times of etcd's own "defragmenting" / "finished defragmenting directory" lines on M.
defrag_times() { # M starting|finished [SINCE]
  local pattern='"msg":"defragmenting"'
  [[ $2 == finished ]] && pattern='"msg":"finished defragmenting directory"'
  fleet_journal "$1" -u etcd -o short-unix ${3:+--since "@${3%.*}"} | grep -F "$pattern" | awk '{print $1}'
}

leader_last() { # LEADER
  local leader_start f latest=0 m
  leader_start=$(defrag_times "$1" starting | tail -1)
  [[ -n $leader_start ]] || { echo "$1's etcd logged no defragmentation" >&2; return 1; }
  for m in m1 m2 m3; do
    [[ $m == "$1" ]] && continue
    f=$(defrag_times "$m" finished | tail -1)
    [[ -n $f ]] || { echo "$m's etcd logged no finished defragmentation" >&2; return 1; }
    latest=$(python3 -c "print(max($latest, $f))")
  done
  python3 -c "import sys; sys.exit(0 if $leader_start > $latest else 1)" ||
    { echo "leader started at $leader_start, a follower finished at $latest" >&2; return 1; }
}

services_done() { # M...
  local m state result
  for m in "$@"; do
    state=$(fleet_exec "$m" systemctl show -p ActiveState --value etcdadm-defrag.service)
    result=$(fleet_exec "$m" systemctl show -p Result --value etcdadm-defrag.service)
    if [[ $state != inactive || $result != success ]]; then
      # shown when the wait ends: what the service did
      echo "$m: etcdadm-defrag.service $state, result $result; its journal:" >&2
      fleet_journal "$m" -u etcdadm-defrag.service -o cat | tail -n 30 >&2
      return 1
    fi
  done
}

not_overlapping() { # M1 M2 SINCE
  local s1 f1 s2 f2
  s1=$(defrag_times "$1" starting "$3" | tail -1) && f1=$(defrag_times "$1" finished "$3" | tail -1) &&
    s2=$(defrag_times "$2" starting "$3" | tail -1) && f2=$(defrag_times "$2" finished "$3" | tail -1) || return 1
  [[ -n $s1 && -n $f1 && -n $s2 && -n $f2 ]] || { echo "missing defrag log lines: $1 $s1-$f1, $2 $s2-$f2" >&2; return 1; }
  fleet_log "defragmentation intervals: $1 $s1-$f1, $2 $s2-$f2"
  python3 -c "import sys; sys.exit(0 if $f1 <= $s2 or $f2 <= $s1 else 1)" ||
    { echo "intervals overlap: $1 $s1-$f1, $2 $s2-$f2" >&2; return 1; }
}

defrag_service_fails() { # M
  if fleet_exec "$1" systemctl start etcdadm-defrag.service; then
    echo "the defrag service succeeded with a member stopped" >&2
    return 1
  fi
  assert_contains "$(fleet_journal "$1" -u etcdadm-defrag.service -o cat | tail -5)" "is not healthy" "defrag service journal"
}

no_defrag_since() { # M SINCE
  assert_eq "" "$(defrag_times "$1" starting "$2")" "etcd defragmentation lines on $1 since the stop"
}
