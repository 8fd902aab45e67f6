//! Cloud instance metadata: who this machine is (instance id, host name, addresses, zone)
//! and the settings its operator attached to it (tags, attributes, meta).
//!
//! One folder per source (`ec2/`, `gce/`, `openstack/`, `nocloud/`, `azure/`), each with its HTTP or
//! file behaviour tested beside it; adding a source touches one folder and one match arm in
//! [`fetch`]. Every request has a timeout, but nothing here retries: callers wrap [`fetch`]
//! with backon and ask [`MetadataError::is_retryable`] which failures are worth another try.
//!
//! Requests go straight to the configured address: no proxy from the environment, no
//! redirects (a redirect could carry the EC2 session token elsewhere).

mod azure;
mod ec2;
mod error;
mod gce;
mod http;
mod nocloud;
mod openstack;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod test_support;

pub use azure::{azure_identity, AzureIdentity};
pub use ec2::{ec2_role_credentials, AwsCredentials};
pub use error::MetadataError;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// The link-local address the EC2, GCE, OpenStack and Azure metadata services answer on.
pub const DEFAULT_METADATA_URL: &str = "http://169.254.169.254";
pub const DEFAULT_NOCLOUD_SEED_DIR: &str = "/var/lib/cloud/seed/nocloud";
/// The keys instance tags and attributes (`etcdadm-<key>`) may set unless the configuration
/// file lists others in `allowed-keys`: harmless choices only. Never a URL, digest, path,
/// endpoint, image or scheduling setting: whoever may tag an instance must not choose what
/// root installs and runs, or where data goes. (`config` checks each listed key.)
pub const DEFAULT_ALLOWED_KEYS: &[&str] = &["version", "cluster-size", "backup-on-calendar"];

fn default_allowed_keys() -> Vec<String> {
    DEFAULT_ALLOWED_KEYS.iter().map(|k| k.to_string()).collect()
}

/// Per-request timeout (connect plus answer) when none is configured.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 5;

/// Where this machine's identity comes from: the `metadata:` section of the configuration,
/// e.g. `metadata: {provider: ec2, allow-imdsv1: true}`. Absent means `provider: none`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "provider",
    rename_all = "kebab-case",
    deny_unknown_fields,
    from = "MetadataConfigRepr"
)]
pub enum MetadataConfig {
    /// No metadata source: everything comes from the configuration.
    #[default]
    None,
    /// AWS EC2 instance metadata service (IMDSv2).
    Ec2(Ec2Config),
    /// Google Compute Engine metadata server.
    Gce(GceConfig),
    /// OpenStack Nova metadata service.
    Openstack(OpenstackConfig),
    /// cloud-init NoCloud seed directory.
    Nocloud(NocloudConfig),
    /// Azure Instance Metadata Service (IMDS).
    Azure(AzureConfig),
}

/// What [`MetadataConfig`] is read through: serde ignores other keys beside the tag of a
/// unit variant, so `provider: none` is given an empty struct that rejects them.
#[derive(Deserialize)]
#[serde(tag = "provider", rename_all = "kebab-case", deny_unknown_fields)]
enum MetadataConfigRepr {
    None(NoSettings),
    Ec2(Ec2Config),
    Gce(GceConfig),
    Openstack(OpenstackConfig),
    Nocloud(NocloudConfig),
    Azure(AzureConfig),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoSettings {}

impl From<MetadataConfigRepr> for MetadataConfig {
    fn from(repr: MetadataConfigRepr) -> Self {
        match repr {
            MetadataConfigRepr::None(NoSettings {}) => MetadataConfig::None,
            MetadataConfigRepr::Ec2(c) => MetadataConfig::Ec2(c),
            MetadataConfigRepr::Gce(c) => MetadataConfig::Gce(c),
            MetadataConfigRepr::Openstack(c) => MetadataConfig::Openstack(c),
            MetadataConfigRepr::Nocloud(c) => MetadataConfig::Nocloud(c),
            MetadataConfigRepr::Azure(c) => MetadataConfig::Azure(c),
        }
    }
}

impl MetadataConfig {
    /// The settings this source's tags or attributes may set (`allowed-keys`); none for
    /// sources without tags.
    pub fn allowed_keys(&self) -> &[String] {
        match self {
            MetadataConfig::Ec2(c) => &c.allowed_keys,
            MetadataConfig::Gce(c) => &c.allowed_keys,
            MetadataConfig::Openstack(c) => &c.allowed_keys,
            MetadataConfig::Azure(c) => &c.allowed_keys,
            MetadataConfig::None | MetadataConfig::Nocloud(_) => &[],
        }
    }

