//! The `aws-tags` provider: the pending and running EC2 instances that carry one tag key and
//! value, by private IPv4 address, for instances that no Auto Scaling group manages (Terraform,
//! CloudFormation, by hand).
//!
//! One attempt is one `ec2:DescribeInstances` (the one IAM action it needs) with the filters
//! `tag:<key>` = value and `instance-state-name` = pending, running, [`PAGE_SIZE`] instances a
//! page, every page (`NextToken`) one call, paced by the process's limiter like `aws-asg`'s.
//! Nothing is cached: the tag is the membership, and it may change between rounds (the answer
//! carries the addresses anyway). EC2 knows no intended size for a tag, so the set has no
//! `expected` (`bootstrap.cluster-size` must be set, see
//! [`DiscoveryConfig::check_cluster_size`](crate::discovery::DiscoveryConfig::check_cluster_size)),
//! and it is not authoritative: anyone who may tag an instance could add to it or leave it, so
//! departed members are removed only when the operator sets `remove-departed-members: true`.
//!
//! The answer is checked, not trusted: an instance counts only if the answer itself shows it
//! pending or running and carrying the tag, with a private IPv4 address; its instance id
//! becomes the member name only if it is a valid one (`refuse_bad_names`).

use super::{client, describe_instances, member_peer, xml, MEMBER_EC2_STATES};
use crate::discovery::{DiscoveryContext, DiscoveryError, Peer, PeerSet};

/// Instances per DescribeInstances page (`MaxResults`). A page of 100 of moto's or EC2's
/// instances is well under the 8 MiB cap of one answer.
pub(super) const PAGE_SIZE: usize = 100;
/// EC2's limits: a tag key is 1 to 128 characters, a value 0 to 256 (an empty value is
/// refused here: `tag-value` is required).
const MAX_TAG_KEY_LEN: usize = 128;
const MAX_TAG_VALUE_LEN: usize = 256;
/// What a tag key or value may hold besides ASCII letters and digits: the characters EC2
/// documents for tags (`+ - = . _ : / @` and space). `*` and `?` are not among them: in a
/// filter value EC2 reads them as wildcards.
const TAG_EXTRA: &str = " +-=._:/@";

pub(in crate::discovery) struct Settings<'a> {
    pub tag_key: &'a str,
    pub tag_value: &'a str,
    pub region: Option<&'a str>,
    pub endpoint: Option<&'a str>,
    pub max_requests_per_second: f64,
}

/// The checks that need no network: the tag (bounded, characters EC2 allows in tags), the
/// endpoint and the rate.
pub(in crate::discovery) fn validate(
    tag_key: &str,
    tag_value: &str,
    endpoint: Option<&str>,
    max_requests_per_second: f64,
) -> Result<(), DiscoveryError> {
    check_tag_part("tag-key", tag_key, MAX_TAG_KEY_LEN)?;
    check_tag_part("tag-value", tag_value, MAX_TAG_VALUE_LEN)?;
    super::validate("aws-tags", endpoint, max_requests_per_second)
}

fn check_tag_part(key: &str, s: &str, max: usize) -> Result<(), DiscoveryError> {
    let err = |what: String| {
        DiscoveryError::Config(format!(
            "aws-tags {key}: {what}; set {key} to the tag your etcd instances carry"
        ))
    };
    if s.is_empty() {
        return Err(err("is empty".into()));
    }
    if s.chars().count() > max {
        return Err(err(format!("is longer than {max} characters, EC2's limit")));
    }
    if s.trim() != s {
        return Err(err(format!("{s:?} starts or ends with a space")));
    }
    crate::cli::safe_chars::check_chars(s, TAG_EXTRA, &format!("an EC2 tag {}", &key[4..]))
        .map_err(|m| err(format!("{m} ('*' and '?' would be wildcards in EC2's filter)")))
}

