//! Azure Instance Metadata Service (IMDS): one GET of
//! `/metadata/instance?api-version=2021-02-01` with the header `Metadata: true` (IMDS refuses
//! requests without it, and any request that carries `X-Forwarded-For`; this client never
//! sends one and goes to the address directly, no proxy).
//!
//! Fields read: `compute.vmId` (the instance id, required), `compute.name` (host name),
//! `compute.location` (region), `compute.zone` (availability zone, empty outside zones),
//! `compute.tagsList` (`[{name, value}]`, the operator's tags, as attributes) and the first
//! `network.interface[].ipv4.ipAddress[].privateIpAddress` / `ipv6` address. For the
//! `azure-vmss` discovery provider, [`azure_identity`] reads `compute.subscriptionId`,
//! `compute.resourceGroupName` and `compute.vmScaleSetName` from the same document.
//!
//! Tags are hostile input: whoever may tag the VM writes them. The answer is capped (1 MiB,
//! like every metadata answer), at most [`MAX_TAGS`] tags are accepted, a tag whose name or
//! value is longer than Azure allows is left out with a warning, and only the
//! `etcdadm-<key>` tags whose key is in `allowed-keys` ever become settings (bootstrap's
//! metadata layer).

use super::http::{parse_ip, Http};
use super::{AzureConfig, InstanceMetadata, MetadataError};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;
use serde::Deserialize;
use std::collections::BTreeMap;

#[cfg(test)]
mod mock_tests;

const PROVIDER: &str = "azure";
/// The IMDS API version this client is written against (pinned: newer versions add fields).
pub(crate) const IMDS_API_VERSION: &str = "2021-02-01";
pub(crate) const METADATA_HEADER: HeaderName = HeaderName::from_static("metadata");
/// Azure allows 50 tags per resource; more is not an Azure answer.
pub(super) const MAX_TAGS: usize = 50;
/// Azure's limits: a tag name is at most 512 characters, a value at most 256.
const MAX_TAG_NAME_LEN: usize = 512;
const MAX_TAG_VALUE_LEN: usize = 256;

/// The part of the instance document used here. Every field may be missing or empty.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Document {
    pub compute: Compute,
    pub network: Network,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Compute {
    pub vm_id: String,
    pub name: String,
    pub location: String,
    pub zone: String,
    pub subscription_id: String,
    pub resource_group_name: String,
    pub vm_scale_set_name: String,
    pub tags_list: Vec<Tag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Tag {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Network {
    pub interface: Vec<Interface>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Interface {
    pub ipv4: Addresses,
    pub ipv6: Addresses,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Addresses {
    pub ip_address: Vec<Address>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Address {
    pub private_ip_address: String,
}

/// Where this VM sits in Azure Resource Manager, from IMDS: what `azure-vmss` discovery
/// defaults its settings to. Empty fields are `None` (a VM outside a scale set has no
/// `vmScaleSetName`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AzureIdentity {
    pub subscription_id: Option<String>,
    pub resource_group: Option<String>,
    pub scale_set: Option<String>,
}

/// Reads the instance document once: its URL and the parsed document.
async fn document(cfg: &AzureConfig) -> Result<(Http, String, Document), MetadataError> {
    let http = Http::new(PROVIDER, &cfg.base_url, cfg.timeout_seconds)?;
    let mut url = http.url("metadata/instance", &[]);
    url.query_pairs_mut().append_pair("api-version", IMDS_API_VERSION);
    let header = (METADATA_HEADER, HeaderValue::from_static("true"));
    let reply = http.send(Method::GET, &url, &[header]).await?;
    let shown = reply.url.clone();
    let json = http.raw_text(reply)?;
    let doc = parse_document(&json).map_err(|m| http.invalid(&shown, m))?;
    Ok((http, shown, doc))
}

pub(super) fn parse_document(json: &str) -> Result<Document, String> {
    serde_json::from_str(json)
        .map_err(|e| format!("the instance document is not the expected JSON: {e}"))
}

pub(super) async fn fetch(cfg: &AzureConfig) -> Result<InstanceMetadata, MetadataError> {
    let (http, url, doc) = document(cfg).await?;
    let c = doc.compute;
    let instance_id = c.vm_id.trim().to_string();
    if instance_id.is_empty() {
        return Err(http.invalid(&url, "compute.vmId is missing or empty"));
    }
    let first = |pick: fn(&Interface) -> &Addresses| {
        doc.network
            .interface
            .iter()
            .flat_map(|i| pick(i).ip_address.iter())
            .map(|a| a.private_ip_address.trim())
            .find(|a| !a.is_empty())
    };
    let private_ipv4 = match first(|i| &i.ipv4) {
        Some(ip) => Some(parse_ip(ip).ok_or_else(|| {
            http.invalid(
                &url,
                format!("network ipv4 privateIpAddress {ip:?} is not an IPv4 address"),
            )
        })?),
        None => None,
    };
    let private_ipv6 = match first(|i| &i.ipv6) {
        Some(ip) => Some(parse_ip(ip).ok_or_else(|| {
            http.invalid(
                &url,
                format!("network ipv6 privateIpAddress {ip:?} is not an IPv6 address"),
            )
        })?),
        None => None,
    };
    let attributes = tags(c.tags_list).map_err(|m| http.invalid(&url, m))?;
    Ok(InstanceMetadata {
        provider: PROVIDER,
        instance_id,
        hostname: non_empty(c.name),
        private_ipv4,
        private_ipv6,
        region: non_empty(c.location),
        availability_zone: non_empty(c.zone),
        attributes,
    })
}

/// The tags as attributes: at most [`MAX_TAGS`]; names and values within Azure's limits
/// (others are left out, with a warning naming the tag by its escaped, cut name).
pub(super) fn tags(list: Vec<Tag>) -> Result<BTreeMap<String, String>, String> {
    if list.len() > MAX_TAGS {
        return Err(format!(
            "compute.tagsList has {} tags, more than the {MAX_TAGS} Azure allows on a resource",
            list.len()
        ));
    }
    let mut out = BTreeMap::new();
    for Tag { name, value } in list {
        let fits = !name.is_empty()
            && name.chars().count() <= MAX_TAG_NAME_LEN
            && value.chars().count() <= MAX_TAG_VALUE_LEN;
        if !fits {
            let shown: String = name.chars().take(64).collect();
            tracing::warn!(
                provider = PROVIDER,
                "ignoring instance tag {shown:?}: its name is empty or longer than {MAX_TAG_NAME_LEN} characters, or its value longer than {MAX_TAG_VALUE_LEN}"
            );
            continue;
        }
        out.insert(name, value);
    }
    Ok(out)
}

fn non_empty(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// The subscription, resource group and scale set of this VM, from IMDS (see
/// [`AzureIdentity`]). One attempt, like [`fetch`](super::fetch).
pub async fn azure_identity(cfg: &AzureConfig) -> Result<AzureIdentity, MetadataError> {
    let (_, _, doc) = document(cfg).await?;
    let c = doc.compute;
    Ok(AzureIdentity {
        subscription_id: non_empty(c.subscription_id),
        resource_group: non_empty(c.resource_group_name),
        scale_set: non_empty(c.vm_scale_set_name),
    })
}
