//! The AWS providers, one module each, and what they share: signed Query API calls
//! (`query`), their XML answers (`xml`), the process's rate limiter and caches
//! ([`AwsDiscoveryState`]), the settings both take (`region`, `endpoint`,
//! `max-requests-per-second`) and the paginated, filtered `ec2:DescribeInstances`.
//!
//! `aws-asg` (here): the instances of an EC2 Auto Scaling group that are in service or
//! being launched, by private IPv4 address. `aws-tags` (`tags`): the pending and running
//! instances that carry one tag key/value.
//!
//! Calls of `aws-asg` (IAM actions the instance role needs):
//! `autoscaling:DescribeAutoScalingInstances` (once per process, only when no group is
//! configured), `autoscaling:DescribeAutoScalingGroups` (once per attempt) and
//! `ec2:DescribeInstances` (only for instances whose address this process has not learned
//! yet), all together at most `max-requests-per-second` across the process. What "the
//! process" learned and how fast it calls live in one [`AwsDiscoveryState`], which the
//! process creates once and passes in (in its `DiscoveryContext`); both providers share it. A
//! throttled or failed call ends the attempt with a retryable error; the caller retries with
//! backoff.

mod query;
pub(super) mod tags;
mod xml;

use super::{DiscoveryContext, DiscoveryError, Peer, PeerSet};
use crate::net::Host;
/// The pace of a process's cloud API calls, also used by `azure-vmss`.
pub(super) use query::RateLimiter;
use query::{QueryClient, Service};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

/// Auto Scaling lifecycle states of the instances that are meant to be members: in service,
/// or launching (`Pending:Wait` is a launch lifecycle hook, possibly the one running us).
const MEMBER_LIFECYCLE_STATES: &[&str] =
    &["Pending", "Pending:Wait", "Pending:Proceed", "InService"];
/// EC2 states of instances that can be members.
const MEMBER_EC2_STATES: &[&str] = &["pending", "running"];
/// DescribeInstances filter values per call (the API allows 200).
const IDS_PER_CALL: usize = 100;
/// Pages of one DescribeInstances before giving up on an endpoint that never stops paging.
const MAX_PAGES: usize = 50;

/// An AWS region name (`eu-west-1`, `us-gov-west-1`, `cn-north-1`) is at most this long.
const MAX_REGION_LEN: usize = 32;

pub(super) struct Settings<'a> {
    pub region: Option<&'a str>,
    pub group: Option<&'a str>,
    pub endpoint: Option<&'a str>,
    pub max_requests_per_second: f64,
}

/// The checks of the settings every AWS provider takes; `provider` names it in the errors.
pub(super) fn validate(
    provider: &str,
    endpoint: Option<&str>,
    max_requests_per_second: f64,
) -> Result<(), DiscoveryError> {
    super::check_rate(provider, max_requests_per_second)?;
    if let Some(e) = endpoint {
        let ok = url::Url::parse(e)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !ok {
            let service = if provider == "aws-asg" { "autoscaling" } else { "ec2" };
            return Err(DiscoveryError::Config(format!(
                "{provider} endpoint {e:?} is not an http(s) URL such as https://{service}.eu-west-1.amazonaws.com"
            )));
        }
    }
    Ok(())
}

/// The region the calls go to and are signed for: the setting, else this instance's (from
/// its metadata). It becomes the host name of the default endpoints, so it must look like a
/// region name: lower-case letters, digits and '-', at most 32 characters.
fn region<'a>(
    provider: &str,
    configured: Option<&'a str>,
    ctx: &'a DiscoveryContext,
) -> Result<&'a str, DiscoveryError> {
    let (region, source) = match (configured, ctx.region.as_deref()) {
        (Some(r), _) => (r, "the setting region"),
        (None, Some(r)) => (r, "the instance metadata"),
        (None, None) => {
            return Err(DiscoveryError::Config(format!(
                "{provider} needs a region: set region, or run on EC2 where the instance metadata gives it"
            )))
        }
    };
    let ok = !region.is_empty()
        && region.len() <= MAX_REGION_LEN
        && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(DiscoveryError::Config(format!(
            "{provider} region {region:?} (from {source}) is not an AWS region name such as \
             eu-west-1 (lower-case letters, digits and '-', at most {MAX_REGION_LEN}); set region \
             in the {provider} settings"
        )));
    }
    Ok(region)
}

