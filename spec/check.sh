#!/usr/bin/env bash
# Model-checks spec/bootstrap.pml with spin (spec/README.md).
#
#   spec/check.sh            the properties that hold for the code (must pass), the
#                            regression cases R1a..R8 with the fixes F1-F6 (must pass, but
#                            for the known limitation R3), and without them (the earlier
#                            protocol's counterexamples must still be found)
#   spec/check.sh --trace R3 replay one regression case, without the fixes, as a readable trace
#
# Exits non-zero when a property that must hold is violated (assertion or acceptance
# cycle), when a search is incomplete (depth or memory bound hit), or when a regression
# case no longer shows (then the model or the code changed: update spec/README.md).
# Prints the states explored by every run. CHECK_JOBS (default 2) runs in parallel.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
for tool in spin gcc; do
  command -v "$tool" >/dev/null || { echo "spec/check.sh: $tool not found (scripts/install-deps.sh installs it)" >&2; exit 2; }
done

# name | kind | spin -D switches | expected
#   kind: safety (assertions S1-S6, exhaustive) or live (`ltl live` under weak fairness)
#   expected: ok, or the violation a case must produce (S1..S6, cycle)
# The model's fixes F1-F6 are on by default, as in the code.
HOLDS=(
  "safety-formation-N1      |safety|-DN=1|ok"
  "safety-formation-N3      |safety|-DN=3|ok"
  "safety-formation-N3-noauth|safety|-DN=3 -DAUTH=0|ok"
  "safety-formation-N5      |safety|-DN=5 -DAUTH=0 -DMAXCRASH=0|ok"
  "live-formation-N1        |live|-DN=1|ok"
  "live-formation-N3        |live|-DN=3|ok"
  "live-formation-N3-noauth |live|-DN=3 -DAUTH=0|ok"
  "live-formation-N5        |live|-DN=5 -DAUTH=0 -DFORM_WAITS=1|ok"
  "safety-replace-new-addr  |safety|-DN=3 -DREPL=1 -DREPLACE_LATE=1|ok"
  "safety-replace-same-addr |safety|-DN=3 -DREPL=1 -DREUSE=1 -DREPLACE_LATE=1|ok"
  "safety-replace-same-name |safety|-DN=3 -DREPL=1 -DREUSE=1 -DNAMES_BY_ADDR=1 -DREPLACE_LATE=1|ok"
  "safety-replace-N1        |safety|-DN=1 -DREPL=1 -DZOMBIE=0|ok"
  "live-replace-new-addr    |live|-DN=3 -DREPL=1 -DREPLACE_LATE=1 -DZOMBIE=0|ok"
  "live-replace-same-addr   |live|-DN=3 -DREPL=1 -DREUSE=1 -DREPLACE_LATE=1 -DZOMBIE=0|ok"
  "live-replace-same-name   |live|-DN=3 -DREPL=1 -DREUSE=1 -DNAMES_BY_ADDR=1 -DREPLACE_LATE=1 -DZOMBIE=0|ok"
  "live-replace-N1          |live|-DN=1 -DREPL=1 -DZOMBIE=0|ok"
  "safety-restore-N1        |safety|-DN=1 -DRESTORE=1|ok"
  "safety-restore-N3        |safety|-DN=3 -DRESTORE=1|ok"
  "safety-restore-N3-noauth |safety|-DN=3 -DRESTORE=1 -DAUTH=0|ok"
  "safety-restore-N5        |safety|-DN=5 -DRESTORE=1 -DAUTH=0 -DMAXCRASH=0|ok"
  "live-restore-N1          |live|-DN=1 -DRESTORE=1|ok"
  "live-restore-N3          |live|-DN=3 -DRESTORE=1|ok"
  "live-restore-N3-noauth   |live|-DN=3 -DRESTORE=1 -DAUTH=0|ok"
  "safety-restore-replace   |safety|-DN=3 -DRESTORE=1 -DREPL=1 -DREPLACE_LATE=1|ok"
  "live-restore-replace     |live|-DN=3 -DRESTORE=1 -DREPL=1 -DREPLACE_LATE=1 -DZOMBIE=0|ok"
  # The known limitation of restores (spec/README.md, R9): the machine that restored is
  # replaced while the others join it; must still be found (S5), or the model changed.
  "R9-restorer-replaced     |safety|-DN=3 -DRESTORE=1 -DREPL=1 -DVICTIM_FIRST=1 -DLOSSY=0 -DMAXCRASH=0 -DFRESH_VIEWS=1|S5"
)
# The counterexamples found while the protocol was designed (spec/README.md): each is run
# twice, with the fixes (must hold, except the known limitation R3) and without them
# (FIX_*=0: the earlier protocol; the violation must still be found, or the model changed).
# A sixth field adds switches to the run with the fixes only.
UNFIX="-DFIX_RESUME=0 -DFIX_REMOVE=0 -DFIX_FORM=0 -DFIX_SETTLE=0 -DFIX_REUSE=0 -DFIX_REACH=0"
CASES=(
  "R1a-form-then-join       |live|-DN=3 -DAUTH=0|cycle|ok"
  "R1b-join-then-form       |live|-DN=1 -DREPL=1|cycle|ok|-DZOMBIE=0"
  "R2-stale-view-self-remove|live|-DN=3 -DFORM_WAITS=1|cycle|ok"
  "R3-replaced-while-forming|safety|-DN=3 -DREPL=1 -DZOMBIE=0 -DLOSSY=0 -DCHECK_S1=0|S2|S2"
  "R4-second-cluster        |safety|-DN=3 -DREPL=1 -DZOMBIE=0 -DLOSSY=0 -DCHECK_S2=0|S1|ok"
  "R5-same-addr-amnesia     |safety|-DN=3 -DREPL=1 -DREUSE=1 -DNAMES_BY_ADDR=1 -DREPLACE_LATE=1|S4|ok"
  "R6-same-addr-cannot-join |live|-DN=3 -DREPL=1 -DREUSE=1 -DNAMES_BY_ADDR=1 -DREPLACE_LATE=1 -DLOSSY=0 -DMAXCRASH=0 -DFRESH_VIEWS=1 -DFORM_WAITS=1|cycle|ok"
  "R7-stale-view-dead-voter |live|-DN=3 -DREPL=1 -DREPLACE_LATE=1 -DLOSSY=0 -DMAXCRASH=0 -DFORM_WAITS=1|cycle|ok"
  "R8-reboot-replacement    |live|-DN=3 -DREPL=1 -DREPLACE_LATE=1 -DLOSSY=0 -DFRESH_VIEWS=1 -DFORM_WAITS=1|cycle|ok"
)
REGRESSIONS=()
FIXED=()
for c in "${CASES[@]}"; do
  IFS='|' read -r name kind defs unfixed fixed extra <<<"$c"
  name=${name// /}
  REGRESSIONS+=("$name-unfixed|$kind|$defs $UNFIX|$unfixed")
  FIXED+=("$name|$kind|$defs${extra:+ $extra}|$fixed")
done

work=$(mktemp -d "${TMPDIR:-/tmp}/etcdadm-spec.XXXXXX")
trap 'rm -rf "$work"' EXIT

# run NAME KIND DEFINES: compiles and runs pan in $work/NAME; leaves out.txt there
run() {
  local name=$1 kind=$2 defs=$3 d="$work/$1"
  mkdir -p "$d" && cp bootstrap.pml "$d/" && cd "$d"
  # shellcheck disable=SC2086
  spin $defs -a bootstrap.pml >spin.txt 2>&1 || { cat spin.txt >out.txt; return; }
  if [ "$kind" = safety ]; then
    gcc -O2 -w -DSAFETY -DNOCLAIM -DNOBOUNDCHECK -DCOLLAPSE -DMEMLIM=3000 -DVECTORSZ=2048 -o pan pan.c
    ./pan -m3000000 >out.txt 2>&1 || true
  else
    gcc -O2 -w -DNOBOUNDCHECK -DNFAIR=3 -DCOLLAPSE -DMEMLIM=3000 -DVECTORSZ=2048 -o pan pan.c
    ./pan -m3000000 -a -f -N live >out.txt 2>&1 || true
  fi
}

# verdict NAME EXPECTED -> prints one result line, returns 1 on failure
verdict() {
  local name=$1 expected=$2 d="$work/$1" out states secs found="ok" line
  out="$d/out.txt"
  states=$(grep -oE '^ *[0-9.e+]+ states, stored' "$out" | awk '{print $1}' || true)
  secs=$(grep -oE 'elapsed time [0-9.e+]+' "$out" | awk '{print $3}' || true)
  if grep -q 'acceptance cycle' "$out"; then
    found=cycle
  elif grep -q 'assertion violated' "$out"; then
    (cd "$d" && spin -t "$(cat defs)" bootstrap.pml >replay.txt 2>&1) || true
    line=$(grep -oE 'bootstrap.pml:[0-9]+, Error: assertion violated' "$d/replay.txt" | head -1 | cut -d: -f2 | cut -d, -f1)
    found=$(sed -n "${line:-0}p" "$d/bootstrap.pml" | grep -oE 'S[1-6]' | tail -1 || echo assertion)
  elif ! grep -q 'errors: 0' "$out"; then
    found=error
  fi
  if grep -qE 'max search depth too small|Search not completed|out of memory' "$out"; then
    [ "$found" = ok ] && found=incomplete
  fi
  printf '%-28s %-10s %12s states %8ss  %s\n' "$name" "$found" "${states:-?}" "${secs:-?}" \
    "$([ "$found" = "$expected" ] && echo "as expected" || echo "FAILED (expected $expected)")"
  [ "$found" = "$expected" ]
}

if [ "${1:-}" = --trace ]; then
  want=${2:?usage: spec/check.sh --trace R1a..R8}
  for entry in "${REGRESSIONS[@]}"; do
    IFS='|' read -r name kind defs _ <<<"$entry"
    name=${name// /}
    [[ $name == "$want"* ]] || continue
    mkdir -p "$work/$name"
    run "$name" "$kind" "$defs"
    cd "$work/$name"
    # shortest counterexample the checker finds (iterative deepening for safety)
    if [ "$kind" = safety ]; then ./pan -m3000000 -i >/dev/null 2>&1 || true; fi
    # shellcheck disable=SC2086
    spin -t $defs bootstrap.pml 2>&1 | awk -f "$here/trace.awk"
    exit 0
  done
  echo "no regression case $want" >&2
  exit 2
fi

entries=("${HOLDS[@]}" "${FIXED[@]}" "${REGRESSIONS[@]}")

echo "spin $(spin -V | awk '{print $3}'), model spec/bootstrap.pml, ${#entries[@]} runs, ${CHECK_JOBS:-2} at a time"
export -f run
export work
start=$SECONDS
for entry in "${entries[@]}"; do
  IFS='|' read -r name kind defs _ <<<"$entry"
  name=${name// /}
  mkdir -p "$work/$name" && echo "$defs" >"$work/$name/defs"
  printf '%s\0%s\0%s\0' "$name" "$kind" "$defs"
done | xargs -0 -n3 -P "${CHECK_JOBS:-2}" bash -c 'run "$0" "$1" "$2"'

status=0
total=0
for entry in "${entries[@]}"; do
  IFS='|' read -r name _ _ expected <<<"$entry"
  name=${name// /}
  verdict "$name" "$expected" || status=1
  s=$(grep -oE '^ *[0-9.e+]+ states, stored' "$work/$name/out.txt" | awk '{printf "%d", $1}' || true)
  total=$((total + ${s:-0}))
done
echo "total: $total states stored, $((SECONDS - start)) s wall clock"
if [ "$status" != 0 ]; then
  echo "spec/check.sh: FAILED (see spec/README.md; replay a regression with spec/check.sh --trace R<n>)" >&2
fi
exit "$status"
