//! Azure IMDS behaviour against a local mock of the documented API:
//! https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service

use super::*;
use crate::metadata::test_support::{always, not_found_otherwise, server, silent_url};
use mockito::{Matcher, Mock, ServerGuard};

fn cfg(server: &ServerGuard) -> AzureConfig {
    AzureConfig { base_url: server.url(), timeout_seconds: 2, ..Default::default() }
}

/// Abridged from Microsoft's example answer of `/metadata/instance?api-version=2021-02-01`.
const DOCUMENT: &str = r#"{
  "compute": {
    "azEnvironment": "AzurePublicCloud",
    "location": "westeurope",
    "name": "etcd_2",
    "osType": "Linux",
    "resourceGroupName": "etcd-rg",
    "subscriptionId": "8d10da13-8125-4ba9-a717-bf7490507b3d",
    "tags": "etcd-cluster:prod;etcdadm-version:3.5.17",
    "tagsList": [
      {"name": "etcd-cluster", "value": "prod"},
      {"name": "etcdadm-version", "value": "3.5.17"},
      {"name": "etcdadm-data-dir", "value": "/tmp/evil"}
    ],
    "vmId": "02aab8a4-74ef-476e-8182-f6d2ba4166a6",
    "vmScaleSetName": "etcd",
    "zone": "2"
  },
  "network": {
    "interface": [{
      "ipv4": {"ipAddress": [{"privateIpAddress": "10.1.0.6", "publicIpAddress": ""}],
               "subnet": [{"address": "10.1.0.0", "prefix": "24"}]},
      "ipv6": {"ipAddress": [{"privateIpAddress": "fd00:1::6"}]},
      "macAddress": "000D3AF806EC"
    }]
  }
}"#;

/// GET `/metadata/instance?api-version=2021-02-01`, answered only with `Metadata: true`.
async fn imds(server: &mut ServerGuard, body: &str) -> Mock {
    always(
        server
            .mock("GET", "/metadata/instance")
            .match_query(Matcher::UrlEncoded("api-version".into(), "2021-02-01".into()))
            .match_header("metadata", "true")
            .with_header("content-type", "application/json; charset=utf-8")
            .with_body(body),
    )
    .create_async()
    .await
}

