//! GCE metadata server behaviour against a local mock of the documented API:
//! https://cloud.google.com/compute/docs/metadata/querying-metadata

use super::*;
use crate::metadata::test_support::{always, server};
use mockito::{Matcher, Mock, ServerGuard};

fn cfg(server: &ServerGuard) -> GceConfig {
    GceConfig { base_url: server.url(), timeout_seconds: 2, ..Default::default() }
}

/// GET `/computeMetadata/v1/<path>`, only with `Metadata-Flavor: Google`, answered as the
/// real server does (with the header back).
async fn meta(server: &mut ServerGuard, path: &str, body: &str) -> Mock {
    always(
        server
            .mock("GET", format!("/computeMetadata/v1/{path}").as_str())
            .match_header("metadata-flavor", "Google")
            .with_header("metadata-flavor", "Google")
            .with_header("content-type", "application/text")
            .with_body(body),
    )
    .create_async()
    .await
}

/// The server's 404 for anything else, flavored like the real one.
async fn not_found_otherwise(server: &mut ServerGuard) -> Mock {
    always(
        server
            .mock("GET", Matcher::Any)
            .with_status(404)
            .with_header("metadata-flavor", "Google")
            .with_body("Not Found"),
    )
    .create_async()
    .await
}

const ATTRIBUTES: &str =
    r##"{"etcd-cluster":"prod","enable-oslogin":"TRUE","startup-script":"#!/bin/sh\necho hi\n"}"##;

async fn instance(server: &mut ServerGuard) {
    meta(server, "instance/id", "4520031799277581759").await;
    meta(server, "instance/hostname", "etcd-a.c.my-project.internal").await;
    meta(server, "instance/zone", "projects/123456789012/zones/europe-west1-b").await;
    meta(server, "instance/network-interfaces/0/ip", "10.132.0.7").await;
    meta(server, "instance/network-interfaces/0/ipv6s", "2600:1900:4010:1::7\n").await;
    meta(server, "instance/attributes/?recursive=true", ATTRIBUTES).await;
}

#[tokio::test]
async fn reads_instance_with_flavor_header() {
    let mut server = server().await;
    instance(&mut server).await;
    not_found_otherwise(&mut server).await;

    let md = fetch(&cfg(&server)).await.unwrap();
    assert_eq!(
        md,
        InstanceMetadata {
            provider: "gce",
            instance_id: "4520031799277581759".into(),
            hostname: Some("etcd-a.c.my-project.internal".into()),
            private_ipv4: Some("10.132.0.7".parse().unwrap()),
            private_ipv6: Some("2600:1900:4010:1::7".parse().unwrap()),
            region: Some("europe-west1".into()),
            availability_zone: Some("europe-west1-b".into()),
            attributes: [
                ("enable-oslogin", "TRUE"),
                ("etcd-cluster", "prod"),
                ("startup-script", "#!/bin/sh\necho hi\n"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        }
    );
}

#[tokio::test]
async fn requests_without_the_flavor_header_are_never_sent() {
    // The real server answers 403 to a request without the header; make the mock do that
    // and check it is never hit.
    let mut server = server().await;
    let unflavored = server
        .mock("GET", Matcher::Any)
        .match_header("metadata-flavor", Matcher::Missing)
        .with_status(403)
        .expect(0)
        .create_async()
        .await;
    instance(&mut server).await;
    not_found_otherwise(&mut server).await;
    fetch(&cfg(&server)).await.unwrap();
    unflavored.assert_async().await;
}

#[tokio::test]
async fn optional_keys_and_empty_attributes() {
    let mut server = server().await;
    meta(&mut server, "instance/id", "42").await;
    meta(&mut server, "instance/attributes/?recursive=true", "{}").await;
    not_found_otherwise(&mut server).await;

    let md = fetch(&cfg(&server)).await.unwrap();
    assert_eq!(md.instance_id, "42");
    assert_eq!((md.hostname, md.private_ipv4, md.private_ipv6), (None, None, None));
    assert_eq!((md.region, md.availability_zone), (None, None));
    assert!(md.attributes.is_empty());
}

#[tokio::test]
async fn answer_without_flavor_header_is_rejected() {
    // Something else answers on the address (another cloud, a captive proxy).
    let mut server = server().await;
    always(server.mock("GET", "/computeMetadata/v1/instance/id").with_body("42"))
        .create_async()
        .await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::NotGce { .. }), "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("/computeMetadata/v1/instance/id"), "{err}");

    // A wrong value is no better than none, and so is a 404 without the header.
    let mut server = crate::metadata::test_support::server().await;
    always(
        server
            .mock("GET", "/computeMetadata/v1/instance/id")
            .with_header("metadata-flavor", "Microsoft")
            .with_body("42"),
    )
    .create_async()
    .await;
    assert!(matches!(fetch(&cfg(&server)).await.unwrap_err(), MetadataError::NotGce { .. }));

    let mut server = crate::metadata::test_support::server().await;
    meta(&mut server, "instance/id", "42").await;
    always(server.mock("GET", Matcher::Any).with_status(404)).create_async().await;
    assert!(matches!(fetch(&cfg(&server)).await.unwrap_err(), MetadataError::NotGce { .. }));
}

#[tokio::test]
async fn server_errors_are_retryable_even_without_the_header() {
    let mut server = server().await;
    always(server.mock("GET", Matcher::Any).with_status(503)).create_async().await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Status { status: 503, .. }), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn malformed_answers_are_invalid() {
    for (path, body) in [
        ("instance/zone", "europe-west1"),
        ("instance/network-interfaces/0/ip", "not-an-ip"),
        ("instance/network-interfaces/0/ipv6s", "10.0.0.1"),
        ("instance/attributes/?recursive=true", "[1,2]"),
        ("instance/attributes/?recursive=true", "{\"a\":"),
    ] {
        let mut server = server().await;
        meta(&mut server, "instance/id", "42").await;
        meta(&mut server, path, body).await;
        not_found_otherwise(&mut server).await;
        let err = fetch(&cfg(&server)).await.unwrap_err();
        assert!(matches!(err, MetadataError::Invalid { .. }), "{path}: {err}");
        assert!(err.to_string().contains(path.trim_end_matches("?recursive=true")), "{err}");
    }
}

#[tokio::test]
async fn missing_instance_id_is_an_error() {
    let mut server = server().await;
    not_found_otherwise(&mut server).await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Status { status: 404, .. }), "{err}");
}

#[test]
fn zones_and_regions() {
    let zone = |s: &str| parse_zone(s);
    assert_eq!(
        zone("projects/123/zones/us-central1-a"),
        Some(("us-central1".into(), "us-central1-a".into()))
    );
    assert_eq!(
        zone("projects/my-project/zones/us-east4-c\n"),
        Some(("us-east4".into(), "us-east4-c".into()))
    );
    for bad in [
        "",
        "us-east4-c",
        "projects/1/zones/",
        "projects/1/zones/uscentral1",
        "projects/1/zones/a/b-c",
        "projects/1/zones/-a",
        "projects/1/zones/a1-",
        "projects//zones/a1-b",
        "projects/1/regions/us-east4",
    ] {
        assert_eq!(zone(bad), None, "{bad}");
    }
}