    /// The EC2 instance metadata service that serves the instance role's credentials: the
    /// configured `ec2` source, else the default one.
    pub fn imds(&self) -> Ec2Config {
        match self {
            MetadataConfig::Ec2(e) => e.clone(),
            _ => Ec2Config::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Ec2Config {
    /// `http://169.254.169.254`, or `http://[fd00:ec2::254]` on IPv6-only Nitro instances.
    pub base_url: String,
    /// Fall back to token-less IMDSv1 requests when no IMDSv2 session token can be had.
    pub allow_imdsv1: bool,
    pub timeout_seconds: u64,
    /// Settings instance tags or attributes `etcdadm-<key>` may set (the whole list: name
    /// the defaults too to keep them). Default: version, cluster-size, backup-on-calendar.
    /// Others are ignored with a warning. Never `bootstrap`.
    pub allowed_keys: Vec<String>,
}

impl Default for Ec2Config {
    fn default() -> Self {
        Ec2Config {
            base_url: DEFAULT_METADATA_URL.into(),
            allow_imdsv1: false,
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            allowed_keys: default_allowed_keys(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct GceConfig {
    /// GCE serves its metadata on `http://169.254.169.254` as well as on
    /// `http://metadata.google.internal`; the address needs no DNS at first boot.
    pub base_url: String,
    pub timeout_seconds: u64,
    /// Settings instance tags or attributes `etcdadm-<key>` may set (the whole list: name
    /// the defaults too to keep them). Default: version, cluster-size, backup-on-calendar.
    /// Others are ignored with a warning. Never `bootstrap`.
    pub allowed_keys: Vec<String>,
}

impl Default for GceConfig {
    fn default() -> Self {
        GceConfig {
            base_url: DEFAULT_METADATA_URL.into(),
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            allowed_keys: default_allowed_keys(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct OpenstackConfig {
    pub base_url: String,
    pub timeout_seconds: u64,
    /// Settings instance tags or attributes `etcdadm-<key>` may set (the whole list: name
    /// the defaults too to keep them). Default: version, cluster-size, backup-on-calendar.
    /// Others are ignored with a warning. Never `bootstrap`.
    pub allowed_keys: Vec<String>,
}

impl Default for OpenstackConfig {
    fn default() -> Self {
        OpenstackConfig {
            base_url: DEFAULT_METADATA_URL.into(),
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            allowed_keys: default_allowed_keys(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AzureConfig {
    /// IMDS answers on `http://169.254.169.254` only (`/metadata/instance`, API version
    /// pinned); also the address of the managed-identity token for `azure-vmss` discovery.
    pub base_url: String,
    pub timeout_seconds: u64,
    /// Settings instance tags `etcdadm-<key>` may set (the whole list: name the defaults too
    /// to keep them). Default: version, cluster-size, backup-on-calendar. Others are ignored
    /// with a warning. Never `bootstrap`.
    pub allowed_keys: Vec<String>,
}

impl Default for AzureConfig {
    fn default() -> Self {
        AzureConfig {
            base_url: DEFAULT_METADATA_URL.into(),
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            allowed_keys: default_allowed_keys(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct NocloudConfig {
    /// Directory holding `meta-data` (and optionally `network-config`).
    pub seed_dir: PathBuf,
}

impl Default for NocloudConfig {
    fn default() -> Self {
        NocloudConfig { seed_dir: DEFAULT_NOCLOUD_SEED_DIR.into() }
    }
}

/// What a metadata source says about this machine.
///
/// `attributes` are operator-supplied and may hold sensitive values (GCE startup scripts,
/// for instance): log their keys, not this whole struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceMetadata {
    /// `ec2`, `gce`, `openstack`, `nocloud` or `azure`.
    pub provider: &'static str,
    pub instance_id: String,
    pub hostname: Option<String>,
    pub private_ipv4: Option<Ipv4Addr>,
    pub private_ipv6: Option<Ipv6Addr>,
    pub region: Option<String>,
    pub availability_zone: Option<String>,
    /// Settings carried by the instance: EC2 instance tags exposed in metadata
    /// (`tags/instance/*`), GCE instance attributes, OpenStack meta, Azure VM tags
    /// (`compute.tagsList`). Keys as given.
    pub attributes: BTreeMap<String, String>,
}

/// Reads this machine's metadata from the configured source; `None` for
/// [`MetadataConfig::None`]. One attempt: see [`MetadataError::is_retryable`].
pub async fn fetch(cfg: &MetadataConfig) -> Result<Option<InstanceMetadata>, MetadataError> {
    let md = match cfg {
        MetadataConfig::None => return Ok(None),
        MetadataConfig::Ec2(c) => ec2::fetch(c).await?,
        MetadataConfig::Gce(c) => gce::fetch(c).await?,
        MetadataConfig::Openstack(c) => openstack::fetch(c).await?,
        MetadataConfig::Nocloud(c) => nocloud::fetch(c).await?,
        MetadataConfig::Azure(c) => azure::fetch(c).await?,
    };
    tracing::debug!(
        provider = md.provider,
        instance_id = %md.instance_id,
        hostname = ?md.hostname,
        private_ipv4 = ?md.private_ipv4,
        private_ipv6 = ?md.private_ipv6,
        attribute_keys = ?md.attributes.keys().collect::<Vec<_>>(),
        "instance metadata read"
    );
    Ok(Some(md))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<MetadataConfig, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(yaml)
    }

    #[test]
    fn defaults_per_provider() {
        assert_eq!(MetadataConfig::default(), MetadataConfig::None);
        assert_eq!(parse("provider: none").unwrap(), MetadataConfig::None);
        let ec2 = parse("provider: ec2").unwrap();
        assert_eq!(
            ec2,
            MetadataConfig::Ec2(Ec2Config {
                base_url: "http://169.254.169.254".into(),
                allow_imdsv1: false,
                timeout_seconds: 5,
                allowed_keys: ["version", "cluster-size", "backup-on-calendar"]
                    .map(String::from)
                    .to_vec(),
            })
        );
        assert_eq!(
            parse("provider: gce").unwrap(),
            MetadataConfig::Gce(GceConfig {
                base_url: "http://169.254.169.254".into(),
                timeout_seconds: 5,
                ..Default::default()
            })
        );
        assert_eq!(
            parse("provider: openstack").unwrap(),
            MetadataConfig::Openstack(OpenstackConfig::default())
        );
        assert_eq!(
            parse("provider: azure").unwrap(),
            MetadataConfig::Azure(AzureConfig {
                base_url: "http://169.254.169.254".into(),
                timeout_seconds: 5,
                allowed_keys: ["version", "cluster-size", "backup-on-calendar"]
                    .map(String::from)
                    .to_vec(),
            })
        );
        assert_eq!(
            parse("provider: nocloud").unwrap(),
            MetadataConfig::Nocloud(NocloudConfig {
                seed_dir: "/var/lib/cloud/seed/nocloud".into()
            })
        );
    }

    #[test]
    fn settings_parse_in_kebab_case() {
        let cfg = parse("provider: ec2\nbase-url: http://[fd00:ec2::254]\nallow-imdsv1: true\ntimeout-seconds: 2\n")
            .unwrap();
        assert_eq!(
            cfg,
            MetadataConfig::Ec2(Ec2Config {
                base_url: "http://[fd00:ec2::254]".into(),
                allow_imdsv1: true,
                timeout_seconds: 2,
                ..Default::default()
            })
        );
        let cfg = parse("provider: nocloud\nseed-dir: /run/seed\n").unwrap();
        assert_eq!(cfg, MetadataConfig::Nocloud(NocloudConfig { seed_dir: "/run/seed".into() }));
    }

    #[test]
    fn unknown_keys_and_providers_are_rejected() {
        for bad in [
            "provider: ec2\nallow_imdsv1: true",
            "provider: ec2\nseed-dir: /x",
            "provider: gce\nallow-imdsv1: true",
            "provider: openstack\nbase_url: http://x",
            "provider: nocloud\nbase-url: http://x",
            "provider: none\nbase-url: http://x",
            "provider: azure\nallow-imdsv1: true",
            "provider: AZURE",
            "provider: EC2",
            "base-url: http://x",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
        let err = parse("provider: ec2\nallow-imdsv2: true").unwrap_err().to_string();
        assert!(err.contains("allow-imdsv2"), "{err}");
    }

    #[test]
    fn serializes_back_to_the_same_yaml_shape() {
        for cfg in [
            MetadataConfig::None,
            MetadataConfig::Ec2(Ec2Config { allow_imdsv1: true, ..Default::default() }),
            MetadataConfig::Gce(GceConfig::default()),
            MetadataConfig::Openstack(OpenstackConfig::default()),
            MetadataConfig::Nocloud(NocloudConfig::default()),
            MetadataConfig::Azure(AzureConfig::default()),
        ] {
            let yaml = serde_yaml_ng::to_string(&cfg).unwrap();
            assert!(yaml.starts_with("provider: "), "{yaml}");
            assert_eq!(parse(&yaml).unwrap(), cfg, "{yaml}");
        }
    }

    #[tokio::test]
    async fn none_fetches_nothing() {
        assert_eq!(fetch(&MetadataConfig::None).await.unwrap(), None);
    }

    #[test]
    fn fetch_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let cfg = MetadataConfig::None;
        let fut = fetch(&cfg);
        assert_send(&fut);
        let ec2 = Ec2Config::default();
        assert_send(&ec2_role_credentials(&ec2));
    }
}
