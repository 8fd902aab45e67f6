# shellcheck shell=bash
# Five identical machines booted at the same moment, ten times over: every trial must end
# in exactly one cluster of five started voters (never two clusters, never a member that
# no machine starts). FORMATION_TRIALS overrides the count.

scenario() {
  fleet_setup || return 1
  make_ca "$FLEET_RUN/ca" || return 1
  local t trials=${FORMATION_TRIALS:-10}
  for ((t = 1; t <= trials; t++)); do
    check "trial $t: 5 machines booted at once form one 5-voter cluster" trial "$t"
  done
}

trial() { # T: machines t<T>a..t<T>e with addresses .(10+5T-4) .. .(10+5T)
  local t=$1 names=() args=() peers=() k m n
  for k in a b c d e; do
    n=$((5 * t - 4 + ${#names[@]}))
    names+=("t$t$k")
    args+=("t$t$k" "$n")
    peers+=("$(fleet_ip "$n")")
  done
  local IFS=,
  bootstrap_prepare "$FLEET_RUN/ca" "release-url: $MIRROR_URL
version: $ETCD_VERSION
bootstrap:
  discovery:
    provider: static
    peers: [${peers[*]}]
" "${args[@]}" || return 1
  unset IFS
  fleet_start "${names[@]}" || return 1
  all_ready "${names[@]}" && one_cluster_of 5 "${names[@]}"
  local rc=$?
  for m in "${names[@]}"; do fleet_kill "$m" >/dev/null 2>&1; done
  return "$rc"
}
