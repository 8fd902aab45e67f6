//! `azure-vmss` discovery against a loopback server that follows Azure's documented IMDS
//! and Resource Manager behaviour (`azure_server`): pagination, throttling, 5xx, token
//! expiry, a hostile `nextLink`, and `etcdadm discover --output json` end to end.

use crate::azure_server::{AzureServer, Behaviour, Vm, GROUP, SCALE_SET, SUBSCRIPTION};
use etcdadm::discovery::{discover, AzureDiscoveryState, DiscoveryConfig, DiscoveryContext};
use etcdadm::metadata::AzureIdentity;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn vms(n: u32) -> Vec<Vm> {
    const IPS: [&str; 6] = ["10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9"];
    (0..n).map(|i| Vm { index: i, state: "Succeeded", ip: Some(IPS[i as usize]) }).collect()
}

fn config(server: &AzureServer) -> DiscoveryConfig {
    DiscoveryConfig::AzureVmss {
        subscription_id: None,
        resource_group: None,
        scale_set: None,
        endpoint: Some(server.url.clone()),
        max_requests_per_second: 50.0,
    }
}

/// A context as bootstrap makes it on an Azure VM whose metadata source is `azure`.
fn context(server: &AzureServer) -> DiscoveryContext {
    context_until(server, None)
}

/// The same, with discovery's deadline.
fn context_until(server: &AzureServer, deadline: Option<Instant>) -> DiscoveryContext {
    let identity = AzureIdentity {
        subscription_id: Some(SUBSCRIPTION.into()),
        resource_group: Some(GROUP.into()),
        scale_set: Some(SCALE_SET.into()),
    };
    DiscoveryContext {
        instance_id: Some("vm-id-0".into()),
        azure: AzureDiscoveryState::new(&server.url, 2, Some(identity), deadline),
        ..Default::default()
    }
}

fn names_and_hosts(set: &etcdadm::discovery::PeerSet) -> Vec<String> {
    set.peers.iter().map(|p| p.to_string()).collect()
}

#[tokio::test]
async fn azure_vmss_discovery_follows_next_link_pages_and_leaves_out_deleting_and_failed_vms() {
    let mut all = vms(6);
    all[2].state = "Deleting";
    all[3].state = "Failed";
    all[5].state = "Creating";
    let server =
        AzureServer::start(Behaviour { vms: all, capacity: 4, page_size: 2, ..Default::default() })
            .await;
    let set = discover(&config(&server), &context(&server)).await.unwrap();
    assert_eq!(
        names_and_hosts(&set),
        ["etcd_0=10.0.0.4", "etcd_1=10.0.0.5", "etcd_4=10.0.0.8", "etcd_5=10.0.0.9"]
    );
    assert_eq!(set.peers[0].instance_id.as_deref(), Some("vm-id-0"));
    assert_eq!((set.expected, set.authoritative, set.is_complete()), (Some(4), true, true));
    // Three pages of each listing (2 + 2 + 2), one GET of the scale set, one token.
    assert_eq!(server.count("/virtualMachines"), 3);
    assert_eq!(server.count("/networkInterfaces"), 3);
    assert_eq!(server.count(&format!("/virtualMachineScaleSets/{SCALE_SET}")), 1);
    assert_eq!(server.count("/oauth2/token"), 1);
    let pages: Vec<String> = server
        .seen()
        .iter()
        .filter(|s| s.path.ends_with("/virtualMachines"))
        .map(|s| s.query.clone())
        .collect();
    assert!(
        pages[0].starts_with("api-version=")
            && pages[1].ends_with("skiptoken=2")
            && pages[2].ends_with("skiptoken=4"),
        "{pages:?}"
    );
    // Every ARM call carried the token; no IMDS call went without `Metadata: true`.
    assert!(server.seen().iter().all(|s| s.status == 200), "{:?}", server.seen());
}

