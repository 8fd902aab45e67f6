# shellcheck shell=bash
# Defragmentation: write availability while a 3-member cluster (made once with etcdadm init
# and join, defaults) defragments. Per trial, every member's database is first brought to the
# same state: BENCH_DEFRAG_LIVE_MB values of ~0.93 MB stay for the whole run (written once;
# a defragmentation copies them, so they set its length), BENCH_DEFRAG_FREE_MB more are
# written and deleted, and the history is compacted physically (the free pages the
# defragmentation gives back). Then writers in m1 put new keys, each put a fresh etcdctl with
# --command-timeout=2s, recording each write's start, end and result:
#   all        the client of the figures: every put is given all three client endpoints
#              (the first in turn), like a real client; a pause of 0.03 s between puts;
#   p1 p2 p3   one writer pinned to each member (only its endpoint), 0.15 s between puts:
#              their merged stream is what a client that always finds an answering member
#              would see; each alone, what a client of that one member sees.
# 3 s after the writers start, in turn:
#   etcdadm    `etcdadm defrag --force` on m1 (one member at a time, followers first, the
#              leader last after handing leadership over; --force skips the free-space rule);
#   naive      `etcdctl defrag --cluster` through m1's wrapper: etcdctl loops over the member
#              list in its order, one member after the other, default 5 s command timeout;
#   parallel   all members at once: three `etcdctl defrag` started together, one per endpoint.
# The writers stop 3 s after the command returns. Figures per trial: the longest gap between
# two consecutive successful write completions, the longest single write, stalls (gaps of
# 0.5 s or more), failed writes; the command's wall time and exit status; DB sizes
# before/after; each member's own defragmentation time from etcd's journal ("defragmenting" ..
# "finished defragmenting directory"). BENCH_TRIALS (default 5) trials per variant,
# interleaved. A trial whose command fails is kept and counted.

DEFRAG_VARIANTS=(etcdadm naive parallel)

bench_main() {
  local trials=${BENCH_TRIALS:-5} t v
  bench_cluster3 || return 1
  defrag_tools || return 1
  fleet_log "bench: writing ${BENCH_DEFRAG_LIVE_MB:-200} values of live data"
  fill m1 /live/ "${BENCH_DEFRAG_LIVE_MB:-200}" || { fleet__fail "writing the live data failed"; return 1; }
  local results=$FLEET_RUN/defrag.tsv
  : >"$results"
  for ((t = 1; t <= trials; t++)); do
    for v in "${DEFRAG_VARIANTS[@]}"; do
      defrag_trial "$v" "$t" >>"$results" || { fleet__fail "defrag $v trial $t: could not be set up"; return 1; }
    done
  done
  cp "$results" "$BENCH_RESULTS/defrag-trials.tsv"
  defrag_report "$results"
}

# Scripts inside m1: the writer, and etcdctl with the wrapper's environment but chosen
# endpoints (etcdctl refuses --endpoints next to ETCDCTL_ENDPOINTS).
defrag_tools() {
  local root
  root=$(fleet_root m1)
  mkdir -p "$root/var/lib/bench" || return 1
  cat >"$root/usr/local/bin/ectl-at" <<'EOF' || return 1
#!/bin/sh
# ectl-at ENDPOINTS ARGS...: etcdctl with the wrapper's certificates and these endpoints
set -a
. /etc/etcd/etcdctl.env
set +a
ETCDCTL_ENDPOINTS=$1
shift
exec /opt/bin/etcdctl "$@"
EOF
  cat >"$root/usr/local/bin/writer" <<'EOF' || return 1
#!/bin/bash
# writer NAME PAUSE EP...: puts a new key, pauses PAUSE s, again, until /var/lib/bench/stop
# appears (/tmp in the machine is its own) or after 10 min. Each put is a fresh etcdctl given
# all the EPs, the first in turn, and --command-timeout=2s. One line per write in
# /var/lib/bench/writes-NAME.tsv: index, first endpoint's position, start, end (unix
# seconds), ok|fail.
name=$1 pause=$2
shift 2
eps=("$@") n=$#
out=/var/lib/bench/writes-$name.tsv
: >"$out"
i=0
while [[ ! -e /var/lib/bench/stop ]] && ((SECONDS < 600)); do
  k=$((i % n)) list=
  for ((j = 0; j < n; j++)); do list+=${list:+,}${eps[(k + j) % n]}; done
  t0=$EPOCHREALTIME
  if ectl-at "$list" --command-timeout=2s put "/bench/$name/$i" "$i" >/dev/null 2>>"/var/lib/bench/writes-$name.err"; then
    r=ok
  else
    r=fail
  fi
  echo "$i $k $t0 $EPOCHREALTIME $r" >>"$out"
  i=$((i + 1))
  sleep "$pause"
done
EOF
  chmod 0755 "$root/usr/local/bin/ectl-at" "$root/usr/local/bin/writer"
}

