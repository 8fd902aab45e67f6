# shellcheck shell=bash
# gce-mig discovery: the discovery tests' fake Compute API and metadata server
# (examples/cloud_api_server.rs) on the host at this test's bridge address, holding one
# running instance per machine at the machine's address and the zonal managed instance
# group `etcd` (target size 3), at first without them; around them decoys: a group member
# being deleted (currentAction DELETING), a group member whose instance is TERMINATED and a
# running instance outside the group. Three machines boot at once with the configuration of
# the shipped cloud-init/gce-mig.yaml (metadata `gce`, `gce-mig` group `etcd`), pointed at
# the fake: no address in it, each machine takes its own address and zone from the metadata
# server. While they wait, their instances join the group one at a time. They form one
# cluster of three named by instance name (one initial cluster and token), no decoy becomes
# a member, a key written through one member is read through another, and `etcdadm
# discover` shows the set complete and authoritative.

CLOUD_PORT=9081
ZONE=europe-west1-b

scenario() {
  fleet_setup || return 1
  # The fake metadata server's access tokens: no journal, console or output may show one.
  fleet_secret ya29.test-token-
  check "the fake GCE answers on the bridge: the group empty, an instance at each machine's address, three decoys" \
    cloud_start gce "$CLOUD_PORT" "$(gce_world)"
  make_ca "$FLEET_RUN/ca" || return 1
  local yaml="release-url: $MIRROR_URL
version: $ETCD_VERSION
bootstrap:
  metadata:
    provider: gce
    base-url: $CLOUD_URL
  discovery:
    provider: gce-mig
    group: etcd
    endpoint: $CLOUD_URL
"
  bootstrap_prepare "$FLEET_RUN/ca" "$yaml" m1 1 m2 2 m3 3 || return 1
  fleet_start m1 m2 m3 || return 1
  check "while the group has none of them, every machine decides to wait" each_waited m1 m2 m3
  check "the three instances join the group one at a time while the machines wait" cloud_one_by_one gce_world
  check "all three bootstrap units report ready" all_ready m1 m2 m3
  check "one cluster of three started voters" one_cluster_of 3 m1 m2 m3
  check "every machine started etcd with the same initial cluster and token (whether it formed or adopted)" same_initial_cluster m1 m2 m3
  check "the members are the group's instances, named by instance name at their addresses, and no decoy" \
    members_exactly m1 "etcd-1=$(fleet_ip 1)" "etcd-2=$(fleet_ip 2)" "etcd-3=$(fleet_ip 3)"
  check "a key written through m1 is read through m3" key_round_trip m1 m3
  check "etcdadm discover on m2 shows the group, complete and authoritative" \
    discover_shows m2 gce-mig true "etcd-1=$(fleet_ip 1)" "etcd-2=$(fleet_ip 2)" "etcd-3=$(fleet_ip 3)"
}

# The fake's fixture: the instances, and the group with the decoys and machines N... as members.
gce_world() { # N...
  local n members="[\"$ZONE\", \"etcd-old\", \"DELETING\"], [\"$ZONE\", \"etcd-stopped\", \"NONE\"]"
  for n; do members+=", [\"$ZONE\", \"etcd-$n\", \"NONE\"]"; done
  cat <<EOF
{"instances": [
  {"name": "etcd-1", "zone": "$ZONE", "status": "RUNNING", "ip": "$(fleet_ip 1)"},
  {"name": "etcd-2", "zone": "$ZONE", "status": "RUNNING", "ip": "$(fleet_ip 2)"},
  {"name": "etcd-3", "zone": "$ZONE", "status": "RUNNING", "ip": "$(fleet_ip 3)"},
  {"name": "etcd-old", "zone": "$ZONE", "status": "RUNNING", "ip": "$(fleet_ip 40)"},
  {"name": "etcd-stopped", "zone": "$ZONE", "status": "TERMINATED", "ip": "$(fleet_ip 41)"},
  {"name": "web-1", "zone": "$ZONE", "status": "RUNNING", "ip": "$(fleet_ip 42)"}],
 "migs": [{"scope": "zones/$ZONE", "name": "etcd", "target-size": 3, "members": [$members]}]}
EOF
}
