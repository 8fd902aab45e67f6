//! Garbage in, an error (or a value) out, never a panic: every parser of served or seeded
//! text, and the whole HTTP path of each provider, fed arbitrary bodies.

use super::test_support::{always, server};
use super::*;
use mockito::Matcher;
use proptest::prelude::*;

/// Text that looks a little like the documents parsed here, and arbitrary text.
fn documents() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-a-z0-9_:{}\\[\\]\",./ \n|#&*!%@'?]{0,200}",
        proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #[test]
    fn parsers_never_panic(text in documents()) {
        let _ = ec2::parse_credentials(&text);
        let _ = gce::parse_zone(&text);
        let _ = gce::parse_attributes(&text);
        let _ = openstack::parse_meta_data(&text);
        let _ = azure::parse_document(&text);
        let _ = nocloud::parse_meta_data(&text);
        let _ = nocloud::parse_network_config(&text);
        let _ = http::parse_ip::<std::net::IpAddr>(&text);
        let _ = http::lines(&text).count();
    }

    #[test]
    fn yaml_shaped_seeds_never_panic(
        id in "[-a-z0-9 :\\[\\]{}]{0,20}",
        net in "[-a-z0-9 :/.\\[\\]{}\n]{0,80}",
    ) {
        let meta = format!("instance-id: {id}\nnetwork-interfaces: |\n  address {net}\n");
        let _ = nocloud::parse_meta_data(&meta);
        let v1 = format!("version: 1\nconfig:\n  - type: physical\n    subnets:\n      - address: {net}\n");
        let _ = nocloud::parse_network_config(&v1);
        let v2 = format!("version: 2\nethernets:\n  e:\n    addresses: [{net}]\n");
        let _ = nocloud::parse_network_config(&v2);
    }

    /// A credentials document with a broken value never has its secrets quoted back.
    #[test]
    fn credential_errors_never_quote_values(secret in "[A-Za-z0-9/+]{8,40}", cut in 0usize..200) {
        let doc = format!(
            r#"{{"Code":"Success","AccessKeyId":"AKIA","SecretAccessKey":"{secret}","Token":"{secret}","Expiration":["{secret}"]}}"#
        );
        let doc = &doc[..cut.min(doc.len())];
        if let Err(e) = ec2::parse_credentials(doc) {
            prop_assert!(!e.contains(&secret), "{}", e);
        }
    }
}

/// Each provider against a server that answers every request with the same garbage.
#[test]
fn garbage_bodies_through_http_never_panic() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let server = std::cell::RefCell::new(rt.block_on(server()));
    let config = ProptestConfig { cases: 24, ..ProptestConfig::default() };
    proptest!(config, |(body in proptest::collection::vec(any::<u8>(), 0..300), status in prop_oneof![Just(200usize), Just(404), Just(401), Just(500)])| {
        let url = {
            let mut server = server.borrow_mut();
            server.reset();
            for method in ["GET", "PUT"] {
                always(
                    server
                        .mock(method, Matcher::Any)
                        .with_status(status)
                        .with_header("metadata-flavor", "Google")
                        .with_body(&body),
                )
                .create();
            }
            server.url()
        };
        rt.block_on(async {
            for cfg in [
                MetadataConfig::Ec2(Ec2Config { base_url: url.clone(), allow_imdsv1: true, timeout_seconds: 2, ..Default::default() }),
                MetadataConfig::Gce(GceConfig { base_url: url.clone(), timeout_seconds: 2, ..Default::default() }),
                MetadataConfig::Openstack(OpenstackConfig { base_url: url.clone(), timeout_seconds: 2, ..Default::default() }),
                MetadataConfig::Azure(AzureConfig { base_url: url.clone(), timeout_seconds: 2, ..Default::default() }),
            ] {
                let _ = fetch(&cfg).await;
            }
            let _ = ec2_role_credentials(&Ec2Config { base_url: url, allow_imdsv1: false, timeout_seconds: 2, ..Default::default() }).await;
        });
    });
}
