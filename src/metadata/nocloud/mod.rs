//! cloud-init NoCloud seed directory.
//!
//! `meta-data` (YAML) gives `instance-id` and `local-hostname`. Addresses come from the
//! optional `network-config` beside it (version 1 `config:` subnets or version 2
//! `ethernets:`/`bonds:`/`bridges:`/`vlans:` addresses, with or without a top-level
//! `network:`), else from a legacy `network-interfaces` (ENI text) key in `meta-data`. The
//! first static IPv4 and IPv6 addresses in file order are taken.

use super::{InstanceMetadata, MetadataError, NocloudConfig};
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

#[cfg(test)]
mod tests;

const PROVIDER: &str = "nocloud";
/// Largest seed file accepted.
const FILE_LIMIT: usize = 1 << 20;

/// First IPv4 and first IPv6 address found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Addresses {
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

impl Addresses {
    fn add(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                self.v4.get_or_insert(v4);
            }
            IpAddr::V6(v6) => {
                self.v6.get_or_insert(v6);
            }
        }
    }

    fn or(self, other: Addresses) -> Addresses {
        Addresses { v4: self.v4.or(other.v4), v6: self.v6.or(other.v6) }
    }
}

/// What `meta-data` says.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct SeedMetaData {
    pub instance_id: String,
    pub local_hostname: Option<String>,
    /// From a legacy `network-interfaces` key.
    pub addresses: Addresses,
}

pub(super) async fn fetch(cfg: &NocloudConfig) -> Result<InstanceMetadata, MetadataError> {
    let meta_path = cfg.seed_dir.join("meta-data");
    let text = read(&meta_path, true).await?.unwrap_or_default();
    let invalid = |path: &Path| {
        let path = path.to_path_buf();
        move |message| MetadataError::InvalidFile { path, message }
    };
    let meta = parse_meta_data(&text).map_err(invalid(&meta_path))?;

    let net_path = cfg.seed_dir.join("network-config");
    let from_network_config = match read(&net_path, false).await? {
        Some(text) => parse_network_config(&text).map_err(invalid(&net_path))?,
        None => Addresses::default(),
    };
    let addresses = from_network_config.or(meta.addresses);
    Ok(InstanceMetadata {
        provider: PROVIDER,
        instance_id: meta.instance_id,
        hostname: meta.local_hostname,
        private_ipv4: addresses.v4,
        private_ipv6: addresses.v6,
        region: None,
        availability_zone: None,
        attributes: BTreeMap::new(),
    })
}

/// The file's text, or `None` when it does not exist and is not `required`.
async fn read(path: &Path, required: bool) -> Result<Option<String>, MetadataError> {
    let read_err = |source| MetadataError::ReadFile { path: PathBuf::from(path), source };
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let invalid =
        |message: &str| MetadataError::InvalidFile { path: path.into(), message: message.into() };
    if bytes.len() > FILE_LIMIT {
        return Err(invalid("larger than 1 MiB"));
    }
    String::from_utf8(bytes).map(Some).map_err(|_| invalid("not UTF-8 text"))
}

pub(super) fn parse_meta_data(text: &str) -> Result<SeedMetaData, String> {
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let map = match doc {
        Value::Mapping(map) => map,
        Value::Null => Mapping::new(),
        _ => return Err("not a YAML mapping of keys to values".into()),
    };
    let instance_id = scalar(&map, "instance-id")?
        .filter(|s| !s.is_empty())
        .ok_or("no `instance-id:` (cloud-init requires it)")?;
    let local_hostname = scalar(&map, "local-hostname")?.filter(|s| !s.is_empty());
    let addresses = match map.get("network-interfaces") {
        None | Some(Value::Null) => Addresses::default(),
        Some(Value::String(eni)) => parse_eni(eni)?,
        Some(_) => return Err("`network-interfaces:` must be text in interfaces(5) format".into()),
    };
    Ok(SeedMetaData { instance_id, local_hostname, addresses })
}

/// A scalar value as text (`instance-id: 1234` is a number to YAML).
fn scalar(map: &Mapping, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(format!("`{key}:` must be a single value")),
    }
}

/// `address X` lines of interfaces(5) text.
fn parse_eni(text: &str) -> Result<Addresses, String> {
    let mut out = Addresses::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("address") {
            let addr = words.next().unwrap_or("");
            out.add(parse_address(addr, "network-interfaces")?);
        }
    }
    Ok(out)
}

/// `10.0.0.5`, `10.0.0.5/24`, `fd00::5/64`.
fn parse_address(text: &str, place: &str) -> Result<IpAddr, String> {
    super::http::parse_ip(text).ok_or_else(|| format!("{text:?} in `{place}` is not an IP address"))
}

/// Addresses from a `network-config` file, version 1 or 2.
pub(super) fn parse_network_config(text: &str) -> Result<Addresses, String> {
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let doc = match &doc {
        Value::Mapping(m) => match m.get("network") {
            Some(inner @ Value::Mapping(_)) => inner,
            _ => &doc,
        },
        Value::Null => return Ok(Addresses::default()),
        _ => return Err("not a YAML mapping".into()),
    };
    let mut out = Addresses::default();
    // Version 1: `config:` is a list of entries with `subnets:`.
    if let Some(Value::Sequence(entries)) = doc.get("config") {
        for entry in entries {
            let Some(Value::Sequence(subnets)) = entry.get("subnets") else {
                continue;
            };
            for subnet in subnets {
                match subnet.get("address") {
                    Some(Value::String(addr)) => {
                        out.add(parse_address(addr, "config: subnets: address")?)
                    }
                    None | Some(Value::Null) => {}
                    Some(_) => return Err("`address:` of a subnet must be text".into()),
                }
            }
        }
    }
    // Version 2: devices by kind, each with `addresses:`.
    for kind in ["ethernets", "bonds", "bridges", "vlans", "wifis"] {
        let Some(Value::Mapping(devices)) = doc.get(kind) else {
            continue;
        };
        for (_, device) in devices {
            let Some(Value::Sequence(addresses)) = device.get("addresses") else {
                continue;
            };
            for entry in addresses {
                let place = format!("{kind}: addresses");
                match entry {
                    Value::String(addr) => out.add(parse_address(addr, &place)?),
                    // Newer netplan: `- 10.0.0.5/24: {lifetime: 0}`.
                    Value::Mapping(m) if m.len() == 1 => match m.keys().next() {
                        Some(Value::String(addr)) => out.add(parse_address(addr, &place)?),
                        _ => return Err(format!("an entry of `{place}` is not an address")),
                    },
                    _ => return Err(format!("an entry of `{place}` is not an address")),
                }
            }
        }
    }
    Ok(out)
}
