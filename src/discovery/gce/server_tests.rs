//! `gce-mig` and `gce-labels` against a loopback server that answers as the Compute API and
//! the metadata server do (tests/discovery/gce_server.rs): pagination, throttling, 5xx, token
//! expiry, permissions.

use super::gce_server::{GceServer, PROJECT};
use crate::discovery::{discover, DiscoveryConfig, DiscoveryContext, GceDiscovery, PeerSet};

const ZONE: &str = "europe-west1-b";

fn ctx(server: &GceServer) -> DiscoveryContext {
    DiscoveryContext {
        gce: GceDiscovery::new(Some(ZONE.into()), Some(server.url.clone())),
        ..Default::default()
    }
}

fn mig(server: &GceServer, region: Option<&str>) -> DiscoveryConfig {
    DiscoveryConfig::GceMig {
        project: None,
        zone: None,
        region: region.map(Into::into),
        group: Some("etcd".into()),
        endpoint: Some(server.url.clone()),
        metadata_url: None,
        max_requests_per_second: 1000.0,
    }
}

fn mig_named(server: &GceServer, group: &str) -> DiscoveryConfig {
    match mig(server, None) {
        DiscoveryConfig::GceMig {
            project,
            zone,
            region,
            endpoint,
            metadata_url,
            max_requests_per_second,
            ..
        } => DiscoveryConfig::GceMig {
            project,
            zone,
            region,
            group: Some(group.into()),
            endpoint,
            metadata_url,
            max_requests_per_second,
        },
        other => other,
    }
}

fn labels(server: &GceServer, zones: &[&str]) -> DiscoveryConfig {
    DiscoveryConfig::GceLabels {
        label_key: "etcd-cluster".into(),
        label_value: "prod".into(),
        project: None,
        zones: zones.iter().map(|z| z.to_string()).collect(),
        endpoint: Some(server.url.clone()),
        metadata_url: None,
        max_requests_per_second: 1000.0,
    }
}

/// `n` running instances `etcd-<i>` in ZONE labelled etcd-cluster=prod, members of the zonal
/// group `etcd` (target size `n`); their "name=ip" in peer order.
fn fleet(server: &GceServer, n: usize) -> Vec<String> {
    let mut want = Vec::new();
    let mut members = Vec::new();
    for i in 0..n {
        let (name, ip) = (format!("etcd-{i}"), format!("10.0.{}.{}", i / 200, i % 200 + 2));
        server.add_instance(ZONE, &name, "RUNNING", &ip, &[("etcd-cluster", "prod")]);
        members.push((ZONE.to_string(), name.clone()));
        want.push((ip.parse::<std::net::Ipv4Addr>().unwrap(), format!("{name}={ip}")));
    }
    let members: Vec<(&str, &str, &str)> =
        members.iter().map(|(z, n)| (z.as_str(), n.as_str(), "NONE")).collect();
    server.add_mig(&format!("zones/{ZONE}"), "etcd", n as u32, &members);
    want.sort();
    want.into_iter().map(|(_, s)| s).collect()
}

fn shown(set: &PeerSet) -> Vec<String> {
    set.peers.iter().map(|p| p.to_string()).collect()
}

