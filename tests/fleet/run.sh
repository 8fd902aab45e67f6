#!/usr/bin/env bash
# Runs fleet scenarios (tests/fleet/scenarios/*.sh, or those named) on real systemd
# machines and prints `N passed, N failed` over all checks. Needs ETCDADM_BIN (a static
# etcdadm) and root. Exits non-zero when any check failed or a scenario could not run.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[[ -x ${ETCDADM_BIN:-} ]] || { echo "run.sh: set ETCDADM_BIN to the static etcdadm binary" >&2; exit 1; }
export FLEET_RESULTS FLEET_SECRETS
FLEET_RESULTS=$(mktemp /tmp/etcdadm-fleet-results.XXXXXX)
FLEET_SECRETS=$FLEET_RESULTS.secrets
output=$FLEET_RESULTS.output
: >"$FLEET_SECRETS"
scenarios=("$@")
((${#scenarios[@]})) || scenarios=("$here"/scenarios/*.sh)
for f in "$here"/lib.sh "$here"/common.sh "${scenarios[@]}"; do
  bash -n "$f" || { echo "run.sh: $f has a syntax error" >&2; exit 1; }
done
status=0
for s in "${scenarios[@]}"; do
  name=$(basename "$s" .sh)
  # Each scenario owns net index 100+NN (from its NN- prefix), so runs of different
  # scenarios can share a host without reclaiming each other's machines.
  [[ $name =~ ^([0-9]{2})- ]] || { echo "run.sh: $name: scenario files are named NN-name.sh" >&2; exit 1; }
  index=$((100 + 10#${BASH_REMATCH[1]}))
  echo "=== scenario $name" >&2
  # Its output goes to stderr as before, and to $output for the search for secrets below.
  SCENARIO=$name FLEET_NET_INDEX=$index bash -c 'set -uo pipefail; . "$1/lib.sh"; . "$1/common.sh"; . "$2"; scenario' _ "$here" "$s" 2>&1 |
    tee -a "$output" >&2
  if ((PIPESTATUS[0] != 0)); then
    echo "=== scenario $name: FAILED" >&2
    grep -q "^fail $name:" "$FLEET_RESULTS" || echo "fail $name: did not complete" >>"$FLEET_RESULTS"
    status=1
  else
    echo "=== scenario $name: ok" >&2
  fi
done
# The fault and bad-input suite (issue 4) also gets its own count.
fault_re='^(pass|fail) (80-bootstrap-crash|85-faults|86-bad-inputs|90-deadline):'
if grep -qE "$fault_re" "$FLEET_RESULTS"; then
  echo "fault suite: $(grep -E "$fault_re" "$FLEET_RESULTS" | grep -c '^pass ') passed, $(grep -E "$fault_re" "$FLEET_RESULTS" | grep -c '^fail ') failed"
fi
# What the scenarios printed (etcdadm's output and errors among it) holds no secret either.
leaks=$(. "$here/lib.sh"; fleet_leaks "$output" | head -5)
if [[ -z $leaks ]]; then
  echo "pass fleet: no private key, AWS secret or IMDS token in the scenarios' output" >>"$FLEET_RESULTS"
else
  echo "fail fleet: no private key, AWS secret or IMDS token in the scenarios' output" >>"$FLEET_RESULTS"
  printf 'secrets in the scenarios output:\n%s\n' "$leaks" >&2
fi
passed=$(grep -c '^pass ' "$FLEET_RESULTS")
failed=$(grep -c '^fail ' "$FLEET_RESULTS")
grep '^fail ' "$FLEET_RESULTS" | sed 's/^/  /' >&2
rm -f "$FLEET_RESULTS" "$FLEET_SECRETS" "$output"
((passed + failed > 0)) || { echo "run.sh: no fleet check ran" >&2; status=1; }
((failed == 0)) || status=1
echo "fleet: $passed passed, $failed failed"
exit "$status"
