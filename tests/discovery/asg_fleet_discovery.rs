//! 50 machines of one Auto Scaling group boot while the group fills, each running
//! `etcdadm discover` (the built binary: the discovery bootstrap runs, with its retries and
//! rounds) against moto behind a proxy that throttles every 5th call and fails every 11th
//! with a 5xx. Every process must end with exactly the group's 50 instances; the calls each
//! made must stay within the bound README.md states ("aws-asg under pressure"), and within
//! its max-requests-per-second.

use crate::aws_asg_discovery::{tags, Moto, REGION};
use crate::throttle_proxy::{assert_rate, Call, Fault, ThrottleProxy};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const GROUP: &str = "etcd";
/// Instances, and processes: one `etcdadm discover` per instance.
const N: usize = 50;
/// The group grows by STEP instances every STEP_PAUSE: G = N / STEP growth steps.
const STEP: usize = 5;
const STEP_PAUSE: Duration = Duration::from_millis(400);
/// max-requests-per-second of every process.
const RPS: f64 = 4.0;
/// The pause between discovery rounds is at least this (bootstrap/preview.rs).
const ROUND_PAUSE_MIN: Duration = Duration::from_secs(1);

fn fault(n: usize) -> Fault {
    if n % 5 == 0 {
        Fault::Throttle
    } else if n % 11 == 3 {
        Fault::BadGateway
    } else if n % 11 == 8 {
        Fault::Internal
    } else {
        Fault::None
    }
}

/// The instance ids of the group, in launch order of the test's view.
async fn group_instances(moto: &Moto) -> Vec<String> {
    let xml = moto
        .call(
            "autoscaling",
            "DescribeAutoScalingGroups",
            &[("AutoScalingGroupNames.member.1", GROUP)],
        )
        .await;
    tags(&xml, "InstanceId")
}

struct Machine {
    instance_id: String,
    access_key: String,
    started: Instant,
    child: tokio::process::Child,
}