#[tokio::test]
async fn gce_mig_follows_every_page_and_gets_each_instance_once_per_process() {
    let server = GceServer::start().await;
    let want = fleet(&server, 230);
    let ctx = ctx(&server);

    let set = discover(&mig(&server, None), &ctx).await.unwrap();
    assert_eq!(shown(&set), want);
    assert_eq!((set.expected, set.authoritative, set.is_complete()), (Some(230), true, true));
    assert!(set.peers.iter().all(|p| p.instance_id.as_deref().is_some_and(super::valid_id)));
    let calls = server.calls();
    let lists: Vec<_> =
        calls.iter().filter(|c| c.path.ends_with("/listManagedInstances")).collect();
    let tokens: Vec<Option<&str>> = lists.iter().map(|c| c.param("pageToken")).collect();
    assert_eq!(tokens, [None, Some("opaque/100+&="), Some("opaque/200+&=")]);
    assert!(lists.iter().all(|c| c.method == "POST" && c.param("maxResults") == Some("100")));
    let path = format!("/compute/v1/projects/{PROJECT}/zones/{ZONE}/instanceGroupManagers/etcd");
    assert_eq!(calls.iter().filter(|c| c.path == path).count(), 1);
    let gets = calls.iter().filter(|c| c.path.contains("/instances/")).count();
    assert_eq!(gets, 230);
    // The project id and the token came from the metadata server, each once.
    assert_eq!(calls.iter().filter(|c| c.path.ends_with("/project/project-id")).count(), 1);
    assert_eq!(server.tokens_issued(), 1);

    // Next attempt: the group and its list again, no instance asked about again.
    let before = server.calls().len();
    let again = discover(&mig(&server, None), &ctx).await.unwrap();
    assert_eq!(again, set);
    let calls = server.calls();
    assert_eq!(calls.len() - before, 1 + 3, "{:?}", &calls[before..]);
    assert_eq!(server.tokens_issued(), 1);
}

#[tokio::test]
async fn gce_mig_regional_group_counts_members_in_every_zone_but_not_those_being_deleted() {
    let server = GceServer::start().await;
    server.add_instance("europe-west1-b", "etcd-b", "RUNNING", "10.0.0.2", &[]);
    server.add_instance("europe-west1-c", "etcd-c", "PROVISIONING", "10.0.0.3", &[]);
    server.add_instance("europe-west1-d", "etcd-d", "RUNNING", "10.0.0.4", &[]);
    server.add_instance("europe-west1-d", "etcd-x", "STOPPING", "10.0.0.5", &[]);
    server.add_mig(
        "regions/europe-west1",
        "etcd",
        3,
        &[
            ("europe-west1-b", "etcd-b", "NONE"),
            ("europe-west1-c", "etcd-c", "CREATING"),
            ("europe-west1-d", "etcd-d", "DELETING"),
            ("europe-west1-d", "etcd-x", "NONE"),
            // Listed, not created yet: instances.get says 404; left out for now.
            ("europe-west1-d", "etcd-e", "CREATING"),
        ],
    );
    let set = discover(&mig(&server, Some("europe-west1")), &ctx(&server)).await.unwrap();
    assert_eq!(shown(&set), ["etcd-b=10.0.0.2", "etcd-c=10.0.0.3"]);
    assert_eq!((set.expected, set.authoritative, set.is_complete()), (Some(3), true, false));
    assert!(server.calls().iter().any(|c| c.path
        == format!(
            "/compute/v1/projects/{PROJECT}/regions/europe-west1/instanceGroupManagers/etcd"
        )));
}

#[tokio::test]
async fn gce_mig_throttled_429_is_retryable_and_the_next_attempt_succeeds() {
    let server = GceServer::start().await;
    let want = fleet(&server, 3);
    let ctx = ctx(&server);
    server.fail_next(&[429]);
    let e = discover(&mig(&server, None), &ctx).await.unwrap_err();
    let msg = e.to_string();
    assert!(e.is_retryable(), "{msg}");
    assert!(
        msg.contains("HTTP 429, rateLimitExceeded") && msg.contains("instanceGroupManagers.get"),
        "{msg}"
    );
    assert!(msg.contains(&server.url), "{msg}");
    let set = discover(&mig(&server, None), &ctx).await.unwrap();
    assert_eq!(shown(&set), want);
}

#[tokio::test]
async fn gce_mig_5xx_on_a_later_call_is_retryable_and_the_next_attempt_succeeds() {
    let server = GceServer::start().await;
    let want = fleet(&server, 3);
    let ctx = ctx(&server);
    // instanceGroupManagers.get passes (0), listManagedInstances answers 503.
    server.fail_next(&[0, 503]);
    let e = discover(&mig(&server, None), &ctx).await.unwrap_err();
    let msg = e.to_string();
    assert!(e.is_retryable(), "{msg}");
    assert!(
        msg.contains("HTTP 503, backendError") && msg.contains("listManagedInstances"),
        "{msg}"
    );
    let set = discover(&mig(&server, None), &ctx).await.unwrap();
    assert_eq!(shown(&set), want);
}

