//! EC2 IMDSv2 behaviour against a local mock of the documented API:
//! https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html

use super::*;
use crate::aws_credentials::{resolve, Source};
use crate::metadata::test_support::{always, not_found_otherwise, refused_url, server, silent_url};
use mockito::{Matcher, Mock, ServerGuard};

const TOKEN: &str = "AQAEAFake-Session-Token==";

fn cfg(server: &ServerGuard) -> Ec2Config {
    Ec2Config {
        base_url: server.url(),
        allow_imdsv1: false,
        timeout_seconds: 2,
        ..Default::default()
    }
}

async fn token_mock(server: &mut ServerGuard, token: &str) -> Mock {
    server
        .mock("PUT", "/latest/api/token")
        .match_header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
        .match_header("x-aws-ec2-metadata-token", Matcher::Missing)
        .with_body(token)
        .expect(1)
        .create_async()
        .await
}

/// GET `/latest/meta-data/<key>` answered with `body` when the request carries `token`
/// (or, for `None`, no token header at all).
async fn meta(server: &mut ServerGuard, token: Option<&str>, key: &str, body: &str) -> Mock {
    let header = match token {
        Some(t) => Matcher::Exact(t.into()),
        None => Matcher::Missing,
    };
    always(
        server
            .mock("GET", format!("/latest/meta-data/{key}").as_str())
            .match_header("x-aws-ec2-metadata-token", header)
            .with_body(body),
    )
    .create_async()
    .await
}

const MAC: &str = "0e:49:61:0f:c3:11";

/// A typical instance, all keys readable with `token`.
async fn instance(server: &mut ServerGuard, token: Option<&str>, with_tags: bool) {
    meta(server, token, "instance-id", "i-0123456789abcdef0").await;
    meta(server, token, "local-hostname", "ip-10-0-1-23.eu-west-1.compute.internal").await;
    meta(server, token, "local-ipv4", "10.0.1.23").await;
    meta(server, token, "mac", MAC).await;
    meta(
        server,
        token,
        &format!("network/interfaces/macs/{MAC}/ipv6s"),
        "2a05:d018::23\n2a05:d018::24",
    )
    .await;
    meta(server, token, "placement/region", "eu-west-1").await;
    meta(server, token, "placement/availability-zone", "eu-west-1b").await;
    if with_tags {
        meta(server, token, "tags/instance", "Name\netcd-cluster\nteam:owner").await;
        meta(server, token, "tags/instance/Name", "etcd-a").await;
        meta(server, token, "tags/instance/etcd-cluster", "prod main").await;
        meta(server, token, "tags/instance/team:owner", " infra ").await;
    }
}

fn expected(attributes: &[(&str, &str)]) -> InstanceMetadata {
    InstanceMetadata {
        provider: "ec2",
        instance_id: "i-0123456789abcdef0".into(),
        hostname: Some("ip-10-0-1-23.eu-west-1.compute.internal".into()),
        private_ipv4: Some("10.0.1.23".parse().unwrap()),
        private_ipv6: Some("2a05:d018::23".parse().unwrap()),
        region: Some("eu-west-1".into()),
        availability_zone: Some("eu-west-1b".into()),
        attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

fn assert_no_token(err: &MetadataError) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(TOKEN) && !shown.contains("Fake-Session"), "token leaked: {shown}");
}

#[tokio::test]
async fn imdsv2_token_then_reads_with_it() {
    let mut server = server().await;
    let put = token_mock(&mut server, TOKEN).await;
    instance(&mut server, Some(TOKEN), true).await;
    not_found_otherwise(&mut server).await;

    let md = fetch(&cfg(&server)).await.unwrap();
    assert_eq!(
        md,
        expected(&[("Name", "etcd-a"), ("etcd-cluster", "prod main"), ("team:owner", " infra ")])
    );
    put.assert_async().await;
}

#[tokio::test]
async fn tags_not_exposed_is_an_empty_map() {
    let mut server = server().await;
    token_mock(&mut server, TOKEN).await;
    instance(&mut server, Some(TOKEN), false).await;
    not_found_otherwise(&mut server).await;

    let md = fetch(&cfg(&server)).await.unwrap();
    assert_eq!(md, expected(&[]));
}