/// A machine's configuration: NoCloud metadata gives its instance id (so discovery finds its
/// group by itself), credentials come from the environment, one per process so that the
/// proxy can tell the processes apart.
fn boot(dir: &Path, index: usize, instance_id: &str, endpoint: &str) -> Machine {
    let home = dir.join(format!("m{index}"));
    let seed = home.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(
        seed.join("meta-data"),
        format!("instance-id: {instance_id}\nlocal-hostname: m{index}\n"),
    )
    .unwrap();
    let config = home.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "state-file: {state}\nadvertise-address: 127.0.0.1\nbootstrap:\n  metadata: {{provider: nocloud, seed-dir: {seed}}}\n  cluster-size: {N}\n  \
             deadline-seconds: 150\n  discovery: {{provider: aws-asg, endpoint: '{endpoint}', max-requests-per-second: {RPS}}}\n",
            state = home.join("state.json").display(),
            seed = seed.display(),
        ),
    )
    .unwrap();
    let access_key = format!("AKIDMACHINE{index:04}");
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_etcdadm"))
        .args(["discover", "--output", "json", "--config"])
        .arg(&config)
        .env("AWS_ACCESS_KEY_ID", &access_key)
        .env("AWS_SECRET_ACCESS_KEY", "test-secret-do-not-print")
        .env("AWS_REGION", REGION)
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start etcdadm discover");
    Machine { instance_id: instance_id.to_string(), access_key, started: Instant::now(), child }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_asg_discovery_50_machines_booting_into_a_filling_throttled_group() {
    let moto = Moto::start();
    moto.call(
        "ec2",
        "CreateLaunchTemplate",
        &[
            ("LaunchTemplateName", GROUP),
            ("LaunchTemplateData.ImageId", "ami-12c6146b"),
            ("LaunchTemplateData.InstanceType", "t3.micro"),
        ],
    )
    .await;
    moto.call(
        "autoscaling",
        "CreateAutoScalingGroup",
        &[
            ("AutoScalingGroupName", GROUP),
            ("LaunchTemplate.LaunchTemplateName", GROUP),
            ("MinSize", "0"),
            ("MaxSize", &N.to_string()),
            ("DesiredCapacity", "0"),
            ("AvailabilityZones.member.1", "us-east-1a"),
        ],
    )
    .await;
    let proxy = ThrottleProxy::with_faults(moto.addr, fault).await;
    let dir = tempfile::tempdir().unwrap();

    // The group fills in steps; each new instance boots (its discover starts) as it appears.
    let mut machines: Vec<Machine> = Vec::new();
    let mut growth_steps = 0;
    for size in (STEP..=N).step_by(STEP) {
        moto.call(
            "autoscaling",
            "SetDesiredCapacity",
            &[("AutoScalingGroupName", GROUP), ("DesiredCapacity", &size.to_string())],
        )
        .await;
        growth_steps += 1;
        let ids = group_instances(&moto).await;
        assert_eq!(ids.len(), size, "moto launched {ids:?}");
        for id in ids {
            if !machines.iter().any(|m| m.instance_id == id) {
                machines.push(boot(dir.path(), machines.len(), &id, &proxy.url));
            }
        }
        tokio::time::sleep(STEP_PAUSE).await;
    }
    let ids = group_instances(&moto).await;
    let want: BTreeMap<String, String> = moto
        .private_ips(&ids)
        .await
        .into_iter()
        .map(|(id, ip)| (id, format!("https://{ip}:2380")))
        .collect();
    assert_eq!(want.len(), N);

    // Every machine ends with exactly the group.
    let mut finished = Vec::new();
    for m in machines {
        let out = tokio::time::timeout(Duration::from_secs(170), m.child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("etcdadm discover of {} did not end", m.instance_id))
            .unwrap();
        let elapsed = m.started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "discover on {} failed: {}\n{stderr}",
            m.instance_id,
            out.status
        );
        assert!(!stderr.contains("do-not-print"), "{stderr}");
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        assert_eq!(
            (report["complete"].as_bool(), report["expected"].as_u64()),
            (Some(true), Some(N as u64)),
            "{report}"
        );
        assert_eq!(report["authoritative"], true);
        let peers = report["peers"].as_array().unwrap();
        let got: BTreeMap<String, String> = peers
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["peer-url"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got, want, "peer set of {}", m.instance_id);
        let me: Vec<&str> = peers
            .iter()
            .filter(|p| p["this-machine"] == true)
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(me, [m.instance_id.as_str()]);
        let rounds = report["rounds"].as_u64().unwrap() as usize;
        finished.push((m.access_key, rounds, elapsed));
    }

    // The calls, per process (told apart by their access key id).
    let calls = proxy.calls();
    let mut by_process: BTreeMap<&str, Vec<&Call>> = BTreeMap::new();
    for c in &calls {
        by_process.entry(c.access_key.as_str()).or_default().push(c);
    }
    assert_eq!(by_process.len(), N, "calls came from {:?}", by_process.keys().collect::<Vec<_>>());
    let mut bound_total = 0;
    let mut waited = 0;
    for (key, rounds, elapsed) in &finished {
        let mine = &by_process[key.as_str()];
        let count = |action: &str, refused: bool| {
            mine.iter().filter(|c| c.action == action && c.throttled == refused).count()
        };
        let refused = mine.iter().filter(|c| c.throttled).count();
        let shown: Vec<(&str, bool)> =
            mine.iter().map(|c| (c.action.as_str(), c.throttled)).collect();
        // Its own group is looked up once, addresses once per instance (one DescribeInstances
        // per growth step it saw at most).
        assert_eq!(count("DescribeAutoScalingInstances", false), 1, "{key}: {shown:?}");
        assert!(count("DescribeInstances", false) <= growth_steps, "{key}: {shown:?}");
        let mut asked = std::collections::BTreeSet::new();
        for c in mine.iter().filter(|c| c.action == "DescribeInstances" && !c.throttled) {
            for id in c.filtered_instance_ids() {
                assert!(asked.insert(id), "{key} asked EC2 about {id} again: {shown:?}");
            }
        }
        assert_eq!(asked.len(), N, "{key}");
        assert!(
            shown.iter().all(|(a, _)| [
                "DescribeAutoScalingInstances",
                "DescribeAutoScalingGroups",
                "DescribeInstances"
            ]
            .contains(a)),
            "{key}: {shown:?}"
        );
        // The README's bound: 1 + R + G + 2T.
        let bound = 1 + rounds + growth_steps + 2 * refused;
        assert!(
            mine.len() <= bound,
            "{key}: {} calls > 1 + R {rounds} + G {growth_steps} + 2T {refused}: {shown:?}",
            mine.len()
        );
        bound_total += bound;
        // Rounds are at least ROUND_PAUSE_MIN apart.
        assert!(
            *rounds <= 1 + (elapsed.as_secs_f64() / ROUND_PAUSE_MIN.as_secs_f64()) as usize,
            "{key}: {rounds} rounds in {elapsed:?}"
        );
        if *rounds > 1 {
            waited += 1;
        }
        // The rate, as seen at the proxy.
        assert_rate(mine, RPS, key);
    }
    assert!(calls.len() <= bound_total);
    // The group really filled while machines ran: those booted first saw it incomplete.
    assert!(waited >= STEP, "only {waited} machines saw an incomplete group");
    let refused = calls.iter().filter(|c| c.throttled).count();
    assert!(refused >= calls.len() / 5, "{refused} of {} calls refused", calls.len());
    eprintln!(
        "{} API calls from {N} processes ({refused} refused), bound {bound_total}; rounds per process: {:?}",
        calls.len(),
        finished.iter().map(|f| f.1).collect::<Vec<_>>()
    );
}