/// The client of one attempt: the settings checked, the region and credentials found, calls
/// paced by the process's limiter (in `ctx`).
fn client<'a>(
    provider: &str,
    region_setting: Option<&str>,
    endpoint: Option<&str>,
    max_requests_per_second: f64,
    ctx: &'a DiscoveryContext,
) -> Result<QueryClient<'a>, DiscoveryError> {
    validate(provider, endpoint, max_requests_per_second)?;
    let region = region(provider, region_setting, ctx)?;
    let credentials = ctx.credentials.as_ref().ok_or_else(|| {
        DiscoveryError::Config(format!(
            "{provider} needs AWS credentials and none were found; attach an instance profile (IAM role) to the instance"
        ))
    })?;
    QueryClient::new(&ctx.aws.0.limiter, credentials, region, endpoint, max_requests_per_second)
}

pub(super) async fn discover(
    s: &Settings<'_>,
    ctx: &DiscoveryContext,
) -> Result<PeerSet, DiscoveryError> {
    let client = client("aws-asg", s.region, s.endpoint, s.max_requests_per_second, ctx)?;
    let state = &ctx.aws.0;
    let group_name = match s.group {
        Some(g) => g.to_string(),
        None => own_group(state, &client, ctx.instance_id.as_deref()).await?,
    };
    let group = describe_group(&client, &group_name).await?;
    let wanted: Vec<&str> =
        group.instances.iter().filter(|i| is_member(i)).map(|i| i.instance_id.as_str()).collect();
    // Addresses learned earlier in this run need no EC2 call: an instance keeps its primary
    // private IPv4 for its whole life. Only instances not seen yet are looked up.
    let ec2_url = client.url(Service::Ec2).to_string();
    let unknown: Vec<&str> = {
        let cache = state.address_of_instance.lock().unwrap_or_else(|p| p.into_inner());
        wanted
            .iter()
            .copied()
            .filter(|id| !cache.contains_key(&(ec2_url.clone(), id.to_string())))
            .collect()
    };
    if !unknown.is_empty() {
        let instances = describe_instances_by_id(&client, &unknown).await?;
        let found = peers(&unknown, &instances);
        let mut cache = state.address_of_instance.lock().unwrap_or_else(|p| p.into_inner());
        for p in found {
            if let (Some(id), Host::Ip(std::net::IpAddr::V4(ip))) = (p.instance_id, p.host) {
                cache.insert((ec2_url.clone(), id), ip);
            }
        }
    }
    let cache = state.address_of_instance.lock().unwrap_or_else(|p| p.into_inner());
    let known = wanted
        .iter()
        .filter_map(|id| {
            let ip = cache.get(&(ec2_url.clone(), id.to_string()))?;
            Some(Peer {
                name: Some(id.to_string()),
                host: Host::Ip((*ip).into()),
                instance_id: Some(id.to_string()),
            })
        })
        .collect();
    Ok(PeerSet::new(known, Some(group.desired_capacity), true))
}

/// Whether the group counts this instance as one of its members: launching or in service,
/// and not marked unhealthy (the group is about to replace it).
fn is_member(i: &xml::GroupInstance) -> bool {
    MEMBER_LIFECYCLE_STATES.contains(&i.lifecycle_state.as_str()) && i.health_status != "Unhealthy"
}

/// The peers among `wanted` (ids the group lists as members): those EC2 reports pending or
/// running with a private IPv4 address. An instance EC2 does not list yet is left out (the
/// set is then smaller than `expected`; the caller retries).
fn peers(wanted: &[&str], instances: &[xml::Ec2Instance]) -> Vec<Peer> {
    let wanted: BTreeSet<&str> = wanted.iter().copied().collect();
    instances
        .iter()
        .filter(|i| wanted.contains(i.instance_id.as_str()))
        .filter_map(member_peer)
        .collect()
}

/// The peer an instance of an answer is: only when the answer shows it pending or running
/// with a private IPv4 address; named by its instance id.
fn member_peer(i: &xml::Ec2Instance) -> Option<Peer> {
    if !MEMBER_EC2_STATES.contains(&i.state.as_str()) {
        return None;
    }
    let ip: Ipv4Addr = i.private_ip.as_deref()?.parse().ok()?;
    Some(Peer {
        name: Some(i.instance_id.clone()),
        host: Host::Ip(ip.into()),
        instance_id: Some(i.instance_id.clone()),
    })
}

/// What the AWS providers keep for the life of a process: the pace of their AWS calls (one
/// limiter for both) and what `aws-asg` learned from them. The process creates one and passes it to every discovery
/// attempt; clones share it (a fresh value is a fresh process's view).
#[derive(Debug, Clone, Default)]
pub struct AwsDiscoveryState(Arc<StateInner>);

