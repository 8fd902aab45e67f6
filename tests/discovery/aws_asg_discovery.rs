//! The `aws-asg` provider against moto running as a server on 127.0.0.1, one per test.

use crate::moto::MotoServer;
use crate::support::crypto;
use crate::throttle_proxy::{assert_rate, ThrottleProxy};
use backon::{ExponentialBuilder, Retryable};
use etcdadm::discovery::{
    discover, AwsCredentials, AwsDiscoveryState, DiscoveryConfig, DiscoveryContext, DiscoveryError,
    PeerSet,
};
use etcdadm::net::Host;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

pub const REGION: &str = "us-east-1";

pub struct Moto {
    _server: MotoServer,
    pub addr: SocketAddr,
    http: reqwest::Client,
}

impl Moto {
    pub fn start() -> Moto {
        let server = MotoServer::start(IpAddr::V4(Ipv4Addr::LOCALHOST));
        crypto();
        Moto { addr: server.addr, _server: server, http: reqwest::Client::new() }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// A Query API call for setting up the test. moto does not check signatures; it picks the
    /// service from the credential scope, so a well-formed but unsigned Authorization header
    /// is enough (and keeps this independent of the signing code under test).
    pub async fn call(&self, service: &str, action: &str, params: &[(&str, &str)]) -> String {
        let version = if service == "ec2" { "2016-11-15" } else { "2011-01-01" };
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action).append_pair("Version", version);
        for (k, v) in params {
            form.append_pair(k, v);
        }
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20250101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=00"
        );
        let resp = self
            .http
            .post(self.endpoint())
            .header("authorization", auth)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish())
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "moto {action}: {status}: {text}");
        text
    }

    /// A launch template and an Auto Scaling group of `size` instances; the group's instance ids.
    pub async fn create_group(&self, name: &str, size: usize) -> Vec<String> {
        let size = size.to_string();
        self.call(
            "ec2",
            "CreateLaunchTemplate",
            &[
                ("LaunchTemplateName", name),
                ("LaunchTemplateData.ImageId", "ami-12c6146b"),
                ("LaunchTemplateData.InstanceType", "t3.micro"),
            ],
        )
        .await;
        self.call(
            "autoscaling",
            "CreateAutoScalingGroup",
            &[
                ("AutoScalingGroupName", name),
                ("LaunchTemplate.LaunchTemplateName", name),
                ("MinSize", "0"),
                ("MaxSize", "10"),
                ("DesiredCapacity", &size),
                ("AvailabilityZones.member.1", "us-east-1a"),
            ],
        )
        .await;
        let xml = self
            .call(
                "autoscaling",
                "DescribeAutoScalingGroups",
                &[("AutoScalingGroupNames.member.1", name)],
            )
            .await;
        tags(&xml, "InstanceId")
    }

    /// The private IPv4 of each instance, as EC2 reports it.
    pub async fn private_ips(&self, ids: &[String]) -> BTreeSet<(String, IpAddr)> {
        let mut out = BTreeSet::new();
        for id in ids {
            let xml = self.call("ec2", "DescribeInstances", &[("InstanceId.1", id)]).await;
            // The instance's own privateIpAddress is its last one (network interfaces come first).
            let ip = tags(&xml, "privateIpAddress").pop().unwrap().parse().unwrap();
            out.insert((id.clone(), ip));
        }
        out
    }
}

/// The text of every `<tag>` element, in order (enough for moto's flat answers).
pub fn tags(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&format!("</{tag}>")).map(|(v, _)| v.to_string()))
        .collect()
}

fn config(endpoint: &str, group: Option<&str>, rps: f64) -> DiscoveryConfig {
    DiscoveryConfig::AwsAsg {
        region: None,
        group: group.map(Into::into),
        endpoint: Some(endpoint.into()),
        max_requests_per_second: rps,
    }
}

