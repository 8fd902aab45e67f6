//! The `gce-mig` provider: the instances of a managed instance group, zonal (`zone`) or
//! regional (`region`), by primary internal IPv4 address, named by instance name.
//!
//! One attempt: `instanceGroupManagers.get` (the group's `targetSize`, the expected size),
//! `instanceGroupManagers.listManagedInstances` (POST, as the API defines it; every page
//! when the group's `listManagedInstancesResults` is `PAGINATED`, one answer with every
//! instance when it is `PAGELESS`, the default),
//! then `instances.get` for each member whose address this process has not learned yet (the
//! list carries no addresses). Regional groups use the `regionInstanceGroupManagers` calls.
//! Like `aws-asg`, the set is complete when it has `targetSize` peers and authoritative: the
//! group is the truth about membership.
//!
//! A managed instance counts when the group is not deleting, abandoning, recreating,
//! stopping or suspending it ([`MEMBER_ACTIONS`]), and its instance is provisioning, staging
//! or running.

use super::{
    is_location, is_resource_name, valid_id, zone_or_own, Client, GceError, Instance, Page,
};
use crate::discovery::{DiscoveryContext, DiscoveryError, Peer, PeerSet};
use reqwest::Method;

/// `currentAction`s of managed instances that are, or are becoming, members.
pub(super) const MEMBER_ACTIONS: &[&str] = &[
    "NONE",
    "CREATING",
    "CREATING_WITHOUT_RETRIES",
    "VERIFYING",
    "REFRESHING",
    "RESTARTING",
    "STARTING",
    "RESUMING",
];

const PROVIDER: &str = "gce-mig";

pub(in crate::discovery) struct Settings<'a> {
    pub project: Option<&'a str>,
    pub zone: Option<&'a str>,
    pub region: Option<&'a str>,
    pub group: Option<&'a str>,
    pub endpoint: Option<&'a str>,
    pub metadata_url: Option<&'a str>,
    pub max_requests_per_second: f64,
}

