//! `etcdadm discover --output json` (the built binary) with `gce-mig` and `gce-labels` against
//! the loopback Compute API and metadata server of gce_server.rs. The binary reads this
//! machine's zone from that metadata server (`bootstrap.metadata: provider: gce`), takes its
//! project id and access token from it, and retries throttled and failed calls with backoff.

use crate::gce_server::{GceServer, OWN_ZONE};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// `etcdadm discover --output json` with `bootstrap:` = the GCE metadata source at the
/// server, then `bootstrap` (YAML lines, indented by two).
async fn discover_json(server: &GceServer, bootstrap: &str) -> (bool, Value, String) {
    let with_metadata =
        format!("  metadata: {{provider: gce, base-url: '{url}'}}\n{bootstrap}", url = server.url);
    crate::support::discover_json(60, &with_metadata, &[], "ya29.").await
}

use crate::support::report_peers;

fn want(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs.iter().map(|(n, ip)| (n.to_string(), format!("https://{ip}:2380"))).collect()
}

/// Three running members of the zonal group `etcd` in this machine's zone, labelled
/// etcd-cluster=prod, and around them what must not count.
fn fleet(server: &GceServer) {
    let prod = [("etcd-cluster", "prod")];
    server.add_instance(OWN_ZONE, "etcd-a", "RUNNING", "10.132.0.2", &prod);
    server.add_instance(OWN_ZONE, "etcd-b", "STAGING", "10.132.0.3", &prod);
    server.add_instance(OWN_ZONE, "etcd-c", "PROVISIONING", "10.132.0.4", &prod);
    server.add_instance(OWN_ZONE, "etcd-old", "RUNNING", "10.132.0.9", &prod[..0]);
    server.add_instance(OWN_ZONE, "etcd-stopped", "TERMINATED", "10.132.0.10", &prod);
    server.add_instance(
        OWN_ZONE,
        "web-1",
        "RUNNING",
        "10.132.0.11",
        &[("etcd-cluster", "staging")],
    );
    server.add_mig(
        &format!("zones/{OWN_ZONE}"),
        "etcd",
        3,
        &[
            (OWN_ZONE, "etcd-a", "NONE"),
            (OWN_ZONE, "etcd-b", "NONE"),
            (OWN_ZONE, "etcd-c", "CREATING"),
            (OWN_ZONE, "etcd-old", "DELETING"),
        ],
    );
}

const THREE: [(&str, &str); 3] =
    [("etcd-a", "10.132.0.2"), ("etcd-b", "10.132.0.3"), ("etcd-c", "10.132.0.4")];

