# shellcheck shell=bash
# azure-vmss discovery: the discovery tests' fake Azure Resource Manager and IMDS
# (examples/cloud_api_server.rs) on the host at this test's bridge address, holding the
# scale set `etcd` (capacity 3) with one VM per machine at the machine's address and decoys:
# a VM being deleted (Deleting), a failed VM (Failed) and a VM without a network interface.
# Three machines boot at once with the configuration of the shipped
# cloud-init/azure-vmss.yaml (metadata `azure`, `azure-vmss`), pointed at the fake: no
# address, subscription, resource group or scale set in it, each machine takes them from
# IMDS, which answers each machine for its own VM. They form one cluster of three named by
# VM name (one initial cluster and token), no decoy becomes a member, a key written through
# one member is read through another, and `etcdadm discover` shows the set complete and
# authoritative.

CLOUD_PORT=9083

scenario() {
  fleet_setup || return 1
  check "the fake Azure answers on the bridge: a VM at each machine's address, three decoys" \
    cloud_start azure "$CLOUD_PORT" "$(azure_world)"
  make_ca "$FLEET_RUN/ca" || return 1
  local yaml="release-url: $MIRROR_URL
version: $ETCD_VERSION
bootstrap:
  metadata:
    provider: azure
    base-url: $CLOUD_URL
  discovery:
    provider: azure-vmss
    endpoint: $CLOUD_URL
"
  bootstrap_prepare "$FLEET_RUN/ca" "$yaml" m1 1 m2 2 m3 3 || return 1
  fleet_start m1 m2 m3 || return 1
  check "all three bootstrap units report ready" all_ready m1 m2 m3
  check "one cluster of three started voters" one_cluster_of 3 m1 m2 m3
  check "every machine started etcd with the same initial cluster and token (whether it formed or adopted)" same_initial_cluster m1 m2 m3
  check "the members are the scale set's VMs, named by VM name at their addresses, and no decoy" \
    members_exactly m1 "etcd_0=$(fleet_ip 1)" "etcd_1=$(fleet_ip 2)" "etcd_2=$(fleet_ip 3)"
  check "a key written through m3 is read through m2" key_round_trip m3 m2
  check "etcdadm discover on m1 shows the scale set, complete and authoritative" \
    discover_shows m1 azure-vmss true "etcd_0=$(fleet_ip 1)" "etcd_1=$(fleet_ip 2)" "etcd_2=$(fleet_ip 3)"
}

# The fake's fixture: VM n-1 at machine n's address, and the decoys.
azure_world() {
  cat <<EOF
{"capacity": 3, "vms": [
  {"index": 0, "state": "Succeeded", "ip": "$(fleet_ip 1)"},
  {"index": 1, "state": "Succeeded", "ip": "$(fleet_ip 2)"},
  {"index": 2, "state": "Succeeded", "ip": "$(fleet_ip 3)"},
  {"index": 3, "state": "Deleting", "ip": "$(fleet_ip 40)"},
  {"index": 4, "state": "Failed", "ip": "$(fleet_ip 41)"},
  {"index": 5, "state": "Succeeded", "ip": null}]}
EOF
}