#[derive(Debug, Default)]
struct StateInner {
    /// All calls of the process together at most `max-requests-per-second`.
    limiter: RateLimiter,
    /// Private IPv4 addresses learned, by (EC2 endpoint, instance id), of instances EC2
    /// reported pending or running. An instance keeps the set until its group no longer
    /// lists it as a healthy member; EC2 is not asked about it again.
    address_of_instance: Mutex<BTreeMap<(String, String), Ipv4Addr>>,
    /// Group names already resolved, by (autoscaling endpoint, instance id): an instance
    /// never changes group.
    group_of_instance: Mutex<BTreeMap<(String, String), String>>,
}

/// The group this instance belongs to (its `aws:autoscaling:groupName`), cached for the run.
async fn own_group(
    state: &StateInner,
    client: &QueryClient<'_>,
    instance_id: Option<&str>,
) -> Result<String, DiscoveryError> {
    let id = instance_id.ok_or_else(|| {
        DiscoveryError::Config(
            "aws-asg has no group configured and this machine's instance id is unknown; set group"
                .into(),
        )
    })?;
    let key = (client.url(Service::AutoScaling).to_string(), id.to_string());
    if let Some(g) = state.group_of_instance.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(g.clone());
    }
    const ACTION: &str = "DescribeAutoScalingInstances";
    let body = client.call(Service::AutoScaling, ACTION, &[("InstanceIds.member.1", id)]).await?;
    let listed = xml::describe_auto_scaling_instances(&body)
        .map_err(|e| bad(client, Service::AutoScaling, ACTION, e))?;
    let group = listed.into_iter().find(|(i, _)| i == id).map(|(_, g)| g).ok_or_else(|| {
        DiscoveryError::Config(format!(
            "instance {id} is not in an Auto Scaling group (per {}); set group in the aws-asg settings",
            client.url(Service::AutoScaling)
        ))
    })?;
    state.group_of_instance.lock().unwrap_or_else(|p| p.into_inner()).insert(key, group.clone());
    Ok(group)
}

async fn describe_group(
    client: &QueryClient<'_>,
    name: &str,
) -> Result<xml::Group, DiscoveryError> {
    const ACTION: &str = "DescribeAutoScalingGroups";
    let body = client
        .call(Service::AutoScaling, ACTION, &[("AutoScalingGroupNames.member.1", name)])
        .await?;
    let groups = xml::describe_auto_scaling_groups(&body)
        .map_err(|e| bad(client, Service::AutoScaling, ACTION, e))?;
    groups.into_iter().find(|g| g.name == name).ok_or_else(|| {
        DiscoveryError::Config(format!(
            "Auto Scaling group {name:?} does not exist at {}; check the group name and the region",
            client.url(Service::AutoScaling)
        ))
    })
}

/// DescribeInstances of `ids`, filtered by id and state rather than by `InstanceId.N`, so
/// that an id EC2 does not know yet is left out instead of failing the call.
async fn describe_instances_by_id(
    client: &QueryClient<'_>,
    ids: &[&str],
) -> Result<Vec<xml::Ec2Instance>, DiscoveryError> {
    let mut found = Vec::new();
    for chunk in ids.chunks(IDS_PER_CALL) {
        let filters = [("instance-id", chunk), ("instance-state-name", MEMBER_EC2_STATES)];
        found.extend(describe_instances(client, &filters, None).await?);
    }
    Ok(found)
}

/// The instances that match every filter (`(name, values)`: any of the values), all pages:
/// `NextToken` followed until the answer has none, or repeats the last one, at most
/// [`MAX_PAGES`] pages. `page_size` is sent as `MaxResults` (EC2 takes 5 to 1000).
async fn describe_instances(
    client: &QueryClient<'_>,
    filters: &[(&str, &[&str])],
    page_size: Option<usize>,
) -> Result<Vec<xml::Ec2Instance>, DiscoveryError> {
    const ACTION: &str = "DescribeInstances";
    let mut base: Vec<(String, String)> = Vec::new();
    for (n, (name, values)) in filters.iter().enumerate() {
        base.push((format!("Filter.{}.Name", n + 1), name.to_string()));
        base.extend(
            values
                .iter()
                .enumerate()
                .map(|(v, value)| (format!("Filter.{}.Value.{}", n + 1, v + 1), value.to_string())),
        );
    }
    if let Some(size) = page_size {
        base.push(("MaxResults".into(), size.to_string()));
    }
    let mut found = Vec::new();
    let mut token: Option<String> = None;
    for page_number in 1.. {
        if page_number > MAX_PAGES {
            return Err(bad(
                client,
                Service::Ec2,
                ACTION,
                format!("more than {MAX_PAGES} pages of instances"),
            ));
        }
        let mut params: Vec<(&str, &str)> =
            base.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if let Some(t) = &token {
            params.push(("NextToken", t));
        }
        let body = client.call(Service::Ec2, ACTION, &params).await?;
        let (page, next) =
            xml::describe_instances(&body).map_err(|e| bad(client, Service::Ec2, ACTION, e))?;
        found.extend(page);
        match next {
            Some(t) if Some(&t) != token.as_ref() => token = Some(t),
            _ => break,
        }
    }
    Ok(found)
}