#[tokio::test]
async fn gce_mig_expired_token_is_replaced_once_and_the_call_succeeds() {
    let server = GceServer::start().await;
    let want = fleet(&server, 3);
    let ctx = ctx(&server);
    discover(&mig(&server, None), &ctx).await.unwrap();
    assert_eq!(server.tokens_issued(), 1);
    server.expire_token();
    let set = discover(&mig(&server, None), &ctx).await.unwrap();
    assert_eq!(shown(&set), want);
    let calls = server.calls();
    assert_eq!(calls.iter().filter(|c| c.is_token()).count(), 2);
    assert_eq!(calls.iter().filter(|c| c.status == 401).count(), 1);
    let last = calls.iter().rev().find(|c| c.is_compute()).unwrap();
    assert_eq!(last.authorization.as_deref(), Some("Bearer ya29.test-token-2"));
}

#[tokio::test]
async fn gce_mig_403_fails_at_once_naming_the_role_and_the_permissions() {
    let server = GceServer::start().await;
    fleet(&server, 3);
    server.fail_next(&[403]);
    let e = discover(&mig(&server, None), &ctx(&server)).await.unwrap_err();
    let msg = e.to_string();
    assert!(!e.is_retryable(), "{msg}");
    assert!(
        msg.contains("roles/compute.viewer") && msg.contains("compute.instanceGroupManagers.get"),
        "{msg}"
    );
    let e = discover(&mig_named(&server, "nope"), &ctx(&server)).await.unwrap_err();
    assert!(!e.is_retryable() && e.to_string().contains("HTTP 404, notFound"), "{e}");
}

#[tokio::test]
async fn gce_labels_follows_every_page_and_keeps_only_labelled_members() {
    let server = GceServer::start().await;
    let want = fleet(&server, 230);
    server.add_instance(ZONE, "other", "RUNNING", "10.9.0.1", &[("etcd-cluster", "staging")]);
    server.add_instance(ZONE, "stopped", "TERMINATED", "10.9.0.2", &[("etcd-cluster", "prod")]);
    server.add_instance(
        "europe-west1-c",
        "etcd-c",
        "STAGING",
        "10.9.0.3",
        &[("etcd-cluster", "prod")],
    );
    let set = discover(&labels(&server, &[]), &ctx(&server)).await.unwrap();
    assert_eq!(shown(&set), want);
    assert_eq!((set.expected, set.authoritative), (None, false));
    let lists: Vec<_> =
        server.calls().into_iter().filter(|c| c.path.ends_with("/instances")).collect();
    let tokens: Vec<Option<&str>> = lists.iter().map(|c| c.param("pageToken")).collect();
    assert_eq!(tokens, [None, Some("opaque/100+&="), Some("opaque/200+&=")]);
    assert!(lists.iter().all(|c| c.param("filter") == Some("labels.etcd-cluster = \"prod\"")));

    // Two zones: both listed.
    let set = discover(&labels(&server, &[ZONE, "europe-west1-c"]), &ctx(&server)).await.unwrap();
    assert_eq!(set.peers.len(), 231);
    assert!(shown(&set).contains(&"etcd-c=10.9.0.3".to_string()));
}

#[tokio::test]
async fn gce_labels_throttled_429_and_5xx_are_retryable_and_the_next_attempt_succeeds() {
    let server = GceServer::start().await;
    let want = fleet(&server, 3);
    let ctx = ctx(&server);
    for status in [429, 500, 503] {
        server.fail_next(&[status]);
        let e = discover(&labels(&server, &[]), &ctx).await.unwrap_err();
        assert!(e.is_retryable(), "{status}: {e}");
        assert!(e.to_string().contains(&format!("instances.list at {}", server.url)), "{e}");
        let set = discover(&labels(&server, &[]), &ctx).await.unwrap();
        assert_eq!(shown(&set), want);
    }
}

