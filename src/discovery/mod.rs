//! Peer discovery: finds the intended members of the cluster before this one starts, so that
//! `bootstrap` can decide between init and join.
//!
//! One provider per folder or file: `static_list` (peers written in the configuration), `dns`
//! (SRV records as etcd's `--discovery-srv` defines them, or the A/AAAA records of one name)
//! and `aws` (`aws-asg`: the instances of an EC2 Auto Scaling group; `aws/tags`: `aws-tags`,
//! the instances that carry a tag key/value), `gce` (`gce-mig`: a managed instance group;
//! `gce-labels`: the instances that carry a label), `azure` (`azure-vmss`: the VMs of an
//! Azure virtual machine scale set). Adding a provider adds one module, one
//! `DiscoveryConfig` variant and one match arm in [`discover`].
//!
//! One call of [`discover`] is one attempt: it does not retry. Callers wrap it in backoff with a
//! deadline and retry while [`DiscoveryError::is_retryable`] says so.

mod aws;
mod azure;
mod bearer;
mod dns;
mod error;
mod gce;
mod static_list;

pub use error::DiscoveryError;

use crate::net::Host;
use serde::{Deserialize, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::net::SocketAddr;

/// Where the peer set comes from. YAML/JSON: `provider: static | dns | aws-asg | aws-tags |
/// gce-mig | gce-labels | azure-vmss`
/// plus the provider's kebab-case fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DiscoveryConfig {
    /// Peers listed in the configuration, each `name=host` or `host` (an IP, IPv6 with or
    /// without brackets, or a DNS name).
    Static { peers: Vec<String> },
    /// DNS: exactly one of `domain` (SRV records `_etcd-server-ssl._tcp.<domain>`, as etcd's
    /// `--discovery-srv`) or `name` (its A and AAAA records, one peer per address).
    /// `nameserver` replaces the servers of /etc/resolv.conf (split DNS, tests).
    #[serde(rename_all = "kebab-case")]
    Dns {
        #[serde(default)]
        domain: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        nameserver: Option<SocketAddr>,
    },
    /// The InService and Pending instances of an EC2 Auto Scaling group.
    #[serde(rename_all = "kebab-case")]
    AwsAsg {
        /// Defaults to the region of this instance ([`DiscoveryContext::region`]).
        #[serde(default)]
        region: Option<String>,
        /// Defaults to the group this instance belongs to.
        #[serde(default)]
        group: Option<String>,
        /// Replaces both `https://autoscaling.<region>.amazonaws.com` and
        /// `https://ec2.<region>.amazonaws.com` (VPC endpoints, the moto emulator).
        #[serde(default)]
        endpoint: Option<String>,
        /// Upper bound on AWS API calls per second, shared by the whole process.
        #[serde(default = "default_max_requests_per_second")]
        max_requests_per_second: f64,
    },
    /// The pending and running EC2 instances that carry the tag `tag-key` = `tag-value`.
    /// Needs `bootstrap.cluster-size`; authoritative only with `remove-departed-members: true`.
    #[serde(rename_all = "kebab-case")]
    AwsTags {
        tag_key: String,
        tag_value: String,
        /// Defaults to the region of this instance ([`DiscoveryContext::region`]).
        #[serde(default)]
        region: Option<String>,
        /// Replaces `https://ec2.<region>.amazonaws.com` (VPC endpoints, the moto emulator).
        #[serde(default)]
        endpoint: Option<String>,
        /// Upper bound on AWS API calls per second, shared by the whole process.
        #[serde(default = "default_max_requests_per_second")]
        max_requests_per_second: f64,
    },
    /// The instances of a GCE managed instance group, zonal (`zone`, default this instance's)
    /// or regional (`region`). Complete at the group's `targetSize`; authoritative.
    #[serde(rename_all = "kebab-case")]
    GceMig {
        /// Defaults to this instance's project (the metadata server's `project/project-id`).
        #[serde(default)]
        project: Option<String>,
        #[serde(default)]
        zone: Option<String>,
        #[serde(default)]
        region: Option<String>,
        /// The managed instance group's name (required).
        #[serde(default)]
        group: Option<String>,
        /// Replaces `https://compute.googleapis.com` (Private Service Connect, tests).
        #[serde(default)]
        endpoint: Option<String>,
        /// Replaces the metadata server (token, project id); default the `gce` metadata
        /// source's `base-url`, else `http://169.254.169.254`.
        #[serde(default)]
        metadata_url: Option<String>,
        /// Upper bound on Compute API calls per second, shared by the whole process.
        #[serde(default = "default_max_requests_per_second")]
        max_requests_per_second: f64,
    },
    /// The provisioning, staging and running GCE instances that carry the label `label-key` =
    /// `label-value` in `zones` (default this instance's zone). Needs
    /// `bootstrap.cluster-size`; authoritative only with `remove-departed-members: true`.
    #[serde(rename_all = "kebab-case")]
    GceLabels {
        label_key: String,
        label_value: String,
        #[serde(default)]
        project: Option<String>,
        #[serde(default)]
        zones: Vec<String>,
        #[serde(default)]
        endpoint: Option<String>,
        #[serde(default)]
        metadata_url: Option<String>,
        #[serde(default = "default_max_requests_per_second")]
        max_requests_per_second: f64,
    },
    /// The VMs of an Azure virtual machine scale set (uniform orchestration) that are not
    /// being deleted, by primary private IPv4; expected size the scale set's `sku.capacity`.
    /// Each name defaults to this VM's (instance metadata `provider: azure`).
    #[serde(rename_all = "kebab-case")]
    AzureVmss {
        #[serde(default)]
        subscription_id: Option<String>,
        #[serde(default)]
        resource_group: Option<String>,
        #[serde(default)]
        scale_set: Option<String>,
        /// Replaces `https://management.azure.com` (tests; the managed-identity token is
        /// always asked for `https://management.azure.com/`).
        #[serde(default)]
        endpoint: Option<String>,
        /// Upper bound on Azure Resource Manager calls per second, for the whole process.
        #[serde(default = "default_max_requests_per_second")]
        max_requests_per_second: f64,
    },
}

