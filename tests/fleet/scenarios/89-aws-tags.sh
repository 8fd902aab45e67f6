# shellcheck shell=bash
# aws-tags discovery: moto's EC2 runs on the host at this test's bridge address, with one
# instance per machine at the machine's address (a subnet of the bridge's network), none
# tagged yet, and decoys around them: an untagged instance, one tagged for another cluster
# and a tagged one that is stopped. Three machines boot at once with `provider: aws-tags`
# (credentials from a drop-in, cluster-size 3); while they wait, their instances are tagged
# one at a time. They form one cluster of three from the answers alone (one initial cluster
# and token, whether a machine formed it or adopted it), named by instance id, and no decoy
# becomes a member; `etcdadm discover` shows the set complete and not authoritative.

# moto_server's port: s3_start runs it (every service, EC2 among them) on the bridge.
S3_PORT=9089
TAG_KEY=etcd-cluster
TAG_VALUE=fleet-89
EC2_CREDS=(AWS_ACCESS_KEY_ID=AKIDFLEETEXAMPLE AWS_SECRET_ACCESS_KEY=fleet-secret-not-printed)

scenario() {
  fleet_setup || return 1
  fleet_secret fleet-secret-not-printed
  EC2_ENDPOINT=http://10.213.$FLEET_NET.1:$S3_PORT
  s3_start && make_ca "$FLEET_RUN/ca" || return 1
  check "moto has an instance at each machine's address, untagged, and three decoys" instances
  local yaml="release-url: $MIRROR_URL
version: $ETCD_VERSION
advertise-address: ADDRESS
bootstrap:
  cluster-size: 3
  discovery:
    provider: aws-tags
    tag-key: $TAG_KEY
    tag-value: $TAG_VALUE
    region: us-east-1
    endpoint: $EC2_ENDPOINT
" m n root
  for n in 1 2 3; do
    m=m$n
    bootstrap_prepare "$FLEET_RUN/ca" "$yaml" "$m" "$n" || return 1
    root=$(fleet_root "$m")
    mkdir -p "$root/etc/systemd/system/etcdadm-bootstrap.service.d" &&
      printf '[Service]\nEnvironment=%s\nEnvironment=%s\n' "${EC2_CREDS[@]}" \
        >"$root/etc/systemd/system/etcdadm-bootstrap.service.d/aws.conf" || return 1
  done
  fleet_start m1 m2 m3 || return 1
  check "before any tag, every machine decides to wait (its peer set is empty)" each_waited m1 m2 m3
  check "the three instances are tagged one at a time while the machines wait" tag_one_by_one
  check "all three bootstrap units report ready" all_ready m1 m2 m3
  check "one cluster of three started voters" one_cluster_of 3 m1 m2 m3
  check "every machine started etcd with the same initial cluster and token (whether it formed or adopted)" same_initial_cluster m1 m2 m3
  check "the members are the tagged instances, named by instance id, and no decoy" members_are_the_tagged m1
  check "etcdadm discover on m2 shows the tagged set, complete and not authoritative" discover_shows m2
}

# Set-up and inspection of moto's EC2 from the host, with moto's own boto3.
ec2_py() { # ACTION ARGS...
  AWS_ACCESS_KEY_ID=setup AWS_SECRET_ACCESS_KEY=setup /opt/etcdadm-test/moto/bin/python - "$EC2_ENDPOINT" "$@" <<'PY'
import sys, boto3
endpoint, action, *args = sys.argv[1:]
ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1")
def run(ip, subnet, tags):
    spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags]}] if tags else []
    r = ec2.run_instances(ImageId="ami-12c6146b", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                          SubnetId=subnet, PrivateIpAddress=ip, TagSpecifications=spec)
    return r["Instances"][0]["InstanceId"]
if action == "setup":             # NET KEY VALUE: prints "ip id" for machines 1-3, untagged
    net, key, value = args
    vpc = ec2.create_vpc(CidrBlock="10.213.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.213.{net}.0/24")["Subnet"]["SubnetId"]
    for n in (1, 2, 3):
        ip = f"10.213.{net}.{10 + n}"
        print(ip, run(ip, subnet, []))
    run(f"10.213.{net}.50", subnet, [])
    run(f"10.213.{net}.51", subnet, [(key, "another-cluster")])
    stopped = run(f"10.213.{net}.52", subnet, [(key, value)])
    ec2.stop_instances(InstanceIds=[stopped])
elif action == "tag":             # ID KEY VALUE
    ec2.create_tags(Resources=[args[0]], Tags=[{"Key": args[1], "Value": args[2]}])
else:
    sys.exit("unknown action " + action)
PY
}

# INSTANCE[n] is the instance id at machine n's address.
declare -a INSTANCE
instances() {
  local out ip id n=1
  out=$(ec2_py setup "$FLEET_NET" "$TAG_KEY" "$TAG_VALUE") || return 1
  while read -r ip id; do
    assert_eq "$(fleet_ip "$n")" "$ip" "address of instance $n" || return 1
    INSTANCE[n]=$id
    n=$((n + 1))
  done <<<"$out"
  assert_eq 4 "$n" "instances at the machines' addresses"
}

tag_one_by_one() {
  local n
  for n in 1 2 3; do
    ec2_py tag "${INSTANCE[n]}" "$TAG_KEY" "$TAG_VALUE" || return 1
    sleep 2
  done
}

members_are_the_tagged() { # M
  local list n
  list=$(members "$1") || return 1
  for n in 1 2 3; do
    assert_contains "$list" ", started, ${INSTANCE[n]}, https://$(fleet_ip "$n"):2380" "member list" || return 1
  done
  assert_eq 3 "$(grep -c . <<<"$list")" "members ($list)"
}

discover_shows() { # M
  local json
  json=$(fleet_exec "$1" env "${EC2_CREDS[@]}" etcdadm discover --once --output json) || return 1
  python3 - "$json" "${INSTANCE[1]}" "${INSTANCE[2]}" "${INSTANCE[3]}" <<'PY' || fleet__fail "discover on $1: $json"
import json, sys
r = json.loads(sys.argv[1])
names = sorted(p["name"] for p in r["peers"])
assert names == sorted(sys.argv[2:5]), names
assert r["provider"] == "aws-tags" and r["expected"] == 3 and r["complete"] is True, r
assert r["authoritative"] is False, r
assert sum(p["this-machine"] for p in r["peers"]) == 1, r
PY
}