#[tokio::test]
async fn optional_keys_may_be_missing() {
    let mut server = server().await;
    token_mock(&mut server, TOKEN).await;
    meta(&mut server, Some(TOKEN), "instance-id", "i-1").await;
    // The primary interface has no IPv6: the mac is there, its ipv6s key is not.
    meta(&mut server, Some(TOKEN), "mac", MAC).await;
    not_found_otherwise(&mut server).await;

    let md = fetch(&cfg(&server)).await.unwrap();
    assert_eq!(md.instance_id, "i-1");
    assert_eq!(
        (md.hostname, md.private_ipv4, md.private_ipv6, md.region, md.availability_zone),
        (None, None, None, None, None)
    );
    assert!(md.attributes.is_empty());
}

#[tokio::test]
async fn expired_token_is_refreshed_once() {
    let mut server = server().await;
    let first = token_mock(&mut server, "old-token").await;
    let second = token_mock(&mut server, TOKEN).await;
    // The old token is refused everywhere (it expired right after the PUT).
    let refused = server
        .mock("GET", Matcher::Any)
        .match_header("x-aws-ec2-metadata-token", "old-token")
        .with_status(401)
        .expect(1)
        .create_async()
        .await;
    instance(&mut server, Some(TOKEN), true).await;
    not_found_otherwise(&mut server).await;

    let md = fetch(&cfg(&server)).await.unwrap();
    assert_eq!(md.instance_id, "i-0123456789abcdef0");
    assert_eq!(md.attributes.len(), 3);
    first.assert_async().await;
    second.assert_async().await;
    refused.assert_async().await;
}

#[tokio::test]
async fn token_refused_after_refresh_is_an_error() {
    let mut server = server().await;
    let put =
        server.mock("PUT", "/latest/api/token").with_body(TOKEN).expect(2).create_async().await;
    always(server.mock("GET", Matcher::Any).with_status(401)).create_async().await;

    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Status { status: 401, .. }), "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("/latest/meta-data/instance-id"), "{err}");
    assert_no_token(&err);
    put.assert_async().await;
}

#[tokio::test]
async fn no_imdsv1_fallback_when_the_token_put_fails() {
    for status in [403, 404, 405] {
        let mut server = server().await;
        server.mock("PUT", "/latest/api/token").with_status(status).create_async().await;
        let reads =
            server.mock("GET", Matcher::Any).with_body("i-v1").expect(0).create_async().await;

        let err = fetch(&cfg(&server)).await.unwrap_err();
        assert!(matches!(err, MetadataError::Imdsv2Token { retryable: false, .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("/latest/api/token") && msg.contains("allow-imdsv1"), "{msg}");
        reads.assert_async().await;

        let err = ec2_role_credentials(&cfg(&server)).await.unwrap_err();
        assert!(matches!(err, MetadataError::Imdsv2Token { .. }), "{err}");
        reads.assert_async().await;
    }
}

#[tokio::test]
async fn imdsv1_fallback_when_allowed() {
    let mut server = server().await;
    let put =
        server.mock("PUT", "/latest/api/token").with_status(404).expect(1).create_async().await;
    instance(&mut server, None, true).await;
    not_found_otherwise(&mut server).await;

    let cfg = Ec2Config { allow_imdsv1: true, ..cfg(&server) };
    let md = fetch(&cfg).await.unwrap();
    assert_eq!(
        md,
        expected(&[("Name", "etcd-a"), ("etcd-cluster", "prod main"), ("team:owner", " infra ")])
    );
    put.assert_async().await;
}

#[tokio::test]
async fn imdsv1_mode_reports_a_401_clearly() {
    let mut server = server().await;
    server.mock("PUT", "/latest/api/token").with_status(403).create_async().await;
    always(server.mock("GET", Matcher::Any).with_status(401)).create_async().await;

    let cfg = Ec2Config { allow_imdsv1: true, ..cfg(&server) };
    let err = fetch(&cfg).await.unwrap_err();
    assert!(matches!(err, MetadataError::Status { status: 401, .. }), "{err}");
    assert!(err.to_string().contains("requires IMDSv2"), "{err}");
}

#[tokio::test]
async fn token_put_server_error_is_retryable() {
    let mut server = server().await;
    server.mock("PUT", "/latest/api/token").with_status(503).create_async().await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Imdsv2Token { retryable: true, .. }), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn malformed_token_is_not_used_or_shown() {
    let mut server = server().await;
    let bad = format!("{TOKEN}\u{1}\u{7f}");
    server.mock("PUT", "/latest/api/token").with_body(&bad).create_async().await;
    let reads = server.mock("GET", Matcher::Any).with_body("x").expect(0).create_async().await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Imdsv2Token { retryable: false, .. }), "{err}");
    assert_no_token(&err);
    reads.assert_async().await;
}