fn default_max_requests_per_second() -> f64 {
    5.0
}

/// Bounds of every cloud provider's `max-requests-per-second`: one call per 100 s at the
/// slowest.
const MIN_REQUESTS_PER_SECOND: f64 = 0.01;
const MAX_REQUESTS_PER_SECOND: f64 = 1000.0;

/// Refuses a `max-requests-per-second` outside its bounds, naming `provider`.
fn check_rate(provider: &str, max_requests_per_second: f64) -> Result<(), DiscoveryError> {
    if (MIN_REQUESTS_PER_SECOND..=MAX_REQUESTS_PER_SECOND).contains(&max_requests_per_second) {
        return Ok(());
    }
    Err(DiscoveryError::Config(format!(
        "{provider} max-requests-per-second must be between {MIN_REQUESTS_PER_SECOND} and \
         {MAX_REQUESTS_PER_SECOND}, not {max_requests_per_second}"
    )))
}

impl DiscoveryConfig {
    /// Checks what can be checked without the network, so that a bad configuration fails at
    /// load time rather than after a retry loop. [`discover`] runs the same checks.
    pub fn validate(&self) -> Result<(), DiscoveryError> {
        match self {
            DiscoveryConfig::Static { peers } => static_list::parse(peers).map(|_| ()),
            DiscoveryConfig::Dns { domain, name, .. } => {
                dns::Query::new(domain.as_deref(), name.as_deref()).map(|_| ())
            }
            DiscoveryConfig::AwsAsg { endpoint, max_requests_per_second, .. } => {
                aws::validate("aws-asg", endpoint.as_deref(), *max_requests_per_second)
            }
            DiscoveryConfig::AwsTags {
                tag_key,
                tag_value,
                endpoint,
                max_requests_per_second,
                ..
            } => aws::tags::validate(
                tag_key,
                tag_value,
                endpoint.as_deref(),
                *max_requests_per_second,
            ),
            DiscoveryConfig::GceMig { .. } | DiscoveryConfig::GceLabels { .. } => {
                gce_validate(self)
            }
            DiscoveryConfig::AzureVmss { .. } => azure::validate(&self.azure_settings()),
        }
    }

