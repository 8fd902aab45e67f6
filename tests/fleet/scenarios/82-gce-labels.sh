# shellcheck shell=bash
# gce-labels discovery: the discovery tests' fake Compute API and metadata server
# (examples/cloud_api_server.rs) on the host at this test's bridge address, holding one
# running instance per machine at the machine's address, none labelled yet, and decoys: an
# unlabelled instance, one labelled for another cluster and a labelled one that is
# TERMINATED. Three machines boot at once with `metadata: gce` and `gce-labels`
# (etcd-cluster=fleet-82, cluster-size 3), pointed at the fake: no address in the
# configuration, each machine takes its own address and zone from the metadata server. While
# they wait, their instances are labelled one at a time. They form one cluster of three
# named by instance name (one initial cluster and token), no decoy becomes a member, a key
# written through one member is read through another, and `etcdadm discover` shows the set
# complete and not authoritative.

CLOUD_PORT=9082
ZONE=europe-west1-b

scenario() {
  fleet_setup || return 1
  # The fake metadata server's access tokens: no journal, console or output may show one.
  fleet_secret ya29.test-token-
  check "the fake GCE answers on the bridge: an unlabelled instance at each machine's address, three decoys" \
    cloud_start gce "$CLOUD_PORT" "$(gce_world)"
  make_ca "$FLEET_RUN/ca" || return 1
  local yaml="release-url: $MIRROR_URL
version: $ETCD_VERSION
bootstrap:
  cluster-size: 3
  metadata:
    provider: gce
    base-url: $CLOUD_URL
  discovery:
    provider: gce-labels
    label-key: etcd-cluster
    label-value: fleet-82
    endpoint: $CLOUD_URL
"
  bootstrap_prepare "$FLEET_RUN/ca" "$yaml" m1 1 m2 2 m3 3 || return 1
  fleet_start m1 m2 m3 || return 1
  check "before any label, every machine decides to wait" each_waited m1 m2 m3
  check "the three instances are labelled one at a time while the machines wait" cloud_one_by_one gce_world
  check "all three bootstrap units report ready" all_ready m1 m2 m3
  check "one cluster of three started voters" one_cluster_of 3 m1 m2 m3
  check "every machine started etcd with the same initial cluster and token (whether it formed or adopted)" same_initial_cluster m1 m2 m3
  check "the members are the labelled instances, named by instance name at their addresses, and no decoy" \
    members_exactly m1 "etcd-1=$(fleet_ip 1)" "etcd-2=$(fleet_ip 2)" "etcd-3=$(fleet_ip 3)"
  check "a key written through m2 is read through m1" key_round_trip m2 m1
  check "etcdadm discover on m3 shows the labelled set, complete and not authoritative" \
    discover_shows m3 gce-labels false "etcd-1=$(fleet_ip 1)" "etcd-2=$(fleet_ip 2)" "etcd-3=$(fleet_ip 3)"
}

# The fake's fixture: the decoys, and the machines' instances, those of N... labelled.
gce_world() { # N...
  local n label=() labels
  for n; do label[n]=1; done
  echo '{"instances": ['
  for n in 1 2 3; do
    labels={}
    [[ -n ${label[n]:-} ]] && labels='{"etcd-cluster": "fleet-82"}'
    echo "{\"name\": \"etcd-$n\", \"zone\": \"$ZONE\", \"status\": \"RUNNING\", \"ip\": \"$(fleet_ip "$n")\", \"labels\": $labels},"
  done
  cat <<EOJ
  {"name": "etcd-unlabelled", "zone": "$ZONE", "status": "RUNNING", "ip": "$(fleet_ip 40)"},
  {"name": "etcd-other", "zone": "$ZONE", "status": "RUNNING", "ip": "$(fleet_ip 41)", "labels": {"etcd-cluster": "another-cluster"}},
  {"name": "etcd-stopped", "zone": "$ZONE", "status": "TERMINATED", "ip": "$(fleet_ip 42)", "labels": {"etcd-cluster": "fleet-82"}}]}
EOJ
}