#[tokio::test]
async fn gce_mig_discovery_json_lists_the_group_members_complete_and_authoritative_after_429_and_503(
) {
    let server = GceServer::start().await;
    fleet(&server);
    // Attempt 1: instanceGroupManagers.get throttled; attempt 2: the get passes, the list
    // answers 503; attempt 3 passes.
    server.fail_next(&[429, 0, 503]);
    let (ok, report, stderr) = discover_json(
        &server,
        &format!("  discovery: {{provider: gce-mig, group: etcd, endpoint: '{}'}}\n", server.url),
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(report_peers(&report), want(&THREE), "{report}");
    assert_eq!(report["provider"], "gce-mig");
    assert_eq!((report["expected"].as_u64(), report["complete"].as_bool()), (Some(3), Some(true)));
    assert_eq!(report["authoritative"], true, "{report}");
    assert_eq!(report["attempts"].as_u64(), Some(3), "{report}");
    // One token for the process, sent with every call; the zone from the metadata server.
    assert_eq!(server.tokens_issued(), 1);
    let calls = server.calls();
    assert!(calls
        .iter()
        .filter(|c| c.is_compute())
        .all(|c| c.authorization.as_deref() == Some("Bearer ya29.test-token-1")));
    assert!(calls.iter().any(|c| c
        .path
        .ends_with(&format!("/zones/{OWN_ZONE}/instanceGroupManagers/etcd/listManagedInstances"))));
    // Each member's address asked once (the DELETING one never).
    let gets: Vec<&str> = calls
        .iter()
        .filter(|c| c.path.contains("/instances/"))
        .map(|c| c.path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(gets, ["etcd-a", "etcd-b", "etcd-c"]);
}

#[tokio::test]
async fn gce_labels_discovery_json_lists_the_labelled_instances_authoritative_only_when_told() {
    let server = GceServer::start().await;
    fleet(&server);
    let discovery = format!(
        "  discovery: {{provider: gce-labels, label-key: etcd-cluster, label-value: prod, endpoint: '{}'}}\n",
        server.url
    );
    server.fail_next(&[429]);
    let (ok, report, stderr) =
        discover_json(&server, &format!("  cluster-size: 3\n{discovery}")).await;
    assert!(ok, "{stderr}");
    assert_eq!(report_peers(&report), want(&THREE), "{report}");
    assert_eq!(report["provider"], "gce-labels");
    assert_eq!((report["expected"].as_u64(), report["complete"].as_bool()), (Some(3), Some(true)));
    assert_eq!(report["authoritative"], false, "{report}");
    assert_eq!(report["attempts"].as_u64(), Some(2), "{report}");
    let lists: Vec<_> =
        server.calls().into_iter().filter(|c| c.path.ends_with("/instances")).collect();
    assert!(lists.iter().all(|c| c.param("filter") == Some("labels.etcd-cluster = \"prod\"")));

    let (ok, report, stderr) = discover_json(
        &server,
        &format!("  cluster-size: 3\n  remove-departed-members: true\n{discovery}"),
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(
        (report_peers(&report), &report["authoritative"]),
        (want(&THREE), &Value::Bool(true))
    );
}

#[tokio::test]
async fn gce_discovery_config_errors_say_which_key_is_wrong_and_call_no_compute_api() {
    let server = GceServer::start().await;
    fleet(&server);
    let url = &server.url;
    for (bootstrap, says) in [
        (
            format!("  discovery: {{provider: gce-mig, endpoint: '{url}'}}\n"),
            vec!["gce-mig group is not set", "set group"],
        ),
        (
            format!("  discovery: {{provider: gce-mig, group: etcd, zone: {OWN_ZONE}, region: europe-west1, endpoint: '{url}'}}\n"),
            vec!["gce-mig has both zone and region", "not both"],
        ),
        (
            format!("  cluster-size: 3\n  discovery: {{provider: gce-labels, label-key: Etcd, label-value: prod, endpoint: '{url}'}}\n"),
            vec!["gce-labels label-key", "\"Etcd\" contains 'E'", "set label-key"],
        ),
        (
            format!("  discovery: {{provider: gce-labels, label-key: etcd-cluster, label-value: prod, endpoint: '{url}'}}\n"),
            vec!["bootstrap.cluster-size is not set", "gce-labels discovery (label etcd-cluster=prod)"],
        ),
        (
            format!("  discovery: {{provider: gce-labels, label_key: etcd, label-value: prod, endpoint: '{url}'}}\n"),
            vec!["bootstrap.discovery.label_key", "did you mean `label-key`?"],
        ),
    ] {
        let started = std::time::Instant::now();
        let (ok, _, stderr) = discover_json(&server, &bootstrap).await;
        assert!(!ok, "{bootstrap}: {stderr}");
        for s in says {
            assert!(stderr.contains(s), "{bootstrap}: no {s:?} in {stderr}");
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{bootstrap}: {stderr}");
    }
    let compute: Vec<_> = server.calls().into_iter().filter(|c| c.is_compute()).collect();
    assert!(compute.is_empty(), "the Compute API was called: {compute:?}");
}

#[tokio::test]
async fn gce_mig_discovery_without_permission_fails_at_once_naming_the_role_and_permission() {
    let server = GceServer::start().await;
    fleet(&server);
    server.fail_next(&[403]);
    let started = std::time::Instant::now();
    let (ok, _, stderr) = discover_json(
        &server,
        &format!("  discovery: {{provider: gce-mig, group: etcd, endpoint: '{}'}}\n", server.url),
    )
    .await;
    assert!(!ok, "{stderr}");
    for s in ["HTTP 403, forbidden", "roles/compute.viewer", "compute.instanceGroupManagers.get"] {
        assert!(stderr.contains(s), "no {s:?} in {stderr}");
    }
    assert!(started.elapsed() < Duration::from_secs(20), "{stderr}");
    assert_eq!(server.calls().iter().filter(|c| c.is_compute()).count(), 1);
}