    /// Checks the settings against `bootstrap.cluster-size` (`cluster_size`, after the
    /// instance metadata's `cluster-size` applied): `aws-tags` knows no intended size (a tag
    /// has no desired capacity), so it must be set.
    pub fn check_cluster_size(&self, cluster_size: Option<usize>) -> Result<(), DiscoveryError> {
        match (self, cluster_size) {
            (DiscoveryConfig::AwsTags { tag_key, tag_value, .. }, None) => {
                Err(DiscoveryError::Config(format!(
                    "bootstrap.cluster-size is not set, and aws-tags discovery (tag {tag_key}={tag_value}) \
                     needs it: a tag has no intended number of instances; set bootstrap: cluster-size: N \
                     in the configuration (or the allowed instance tag etcdadm-cluster-size)"
                )))
            }
            (DiscoveryConfig::GceLabels { label_key, label_value, .. }, None) => {
                Err(DiscoveryError::Config(format!(
                    "bootstrap.cluster-size is not set, and gce-labels discovery (label {label_key}={label_value}) \
                     needs it: a label has no intended number of instances; set bootstrap: cluster-size: N \
                     in the configuration (or the allowed instance attribute etcdadm-cluster-size)"
                )))
            }
            _ => Ok(()),
        }
    }

    /// The provider name as written in the configuration.
    pub fn provider(&self) -> &'static str {
        match self {
            DiscoveryConfig::Static { .. } => "static",
            DiscoveryConfig::Dns { .. } => "dns",
            DiscoveryConfig::AwsAsg { .. } => "aws-asg",
            DiscoveryConfig::AwsTags { .. } => "aws-tags",
            DiscoveryConfig::GceMig { .. } => "gce-mig",
            DiscoveryConfig::GceLabels { .. } => "gce-labels",
            DiscoveryConfig::AzureVmss { .. } => "azure-vmss",
        }
    }

    /// The `azure-vmss` settings (all unset for any other provider).
    fn azure_settings(&self) -> azure::Settings<'_> {
        match self {
            DiscoveryConfig::AzureVmss {
                subscription_id,
                resource_group,
                scale_set,
                endpoint,
                max_requests_per_second,
            } => azure::Settings {
                subscription_id: subscription_id.as_deref(),
                resource_group: resource_group.as_deref(),
                scale_set: scale_set.as_deref(),
                endpoint: endpoint.as_deref(),
                max_requests_per_second: *max_requests_per_second,
            },
            _ => azure::Settings {
                subscription_id: None,
                resource_group: None,
                scale_set: None,
                endpoint: None,
                max_requests_per_second: default_max_requests_per_second(),
            },
        }
    }
}

/// One intended member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    /// The member name when the provider knows it: the `name=` of a static entry, the first
    /// label of an SRV target, the EC2 instance id.
    pub name: Option<String>,
    /// Where its peer and client ports are reached.
    #[serde(serialize_with = "serialize_host")]
    pub host: Host,
    /// The EC2 instance id (aws-asg and aws-tags), the Azure vmId (azure-vmss).
    pub instance_id: Option<String>,
}

fn serialize_host<S: Serializer>(host: &Host, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(host)
}

impl Peer {
    /// Order of a peer set: IP hosts (IPv4 before IPv6, numerically), then DNS names, then by
    /// name and instance id.
    fn sort_key(&self) -> (u8, Option<std::net::IpAddr>, &str, Option<&str>, Option<&str>) {
        match &self.host {
            Host::Ip(ip) => (0, Some(*ip), "", self.name.as_deref(), self.instance_id.as_deref()),
            Host::Name(n) => {
                (1, None, n.as_str(), self.name.as_deref(), self.instance_id.as_deref())
            }
        }
    }
}

impl Ord for Peer {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for Peer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n}={}", self.host),
            None => write!(f, "{}", self.host),
        }
    }
}

/// The result of one discovery attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerSet {
    /// Sorted (see [`Peer`]'s order) and without duplicates.
    pub peers: Vec<Peer>,
    /// The size the cluster is meant to have, when the provider knows it (the Auto Scaling
    /// group's DesiredCapacity, the scale set's sku.capacity). More or fewer peers than this
    /// means the group is still changing.
    pub expected: Option<usize>,
    /// True when the set is the truth about membership (aws-asg, azure-vmss): members
    /// outside it may be removed. False when it is only a hint (static, dns, aws-tags).
    pub authoritative: bool,
}

