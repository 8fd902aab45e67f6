//! The `aws-tags` provider against moto on 127.0.0.1 (one per test), behind the recording,
//! signature-checking and (when asked) throttling proxy of the `aws-asg` tests.

use crate::aws_asg_discovery::{tags, Moto, REGION};
use crate::throttle_proxy::{assert_rate, Call, Fault, ThrottleProxy, TEST_SECRET};
use etcdadm::discovery::{
    discover, AwsCredentials, AwsDiscoveryState, DiscoveryConfig, DiscoveryContext,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

const KEY: &str = "etcd-cluster";
const VALUE: &str = "prod";
/// Instances per DescribeInstances page (src/discovery/aws/tags.rs).
const PAGE_SIZE: usize = 100;

/// Launches `count` instances carrying `tags`; their ids.
async fn run_instances(moto: &Moto, count: usize, tags_: &[(&str, &str)]) -> Vec<String> {
    let count = count.to_string();
    let mut params: Vec<(String, String)> = vec![
        ("ImageId".into(), "ami-12c6146b".into()),
        ("InstanceType".into(), "t3.micro".into()),
        ("MinCount".into(), count.clone()),
        ("MaxCount".into(), count),
    ];
    if !tags_.is_empty() {
        params.push(("TagSpecification.1.ResourceType".into(), "instance".into()));
        for (n, (k, v)) in tags_.iter().enumerate() {
            params.push((format!("TagSpecification.1.Tag.{}.Key", n + 1), k.to_string()));
            params.push((format!("TagSpecification.1.Tag.{}.Value", n + 1), v.to_string()));
        }
    }
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let xml = moto.call("ec2", "RunInstances", &params).await;
    tags(&xml, "instanceId")
}

/// The private IPv4 of each instance, as `https://ip:2380` by instance id.
async fn peer_urls(moto: &Moto, ids: &[String]) -> BTreeSet<(String, String)> {
    moto.private_ips(ids)
        .await
        .into_iter()
        .map(|(id, ip): (String, IpAddr)| (id, format!("https://{ip}:2380")))
        .collect()
}

/// The tagged fleet of the tests: `tagged` instances with etcd-cluster=prod, each launched
/// by itself (moto pages DescribeInstances by reservation, not by instance), and around them
/// instances that must not count: untagged, tagged for another cluster, tagged with another
/// key, and tagged prod but stopped or terminated. The ids of the `tagged` ones.
async fn fleet(moto: &Moto, tagged: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..tagged {
        ids.extend(run_instances(moto, 1, &[(KEY, VALUE), ("Name", "etcd")]).await);
    }
    assert_eq!(ids.len(), tagged);
    run_instances(moto, 2, &[]).await;
    run_instances(moto, 2, &[(KEY, "staging")]).await;
    run_instances(moto, 1, &[("etcd-cluster-old", VALUE)]).await;
    let gone = run_instances(moto, 2, &[(KEY, VALUE)]).await;
    moto.call("ec2", "StopInstances", &[("InstanceId.1", &gone[0])]).await;
    moto.call("ec2", "TerminateInstances", &[("InstanceId.1", &gone[1])]).await;
    ids
}

fn config(endpoint: &str) -> DiscoveryConfig {
    DiscoveryConfig::AwsTags {
        tag_key: KEY.into(),
        tag_value: VALUE.into(),
        region: None,
        endpoint: Some(endpoint.into()),
        max_requests_per_second: 20.0,
    }
}

fn context() -> DiscoveryContext {
    DiscoveryContext {
        instance_id: None,
        region: Some(REGION.into()),
        credentials: Some(AwsCredentials {
            access_key_id: "AKIDTESTEXAMPLE".into(),
            secret_access_key: TEST_SECRET.into(),
            session_token: None,
            expiration: None,
        }),
        aws: AwsDiscoveryState::default(),
        ..Default::default()
    }
}

/// `etcdadm discover --output json` with `bootstrap` (YAML lines, indented by two),
/// credentials from the environment.
async fn discover_json(bootstrap: &str) -> (bool, Value, String) {
    let env = [
        ("AWS_ACCESS_KEY_ID", Some("AKIDTESTEXAMPLE")),
        ("AWS_SECRET_ACCESS_KEY", Some(TEST_SECRET)),
        ("AWS_SESSION_TOKEN", None),
        ("AWS_REGION", None),
    ];
    crate::support::discover_json(60, bootstrap, &env, "do-not-print").await
}

fn tags_discovery(endpoint: &str) -> String {
    format!(
        "  discovery: {{provider: aws-tags, tag-key: {KEY}, tag-value: {VALUE}, region: {REGION}, endpoint: '{endpoint}'}}\n"
    )
}

use crate::support::report_peers;

/// The value of form parameter `key` of a call.
fn param<'a>(c: &'a Call, key: &str) -> Option<&'a str> {
    c.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn aws_tags_discovery_json_lists_exactly_the_running_instances_carrying_the_tag() {
    let moto = Moto::start();
    let ids = fleet(&moto, 3).await;
    let want = peer_urls(&moto, &ids).await;
    let proxy = ThrottleProxy::start(moto.addr, |_| false).await;

    let (ok, report, stderr) =
        discover_json(&format!("  cluster-size: 3\n{}", tags_discovery(&proxy.url))).await;
    assert!(ok, "{stderr}");
    assert_eq!(report_peers(&report), want, "{report}");
    assert_eq!(report["provider"], "aws-tags");
    assert_eq!((report["expected"].as_u64(), report["complete"].as_bool()), (Some(3), Some(true)));
    // Not the truth about membership unless the operator says so.
    assert_eq!(report["authoritative"], false, "{report}");

    // One DescribeInstances per round, filtered by the tag and the state, signed so that AWS
    // would accept it (checked by the proxy's own SigV4 implementation).
    let calls = proxy.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let c = &calls[0];
    assert_eq!((c.service.as_str(), c.action.as_str()), ("ec2", "DescribeInstances"));
    assert_eq!(c.bad_signature, None);
    let filters: Vec<(&str, &str)> = c
        .params
        .iter()
        .filter(|(k, _)| k.starts_with("Filter.") || k == "MaxResults")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        filters,
        [
            ("Filter.1.Name", "tag:etcd-cluster"),
            ("Filter.1.Value.1", "prod"),
            ("Filter.2.Name", "instance-state-name"),
            ("Filter.2.Value.1", "pending"),
            ("Filter.2.Value.2", "running"),
            ("MaxResults", "100"),
        ]
    );

    // remove-departed-members: true makes the same set authoritative.
    let (ok, report, stderr) = discover_json(&format!(
        "  cluster-size: 3\n  remove-departed-members: true\n{}",
        tags_discovery(&proxy.url)
    ))
    .await;
    assert!(ok, "{stderr}");
    assert_eq!((report_peers(&report), &report["authoritative"]), (want, &Value::Bool(true)));
}