/// The checks that need no network.
pub(in crate::discovery) fn validate(s: &Settings<'_>) -> Result<(), DiscoveryError> {
    super::validate(PROVIDER, s.project, s.endpoint, s.metadata_url, s.max_requests_per_second)?;
    let group = s.group.ok_or_else(|| {
        DiscoveryError::Config(
            "gce-mig group is not set; set group to the name of the managed instance group the etcd instances belong to".into(),
        )
    })?;
    if !is_resource_name(group) {
        return Err(DiscoveryError::Config(format!(
            "gce-mig group {group:?} is not a managed instance group name (lower-case letters, digits and '-', starting with a letter, at most 63); set group"
        )));
    }
    match (s.zone, s.region) {
        (Some(_), Some(_)) => Err(DiscoveryError::Config(
            "gce-mig has both zone and region; set zone for a zonal group or region for a regional one, not both".into(),
        )),
        (_, Some(r)) if !is_location(r) => Err(DiscoveryError::Config(format!(
            "gce-mig region {r:?} is not a region name such as europe-west1; set region"
        ))),
        (Some(z), _) if !is_location(z) => Err(DiscoveryError::Config(format!(
            "gce-mig zone {z:?} is not a zone name such as europe-west1-b; set zone"
        ))),
        _ => Ok(()),
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manager {
    name: String,
    target_size: Option<u32>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct ManagedInstance {
    /// `https://www.googleapis.com/compute/v1/projects/P/zones/Z/instances/NAME`
    pub instance: String,
    pub id: Option<String>,
    pub instance_status: Option<String>,
    pub current_action: Option<String>,
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ManagedInstances {
    managed_instances: Vec<ManagedInstance>,
    next_page_token: Option<String>,
}

impl Page for ManagedInstances {
    type Item = ManagedInstance;
    fn into_parts(self) -> (Vec<ManagedInstance>, Option<String>) {
        (self.managed_instances, self.next_page_token)
    }
}

/// A managed instance that counts, located: (zone, name), both checked (they become URL
/// path segments).
pub(super) fn member(m: &ManagedInstance) -> Option<(String, String)> {
    let action = m.current_action.as_deref().unwrap_or("NONE");
    if !MEMBER_ACTIONS.contains(&action) {
        return None;
    }
    if m.instance_status.as_deref().is_some_and(|s| !super::MEMBER_STATUSES.contains(&s)) {
        return None;
    }
    let (_, rest) = m.instance.rsplit_once("/zones/")?;
    let (zone, name) = rest.split_once("/instances/")?;
    (is_location(zone) && is_resource_name(name)).then(|| (zone.to_string(), name.to_string()))
}

pub(in crate::discovery) async fn discover(
    s: &Settings<'_>,
    ctx: &DiscoveryContext,
) -> Result<PeerSet, DiscoveryError> {
    validate(s)?;
    let group = s.group.unwrap_or_default();
    let client = Client::new(&ctx.gce, s.endpoint, s.metadata_url, s.max_requests_per_second)?;
    let project = client.project(PROVIDER, s.project).await?;
    let (scope, location, manager_call, list_call) = match s.region {
        Some(r) => (
            "regions",
            r.to_string(),
            "regionInstanceGroupManagers.get",
            "regionInstanceGroupManagers.listManagedInstances",
        ),
        None => (
            "zones",
            zone_or_own(PROVIDER, "zone", s.zone, ctx.gce.zone.as_deref())?,
            "instanceGroupManagers.get",
            "instanceGroupManagers.listManagedInstances",
        ),
    };
    let manager_path = [scope, location.as_str(), "instanceGroupManagers", group];
    let url = client.compute_url(&project, &manager_path, &[]);
    let manager: Manager = client.call(manager_call, Method::GET, &url).await?;
    let target = match manager.target_size {
        Some(n) if manager.name == group => n as usize,
        _ => {
            return Err(GceError::BadResponse {
                call: manager_call,
                url: url.to_string(),
                detail: format!("not the group {group:?} with a targetSize"),
            }
            .into())
        }
    };
    let list_path =
        [scope, location.as_str(), "instanceGroupManagers", group, "listManagedInstances"];
    let managed: Vec<ManagedInstance> = client
        .pages::<ManagedInstances>(list_call, Method::POST, &project, &list_path, &[])
        .await?;
    let mut peers = Vec::new();
    for m in &managed {
        let Some((zone, name)) = member(m) else { continue };
        let id = m.id.clone().filter(|i| valid_id(i));
        let key = id.clone().map(|id| {
            (client.endpoint().to_string(), project.clone(), zone.clone(), name.clone(), id)
        });
        if let Some(ip) = key.as_ref().and_then(|k| client.cached_address(k)) {
            peers.push(Peer {
                name: Some(name.clone()),
                host: crate::net::Host::Ip(ip.into()),
                instance_id: id.clone(),
            });
            continue;
        }
        let url = client.compute_url(&project, &["zones", &zone, "instances", &name], &[]);
        let instance: Instance = match client.call("instances.get", Method::GET, &url).await {
            Ok(i) => i,
            // Listed by the group, not visible yet: left out; the set stays incomplete.
            Err(GceError::Api { status: 404, .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        // The answer must be the instance asked for, and the one the group lists.
        if instance.name != name
            || !instance.is_member()
            || id.as_ref().is_some_and(|i| instance.id.as_ref() != Some(i))
        {
            continue;
        }
        let Some(peer) = instance.peer() else { continue };
        if let (Some(k), Some(ip)) = (key, instance.internal_ipv4()) {
            client.cache_address(k, ip);
        }
        peers.push(peer);
    }
    Ok(PeerSet::new(peers, Some(target), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mi(url: &str, action: Option<&str>, status: Option<&str>) -> ManagedInstance {
        ManagedInstance {
            instance: url.into(),
            id: Some("1".into()),
            instance_status: status.map(Into::into),
            current_action: action.map(Into::into),
        }
    }

    #[test]
    fn managed_instances_count_unless_deleted_abandoned_or_stopped_and_their_urls_are_checked() {
        let u = "https://www.googleapis.com/compute/v1/projects/p/zones/europe-west1-b/instances/etcd-a";
        assert_eq!(
            member(&mi(u, Some("NONE"), Some("RUNNING"))),
            Some(("europe-west1-b".into(), "etcd-a".into()))
        );
        assert!(member(&mi(u, Some("CREATING"), None)).is_some());
        assert!(member(&mi(u, None, Some("STAGING"))).is_some());
        for action in ["DELETING", "ABANDONING", "RECREATING", "STOPPING", "SUSPENDING"] {
            assert!(member(&mi(u, Some(action), Some("RUNNING"))).is_none(), "{action}");
        }
        for status in ["STOPPING", "TERMINATED", "SUSPENDED"] {
            assert!(member(&mi(u, Some("NONE"), Some(status))).is_none(), "{status}");
        }
        for bad in [
            "https://x/projects/p/zones/europe-west1-b/instances/../../evil",
            "https://x/projects/p/zones/e/instances/etcd-a",
            "https://x/projects/p/zones/europe-west1-b/instances/Etcd",
            "etcd-a",
        ] {
            assert!(member(&mi(bad, Some("NONE"), Some("RUNNING"))).is_none(), "{bad}");
        }
    }

    fn settings<'a>(
        zone: Option<&'a str>,
        region: Option<&'a str>,
        group: Option<&'a str>,
    ) -> Settings<'a> {
        Settings {
            project: Some("my-project"),
            zone,
            region,
            group,
            endpoint: None,
            metadata_url: None,
            max_requests_per_second: 5.0,
        }
    }

    #[test]
    fn gce_mig_config_errors_name_the_key_and_what_to_set() {
        validate(&settings(Some("europe-west1-b"), None, Some("etcd"))).unwrap();
        validate(&settings(None, Some("europe-west1"), Some("etcd"))).unwrap();
        for (s, says) in [
            (settings(None, None, None), "gce-mig group is not set; set group"),
            (settings(None, None, Some("Etcd_1")), "gce-mig group \"Etcd_1\""),
            (
                settings(Some("europe-west1-b"), Some("europe-west1"), Some("etcd")),
                "gce-mig has both zone and region; set zone for a zonal group or region",
            ),
            (settings(Some("b/../c1"), None, Some("etcd")), "gce-mig zone"),
            (settings(None, Some("europe"), Some("etcd")), "gce-mig region"),
        ] {
            let e = validate(&s).unwrap_err();
            assert!(!e.is_retryable() && e.to_string().contains(says), "{e}");
        }
    }
}