impl PeerSet {
    /// Sorts and deduplicates `peers`.
    pub fn new(mut peers: Vec<Peer>, expected: Option<usize>, authoritative: bool) -> PeerSet {
        peers.sort();
        peers.dedup();
        PeerSet { peers, expected, authoritative }
    }

    /// True when the provider knows the intended size and that many peers were found.
    pub fn is_complete(&self) -> bool {
        self.expected.is_none_or(|n| self.peers.len() == n)
    }
}

/// The intended cluster size: the configured `cluster-size`, else what the provider knows
/// (the group's desired capacity), else, for a static list, its length. `None` for DNS
/// without `cluster-size`: any non-empty answer is then taken as it is.
pub fn expected_size(
    cluster_size: Option<usize>,
    set: &PeerSet,
    cfg: &DiscoveryConfig,
) -> Option<usize> {
    cluster_size.or(set.expected).or(match cfg {
        DiscoveryConfig::Static { .. } => Some(set.peers.len()),
        _ => None,
    })
}

/// What discovery needs to know about the machine it runs on, filled from the instance
/// metadata by the caller (every such field may be missing off-cloud), and what it keeps
/// between attempts. A process creates one and passes it to every attempt.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryContext {
    /// This machine's EC2 instance id (finds its own Auto Scaling group, and itself in a set).
    pub instance_id: Option<String>,
    /// This machine's AWS region.
    pub region: Option<String>,
    /// Credentials for the AWS APIs (`aws_credentials::resolve`).
    pub credentials: Option<AwsCredentials>,
    /// The AWS providers' rate limiter and caches, for the life of the process.
    pub aws: AwsDiscoveryState,
    /// The GCE providers' zone and metadata server, rate limiter and caches.
    pub gce: GceDiscovery,
    /// `azure-vmss`'s IMDS address, this VM's Azure identity, rate limiter and token.
    pub azure: AzureDiscoveryState,
}

pub use gce::{GceDiscovery, GceError};

pub use aws::AwsDiscoveryState;
pub use azure::AzureDiscoveryState;

pub use crate::aws_credentials::AwsCredentials;

/// One discovery attempt. Retry it while the error [is retryable](DiscoveryError::is_retryable).
pub async fn discover(
    cfg: &DiscoveryConfig,
    ctx: &DiscoveryContext,
) -> Result<PeerSet, DiscoveryError> {
    provider_set(cfg, ctx).await.map(|set| refuse_bad_names(cfg.provider(), set))
}

/// Discovered member names reach etcd's `--initial-cluster` and the environment file: a peer
/// whose name (an SRV target's first label, an instance id) is no valid member name is
/// refused, left out of the set with a warning naming the provider, and never written.
/// (Static entries are checked as the configuration is read.)
pub fn refuse_bad_names(provider: &str, set: PeerSet) -> PeerSet {
    let (ok, bad): (Vec<Peer>, Vec<Peer>) = set
        .peers
        .into_iter()
        .partition(|p| p.name.as_deref().is_none_or(crate::cli::safe_chars::is_member_name));
    for p in &bad {
        tracing::warn!(
            provider,
            host = %p.host,
            "refusing peer {} found by {provider} discovery: its name {:?} is not a valid member name (letters, digits, '-', '_', '.'); it is left out of the peer set",
            p.host,
            p.name.as_deref().unwrap_or_default()
        );
    }
    PeerSet { peers: ok, ..set }
}