fn bad(
    client: &QueryClient<'_>,
    service: Service,
    action: &'static str,
    detail: String,
) -> DiscoveryError {
    DiscoveryError::BadResponse {
        action,
        endpoint: client.url(service).to_string(),
        service: service.name(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xml::Ec2Instance;

    fn ec2(id: &str, state: &str, ip: Option<&str>) -> Ec2Instance {
        Ec2Instance {
            instance_id: id.into(),
            state: state.into(),
            private_ip: ip.map(Into::into),
            tags: vec![],
        }
    }

    #[test]
    fn peers_are_running_or_pending_wanted_instances_with_an_ipv4() {
        let instances = [
            ec2("i-b", "running", Some("10.0.0.20")),
            ec2("i-a", "pending", Some("10.0.0.3")),
            ec2("i-c", "stopped", Some("10.0.0.4")),
            ec2("i-d", "running", None),
            ec2("i-e", "running", Some("10.0.0.5")),
            ec2("i-f", "running", Some("garbage")),
        ];
        let found = peers(&["i-a", "i-b", "i-c", "i-d", "i-f"], &instances);
        let set = PeerSet::new(found, Some(3), true);
        let shown: Vec<String> = set
            .peers
            .iter()
            .map(|p| format!("{p} {}", p.instance_id.as_deref().unwrap()))
            .collect();
        assert_eq!(shown, ["i-a=10.0.0.3 i-a", "i-b=10.0.0.20 i-b"]);
        assert!(!set.is_complete());
    }

    #[test]
    fn settings_checks() {
        let validate = |e, r| validate("aws-asg", e, r);
        assert!(validate(None, 5.0).is_ok());
        assert!(validate(Some("https://autoscaling.eu-west-1.amazonaws.com"), 0.1).is_ok());
        assert!(validate(None, 0.0).is_err());
        assert!(validate(None, f64::INFINITY).is_err());
        assert!(validate(None, f64::NAN).is_err());
        assert!(validate(None, 1e-300).is_err());
        assert!(validate(Some("autoscaling.eu-west-1.amazonaws.com"), 5.0).is_err());
    }

    #[tokio::test]
    async fn missing_context_is_a_configuration_error() {
        let s = Settings {
            region: None,
            group: Some("etcd"),
            endpoint: None,
            max_requests_per_second: 5.0,
        };
        let e = discover(&s, &DiscoveryContext::default()).await.unwrap_err();
        assert!(!e.is_retryable() && e.to_string().contains("region"), "{e}");
        let ctx = DiscoveryContext { region: Some("eu-west-1".into()), ..Default::default() };
        let e = discover(&s, &ctx).await.unwrap_err();
        assert!(!e.is_retryable() && e.to_string().contains("credentials"), "{e}");
    }

    #[test]
    fn a_region_that_is_no_region_name_is_refused_before_it_becomes_a_host_name() {
        let from_metadata =
            |r: &str| DiscoveryContext { region: Some(r.into()), ..Default::default() };
        let ctx = from_metadata("eu-west-1");
        assert_eq!(region("aws-tags", None, &ctx).unwrap(), "eu-west-1");
        assert_eq!(region("aws-tags", Some("us-gov-west-1"), &ctx).unwrap(), "us-gov-west-1");
        for bad in ["evil.com/x", "eu-west-1.attacker.example", "", "EU-WEST-1", &"a".repeat(33)] {
            let e = region("aws-tags", None, &from_metadata(bad)).unwrap_err();
            let msg = e.to_string();
            assert!(!e.is_retryable() && msg.contains("instance metadata"), "{msg}");
            let e = region("aws-asg", Some(bad), &ctx).unwrap_err().to_string();
            assert!(e.contains("aws-asg region") && e.contains("the setting region"), "{e}");
        }
    }
}