#[tokio::test]
async fn aws_tags_discovery_follows_every_page_of_a_set_larger_than_one_page() {
    let moto = Moto::start();
    let n = 2 * PAGE_SIZE + 30;
    let ids = fleet(&moto, n).await;
    let want: BTreeSet<(String, IpAddr)> = moto.private_ips(&ids).await;
    let proxy = ThrottleProxy::start(moto.addr, |_| false).await;

    let set = discover(&config(&proxy.url), &context()).await.unwrap();
    let got: BTreeSet<(String, IpAddr)> = set
        .peers
        .iter()
        .map(|p| {
            assert_eq!(p.name, p.instance_id);
            let etcdadm::net::Host::Ip(ip) = p.host else { panic!("{p} has no IP") };
            (p.instance_id.clone().unwrap(), ip)
        })
        .collect();
    assert_eq!(got.len(), n);
    assert_eq!(got, want);
    assert_eq!((set.expected, set.authoritative), (None, false));

    // Three pages, three calls: the first without a token, each next one with the token of
    // the answer before.
    let calls = proxy.calls();
    let tokens: Vec<Option<&str>> = calls.iter().map(|c| param(c, "NextToken")).collect();
    assert_eq!(tokens.len(), 3, "{calls:?}");
    assert!(tokens[0].is_none() && tokens[1].is_some() && tokens[2].is_some(), "{tokens:?}");
    assert_ne!(tokens[1], tokens[2]);
    assert!(calls.iter().all(|c| param(c, "MaxResults") == Some("100")), "{calls:?}");
    assert!(calls.iter().all(|c| c.bad_signature.is_none()), "{calls:?}");
}

