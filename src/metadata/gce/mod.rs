//! Google Compute Engine metadata server (`/computeMetadata/v1/`).
//!
//! Every request carries `Metadata-Flavor: Google`, and every answer must carry it back:
//! that is how GCE tells its metadata server from anything else answering on the address.
//!
//! Keys read: `instance/id`, `instance/hostname`, `instance/zone`
//! (`projects/N/zones/Z`; the region is Z without its last `-x`),
//! `instance/network-interfaces/0/ip`, `instance/network-interfaces/0/ipv6s` and
//! `instance/attributes/?recursive=true` (a JSON map). All but `instance/id` are optional.

use super::http::{lines, parse_ip, Http, Reply};
use super::{GceConfig, InstanceMetadata, MetadataError};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;
use std::collections::BTreeMap;

#[cfg(test)]
mod mock_tests;

const PROVIDER: &str = "gce";
const FLAVOR_HEADER: HeaderName = HeaderName::from_static("metadata-flavor");
const FLAVOR: &str = "Google";

pub(super) async fn fetch(cfg: &GceConfig) -> Result<InstanceMetadata, MetadataError> {
    let http = Http::new(PROVIDER, &cfg.base_url, cfg.timeout_seconds)?;
    let gce = Gce { http };

    let (url, reply) = gce.get("instance/id").await?;
    let instance_id = gce.http.text(reply)?;
    if instance_id.is_empty() {
        return Err(gce.http.invalid(&url, "the instance id is empty"));
    }
    let hostname = gce.optional("instance/hostname").await?.map(|t| t.1);
    let (region, availability_zone) = match gce.optional("instance/zone").await? {
        Some((url, zone)) => {
            let (region, zone) = parse_zone(&zone).ok_or_else(|| {
                gce.http.invalid(&url, format!("{zone:?} is not of the form projects/N/zones/ZONE"))
            })?;
            (Some(region), Some(zone))
        }
        None => (None, None),
    };
    let private_ipv4 = match gce.optional("instance/network-interfaces/0/ip").await? {
        Some((url, ip)) => Some(
            parse_ip(&ip)
                .ok_or_else(|| gce.http.invalid(&url, format!("{ip:?} is not an IPv4 address")))?,
        ),
        None => None,
    };
    let private_ipv6 = match gce.optional("instance/network-interfaces/0/ipv6s").await? {
        Some((url, list)) => match lines(&list).next() {
            Some(first) => Some(parse_ip(first).ok_or_else(|| {
                gce.http.invalid(&url, format!("{first:?} is not an IPv6 address"))
            })?),
            None => None,
        },
        None => None,
    };
    let attributes = match gce.optional("instance/attributes/").await? {
        Some((url, json)) => parse_attributes(&json).map_err(|m| gce.http.invalid(&url, m))?,
        None => BTreeMap::new(),
    };
    Ok(InstanceMetadata {
        provider: PROVIDER,
        instance_id,
        hostname,
        private_ipv4,
        private_ipv6,
        region,
        availability_zone,
        attributes,
    })
}

struct Gce {
    http: Http,
}

impl Gce {
    /// GETs `computeMetadata/v1/<key>` and checks the answer's flavor.
    async fn get(&self, key: &str) -> Result<(String, Reply), MetadataError> {
        let mut url = self.http.url(&format!("computeMetadata/v1/{key}"), &[]);
        if key.ends_with('/') {
            url.set_query(Some("recursive=true"));
        }
        let flavor = (FLAVOR_HEADER, HeaderValue::from_static(FLAVOR));
        let reply = self.http.send(Method::GET, &url, &[flavor]).await?;
        // A server error may come from something in between; let the caller retry it.
        if reply.status.is_server_error() {
            return Err(self.http.status_error(&reply));
        }
        if reply.headers.get(&FLAVOR_HEADER).is_none_or(|v| v.as_bytes() != FLAVOR.as_bytes()) {
            return Err(MetadataError::NotGce { url: reply.url });
        }
        Ok((reply.url.clone(), reply))
    }

    /// A value that may be absent (404) or empty; with the URL it came from.
    async fn optional(&self, key: &str) -> Result<Option<(String, String)>, MetadataError> {
        let (url, reply) = self.get(key).await?;
        Ok(self.http.optional_text(reply)?.filter(|v| !v.is_empty()).map(|v| (url, v)))
    }
}

/// `projects/123/zones/europe-west1-b` → (`europe-west1`, `europe-west1-b`).
pub(super) fn parse_zone(text: &str) -> Option<(String, String)> {
    let rest = text.trim().strip_prefix("projects/")?;
    let (project, zone) = rest.split_once("/zones/")?;
    let (region, suffix) = zone.rsplit_once('-')?;
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let ok = !project.is_empty()
        && !project.contains('/')
        && valid(region)
        && valid(suffix)
        && region.contains(|c: char| c.is_ascii_digit());
    ok.then(|| (region.to_string(), zone.to_string()))
}

/// The recursive attributes listing: a JSON object of strings. Other JSON values (GCE
/// serves none) are kept as their JSON text.
pub(super) fn parse_attributes(json: &str) -> Result<BTreeMap<String, String>, String> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
        .map_err(|e| format!("the attributes are not a JSON object: {e}"))?;
    Ok(map
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect())
}