/// One attempt: every page of the tagged, pending or running instances.
pub(in crate::discovery) async fn discover(
    s: &Settings<'_>,
    ctx: &DiscoveryContext,
) -> Result<PeerSet, DiscoveryError> {
    validate(s.tag_key, s.tag_value, s.endpoint, s.max_requests_per_second)?;
    let client = client("aws-tags", s.region, s.endpoint, s.max_requests_per_second, ctx)?;
    let tag_filter = format!("tag:{}", s.tag_key);
    let filters =
        [(tag_filter.as_str(), &[s.tag_value][..]), ("instance-state-name", MEMBER_EC2_STATES)];
    let instances = describe_instances(&client, &filters, Some(PAGE_SIZE)).await?;
    Ok(PeerSet::new(peers(s.tag_key, s.tag_value, &instances), None, false))
}

/// The instances of the answer that it shows pending or running, carrying `key` = `value`,
/// with a private IPv4 address (an instance without one yet is left out; a later round sees
/// it). Named by instance id.
fn peers(key: &str, value: &str, instances: &[xml::Ec2Instance]) -> Vec<Peer> {
    instances
        .iter()
        .filter(|i| i.tags.iter().any(|(k, v)| k == key && v == value))
        .filter_map(member_peer)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use xml::Ec2Instance;

    fn ec2(id: &str, state: &str, ip: Option<&str>, tags: &[(&str, &str)]) -> Ec2Instance {
        Ec2Instance {
            instance_id: id.into(),
            state: state.into(),
            private_ip: ip.map(Into::into),
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn peers_are_the_pending_or_running_instances_the_answer_shows_carrying_the_tag() {
        let tag = [("etcd-cluster", "prod")];
        let instances = [
            ec2("i-b", "running", Some("10.0.0.20"), &[("Name", "b"), ("etcd-cluster", "prod")]),
            ec2("i-a", "pending", Some("10.0.0.3"), &tag),
            // An endpoint that ignores the filters: the answer itself decides.
            ec2("i-c", "stopped", Some("10.0.0.4"), &tag),
            ec2("i-d", "running", Some("10.0.0.5"), &[("etcd-cluster", "staging")]),
            ec2("i-e", "running", Some("10.0.0.6"), &[("etcd-cluster-x", "prod")]),
            ec2("i-f", "running", Some("10.0.0.7"), &[]),
            ec2("i-g", "running", None, &tag),
            ec2("i-h", "running", Some("fd00::1"), &tag),
            ec2("i-i", "running", Some("garbage"), &tag),
        ];
        let set = PeerSet::new(peers("etcd-cluster", "prod", &instances), None, false);
        let shown: Vec<String> = set
            .peers
            .iter()
            .map(|p| format!("{p} {}", p.instance_id.as_deref().unwrap()))
            .collect();
        assert_eq!(shown, ["i-a=10.0.0.3 i-a", "i-b=10.0.0.20 i-b"]);
        assert_eq!((set.expected, set.authoritative), (None, false));
    }

    #[test]
    fn tag_settings_are_bounded_and_hold_only_the_characters_ec2_allows_in_tags() {
        let ok = |k: &str, v: &str| validate(k, v, None, 5.0);
        ok("etcd-cluster", "prod").unwrap();
        ok("aws:cloudformation:stack-name", "etcd prod/eu @1+2=3_x.y").unwrap();
        ok(&"k".repeat(128), &"v".repeat(256)).unwrap();
        for (k, v, says) in [
            ("", "prod", "aws-tags tag-key: is empty"),
            ("etcd", "", "aws-tags tag-value: is empty"),
            (&"k".repeat(129), "prod", "tag-key: is longer than 128"),
            ("etcd", &"v".repeat(257), "tag-value: is longer than 256"),
            ("etcd", "pro*", "tag-value: \"pro*\" contains '*'"),
            ("etc?", "prod", "tag-key: \"etc?\" contains '?'"),
            ("etcd", "a\nb", "contains a newline"),
            ("etcd", "a&Filter.9.Name=x", "contains '&'"),
            ("etcd", " prod", "starts or ends with a space"),
            ("étcd", "prod", "tag-key: \"étcd\" contains 'é'"),
        ] {
            let e = ok(k, v).unwrap_err();
            let msg = e.to_string();
            assert!(!e.is_retryable() && msg.contains(says), "{msg}");
            assert!(msg.contains("set tag-"), "{msg}");
        }
        let e = validate("etcd", "prod", Some("ec2.eu-west-1.amazonaws.com"), 5.0).unwrap_err();
        assert!(e.to_string().contains("aws-tags endpoint"), "{e}");
        let e = validate("etcd", "prod", None, 0.0).unwrap_err();
        assert!(e.to_string().contains("aws-tags max-requests-per-second"), "{e}");
    }

    /// An EC2 endpoint that answers every call with one new tagged, running instance and
    /// `next_token(n)` for the n-th call (from 1); the number of calls so far.
    async fn paging_endpoint(
        next_token: fn(usize) -> String,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let count = calls.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::spawn(async move {
                    // The whole request: its head, then Content-Length bytes of form.
                    let mut req = Vec::new();
                    let mut buf = [0u8; 8192];
                    loop {
                        let Ok(got) = conn.read(&mut buf).await else { return };
                        if got == 0 {
                            return;
                        }
                        req.extend_from_slice(&buf[..got]);
                        let text = String::from_utf8_lossy(&req).to_ascii_lowercase();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if req.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                    let body = format!(
                        "<DescribeInstancesResponse><reservationSet><item><instancesSet><item>\
                         <instanceId>i-{n}</instanceId><instanceState><name>running</name></instanceState>\
                         <privateIpAddress>10.0.{}.{}</privateIpAddress>\
                         <tagSet><item><key>etcd-cluster</key><value>prod</value></item></tagSet>\
                         </item></instancesSet></item></reservationSet><nextToken>{}</nextToken>\
                         </DescribeInstancesResponse>",
                        n / 250,
                        n % 250 + 1,
                        next_token(n)
                    );
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(resp.as_bytes()).await;
                });
            }
        });
        (url, calls)
    }

    fn settings(endpoint: &str) -> Settings<'_> {
        Settings {
            tag_key: "etcd-cluster",
            tag_value: "prod",
            region: None,
            endpoint: Some(endpoint),
            max_requests_per_second: 1000.0,
        }
    }

    fn ctx() -> DiscoveryContext {
        DiscoveryContext {
            region: Some("us-east-1".into()),
            credentials: Some(crate::discovery::AwsCredentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "secret".into(),
                session_token: None,
                expiration: None,
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn an_endpoint_that_never_stops_paging_is_refused_after_50_pages() {
        use std::sync::atomic::Ordering;
        let (url, calls) = paging_endpoint(|n| format!("token-{n}")).await;
        let e = discover(&settings(&url), &ctx()).await.unwrap_err();
        let msg = e.to_string();
        assert!(!e.is_retryable(), "{msg}");
        assert!(msg.contains("more than 50 pages") && msg.contains(&url), "{msg}");
        assert_eq!(calls.load(Ordering::SeqCst), super::super::MAX_PAGES);
    }

    #[tokio::test]
    async fn a_repeated_next_token_ends_the_list() {
        use std::sync::atomic::Ordering;
        let (url, calls) = paging_endpoint(|_| "same".into()).await;
        let set = discover(&settings(&url), &ctx()).await.unwrap();
        let ids: Vec<&str> = set.peers.iter().filter_map(|p| p.instance_id.as_deref()).collect();
        assert_eq!(ids, ["i-1", "i-2"]);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn missing_region_or_credentials_are_configuration_errors_naming_aws_tags() {
        let s = Settings {
            tag_key: "etcd-cluster",
            tag_value: "prod",
            region: None,
            endpoint: None,
            max_requests_per_second: 5.0,
        };
        let e = discover(&s, &DiscoveryContext::default()).await.unwrap_err();
        assert!(!e.is_retryable() && e.to_string().contains("aws-tags needs a region"), "{e}");
        let ctx = DiscoveryContext { region: Some("eu-west-1".into()), ..Default::default() };
        let e = discover(&s, &ctx).await.unwrap_err();
        assert!(
            !e.is_retryable() && e.to_string().contains("aws-tags needs AWS credentials"),
            "{e}"
        );
    }
}