/// The context of one process: `aws` is the rate limiter and caches the process keeps.
fn context(aws: &AwsDiscoveryState, instance_id: Option<&str>) -> DiscoveryContext {
    DiscoveryContext {
        instance_id: instance_id.map(Into::into),
        region: Some(REGION.into()),
        credentials: Some(AwsCredentials {
            access_key_id: "AKIDTESTEXAMPLE".into(),
            secret_access_key: "test-secret-do-not-print".into(),
            session_token: Some("test-token-do-not-print".into()),
            expiration: None,
        }),
        aws: aws.clone(),
        azure: Default::default(),
    }
}

fn members(set: &PeerSet) -> BTreeSet<(String, IpAddr)> {
    set.peers
        .iter()
        .map(|p| {
            assert_eq!(p.name, p.instance_id);
            let Host::Ip(ip) = p.host else { panic!("{p} has no IP") };
            assert!(ip.is_ipv4(), "{p}");
            (p.instance_id.clone().unwrap(), ip)
        })
        .collect()
}

#[tokio::test]
async fn aws_asg_discovery_lists_in_service_instances_by_private_ip() {
    let moto = Moto::start();
    let ids = moto.create_group("etcd", 3).await;
    assert_eq!(ids.len(), 3, "moto launched {ids:?}");
    let other = moto.create_group("web", 2).await;
    let want = moto.private_ips(&ids).await;
    // A recording proxy (nothing throttled) shows which calls discovery makes.
    let proxy = ThrottleProxy::start(moto.addr, |_| false).await;
    // One process's discovery state, shared by every call below.
    let aws = AwsDiscoveryState::default();

    // Group named in the settings.
    let set =
        discover(&config(&proxy.url, Some("etcd"), 50.0), &context(&aws, None)).await.unwrap();
    assert_eq!(members(&set), want);
    assert_eq!((set.expected, set.authoritative, set.is_complete()), (Some(3), true, true));
    assert_eq!(proxy.actions(), ["DescribeAutoScalingGroups", "DescribeInstances"]);
    // Each call is signed so that AWS would accept it: checked by the proxy with an
    // independent SigV4 implementation (a bad one gets 403 SignatureDoesNotMatch).
    let bad: Vec<_> = proxy.calls().into_iter().filter_map(|c| c.bad_signature).collect();
    assert!(bad.is_empty(), "{bad:?}");

    // Group from this instance's membership, looked up once per process.
    let cfg = config(&proxy.url, None, 50.0);
    for _ in 0..2 {
        let again = discover(&cfg, &context(&aws, Some(&ids[1]))).await.unwrap();
        assert_eq!(again, set);
    }
    let actions = proxy.actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "DescribeAutoScalingInstances").count(),
        1,
        "{actions:?}"
    );
    // The cache is the state's, not the process's globals: a fresh state (another
    // process) asks again.
    let again = discover(&cfg, &context(&AwsDiscoveryState::default(), Some(&ids[1]))).await;
    assert_eq!(again.unwrap(), set);
    let actions = proxy.actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "DescribeAutoScalingInstances").count(),
        2,
        "{actions:?}"
    );

    // An instance in standby, and one whose EC2 state is stopped, are not members.
    moto.call(
        "autoscaling",
        "EnterStandby",
        &[
            ("AutoScalingGroupName", "etcd"),
            ("InstanceIds.member.1", &ids[0]),
            ("ShouldDecrementDesiredCapacity", "true"),
        ],
    )
    .await;
    let set = discover(&cfg, &context(&aws, Some(&ids[1]))).await.unwrap();
    assert_eq!(members(&set), want.iter().filter(|(id, _)| *id != ids[0]).cloned().collect());
    assert_eq!(set.expected, Some(2));
    // EC2 is asked about an instance once per run: stopped now, ids[2] stays a peer for
    // this process (its address was learned while it ran) and no DescribeInstances is made...
    moto.call("ec2", "StopInstances", &[("InstanceId.1", &ids[2])]).await;
    let before = proxy.actions().len();
    let set = discover(&cfg, &context(&aws, Some(&ids[1]))).await.unwrap();
    assert_eq!(members(&set).len(), 2);
    assert_eq!(proxy.actions()[before..], ["DescribeAutoScalingGroups"]);
    // ...while a run that sees it for the first time (another endpoint: another cache) leaves
    // the stopped instance out.
    let fresh = discover(&config(&moto.endpoint(), Some("etcd"), 50.0), &context(&aws, None))
        .await
        .unwrap();
    assert_eq!(members(&fresh).into_iter().map(|(id, _)| id).collect::<Vec<_>>(), [ids[1].clone()]);
    assert_eq!((fresh.expected, fresh.is_complete()), (Some(2), false));
    // Once the group marks it unhealthy (it is about to replace it), it leaves every set.
    moto.call(
        "autoscaling",
        "SetInstanceHealth",
        &[("InstanceId", &ids[2]), ("HealthStatus", "Unhealthy")],
    )
    .await;
    let set = discover(&cfg, &context(&aws, Some(&ids[1]))).await.unwrap();
    assert_eq!(members(&set).into_iter().map(|(id, _)| id).collect::<Vec<_>>(), [ids[1].clone()]);

    // The other group is separate.
    let web = discover(&config(&moto.endpoint(), None, 50.0), &context(&aws, Some(&other[0])))
        .await
        .unwrap();
    assert_eq!(members(&web), moto.private_ips(&other).await);

    // Unknown group, and an instance outside any group: configuration errors, not retried.
    for (group, instance) in [(Some("nope"), None), (None, Some("i-0123456789abcdef0"))] {
        let e = discover(&config(&moto.endpoint(), group, 50.0), &context(&aws, instance))
            .await
            .unwrap_err();
        assert!(!e.is_retryable(), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&moto.endpoint()) && msg.contains(group.or(instance).unwrap()),
            "{msg}"
        );
        assert!(!msg.contains("do-not-print"), "{msg}");
    }
}

