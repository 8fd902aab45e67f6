//! OpenStack Nova metadata service.
//!
//! `/openstack/latest/meta_data.json` gives `uuid` (the instance id), `hostname`,
//! `availability_zone` and `meta` (the operator's key/value settings); the EC2-compatible
//! `/latest/meta-data/local-ipv4` gives the private address when the cloud serves it.
//! Nova has no notion of region in its metadata.

use super::http::{parse_ip, Http};
use super::{InstanceMetadata, MetadataError, OpenstackConfig};
use reqwest::Method;
use serde::Deserialize;
use std::collections::BTreeMap;

#[cfg(test)]
mod mock_tests;

const PROVIDER: &str = "openstack";

/// The part of `meta_data.json` used here.
#[derive(Debug, PartialEq, Deserialize)]
pub(super) struct NovaMetadata {
    pub uuid: String,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    /// Strings in practice; anything else is kept as its JSON text.
    #[serde(default)]
    pub meta: Option<BTreeMap<String, serde_json::Value>>,
}

pub(super) async fn fetch(cfg: &OpenstackConfig) -> Result<InstanceMetadata, MetadataError> {
    let http = Http::new(PROVIDER, &cfg.base_url, cfg.timeout_seconds)?;

    let url = http.url("openstack/latest/meta_data.json", &[]);
    let reply = http.send(Method::GET, &url, &[]).await?;
    let shown = reply.url.clone();
    let json = http.raw_text(reply)?;
    let nova = parse_meta_data(&json).map_err(|m| http.invalid(&shown, m))?;

    let url = http.url("latest/meta-data/local-ipv4", &[]);
    let reply = http.send(Method::GET, &url, &[]).await?;
    let shown = reply.url.clone();
    let private_ipv4 = match http.optional_text(reply)?.filter(|t| !t.is_empty()) {
        Some(text) => Some(
            parse_ip(&text)
                .ok_or_else(|| http.invalid(&shown, format!("{text:?} is not an IPv4 address")))?,
        ),
        None => None,
    };

    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let attributes = nova
        .meta
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect();
    Ok(InstanceMetadata {
        provider: PROVIDER,
        instance_id: nova.uuid,
        hostname: non_empty(nova.hostname),
        private_ipv4,
        private_ipv6: None,
        region: None,
        availability_zone: non_empty(nova.availability_zone),
        attributes,
    })
}

pub(super) fn parse_meta_data(json: &str) -> Result<NovaMetadata, String> {
    let nova: NovaMetadata = serde_json::from_str(json)
        .map_err(|e| format!("meta_data.json is not the expected JSON: {e}"))?;
    if nova.uuid.trim().is_empty() {
        return Err("meta_data.json has an empty uuid".into());
    }
    Ok(nova)
}