# Puts N values of ~0.93 MB (random, base64) under PREFIX1..PREFIX<N> through M's member.
fill() { # M PREFIX N
  # shellcheck disable=SC2016 # expanded by sh inside the machine
  fleet_exec "$1" sh -c '
    head -c 700000 /dev/urandom | base64 -w0 >/tmp/big
    i=1
    while [ $i -le "$2" ]; do
      /opt/bin/etcdctl.sh put "$1$i" </tmp/big >/dev/null || exit 1
      i=$((i + 1))
    done' fill "$2" "$3"
}

# The same starting state for every trial: the free data written and deleted again, the
# previous writers' keys deleted, the history compacted physically; 3 healthy voters.
# (Followers' dbSizeInUse may lag m1's for a while: their freed pages stay "pending". A
# defragmentation copies only the live data, the same on every member.)
defrag_prepare() {
  fleet_retry 60 three_healthy || return 1
  fill m1 /junk/ "${BENCH_DEFRAG_FREE_MB:-150}" || return 1
  ectl m1 del --prefix /junk/ >/dev/null && ectl m1 del --prefix /bench/ >/dev/null || return 1
  local rev
  rev=$(ectl m1 endpoint status -w json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["Status"]["header"]["revision"])') &&
    ectl m1 compact "$rev" --physical >/dev/null
}

three_healthy() {
  [[ $(started_voters m1) == 3 ]] && ectl m1 endpoint health --cluster >/dev/null 2>&1
}

# "endpoint dbSize dbSizeInUse isLeader" per member, sorted by endpoint.
db_status() {
  ectl m1 endpoint status --cluster -w json | python3 -c 'import json, sys
st = json.load(sys.stdin)
for s in sorted(st, key=lambda s: s["Endpoint"]):
    x = s["Status"]
    print(s["Endpoint"], x["dbSize"], x.get("dbSizeInUse", 0), int(x["leader"] == x["header"]["member_id"]))'
}

# Runs the variant's command on m1; prints its exit status.
defrag_run() { # VARIANT
  local rc=0
  case $1 in
    etcdadm) ea m1 defrag --force >"$FLEET_RUN/cmd.out" 2>&1 || rc=$? ;;
    naive) ectl m1 defrag --cluster >"$FLEET_RUN/cmd.out" 2>&1 || rc=$? ;;
    parallel)
      # shellcheck disable=SC2016 # expanded by sh inside the machine
      fleet_exec m1 sh -c 'rc=0; pids=""
        for ep; do ectl-at "$ep" defrag & pids="$pids $!"; done
        for p in $pids; do wait "$p" || rc=1; done
        exit $rc' parallel "https://$(fleet_ip 1):2379" "https://$(fleet_ip 2):2379" \
        "https://$(fleet_ip 3):2379" >"$FLEET_RUN/cmd.out" 2>&1 || rc=$?
      ;;
  esac
  echo "$rc"
}

# The columns of a trial's line (defrag_trial), numbered from 1.
DEFRAG_COLUMNS=(variant trial rc wall_s db_before_MB db_after_MB
  all_writes all_failed all_max_gap_s all_max_write_s all_stalls all_stalled_s all_median_write_s
  pin_writes pin_failed pin_any_gap_s pin_one_gap_s pin_max_write_s
  member_defrag_max_s member_defrag_sum_s overlap_s member_defrags leader_changed)

col() { # NAME: its column number
  local i
  for i in "${!DEFRAG_COLUMNS[@]}"; do
    [[ ${DEFRAG_COLUMNS[i]} == "$1" ]] && { echo $((i + 1)); return 0; }
  done
  return 1
}