#[tokio::test]
async fn aws_asg_discovery_throttled_is_retryable_and_a_retry_loop_converges() {
    let moto = Moto::start();
    let ids = moto.create_group("etcd", 3).await;
    let want = moto.private_ips(&ids).await;
    // Every third call throttled, starting with the first: Throttling (Auto Scaling), ok, ok,
    // RequestLimitExceeded (EC2), ok, ok.
    let proxy = ThrottleProxy::start(moto.addr, |n| n % 3 == 1).await;
    let cfg = config(&proxy.url, None, 10.0);
    let ctx = context(&AwsDiscoveryState::default(), Some(&ids[0]));

    let e = discover(&cfg, &ctx).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.aws_code(), Some("Throttling"));
    let msg = e.to_string();
    assert!(
        msg.contains("DescribeAutoScalingInstances")
            && msg.contains(&proxy.url)
            && msg.contains("HTTP 400"),
        "{msg}"
    );
    assert!(!msg.contains("do-not-print") && !format!("{e:?}").contains("do-not-print"), "{e:?}");

    // The caller's loop: backon with jitter and a deadline, retrying what is retryable.
    let seen = Mutex::new(Vec::new());
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_millis(200))
        .with_jitter()
        .without_max_times()
        .with_total_delay(Some(Duration::from_secs(10)));
    let set = (|| discover(&cfg, &ctx))
        .retry(backoff)
        .when(DiscoveryError::is_retryable)
        .notify(|e, _| seen.lock().unwrap().push(e.aws_code().unwrap_or("?").to_string()))
        .await
        .unwrap();
    assert_eq!(members(&set), want);
    assert_eq!(*seen.lock().unwrap(), ["RequestLimitExceeded"]);

    let calls = proxy.calls();
    let shown: Vec<(&str, &str, bool)> =
        calls.iter().map(|c| (c.service.as_str(), c.action.as_str(), c.throttled)).collect();
    assert_eq!(
        shown,
        [
            ("autoscaling", "DescribeAutoScalingInstances", true),
            ("autoscaling", "DescribeAutoScalingInstances", false),
            ("autoscaling", "DescribeAutoScalingGroups", false),
            ("ec2", "DescribeInstances", true),
            // The group name is cached now: two calls per attempt.
            ("autoscaling", "DescribeAutoScalingGroups", false),
            ("ec2", "DescribeInstances", false),
        ]
    );
    // max-requests-per-second 10: no more than 10 calls per second (+1, see assert_rate).
    assert_rate(&calls.iter().collect::<Vec<_>>(), 10.0, "discovery");
}