#[tokio::test]
async fn azure_vmss_discovery_waits_out_429_retry_after_then_succeeds_in_one_attempt() {
    let server = AzureServer::start(Behaviour {
        vms: vms(3),
        capacity: 3,
        throttle_first: 2,
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let set = discover(&config(&server), &context(&server)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(names_and_hosts(&set), ["etcd_0=10.0.0.4", "etcd_1=10.0.0.5", "etcd_2=10.0.0.6"]);
    let statuses: Vec<u16> = server
        .seen()
        .iter()
        .filter(|s| !s.path.starts_with("/metadata"))
        .map(|s| s.status)
        .collect();
    assert_eq!(statuses, [429, 429, 200, 200, 200]);
}

#[tokio::test]
async fn azure_vmss_discovery_429_with_a_long_retry_after_ends_the_attempt_retryable_naming_the_remaining_quota(
) {
    let server = AzureServer::start(Behaviour {
        vms: vms(1),
        capacity: 1,
        throttle_first: 1,
        retry_after: "120",
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let e = discover(&config(&server), &context(&server)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let msg = e.to_string();
    assert!(e.is_retryable(), "{msg}");
    assert!(
        msg.contains("HTTP 429, TooManyRequests")
            && msg
                .contains("x-ms-ratelimit-remaining-resource=Microsoft.Compute/HighCostGet3Min;0")
            && msg.contains("throttling (temporary)"),
        "{msg}"
    );
}

#[tokio::test]
async fn azure_vmss_discovery_429_whose_retry_after_ends_past_the_deadline_ends_the_attempt_at_once(
) {
    // 20 s is short enough to be waited out, but discovery must end within 5 s.
    let server = AzureServer::start(Behaviour {
        vms: vms(1),
        capacity: 1,
        throttle_first: 1,
        retry_after: "20",
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    let ctx = context_until(&server, Some(started + Duration::from_secs(5)));
    let e = discover(&config(&server), &ctx).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let msg = e.to_string();
    assert!(e.is_retryable(), "{msg}");
    assert!(
        msg.contains("HTTP 429, TooManyRequests")
            && msg.contains("its Retry-After of 20s ends past the deadline")
            && msg.contains("throttling (temporary)"),
        "{msg}"
    );
    assert_eq!(
        server.count("/virtualMachineScaleSets/etcd"),
        1,
        "asked once, not again after a wait"
    );
}

#[tokio::test]
async fn azure_vmss_discovery_refuses_an_endpoint_that_never_stops_paging_after_50_pages() {
    let server = AzureServer::start(Behaviour {
        vms: vms(2),
        capacity: 2,
        page_size: 1,
        endless: true,
        ..Default::default()
    })
    .await;
    let e = discover(&config(&server), &context(&server)).await.unwrap_err();
    let msg = e.to_string();
    assert!(!e.is_retryable() && msg.contains("more than 50 pages"), "{msg}");
    assert_eq!(server.count("/virtualMachines"), 50);
}

#[tokio::test]
async fn azure_vmss_discovery_5xx_is_retryable_and_the_retry_policy_ends_with_the_set() {
    let server = AzureServer::start(Behaviour {
        vms: vms(3),
        capacity: 3,
        fail_first: 2,
        ..Default::default()
    })
    .await;
    let (cfg, ctx) = (config(&server), context(&server));
    let e = discover(&cfg, &ctx).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("HTTP 503") && msg.contains("GET scale set") && msg.contains("temporary"),
        "{msg}"
    );
    let set = etcdadm::retry::retry_while(
        "discovering peers",
        Duration::from_secs(30),
        etcdadm::discovery::DiscoveryError::is_retryable,
        || discover(&cfg, &ctx),
    )
    .await
    .unwrap();
    assert_eq!(set.peers.len(), 3);
    assert!(set.is_complete());
}

#[tokio::test]
async fn azure_vmss_discovery_fetches_a_new_token_once_when_arm_answers_401() {
    // The first token "expired" early: ARM refuses it; the second works.
    let server = AzureServer::start(Behaviour {
        vms: vms(2),
        capacity: 2,
        tokens_valid_from: 2,
        ..Default::default()
    })
    .await;
    let set = discover(&config(&server), &context(&server)).await.unwrap();
    assert_eq!(set.peers.len(), 2);
    assert_eq!(server.count("/oauth2/token"), 2);
    let arm: Vec<(u16, Option<String>)> = server
        .seen()
        .iter()
        .filter(|s| !s.path.starts_with("/metadata"))
        .map(|s| (s.status, s.authorization.clone()))
        .collect();
    assert_eq!(arm[0], (401, Some("Bearer token-1".into())));
    assert!(arm[1..].iter().all(|a| *a == (200, Some("Bearer token-2".into()))), "{arm:?}");

    // A token ARM keeps refusing is refused twice, not fetched forever.
    let server = AzureServer::start(Behaviour {
        vms: vms(2),
        capacity: 2,
        tokens_valid_from: 99,
        ..Default::default()
    })
    .await;
    let e = discover(&config(&server), &context(&server)).await.unwrap_err();
    assert!(!e.is_retryable() && e.to_string().contains("HTTP 401"), "{e}");
    assert_eq!(server.count("/oauth2/token"), 2);
}

#[tokio::test]
async fn azure_vmss_discovery_refuses_a_next_link_to_another_host_and_never_calls_it() {
    let elsewhere = AzureServer::start(Behaviour::default()).await;
    let hostile = format!(
        "{}/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.Compute/virtualMachineScaleSets/{SCALE_SET}/virtualMachines?$skiptoken=2",
        elsewhere.url
    );
    let server = AzureServer::start(Behaviour {
        vms: vms(4),
        capacity: 4,
        page_size: 2,
        hostile_next_link: Some(hostile.clone()),
        ..Default::default()
    })
    .await;
    let e = discover(&config(&server), &context(&server)).await.unwrap_err();
    let msg = e.to_string();
    assert!(!e.is_retryable(), "{msg}");
    assert!(
        msg.contains("refusing nextLink")
            && msg.contains(&elsewhere.url)
            && msg.contains(&server.url),
        "{msg}"
    );
    assert!(elsewhere.seen().is_empty(), "the token went to {:?}", elsewhere.seen());
}

#[tokio::test]
async fn azure_vmss_discovery_403_is_final_and_names_the_role_and_actions() {
    let server = AzureServer::start(Behaviour {
        vms: vms(1),
        capacity: 1,
        forbid: true,
        ..Default::default()
    })
    .await;
    let e = discover(&config(&server), &context(&server)).await.unwrap_err();
    let msg = e.to_string();
    assert!(!e.is_retryable(), "{msg}");
    for says in [
        "HTTP 403",
        "AuthorizationFailed",
        "Reader",
        "Microsoft.Compute/virtualMachineScaleSets/read (GET the scale set)",
        "Microsoft.Network/networkInterfaces/read",
    ] {
        assert!(msg.contains(says), "{says}: {msg}");
    }
}

/// `etcdadm discover --output json` with `bootstrap` (YAML lines, indented by two).
async fn discover_json(bootstrap: &str) -> (bool, Value, String) {
    crate::support::discover_json(30, bootstrap, &[], "token-1").await
}

#[tokio::test]
async fn azure_vmss_discovery_json_shows_the_scale_set_complete_and_authoritative() {
    let mut all = vms(4);
    all[3].state = "Deleting";
    let server =
        AzureServer::start(Behaviour { vms: all, capacity: 3, page_size: 2, ..Default::default() })
            .await;
    // Everything from IMDS: no names in the settings, cluster size from sku.capacity (the
    // instance's etcdadm-cluster-size tag is not in allowed-keys here, so it is ignored).
    let (ok, report, stderr) = discover_json(&format!(
        "  metadata: {{provider: azure, base-url: '{url}', allowed-keys: [version]}}\n  discovery: {{provider: azure-vmss, endpoint: '{url}'}}\n",
        url = server.url
    ))
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(report["provider"], "azure-vmss", "{report}");
    let peers = crate::support::report_peers(&report);
    let want: BTreeSet<(String, String)> =
        [("etcd_0", "10.0.0.4"), ("etcd_1", "10.0.0.5"), ("etcd_2", "10.0.0.6")]
            .iter()
            .map(|(n, ip)| (n.to_string(), format!("https://{ip}:2380")))
            .collect();
    assert_eq!(peers, want, "{report}");
    assert_eq!(
        (report["expected"].as_u64(), report["complete"].as_bool()),
        (Some(3), Some(true)),
        "{report}"
    );
    assert_eq!(report["authoritative"], true, "{report}");

    // remove-departed-members: false makes the same set a hint.
    let (ok, report, stderr) = discover_json(&format!(
        "  remove-departed-members: false\n  metadata: {{provider: azure, base-url: '{url}', allowed-keys: [version]}}\n  discovery: {{provider: azure-vmss, endpoint: '{url}'}}\n",
        url = server.url
    ))
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(report["authoritative"], false, "{report}");
}

#[tokio::test]
async fn azure_vmss_discovery_config_errors_say_which_key_and_what_to_do() {
    // Not on Azure's metadata and no scale-set: the key is named, and nothing is called.
    let (ok, _, stderr) = discover_json(&format!(
        "  discovery: {{provider: azure-vmss, subscription-id: {SUBSCRIPTION}, resource-group: {GROUP}, endpoint: 'http://127.0.0.1:9'}}\n"
    ))
    .await;
    assert!(!ok);
    assert!(
        stderr.contains("scale-set is not set")
            && stderr.contains("set scale-set in the azure-vmss settings"),
        "{stderr}"
    );
    let (ok, _, stderr) =
        discover_json("  discovery: {provider: azure-vmss, subscription-id: nope, resource-group: g, scale-set: s}\n").await;
    assert!(!ok);
    assert!(stderr.contains("subscription-id \"nope\"") && stderr.contains("GUID"), "{stderr}");
}
