//! OpenStack metadata behaviour against a local mock of the documented API:
//! https://docs.openstack.org/nova/latest/user/metadata.html

use super::*;
use crate::metadata::test_support::{always, not_found_otherwise, server};
use mockito::{Matcher, ServerGuard};

fn cfg(server: &ServerGuard) -> OpenstackConfig {
    OpenstackConfig { base_url: server.url(), timeout_seconds: 2, ..Default::default() }
}

/// Abridged from the Nova documentation's example.
const META_DATA: &str = r#"{
    "random_seed": "yu5ZnkqF2CqnDZVAfZgarG...",
    "uuid": "d8e02d56-2648-49a3-bf97-6be8f1204f38",
    "availability_zone": "nova",
    "keys": [{"data": "ssh-rsa AAAA...", "type": "ssh", "name": "mykey"}],
    "hostname": "etcd-a.novalocal",
    "launch_index": 0,
    "devices": [],
    "meta": {"etcd-cluster": "prod", "priority": "low", "role": "webservers"},
    "public_keys": {"mykey": "ssh-rsa AAAA..."},
    "project_id": "f7ac731cc11f40efbc03a9f9e1d1d21f",
    "name": "etcd-a"
}"#;

#[tokio::test]
async fn reads_meta_data_json_and_ec2_ipv4() {
    let mut server = server().await;
    always(server.mock("GET", "/openstack/latest/meta_data.json").with_body(META_DATA))
        .create_async()
        .await;
    always(server.mock("GET", "/latest/meta-data/local-ipv4").with_body("192.168.0.12\n"))
        .create_async()
        .await;
    not_found_otherwise(&mut server).await;

    let md = fetch(&cfg(&server)).await.unwrap();
    assert_eq!(
        md,
        InstanceMetadata {
            provider: "openstack",
            instance_id: "d8e02d56-2648-49a3-bf97-6be8f1204f38".into(),
            hostname: Some("etcd-a.novalocal".into()),
            private_ipv4: Some("192.168.0.12".parse().unwrap()),
            private_ipv6: None,
            region: None,
            availability_zone: Some("nova".into()),
            attributes: [("etcd-cluster", "prod"), ("priority", "low"), ("role", "webservers")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    );
}

#[tokio::test]
async fn ec2_compatible_ipv4_is_optional() {
    let mut server = server().await;
    let minimal = r#"{"uuid": "u-1", "hostname": null, "availability_zone": ""}"#;
    always(server.mock("GET", "/openstack/latest/meta_data.json").with_body(minimal))
        .create_async()
        .await;
    not_found_otherwise(&mut server).await;

    let md = fetch(&cfg(&server)).await.unwrap();
    assert_eq!(md.instance_id, "u-1");
    assert_eq!((md.hostname, md.private_ipv4, md.availability_zone), (None, None, None));
    assert!(md.attributes.is_empty());
}

#[tokio::test]
async fn meta_data_json_problems() {
    // Missing entirely (not OpenStack, or the metadata service is off).
    let mut server = server().await;
    not_found_otherwise(&mut server).await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Status { status: 404, .. }), "{err}");
    assert!(err.to_string().contains("/openstack/latest/meta_data.json"), "{err}");

    // Not JSON, or without uuid.
    for body in ["<html>captive portal</html>", r#"{"hostname": "x"}"#, r#"{"uuid": " "}"#] {
        let mut server = crate::metadata::test_support::server().await;
        always(server.mock("GET", "/openstack/latest/meta_data.json").with_body(body))
            .create_async()
            .await;
        not_found_otherwise(&mut server).await;
        let err = fetch(&cfg(&server)).await.unwrap_err();
        assert!(matches!(err, MetadataError::Invalid { .. }), "{body}: {err}");
        assert!(!err.is_retryable());
    }

    // Nova not ready yet.
    let mut server = crate::metadata::test_support::server().await;
    always(server.mock("GET", Matcher::Any).with_status(500)).create_async().await;
    assert!(fetch(&cfg(&server)).await.unwrap_err().is_retryable());
}

#[tokio::test]
async fn bad_ipv4_is_invalid() {
    let mut server = server().await;
    always(server.mock("GET", "/openstack/latest/meta_data.json").with_body(META_DATA))
        .create_async()
        .await;
    always(server.mock("GET", "/latest/meta-data/local-ipv4").with_body("192.168.0"))
        .create_async()
        .await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("local-ipv4"), "{err}");
}

#[test]
fn non_string_meta_values_are_kept_as_json() {
    let nova = parse_meta_data(r#"{"uuid": "u", "meta": {"n": 3, "s": "x"}}"#).unwrap();
    let meta = nova.meta.unwrap();
    assert_eq!(meta["n"], serde_json::json!(3));
}