#[tokio::test]
async fn aws_tags_discovery_retries_throttling_and_5xx_and_ends_with_the_tagged_set() {
    let moto = Moto::start();
    // Two pages, so that a refused second page is seen too.
    let n = PAGE_SIZE + 20;
    let ids = fleet(&moto, n).await;
    let want = peer_urls(&moto, &ids).await;
    // Calls 1 (page 1) throttled, 2 (page 1) passed, 3 (page 2) HTTP 500, 4 (page 1) passed,
    // 5 (page 2) HTTP 502 with an HTML body; then every call passes.
    let fault = |n: usize| match n {
        1 => Fault::Throttle,
        3 => Fault::Internal,
        5 => Fault::BadGateway,
        _ => Fault::None,
    };
    let proxy = ThrottleProxy::with_faults(moto.addr, fault).await;

    // One attempt: EC2's throttling answer is a retryable error naming the call and endpoint.
    let e = discover(&config(&proxy.url), &context()).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.aws_code(), Some("RequestLimitExceeded"));
    let msg = e.to_string();
    assert!(msg.contains("DescribeInstances") && msg.contains(&proxy.url), "{msg}");

    // The binary retries (with backoff) until the set is complete.
    let (ok, report, stderr) =
        discover_json(&format!("  cluster-size: {n}\n{}", tags_discovery(&proxy.url))).await;
    assert!(ok, "{stderr}");
    assert_eq!(report_peers(&report), want);
    assert_eq!((report["rounds"].as_u64(), report["attempts"].as_u64()), (Some(1), Some(3)));

    let calls = proxy.calls();
    let shown: Vec<(bool, bool)> =
        calls.iter().map(|c| (c.throttled, param(c, "NextToken").is_some())).collect();
    assert_eq!(
        shown,
        [
            (true, false),
            // the binary: page 1, page 2 refused (500); page 1, page 2 refused (502);
            (false, false),
            (true, true),
            (false, false),
            (true, true),
            // page 1, page 2
            (false, false),
            (false, true),
        ]
    );
    // README's bound, per process: (R + T) * pages = (1 + 2) * 2.
    assert!(calls.len() - 1 <= (1 + 2) * 2);
    assert!(calls.iter().all(|c| c.action == "DescribeInstances" && c.bad_signature.is_none()));
    let binary: Vec<&Call> = calls[1..].iter().collect();
    assert_rate(&binary, 5.0, "etcdadm discover");
}

#[tokio::test]
async fn aws_tags_discovery_config_errors_say_which_key_is_wrong_and_call_no_aws() {
    let moto = Moto::start();
    let proxy = ThrottleProxy::start(moto.addr, |_| false).await;
    let endpoint = &proxy.url;
    for (bootstrap, says) in [
        // No tag-key: the file's key is named.
        (
            format!(
                "  cluster-size: 3\n  discovery: {{provider: aws-tags, tag-value: {VALUE}, region: {REGION}, endpoint: '{endpoint}'}}\n"
            ),
            vec!["bootstrap.discovery", "missing field `tag-key`"],
        ),
        // No cluster-size: named, with the tag and what to set.
        (
            tags_discovery(endpoint),
            vec![
                "bootstrap.cluster-size is not set",
                "aws-tags discovery (tag etcd-cluster=prod)",
                "set bootstrap: cluster-size: N",
            ],
        ),
        // A tag value with an EC2 filter wildcard.
        (
            format!(
                "  cluster-size: 3\n  discovery: {{provider: aws-tags, tag-key: {KEY}, tag-value: 'pr*', region: {REGION}, endpoint: '{endpoint}'}}\n"
            ),
            vec!["aws-tags tag-value", "\"pr*\" contains '*'"],
        ),
    ] {
        let started = std::time::Instant::now();
        let (ok, _, stderr) = discover_json(&bootstrap).await;
        assert!(!ok, "{bootstrap}: {stderr}");
        for s in says {
            assert!(stderr.contains(s), "{bootstrap}: no {s:?} in {stderr}");
        }
        // Refused at once, not retried until the deadline.
        assert!(started.elapsed() < Duration::from_secs(20), "{bootstrap}: {stderr}");
    }
    assert_eq!(proxy.calls().len(), 0, "AWS was called: {:?}", proxy.actions());
}