# One trial; prints one line of DEFRAG_COLUMNS.
defrag_trial() { # VARIANT T
  local v=$1 t=$2 root before after leader_before leader_after mark t0 t1 rc pids=() k eps=()
  root=$(fleet_root m1)/var/lib/bench
  for k in 1 2 3; do eps+=("https://$(fleet_ip "$k"):2379"); done
  defrag_prepare || return 1
  before=$(db_status) || return 1
  leader_before=$(awk '$4 == 1 {print $1}' <<<"$before")
  fleet_log "bench: defrag $v trial $t: before: $(tr '\n' ';' <<<"$before")"
  rm -f "$root"/stop "$root"/writes-*
  mark=$(date +%s)
  fleet_exec m1 writer all 0.03 "${eps[@]}" &
  pids+=($!)
  for k in 1 2 3; do
    fleet_exec m1 writer "p$k" 0.15 "${eps[k - 1]}" &
    pids+=($!)
  done
  sleep 3
  t0=$(bench_now_us)
  rc=$(defrag_run "$v")
  t1=$(bench_now_us)
  sleep 3
  touch "$root/stop"
  wait "${pids[@]}"
  after=$(db_status) || return 1
  leader_after=$(awk '$4 == 1 {print $1}' <<<"$after")
  cp "$FLEET_RUN/cmd.out" "$BENCH_RESULTS/defrag-$v-trial$t.out"
  for k in "$root"/writes-*; do cp "$k" "$BENCH_RESULTS/defrag-$v-trial$t-${k##*/}"; done
  local spans m line
  spans=$(for m in m1 m2 m3; do member_defrag_spans "$m" "$mark"; done)
  line=$(python3 -c '
import statistics, sys
v, t, rc, t0, t1, d, before, after, spans, lch = sys.argv[1:]
t0, t1 = int(t0) / 1e6, int(t1) / 1e6
def load(name):
    return [l.split() for l in open("%s/writes-%s.tsv" % (d, name)) if l.strip()]
def gaps(ws):
    ends = sorted(float(x[3]) for x in ws if x[4] == "ok")
    return [b - a for a, b in zip(ends, ends[1:])]
lat = lambda ws: [float(x[3]) - float(x[2]) for x in ws]
failed = lambda ws: sum(1 for x in ws if x[4] != "ok")
a = load("all")
pins = [load("p%d" % k) for k in (1, 2, 3)]
pin = sum(pins, [])
ga = gaps(a)
stalls = [g for g in ga if g >= 0.5]
mb = lambda s: max(int(l.split()[1]) for l in s.splitlines()) / 1e6
sp = sorted(tuple(map(float, l.split())) for l in spans.splitlines() if l.strip())
durs = [e - s for s, e in sp]
overlap = 0.0  # the longest time two members were defragmenting at once
for i, (s1, e1) in enumerate(sp):
    for s2, e2 in sp[i + 1:]:
        overlap = max(overlap, min(e1, e2) - max(s1, s2))
f = lambda x: "%.3f" % x
print(v, t, rc, f(t1 - t0), "%.1f" % mb(before), "%.1f" % mb(after),
      len(a), failed(a), f(max(ga or [0])), f(max(lat(a) or [0])), len(stalls), f(sum(stalls)),
      f(statistics.median(lat([x for x in a if x[4] == "ok"]) or [0])),
      len(pin), failed(pin), f(max(gaps(pin) or [0])), f(max(max(gaps(p) or [0]) for p in pins)),
      f(max(lat(pin) or [0])),
      f(max(durs or [0])), f(sum(durs)), f(max(overlap, 0)), len(durs), lch)' \
    "$v" "$t" "$rc" "$t0" "$t1" "$root" "$before" "$after" "$spans" \
    "$([[ $leader_before == "$leader_after" ]] && echo 0 || echo 1)") || return 1
  fleet_log "bench: defrag $v trial $t: $line"
  echo "$line"
}

# "start end" (unix seconds) of each defragmentation M's etcd logged since SINCE.
member_defrag_spans() { # M SINCE
  fleet_journal "$1" -u etcd -o short-unix --since "@$2" |
    awk '/"msg":"defragmenting"/ {s = $1} /"msg":"finished defragmenting directory"/ && s {print s, $1; s = ""}'
}

# "median (min-max)" of column NAME over VARIANT's trials, with UNIT ("-": none).
defrag_cell() { # RESULTS VARIANT NAME UNIT DIGITS
  local s
  s=$(awk -v v="$2" -v c="$(col "$3")" '$1 == v { print $c }' "$1" | bench_stats)
  if [[ $4 == - ]]; then
    # shellcheck disable=SC2086 # the four words of the statistics
    python3 -c 'import sys
m, lo, hi, d = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[5])
print("%.*f (%.*f-%.*f)" % (d, m, d, lo, d, hi))' $s "$5"
  else
    bench_fmt "$s" "$4" "$5"
  fi
}