#[tokio::test]
async fn gce_labels_expired_token_is_replaced_once_and_the_call_succeeds() {
    let server = GceServer::start().await;
    let want = fleet(&server, 3);
    let ctx = ctx(&server);
    discover(&labels(&server, &[]), &ctx).await.unwrap();
    server.expire_token();
    let set = discover(&labels(&server, &[]), &ctx).await.unwrap();
    assert_eq!(shown(&set), want);
    assert_eq!(server.tokens_issued(), 2);
    assert_eq!(server.calls().iter().filter(|c| c.is_token()).count(), 2);
}

#[tokio::test]
async fn gce_without_a_zone_or_metadata_server_says_what_to_set() {
    let server = GceServer::start().await;
    let e = discover(&labels(&server, &[]), &DiscoveryContext::default()).await.unwrap_err();
    assert!(
        !e.is_retryable() && e.to_string().contains("gce-labels needs a zone: set zones"),
        "{e}"
    );
    // A metadata server that is not GCE's (no Metadata-Flavor back) is refused.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", plain.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut c, _)) = plain.accept().await {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf).await;
            let _ = c
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nfake")
                .await;
        }
    });
    let ctx = DiscoveryContext {
        gce: GceDiscovery {
            zone: Some(ZONE.into()),
            metadata_url: Some(url),
            ..Default::default()
        },
        ..Default::default()
    };
    let e = discover(&labels(&server, &[]), &ctx).await.unwrap_err();
    assert!(!e.is_retryable() && e.to_string().contains("not the GCE metadata server"), "{e}");
}

#[tokio::test]
async fn gce_labels_answers_with_bad_addresses_or_names_are_left_out_and_no_token_shows_in_debug() {
    let server = GceServer::start().await;
    let want = fleet(&server, 2);
    let prod = [("etcd-cluster", "prod")];
    server.add_instance(ZONE, "no-ip", "RUNNING", "", &prod);
    server.add_instance(ZONE, "v6-only", "RUNNING", "fd00::1", &prod);
    server.add_instance(ZONE, "garbage-ip", "RUNNING", "10.0.0.1; rm -rf /", &prod);
    server.add_instance(ZONE, "Bad_Name", "RUNNING", "10.0.9.9", &prod);
    server.add_instance(ZONE, "m1\nETCD_DATA_DIR=/tmp", "RUNNING", "10.0.9.8", &prod);
    let ctx = ctx(&server);
    let set = discover(&labels(&server, &[]), &ctx).await.unwrap();
    assert_eq!(shown(&set), want);
    let shown_ctx = format!("{ctx:?} {ctx:#?}");
    assert!(!shown_ctx.contains("ya29"), "{shown_ctx}");
}

#[tokio::test]
async fn gce_mig_pageless_group_answers_every_member_in_one_list_call() {
    let server = GceServer::start().await;
    let want = fleet(&server, 230);
    server.set_pageless("etcd");
    let set = discover(&mig(&server, None), &ctx(&server)).await.unwrap();
    assert_eq!(shown(&set), want);
    let lists = server.calls().iter().filter(|c| c.path.ends_with("/listManagedInstances")).count();
    assert_eq!(lists, 1);
}

#[tokio::test]
async fn gce_token_is_reused_until_a_minute_before_it_expires() {
    let server = GceServer::start().await;
    fleet(&server, 2);
    let first = ctx(&server);
    // 3599 s: one token for both attempts.
    discover(&labels(&server, &[]), &first).await.unwrap();
    discover(&labels(&server, &[]), &first).await.unwrap();
    assert_eq!(server.tokens_issued(), 1);
    // A token that expires within the minute is not kept: fetched again before each call,
    // never refused by the API.
    // (A fresh context: a new process, nothing cached.)
    let second = ctx(&server);
    server.set_token_lifetime(30);
    discover(&labels(&server, &[]), &second).await.unwrap();
    discover(&labels(&server, &[]), &second).await.unwrap();
    assert_eq!(server.tokens_issued(), 3);
    assert!(server.calls().iter().all(|c| c.status != 401));
}
