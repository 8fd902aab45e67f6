//! The `gce-labels` provider: the provisioning, staging and running instances that carry the
//! label `label-key` = `label-value`, in `zones` (default: this instance's zone), by primary
//! internal IPv4 address, named by instance name.
//!
//! One attempt is one paginated `instances.list` per zone with `filter=labels.KEY = "VALUE"`
//! (permission `compute.instances.list`). Nothing is cached: the label is the membership.
//! A label has no intended size, so the set has no `expected` (`bootstrap.cluster-size` must
//! be set), and it is not authoritative: whoever may label an instance could add to it, so
//! departed members are removed only with `remove-departed-members: true`. The answer is
//! checked, not trusted: an instance counts only if the answer shows it carrying the label
//! with a member status and an IPv4.

use super::{is_location, zone_or_own, Client, Instance, Page};
use crate::discovery::{DiscoveryContext, DiscoveryError, PeerSet};
use reqwest::Method;

const PROVIDER: &str = "gce-labels";
/// Zones of one `gce-labels` setting at most.
const MAX_ZONES: usize = 20;

pub(in crate::discovery) struct Settings<'a> {
    pub label_key: &'a str,
    pub label_value: &'a str,
    pub project: Option<&'a str>,
    pub zones: &'a [String],
    pub endpoint: Option<&'a str>,
    pub metadata_url: Option<&'a str>,
    pub max_requests_per_second: f64,
}

/// A label key or value as GCE allows it: at most 63 lower-case letters, digits, '_' and
/// '-'; a key starts with a lower-case letter, a value may be empty (refused here: the
/// setting is required). (GCE also allows international lower-case letters; this provider
/// takes ASCII only, as they go into a filter.)
fn check_label(key: &str, s: &str) -> Result<(), DiscoveryError> {
    let err = |what: String| {
        DiscoveryError::Config(format!(
            "gce-labels {key}: {what}; set {key} to the label your etcd instances carry \
             (lower-case letters, digits, '_' and '-', at most 63{})",
            if key == "label-key" { ", starting with a letter" } else { "" }
        ))
    };
    if s.is_empty() {
        return Err(err("is empty".into()));
    }
    if s.chars().count() > 63 {
        return Err(err("is longer than 63 characters, GCE's limit".into()));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(err(format!("{s:?} contains {c:?}")));
    }
    if key == "label-key" && !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(err(format!("{s:?} does not start with a lower-case letter")));
    }
    Ok(())
}

pub(in crate::discovery) fn validate(s: &Settings<'_>) -> Result<(), DiscoveryError> {
    check_label("label-key", s.label_key)?;
    check_label("label-value", s.label_value)?;
    if s.zones.len() > MAX_ZONES {
        return Err(DiscoveryError::Config(format!(
            "gce-labels zones lists {} zones, more than {MAX_ZONES}; list the zones of the etcd instances",
            s.zones.len()
        )));
    }
    if let Some(z) = s.zones.iter().find(|z| !is_location(z)) {
        return Err(DiscoveryError::Config(format!(
            "gce-labels zones: {z:?} is not a zone name such as europe-west1-b; fix zones"
        )));
    }
    super::validate(PROVIDER, s.project, s.endpoint, s.metadata_url, s.max_requests_per_second)
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Instances {
    items: Vec<Instance>,
    next_page_token: Option<String>,
}

impl Page for Instances {
    type Item = Instance;
    fn into_parts(self) -> (Vec<Instance>, Option<String>) {
        (self.items, self.next_page_token)
    }
}

pub(in crate::discovery) async fn discover(
    s: &Settings<'_>,
    ctx: &DiscoveryContext,
) -> Result<PeerSet, DiscoveryError> {
    validate(s)?;
    let zones: Vec<String> = if s.zones.is_empty() {
        vec![zone_or_own(PROVIDER, "zones", None, ctx.gce.zone.as_deref())?]
    } else {
        s.zones.to_vec()
    };
    let client = Client::new(&ctx.gce, s.endpoint, s.metadata_url, s.max_requests_per_second)?;
    let project = client.project(PROVIDER, s.project).await?;
    // Both checked to be [a-z0-9_-]: nothing to quote.
    let filter = format!("labels.{} = \"{}\"", s.label_key, s.label_value);
    let mut peers = Vec::new();
    for zone in &zones {
        let items: Vec<Instance> = client
            .pages::<Instances>(
                "instances.list",
                Method::GET,
                &project,
                &["zones", zone, "instances"],
                &[("filter", &filter)],
            )
            .await?;
        peers.extend(
            items
                .iter()
                .filter(|i| i.is_member())
                .filter(|i| i.labels.get(s.label_key).map(String::as_str) == Some(s.label_value))
                .filter_map(Instance::peer),
        );
    }
    Ok(PeerSet::new(peers, None, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings<'a>(k: &'a str, v: &'a str, zones: &'a [String]) -> Settings<'a> {
        Settings {
            label_key: k,
            label_value: v,
            project: None,
            zones,
            endpoint: None,
            metadata_url: None,
            max_requests_per_second: 5.0,
        }
    }

    #[test]
    fn gce_labels_keys_and_values_follow_gce_label_rules_and_errors_name_the_key() {
        validate(&settings("etcd-cluster", "prod_1", &[])).unwrap();
        validate(&settings(&"k".repeat(63), &"v".repeat(63), &["europe-west1-b".into()])).unwrap();
        for (k, v, says) in [
            ("", "prod", "gce-labels label-key: is empty"),
            ("etcd", "", "gce-labels label-value: is empty"),
            ("Etcd", "prod", "label-key: \"Etcd\" contains 'E'"),
            ("1etcd", "prod", "label-key: \"1etcd\" does not start with a lower-case letter"),
            ("etcd", "pr\"od", "label-value: \"pr\\\"od\" contains '\"'"),
            ("etcd", "a b", "contains ' '"),
            ("etcd", &"v".repeat(64), "label-value: is longer than 63"),
        ] {
            let e = validate(&settings(k, v, &[])).unwrap_err();
            let msg = e.to_string();
            assert!(!e.is_retryable() && msg.contains(says) && msg.contains("set label-"), "{msg}");
        }
        let e = validate(&settings("etcd", "prod", &["zone/../x".into()])).unwrap_err();
        assert!(e.to_string().contains("gce-labels zones"), "{e}");
    }
}