defrag_median() { # RESULTS VARIANT NAME
  local s
  s=$(awk -v v="$2" -v c="$(col "$3")" '$1 == v { print $c }' "$1" | bench_stats)
  echo "${s%% *}"
}

defrag_table() { # RESULTS HEADER CELL...: CELL = NAME:UNIT:DIGITS, or "failed" / "trials"
  local f=$1 header=$2 v c name unit digits row
  shift 2
  local -A label=(
    [etcdadm]='`etcdadm defrag --force`'
    [naive]='`etcdctl defrag --cluster`'
    [parallel]='all at once (3 × `etcdctl defrag`)'
  )
  echo "| variant | $header |"
  echo "|---|$(printf -- '---|%.0s' "$@")"
  for v in "${DEFRAG_VARIANTS[@]}"; do
    row="| ${label[$v]}"
    for c; do
      case $c in
        failed) row+=" | $(awk -v v="$v" '$1 == v && $3 != 0' "$f" | wc -l)" ;;
        trials) row+=" | $(awk -v v="$v" '$1 == v' "$f" | wc -l)" ;;
        *)
          IFS=: read -r name unit digits <<<"$c"
          row+=" | $(defrag_cell "$f" "$v" "$name" "$unit" "$digits")"
          ;;
      esac
    done
    echo "$row |"
  done
}

defrag_report() { # RESULTS
  local f=$1 e n p
  echo
  echo "## defrag: writes during the defragmentation of a 3-member cluster, median (min-max)"
  bench_load
  echo
  echo "Client with all three endpoints (fresh etcdctl per put, --command-timeout=2s):"
  echo
  defrag_table "$f" "longest gap between successful writes | longest single write | stalls >= 0.5 s | time in stalls | failed writes | writes | median write" \
    all_max_gap_s:s:2 all_max_write_s:s:2 all_stalls:-:0 all_stalled_s:s:2 all_failed:-:0 all_writes:-:0 all_median_write_s:s:3
  echo
  echo "One writer pinned to each member (merged: a client that always finds an answering member):"
  echo
  defrag_table "$f" "longest gap, merged | longest gap, one member | longest single write | failed writes | writes" \
    pin_any_gap_s:s:2 pin_one_gap_s:s:2 pin_max_write_s:s:2 pin_failed:-:0 pin_writes:-:0
  echo
  echo "The commands (member times from etcd's journal):"
  echo
  defrag_table "$f" "wall time | longest member defrag | sum of member defrags | two members at once, longest | DB before (largest member) | DB after | leader changed | command failed | trials" \
    wall_s:s:2 member_defrag_max_s:s:2 member_defrag_sum_s:s:2 overlap_s:s:2 db_before_MB:MB:0 db_after_MB:MB:0 leader_changed:-:0 failed trials
  e=$(defrag_median "$f" etcdadm all_max_gap_s)
  n=$(defrag_median "$f" naive all_max_gap_s)
  p=$(defrag_median "$f" parallel all_max_gap_s)
  echo
  echo "longest gap (client with all endpoints), ratio of medians: etcdadm/naive $(bench_ratio "$e" "$n"), etcdadm/parallel $(bench_ratio "$e" "$p")"
  e=$(defrag_median "$f" etcdadm pin_any_gap_s)
  n=$(defrag_median "$f" naive pin_any_gap_s)
  p=$(defrag_median "$f" parallel pin_any_gap_s)
  echo "longest gap (pinned writers merged), ratio of medians: etcdadm/naive $(bench_ratio "$e" "$n"), etcdadm/parallel $(bench_ratio "$e" "$p")"
  echo
  echo "raw trials (${DEFRAG_COLUMNS[*]}):"
  sed 's/^/  /' "$f"
}