async fn provider_set(
    cfg: &DiscoveryConfig,
    ctx: &DiscoveryContext,
) -> Result<PeerSet, DiscoveryError> {
    match cfg {
        DiscoveryConfig::Static { peers } => {
            static_list::parse(peers).map(|p| PeerSet::new(p, None, false))
        }
        DiscoveryConfig::Dns { domain, name, nameserver } => {
            dns::discover(dns::Query::new(domain.as_deref(), name.as_deref())?, *nameserver).await
        }
        DiscoveryConfig::AwsAsg { region, group, endpoint, max_requests_per_second } => {
            let settings = aws::Settings {
                region: region.as_deref(),
                group: group.as_deref(),
                endpoint: endpoint.as_deref(),
                max_requests_per_second: *max_requests_per_second,
            };
            aws::discover(&settings, ctx).await
        }
        DiscoveryConfig::AwsTags {
            tag_key,
            tag_value,
            region,
            endpoint,
            max_requests_per_second,
        } => {
            let settings = aws::tags::Settings {
                tag_key,
                tag_value,
                region: region.as_deref(),
                endpoint: endpoint.as_deref(),
                max_requests_per_second: *max_requests_per_second,
            };
            aws::tags::discover(&settings, ctx).await
        }
        DiscoveryConfig::GceMig { .. } | DiscoveryConfig::GceLabels { .. } => {
            gce_discover(cfg, ctx).await
        }
        DiscoveryConfig::AzureVmss { .. } => azure::discover(&cfg.azure_settings(), ctx).await,
    }
}

/// The settings of `gce-mig` or `gce-labels` (`None` for other providers).
fn gce_settings(cfg: &DiscoveryConfig) -> Option<GceSettings<'_>> {
    Some(match cfg {
        DiscoveryConfig::GceMig {
            project,
            zone,
            region,
            group,
            endpoint,
            metadata_url,
            max_requests_per_second,
        } => GceSettings::Mig(gce::mig::Settings {
            project: project.as_deref(),
            zone: zone.as_deref(),
            region: region.as_deref(),
            group: group.as_deref(),
            endpoint: endpoint.as_deref(),
            metadata_url: metadata_url.as_deref(),
            max_requests_per_second: *max_requests_per_second,
        }),
        DiscoveryConfig::GceLabels {
            label_key,
            label_value,
            project,
            zones,
            endpoint,
            metadata_url,
            max_requests_per_second,
        } => GceSettings::Labels(gce::labels::Settings {
            label_key,
            label_value,
            project: project.as_deref(),
            zones,
            endpoint: endpoint.as_deref(),
            metadata_url: metadata_url.as_deref(),
            max_requests_per_second: *max_requests_per_second,
        }),
        _ => return None,
    })
}