#[tokio::test]
async fn reads_vm_id_name_location_zone_addresses_and_tags() {
    let mut server = server().await;
    imds(&mut server, DOCUMENT).await;
    not_found_otherwise(&mut server).await;
    let md = fetch(&cfg(&server)).await.unwrap();
    assert_eq!(
        md,
        InstanceMetadata {
            provider: "azure",
            instance_id: "02aab8a4-74ef-476e-8182-f6d2ba4166a6".into(),
            hostname: Some("etcd_2".into()),
            private_ipv4: Some("10.1.0.6".parse().unwrap()),
            private_ipv6: Some("fd00:1::6".parse().unwrap()),
            region: Some("westeurope".into()),
            availability_zone: Some("2".into()),
            attributes: [
                ("etcd-cluster", "prod"),
                ("etcdadm-data-dir", "/tmp/evil"),
                ("etcdadm-version", "3.5.17"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    );
    let id = azure_identity(&cfg(&server)).await.unwrap();
    assert_eq!(
        id,
        AzureIdentity {
            subscription_id: Some("8d10da13-8125-4ba9-a717-bf7490507b3d".into()),
            resource_group: Some("etcd-rg".into()),
            scale_set: Some("etcd".into()),
        }
    );
}

/// Which tags become settings is decided by bootstrap's metadata layer against
/// `allowed-keys` (tested there, `azure_tags_become_settings_only_when_their_key_is_in_allowed_keys`);
/// here: all tags arrive as attributes under their own names, and the azure source has the
/// same default allow-list as the others.
#[tokio::test]
async fn tags_arrive_as_attributes_under_the_shared_default_allow_list() {
    let mut server = server().await;
    imds(&mut server, DOCUMENT).await;
    not_found_otherwise(&mut server).await;
    let md = fetch(&cfg(&server)).await.unwrap();
    assert!(md.attributes.contains_key("etcdadm-data-dir"), "{:?}", md.attributes);
    let cfg = crate::metadata::MetadataConfig::Azure(AzureConfig::default());
    assert_eq!(cfg.allowed_keys(), crate::metadata::DEFAULT_ALLOWED_KEYS);
}

#[tokio::test]
async fn requests_carry_the_metadata_header_that_imds_requires() {
    // IMDS answers 400 to a request without `Metadata: true`; the mock does the same, and
    // must never be hit.
    let mut server = server().await;
    let refused = server
        .mock("GET", Matcher::Any)
        .match_header("metadata", Matcher::Missing)
        .with_status(400)
        .with_body(r#"{"error":"Bad request. Required metadata header not specified"}"#)
        .expect(0)
        .create_async()
        .await;
    let forwarded = server
        .mock("GET", Matcher::Any)
        .match_header("x-forwarded-for", Matcher::Any)
        .with_status(400)
        .expect(0)
        .create_async()
        .await;
    imds(&mut server, DOCUMENT).await;
    not_found_otherwise(&mut server).await;
    fetch(&cfg(&server)).await.unwrap();
    refused.assert_async().await;
    forwarded.assert_async().await;
}

#[tokio::test]
async fn a_missing_vm_id_is_invalid_and_missing_optional_fields_are_none() {
    let mut server = server().await;
    imds(&mut server, r#"{"compute": {"name": "etcd_0"}, "network": {}}"#).await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("compute.vmId") && !err.is_retryable(), "{err}");

    let mut server = crate::metadata::test_support::server().await;
    imds(&mut server, r#"{"compute": {"vmId": "v-1", "zone": "", "tagsList": []}}"#).await;
    let md = fetch(&cfg(&server)).await.unwrap();
    assert_eq!(md.instance_id, "v-1");
    assert_eq!((md.hostname, md.private_ipv4, md.private_ipv6), (None, None, None));
    assert_eq!((md.region, md.availability_zone), (None, None));
    assert!(md.attributes.is_empty());
    assert_eq!(azure_identity(&cfg(&server)).await.unwrap(), AzureIdentity::default());
}

#[tokio::test]
async fn garbage_and_wrongly_typed_answers_are_invalid_naming_the_url() {
    for body in [
        "<html>captive portal</html>",
        "{\"compute\":",
        r#"{"compute": {"vmId": 42}}"#,
        r#"{"compute": {"vmId": "v", "tagsList": {"a": "b"}}}"#,
        r#"{"compute": {"vmId": "v"}, "network": {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": "fd00::1"}]}}]}}"#,
        r#"{"compute": {"vmId": "v"}, "network": {"interface": [{"ipv6": {"ipAddress": [{"privateIpAddress": "10.0.0.1"}]}}]}}"#,
    ] {
        let mut server = server().await;
        imds(&mut server, body).await;
        let err = fetch(&cfg(&server)).await.unwrap_err();
        assert!(matches!(err, MetadataError::Invalid { .. }), "{body}: {err}");
        assert!(err.to_string().contains("/metadata/instance?api-version=2021-02-01"), "{err}");
    }
}

#[tokio::test]
async fn hostile_tags_are_bounded_in_number_and_length() {
    let tag = |n: &str, v: &str| format!(r#"{{"name":"{n}","value":"{v}"}}"#);
    let many: Vec<String> = (0..=MAX_TAGS).map(|i| tag(&format!("t{i}"), "x")).collect();
    let mut server = server().await;
    imds(&mut server, &format!(r#"{{"compute":{{"vmId":"v","tagsList":[{}]}}}}"#, many.join(",")))
        .await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(err.to_string().contains("more than the 50"), "{err}");

    let long = [
        tag("etcdadm-version", &"9".repeat(257)),
        tag(&format!("etcdadm-{}", "k".repeat(600)), "1"),
        tag("", "x"),
        tag("etcdadm-cluster-size", "3"),
    ];
    let mut server = crate::metadata::test_support::server().await;
    imds(&mut server, &format!(r#"{{"compute":{{"vmId":"v","tagsList":[{}]}}}}"#, long.join(",")))
        .await;
    let md = fetch(&cfg(&server)).await.unwrap();
    assert_eq!(md.attributes.keys().collect::<Vec<_>>(), ["etcdadm-cluster-size"]);
}

#[tokio::test]
async fn an_oversized_answer_is_cut_at_one_mib_and_a_silent_server_times_out() {
    let mut server = server().await;
    let huge = format!(r#"{{"compute":{{"vmId":"v","name":"{}"}}}}"#, "x".repeat(2 << 20));
    imds(&mut server, &huge).await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(err.to_string().contains("larger than 1 MiB"), "{err}");

    let (_listener, url) = silent_url();
    let started = std::time::Instant::now();
    let err = fetch(&AzureConfig { base_url: url, timeout_seconds: 1, ..Default::default() })
        .await
        .unwrap_err();
    assert!(matches!(err, MetadataError::Unreachable { .. }) && err.is_retryable(), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn imds_throttling_and_server_errors_are_retryable() {
    for status in [429, 500, 503] {
        let mut server = server().await;
        always(server.mock("GET", Matcher::Any).with_status(status)).create_async().await;
        let err = fetch(&cfg(&server)).await.unwrap_err();
        assert!(matches!(err, MetadataError::Status { .. }) && err.is_retryable(), "{err}");
    }
}