/// `etcdadm discover --once` of group `etcd` (3 instances in moto) with the `aws-asg`
/// provider behind a recording proxy, `env` its only AWS variables; (exit success, stderr,
/// the access key ids of the calls the proxy saw).
async fn discover_with_env(metadata: &str, env: &[(&str, &str)]) -> (bool, String, Vec<String>) {
    let moto = Moto::start();
    moto.create_group("etcd", 3).await;
    let proxy = ThrottleProxy::start(moto.addr, |_| false).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "state-file: {state}\nadvertise-address: 127.0.0.1\nbootstrap:\n  metadata: {metadata}\n  \
             discovery: {{provider: aws-asg, group: etcd, region: {REGION}, endpoint: '{endpoint}'}}\n",
            state = dir.path().join("state.json").display(),
            endpoint = proxy.url,
        ),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_etcdadm"));
    cmd.args(["discover", "--once", "--deadline-seconds", "30", "--config"]).arg(&config);
    for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().await.expect("run etcdadm discover");
    let keys = proxy.calls().into_iter().map(|c| c.access_key).collect();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned(), keys)
}

#[tokio::test]
async fn aws_asg_discovery_uses_a_complete_environment() {
    let env = [("AWS_ACCESS_KEY_ID", "AKIDFROMENV"), ("AWS_SECRET_ACCESS_KEY", "env-secret")];
    let (ok, stderr, keys) = discover_with_env("{provider: none}", &env).await;
    assert!(ok, "{stderr}");
    assert!(!keys.is_empty() && keys.iter().all(|k| k == "AKIDFROMENV"), "{keys:?}");
}

#[tokio::test]
async fn aws_asg_discovery_with_a_half_set_environment_fails_naming_the_missing_variable() {
    let (ok, stderr, keys) =
        discover_with_env("{provider: none}", &[("AWS_ACCESS_KEY_ID", "AKIDHALF")]).await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"),
        "{stderr}"
    );
    assert!(keys.is_empty(), "AWS was called: {keys:?}");
    let (ok, stderr, keys) =
        discover_with_env("{provider: none}", &[("AWS_SECRET_ACCESS_KEY", "half-secret")]).await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"),
        "{stderr}"
    );
    assert!(!stderr.contains("half-secret") && keys.is_empty(), "{stderr} {keys:?}");
}

/// Without the variables, the instance role's credentials from the (mock) IMDSv2 sign the
/// calls.
#[tokio::test]
async fn aws_asg_discovery_without_environment_signs_with_the_instance_role() {
    crypto();
    let mut imds = mockito::Server::new_async().await;
    let token = "AQAEAFake-Token==";
    imds.mock("PUT", "/latest/api/token").with_body(token).expect_at_least(1).create_async().await;
    let mut get = |path: &str, body: &str| {
        imds.mock("GET", path)
            .match_header("x-aws-ec2-metadata-token", token)
            .with_body(body)
            .expect_at_least(1)
    };
    let role_list = get("/latest/meta-data/iam/security-credentials/", "etcd-node-role\n");
    let role = get(
        "/latest/meta-data/iam/security-credentials/etcd-node-role",
        r#"{"Code":"Success","AccessKeyId":"ASIAFROMROLE","SecretAccessKey":"role-secret","Token":"role-token","Expiration":"2030-01-01T00:00:00Z"}"#,
    );
    let id = get("/latest/meta-data/instance-id", "i-0123456789abcdef0");
    let (role_list, role, id) =
        (role_list.create_async().await, role.create_async().await, id.create_async().await);
    imds.mock("GET", mockito::Matcher::Any).with_status(404).create_async().await;
    let metadata = format!("{{provider: ec2, base-url: '{}', timeout-seconds: 2}}", imds.url());
    let (ok, stderr, keys) = discover_with_env(&metadata, &[]).await;
    assert!(ok, "{stderr}");
    assert!(!keys.is_empty() && keys.iter().all(|k| k == "ASIAFROMROLE"), "{keys:?}");
    for m in [role_list, role, id] {
        m.assert_async().await;
    }
}
