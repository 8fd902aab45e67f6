# shellcheck shell=bash
# Kubelet static-pod mode: join writes a static pod manifest instead of a unit; the
# manifest's own container command line, run on the machine as the kubelet would run it,
# starts a member that joins and is promoted; info works; reset removes the manifest.

scenario() {
  fleet_setup || return 1
  machines m1 1 m2 2 || return 1
  local endpoint
  endpoint="https://$(fleet_ip 1):2379"
  check "init on m1 (systemd mode)" ea_out out m1 init
  copy_ca m1 m2 || return 1
  check "m2: join up to configure in kubelet mode" ea_out out m2 join phase configure "$endpoint" --init-system kubelet
  check "the manifest is written and no unit" manifest_not_unit m2
  check "the manifest is a valid Pod (kubernetes-validate --strict)" \
    /opt/etcdadm-test/kubernetes-validate/bin/kubernetes-validate --strict -k 1.31.0 "$(fleet_root m2)/etc/kubernetes/manifests/etcd.yaml"
  check "the container's command line starts etcd on m2" run_pod_command m2
  check "join completes in kubelet mode: promoted, healthy" ea_out out m2 join "$endpoint" --init-system kubelet
  check "two started voters" expect_voters2 m1
  check "info works in kubelet mode" info_kubelet m2
  check "reset removes the manifest" reset_removes_manifest m2
}

manifest_not_unit() { # M
  fleet_exec "$1" test -s /etc/kubernetes/manifests/etcd.yaml &&
    ! fleet_exec "$1" test -e /etc/systemd/system/etcd.service
}

# What a container runtime would run: the manifest's command (etcd from the image; here the
# same release's binary) with the same hostPath directories, as a transient unit.
run_pod_command() { # M
  local -a cmd
  mapfile -t cmd < <(python3 -c '
import sys, yaml
pod = yaml.safe_load(open(sys.argv[1]))
c = pod["spec"]["containers"][0]
assert pod["spec"]["hostNetwork"] is True
print("/opt/bin/etcd")
print("\n".join(c["command"][1:]))
' "$(fleet_root "$1")/etc/kubernetes/manifests/etcd.yaml") || return 1
  ((${#cmd[@]} > 10)) || fleet__fail "no command in the manifest" || return 1
  fleet_exec "$1" systemd-run --unit=etcd-static-pod --quiet "${cmd[@]}"
}

expect_voters2() { # M
  assert_eq 2 "$(started_voters "$1")" "started voters" && assert_eq 2 "$(members "$1" | wc -l)" "members"
}

info_kubelet() { # M
  local text
  text=$(ea "$1" info) || return 1
  assert_contains "$text" "static pod /etc/kubernetes/manifests/etcd.yaml present" "service" &&
    assert_contains "$text" "healthy" "cluster health"
}

reset_removes_manifest() { # M: --force: a 2-member cluster cannot keep quorum otherwise
  ea_out out "$1" reset --force || return 1
  fleet_exec "$1" systemctl stop etcd-static-pod 2>/dev/null # the kubelet's part: stop the pod
  ! fleet_exec "$1" test -e /etc/kubernetes/manifests/etcd.yaml &&
    assert_eq 1 "$(members m1 | wc -l)" "m1's cluster after the reset"
}