enum GceSettings<'a> {
    Mig(gce::mig::Settings<'a>),
    Labels(gce::labels::Settings<'a>),
}

fn gce_validate(cfg: &DiscoveryConfig) -> Result<(), DiscoveryError> {
    match gce_settings(cfg) {
        Some(GceSettings::Mig(mig)) => gce::mig::validate(&mig),
        Some(GceSettings::Labels(labels)) => gce::labels::validate(&labels),
        None => Ok(()),
    }
}

async fn gce_discover(
    cfg: &DiscoveryConfig,
    ctx: &DiscoveryContext,
) -> Result<PeerSet, DiscoveryError> {
    match gce_settings(cfg) {
        Some(GceSettings::Mig(mig)) => gce::mig::discover(&mig, ctx).await,
        Some(GceSettings::Labels(labels)) => gce::labels::discover(&labels, ctx).await,
        None => Err(DiscoveryError::Config(format!("{} is not a GCE provider", cfg.provider()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Result<DiscoveryConfig, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(s)
    }

    #[test]
    fn config_yaml_forms() {
        assert_eq!(
            yaml("provider: static\npeers: [a=10.0.0.1, 'fd00::2']").unwrap(),
            DiscoveryConfig::Static { peers: vec!["a=10.0.0.1".into(), "fd00::2".into()] }
        );
        assert_eq!(
            yaml("provider: dns\ndomain: example.com\nnameserver: 127.0.0.1:5353").unwrap(),
            DiscoveryConfig::Dns {
                domain: Some("example.com".into()),
                name: None,
                nameserver: Some("127.0.0.1:5353".parse().unwrap())
            }
        );
        assert_eq!(
            yaml("provider: aws-asg\ngroup: etcd").unwrap(),
            DiscoveryConfig::AwsAsg {
                region: None,
                group: Some("etcd".into()),
                endpoint: None,
                max_requests_per_second: 5.0
            }
        );
        let c = yaml(
            "provider: aws-asg\nmax-requests-per-second: 2.5\nendpoint: http://127.0.0.1:5000",
        )
        .unwrap();
        assert!(
            matches!(c, DiscoveryConfig::AwsAsg { max_requests_per_second, .. } if max_requests_per_second == 2.5)
        );
        // Round trip through the serializer.
        let back: DiscoveryConfig =
            serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn aws_tags_config_takes_kebab_case_fields_with_the_aws_asg_defaults() {
        let c = yaml("provider: aws-tags\ntag-key: etcd-cluster\ntag-value: prod").unwrap();
        assert_eq!(
            c,
            DiscoveryConfig::AwsTags {
                tag_key: "etcd-cluster".into(),
                tag_value: "prod".into(),
                region: None,
                endpoint: None,
                max_requests_per_second: 5.0
            }
        );
        assert_eq!(c.provider(), "aws-tags");
        c.validate().unwrap();
        let c = yaml(
            "provider: aws-tags\ntag-key: k\ntag-value: v\nregion: eu-west-1\n\
             endpoint: http://127.0.0.1:5000\nmax-requests-per-second: 2",
        )
        .unwrap();
        let back: DiscoveryConfig =
            serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        for (bad, says) in [
            ("provider: aws-tags\ntag-value: prod", "missing field `tag-key`"),
            ("provider: aws-tags\ntag-key: etcd", "missing field `tag-value`"),
            ("provider: aws-tags\ntag_key: a\ntag-value: b", "unknown field `tag_key`"),
            ("provider: aws-tags\ntag-key: a\ntag-value: b\ngroup: g", "unknown field `group`"),
        ] {
            let e = yaml(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn aws_tags_without_cluster_size_is_a_configuration_error_naming_the_key_and_the_tag() {
        let c = yaml("provider: aws-tags\ntag-key: etcd-cluster\ntag-value: prod").unwrap();
        let e = c.check_cluster_size(None).unwrap_err();
        let msg = e.to_string();
        assert!(!e.is_retryable(), "{msg}");
        assert!(
            msg.contains("bootstrap.cluster-size is not set")
                && msg.contains("etcd-cluster=prod")
                && msg.contains("set bootstrap: cluster-size: N"),
            "{msg}"
        );
        c.check_cluster_size(Some(3)).unwrap();
        // The other providers know a size, or wait for one (dns).
        for other in ["provider: aws-asg", "provider: dns\ndomain: example.com"] {
            yaml(other).unwrap().check_cluster_size(None).unwrap();
        }
    }

    #[test]
    fn gce_configs_take_kebab_case_fields_and_gce_labels_needs_cluster_size() {
        let c = yaml("provider: gce-mig\ngroup: etcd\nregion: europe-west1").unwrap();
        assert_eq!(
            c,
            DiscoveryConfig::GceMig {
                project: None,
                zone: None,
                region: Some("europe-west1".into()),
                group: Some("etcd".into()),
                endpoint: None,
                metadata_url: None,
                max_requests_per_second: 5.0
            }
        );
        assert_eq!(c.provider(), "gce-mig");
        c.validate().unwrap();
        c.check_cluster_size(None).unwrap();
        let c = yaml(
            "provider: gce-labels\nlabel-key: etcd-cluster\nlabel-value: prod\nproject: my-project\n\
             zones: [europe-west1-b, europe-west1-c]\nendpoint: http://127.0.0.1:1\n\
             metadata-url: http://127.0.0.1:2\nmax-requests-per-second: 2",
        )
        .unwrap();
        assert_eq!(c.provider(), "gce-labels");
        c.validate().unwrap();
        let back: DiscoveryConfig =
            serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let e = c.check_cluster_size(None).unwrap_err().to_string();
        assert!(e.contains("gce-labels discovery (label etcd-cluster=prod)"), "{e}");
        c.check_cluster_size(Some(3)).unwrap();
        let e = yaml("provider: gce-mig\nzone: europe-west1-b").unwrap().validate().unwrap_err();
        assert!(e.to_string().contains("gce-mig group is not set"), "{e}");
        assert!(yaml("provider: gce-labels\nlabel-key: a\nlabel-value: b\ngroup: g").is_err());
    }

    #[test]
    fn config_rejects_unknown_fields_and_providers() {
        assert!(yaml("provider: dns\ndomain: a.b\nport: 53").is_err());
        assert!(yaml("provider: static\npeers: []\nextra: 1").is_err());
        assert!(yaml("provider: consul\npeers: []").is_err());
        assert!(yaml("provider: aws-asg\nmax_requests_per_second: 1").is_err());
        assert!(yaml("provider: aws-tags\ntag-key: a\ntag-value: b\nextra: 1").is_err());
    }

    #[test]
    fn config_validation() {
        let dns = |d: Option<&str>, n: Option<&str>| DiscoveryConfig::Dns {
            domain: d.map(Into::into),
            name: n.map(Into::into),
            nameserver: None,
        };
        assert!(dns(Some("example.com"), None).validate().is_ok());
        assert!(dns(None, Some("etcd.example.com")).validate().is_ok());
        assert!(dns(None, None).validate().is_err());
        assert!(dns(Some("a.com"), Some("b.com")).validate().is_err());
        assert!(dns(Some("bad domain"), None).validate().is_err());
        let asg = |e: Option<&str>, r: f64| DiscoveryConfig::AwsAsg {
            region: None,
            group: None,
            endpoint: e.map(Into::into),
            max_requests_per_second: r,
        };
        assert!(asg(None, 5.0).validate().is_ok());
        assert!(asg(Some("http://127.0.0.1:5000"), 0.5).validate().is_ok());
        for bad in [
            asg(None, 0.0),
            asg(None, -1.0),
            asg(None, f64::NAN),
            asg(Some("ftp://x"), 5.0),
            asg(Some("not a url"), 5.0),
        ] {
            let e = bad.validate().unwrap_err();
            assert!(!e.is_retryable(), "{e}");
        }
    }

    /// A discovered peer without an instance id.
    fn p(name: Option<&str>, host: &str) -> Peer {
        Peer { name: name.map(Into::into), host: Host::parse(host).unwrap(), instance_id: None }
    }

    #[test]
    fn peer_sets_sort_and_dedup() {
        let set = PeerSet::new(
            vec![
                p(None, "etcd-b"),
                p(Some("x"), "fd00::1"),
                p(Some("b"), "10.0.0.10"),
                p(Some("a"), "10.0.0.9"),
                p(Some("b"), "10.0.0.10"),
            ],
            None,
            false,
        );
        let shown: Vec<String> = set.peers.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown, ["a=10.0.0.9", "b=10.0.0.10", "x=fd00::1", "etcd-b"]);
        assert!(set.is_complete());
        assert!(!PeerSet { expected: Some(3), ..set.clone() }.is_complete());
        let json = serde_json::to_value(&set).unwrap();
        assert_eq!(json["peers"][2]["host"], "fd00::1");
        assert_eq!(json["peers"][3]["name"], serde_json::Value::Null);
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = AwsCredentials {
            access_key_id: "ASIAEXAMPLEKEYID1234".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("IQoJb3JpZ2luX2VjEXAMPLETOKEN".into()),
            expiration: None,
        };
        let ctx = DiscoveryContext { credentials: Some(c), ..Default::default() };
        let shown = format!("{ctx:?} {ctx:#?}");
        assert!(shown.contains("ASIA"));
        for secret in ["EXAMPLEKEYID", "wJalr", "EXAMPLEKEY", "IQoJ", "TOKEN"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
    }

    #[test]
    fn discovered_peers_with_names_that_could_reach_a_file_as_syntax_are_refused() {
        let set = PeerSet::new(
            vec![
                p(Some("i-0123456789abcdef0"), "10.0.0.1"),
                p(Some("etcd-b"), "10.0.0.2"),
                p(None, "10.0.0.3"),
                p(Some("m4\nETCD_DATA_DIR=/tmp"), "10.0.0.4"),
                p(Some("m5,evil=https://10.9.9.9:2380"), "10.0.0.5"),
                p(Some("m6$(reboot)"), "10.0.0.6"),
                p(Some(""), "10.0.0.7"),
            ],
            Some(7),
            true,
        );
        let kept = refuse_bad_names("dns", set);
        let hosts: Vec<String> = kept.peers.iter().map(|p| p.host.to_string()).collect();
        assert_eq!(hosts, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        assert_eq!((kept.expected, kept.authoritative), (Some(7), true));
    }
}