#[tokio::test]
async fn unreachable_and_silent_services_are_retryable() {
    crate::metadata::test_support::crypto();
    let cfg = Ec2Config {
        base_url: refused_url(),
        allow_imdsv1: false,
        timeout_seconds: 1,
        ..Default::default()
    };
    let err = fetch(&cfg).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains(&cfg.base_url), "{err}");

    let (_listener, url) = silent_url();
    let cfg =
        Ec2Config { base_url: url, allow_imdsv1: false, timeout_seconds: 1, ..Default::default() };
    let started = std::time::Instant::now();
    let err = fetch(&cfg).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // With IMDSv1 allowed, the token timeout (the container hop-limit case) falls back,
    // and the reads time out too.
    let cfg = Ec2Config { allow_imdsv1: true, ..cfg };
    let err = fetch(&cfg).await.unwrap_err();
    assert!(matches!(err, MetadataError::Unreachable { .. }), "{err}");
}

#[tokio::test]
async fn missing_instance_id_and_server_errors() {
    let mut server = server().await;
    token_mock(&mut server, TOKEN).await;
    not_found_otherwise(&mut server).await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Status { status: 404, .. }), "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("/latest/meta-data/instance-id"), "{err}");

    let mut server = crate::metadata::test_support::server().await;
    token_mock(&mut server, TOKEN).await;
    meta(&mut server, Some(TOKEN), "instance-id", "i-1").await;
    always(server.mock("GET", "/latest/meta-data/local-hostname").with_status(500))
        .create_async()
        .await;
    not_found_otherwise(&mut server).await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Status { status: 500, .. }), "{err}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn garbage_values_are_invalid_not_panics() {
    let mut server = server().await;
    token_mock(&mut server, TOKEN).await;
    meta(&mut server, Some(TOKEN), "instance-id", "i-1").await;
    meta(&mut server, Some(TOKEN), "local-ipv4", "10.0.1.999").await;
    not_found_otherwise(&mut server).await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("local-ipv4"), "{err}");

    let mut server = crate::metadata::test_support::server().await;
    token_mock(&mut server, TOKEN).await;
    always(
        server
            .mock("GET", "/latest/meta-data/instance-id")
            .with_body([0xff, 0xfe, 0x00, 0x80].as_slice()),
    )
    .create_async()
    .await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Invalid { .. }), "{err}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let mut server = server().await;
    token_mock(&mut server, TOKEN).await;
    let elsewhere =
        server.mock("GET", "/elsewhere").with_body("i-evil").expect(0).create_async().await;
    always(
        server
            .mock("GET", "/latest/meta-data/instance-id")
            .with_status(302)
            .with_header("location", &format!("{}/elsewhere", server.url())),
    )
    .create_async()
    .await;
    let err = fetch(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Status { status: 302, .. }), "{err}");
    elsewhere.assert_async().await;
}

const CREDENTIALS: &str = r#"{
  "Code" : "Success",
  "LastUpdated" : "2026-04-01T10:00:00Z",
  "Type" : "AWS-HMAC",
  "AccessKeyId" : "ASIAEXAMPLEKEYID",
  "SecretAccessKey" : "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY",
  "Token" : "IQoJb3JpZ2luFAKESESSIONTOKEN",
  "Expiration" : "2026-04-01T16:00:00Z"
}"#;

#[tokio::test]
async fn role_credentials() {
    let mut server = server().await;
    token_mock(&mut server, TOKEN).await;
    meta(&mut server, Some(TOKEN), "iam/security-credentials/", "etcd-node-role\n").await;
    meta(&mut server, Some(TOKEN), "iam/security-credentials/etcd-node-role", CREDENTIALS).await;
    not_found_otherwise(&mut server).await;

    let creds = ec2_role_credentials(&cfg(&server)).await.unwrap();
    assert_eq!(
        creds,
        AwsCredentials {
            access_key_id: "ASIAEXAMPLEKEYID".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY".into(),
            session_token: Some("IQoJb3JpZ2luFAKESESSIONTOKEN".into()),
            expiration: Some("2026-04-01T16:00:00Z".into()),
        }
    );
    let shown = format!("{creds:?}");
    assert!(shown.contains("ASIA…"), "{shown}");
    assert!(
        !shown.contains("EXAMPLEKEYID")
            && !shown.contains("SECRETKEY")
            && !shown.contains("FAKESESSIONTOKEN"),
        "{shown}"
    );
}

#[tokio::test]
async fn no_role_attached() {
    let mut server = server().await;
    token_mock(&mut server, TOKEN).await;
    not_found_otherwise(&mut server).await;
    let err = ec2_role_credentials(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::NoIamRole { .. }), "{err}");
    assert!(err.to_string().contains("/latest/meta-data/iam/security-credentials/"), "{err}");
    assert!(err.to_string().contains("instance profile"), "{err}");
}

#[tokio::test]
async fn malformed_credentials_are_not_quoted() {
    let mut server = server().await;
    token_mock(&mut server, TOKEN).await;
    meta(&mut server, Some(TOKEN), "iam/security-credentials/", "role").await;
    // A secret where a string is expected to be an object, and a truncated document.
    let bad = r#"{"AccessKeyId": "AKIA", "SecretAccessKey": ["wJalrSECRETKEY"], "Token": "FAKESESSIONTOKEN"#;
    meta(&mut server, Some(TOKEN), "iam/security-credentials/role", bad).await;
    not_found_otherwise(&mut server).await;
    let err = ec2_role_credentials(&cfg(&server)).await.unwrap_err();
    assert!(matches!(err, MetadataError::Invalid { .. }), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("SECRETKEY") && !shown.contains("FAKESESSIONTOKEN"), "{shown}");
}

#[test]
fn credentials_document_rules() {
    assert!(parse_credentials(CREDENTIALS).is_ok());
    let failed = r#"{"Code": "AssumeRoleUnauthorizedAccess", "Message": "..."}"#;
    let err = parse_credentials(failed).unwrap_err();
    assert!(err.contains("AssumeRoleUnauthorizedAccess"), "{err}");
    let no_token =
        r#"{"Code": "Success", "AccessKeyId": "A", "SecretAccessKey": "S", "Expiration": "E"}"#;
    assert!(parse_credentials(no_token).unwrap_err().contains("Token"));
}

/// The credential rule of `aws_credentials` with this module's instance role lookup.
#[tokio::test]
async fn aws_credentials_resolve_takes_the_instance_role_from_imdsv2_without_environment() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut server = mockito::Server::new_async().await;
    let token = "AQAEAFake-Token==";
    server
        .mock("PUT", "/latest/api/token")
        .match_header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
        .with_body(token)
        .create_async()
        .await;
    server
        .mock("GET", "/latest/meta-data/iam/security-credentials/")
        .match_header("x-aws-ec2-metadata-token", token)
        .with_body("etcd-node-role\n")
        .create_async()
        .await;
    server
        .mock("GET", "/latest/meta-data/iam/security-credentials/etcd-node-role")
        .match_header("x-aws-ec2-metadata-token", token)
        .with_body(
            r#"{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDSKEY",
                "SecretAccessKey":"imds-secret","Token":"imds-token",
                "Expiration":"2026-04-01T16:00:00Z"}"#,
        )
        .create_async()
        .await;
    let imds = Ec2Config {
        base_url: server.url(),
        allow_imdsv1: false,
        timeout_seconds: 2,
        ..Default::default()
    };
    let (c, source) =
        resolve(|_: &str| None, crate::metadata::ec2_role_credentials(&imds)).await.unwrap();
    assert_eq!(source, Source::InstanceRole);
    assert_eq!(
        (c.access_key_id.as_str(), c.secret_access_key.as_str(), c.session_token.as_deref()),
        ("ASIAIMDSKEY", "imds-secret", Some("imds-token"))
    );
}
