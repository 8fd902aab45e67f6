//! The effective configuration: defaults (those of the seed tool), then the YAML file, then
//! its drop-ins in name order, then command-line flags. See `load` for the merge.

#[cfg(test)]
mod flag_tests;
mod load;
mod validate;

pub use load::{load, ConfigSources};
pub use validate::ConfigError;

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::PathBuf;

/// The etcd release installed when none is configured.
pub const DEFAULT_ETCD_VERSION: &str = "3.5.30";
pub const DEFAULT_RELEASE_URL: &str = "https://github.com/etcd-io/etcd/releases/download";
pub const DEFAULT_CONFIG_FILE: &str = "/etc/etcdadm/config.yaml";
pub const RENEW_UNIT: &str = "etcdadm-certs-renew.service";
pub const RENEW_TIMER: &str = "etcdadm-certs-renew.timer";
pub const BACKUP_UNIT: &str = "etcdadm-backup.service";
pub const BACKUP_TIMER: &str = "etcdadm-backup.timer";
/// node_exporter's textfile collector directory, as its documentation sets it up.
pub const DEFAULT_METRICS_TEXTFILE_DIR: &str = "/var/lib/node_exporter/textfile_collector";

/// Every setting of a member. YAML keys are the kebab-case field names, which are also the
/// long flag names, so `--data-dir X` and `data-dir: X` mean the same thing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    /// Member name; defaults to the host name.
    pub name: Option<String>,
    /// etcd version to install, without the leading `v`.
    pub version: String,
    /// Base URL of the release mirror: `https://`, `http://` or `file://`.
    pub release_url: String,
    /// Pinned SHA-256 of the release tarball; when set, SHA256SUMS is not consulted.
    pub release_sha256: Option<String>,
    /// Release architecture (`amd64`, `arm64`, `ppc64le`, `s390x`); defaults to this machine's.
    pub arch: Option<String>,
    pub install_dir: PathBuf,
    pub certs_dir: PathBuf,
    pub data_dir: PathBuf,
    pub env_file: PathBuf,
    pub unit_file: PathBuf,
    pub cache_dir: PathBuf,
    pub state_file: PathBuf,
    /// File holding the ETCDCTL_* variables for the `etcdctl.sh` wrapper.
    pub etcdctl_env_file: PathBuf,
    /// Address other members and clients use to reach this one: an IP or a host name.
    /// Defaults to the address of the default-route interface.
    pub advertise_address: Option<String>,
    /// Address etcd listens on; defaults to the advertise address (plus loopback for clients).
    pub bind_address: Option<IpAddr>,
    pub client_port: u16,
    pub peer_port: u16,
    /// Loopback port for plain-HTTP metrics and /health.
    pub metrics_port: u16,
    /// Extra names or IPs for the server certificate.
    pub server_cert_extra_sans: Vec<String>,
    /// Also issue a client certificate for kube-apiserver.
    pub apiserver_client_cert: bool,
    pub cert_validity_days: u32,
    pub ca_validity_days: u32,
    /// Member certificates are issued again when they expire within this many days.
    pub cert_renew_within_days: u32,
    /// Cluster token for `init`; defaults to `etcd-<name>`.
    pub initial_cluster_token: Option<String>,
    /// How long init/join/reset wait for etcd (health, catch-up, membership changes).
    pub timeout_seconds: u64,
    pub download_connect_timeout_seconds: u64,
    /// Scheduling settings for the etcd unit's [Service] section, as the seed tool's
    /// `--disk-priorities` (`Nice=`, `IOSchedulingClass=`, `IOSchedulingPriority=`,
    /// `CPUSchedulingPolicy=`, `CPUSchedulingPriority=`).
    pub disk_priorities: Vec<String>,
    /// Where `etcdadm backup` writes snapshots, and how many it keeps.
    pub backup_dir: PathBuf,
    pub backup_keep: usize,
    /// When the backup timer runs (a systemd OnCalendar expression).
    pub backup_on_calendar: String,
    /// Also upload each backup under this S3 prefix (`s3://bucket/prefix/`).
    pub backup_s3_url: Option<String>,
    /// Base URL of an S3-compatible store (MinIO, moto, ...): `http(s)://host[:port]`.
    /// Default: AWS S3 in backup-s3-region.
    pub backup_s3_endpoint: Option<String>,
    /// Default: `AWS_REGION`, `AWS_DEFAULT_REGION`, then `us-east-1`.
    pub backup_s3_region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`). Default: on with backup-s3-endpoint or
    /// a bucket name with dots, else virtual-hosted (`bucket.endpoint/key`).
    pub backup_s3_path_style: Option<bool>,
    /// How many snapshots of this member to keep under the prefix (default: backup-keep).
    pub backup_s3_keep: Option<usize>,
    /// Who runs etcd: `systemd` (a unit) or `kubelet` (a static pod manifest).
    pub init_system: InitSystem,
    /// Where the kubelet reads static pod manifests.
    pub kubelet_pod_manifest_path: PathBuf,
    /// Image of the static pod, tagged `v<version>`.
    pub image_repository: String,
    /// Directory of node_exporter's textfile collector, where `etcdadm bootstrap` writes
    /// `etcdadm.prom` with its outcome and timings; empty disables it.
    pub metrics_textfile_dir: PathBuf,
    /// Settings of `etcdadm bootstrap`.
    pub bootstrap: BootstrapConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitSystem {
    Systemd,
    Kubelet,
}

/// `bootstrap:` — how the first-boot agent learns about this machine and its peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BootstrapConfig {
    /// Cloud metadata source (`provider: none|ec2|gce|openstack|nocloud`).
    pub metadata: crate::metadata::MetadataConfig,
    /// Peer discovery (`provider: static|dns|aws-asg`).
    pub discovery: Option<crate::discovery::DiscoveryConfig>,
    /// Intended number of members; defaults to the static list's length or the
    /// autoscaling group's desired capacity.
    pub cluster_size: Option<usize>,
    /// Whether members whose machines left the discovered peer set are removed (one at a
    /// time, only while quorum holds). Default: only for aws-asg, whose set is the truth.
    pub remove_departed_members: Option<bool>,
    /// Overall deadline of one bootstrap run.
    pub deadline_seconds: u64,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            metadata: Default::default(),
            discovery: None,
            cluster_size: None,
            remove_departed_members: None,
            deadline_seconds: 900,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: None,
            version: DEFAULT_ETCD_VERSION.into(),
            release_url: DEFAULT_RELEASE_URL.into(),
            release_sha256: None,
            arch: None,
            install_dir: "/opt/bin".into(),
            certs_dir: "/etc/etcd/pki".into(),
            data_dir: "/var/lib/etcd".into(),
            env_file: "/etc/etcd/etcd.env".into(),
            unit_file: "/etc/systemd/system/etcd.service".into(),
            cache_dir: "/var/cache/etcdadm".into(),
            state_file: "/etc/etcdadm/state.json".into(),
            etcdctl_env_file: "/etc/etcd/etcdctl.env".into(),
            advertise_address: None,
            bind_address: None,
            client_port: 2379,
            peer_port: 2380,
            metrics_port: 2381,
            server_cert_extra_sans: Vec::new(),
            apiserver_client_cert: false,
            cert_validity_days: 365,
            ca_validity_days: 3650,
            cert_renew_within_days: 30,
            initial_cluster_token: None,
            timeout_seconds: 300,
            download_connect_timeout_seconds: 10,
            disk_priorities: [
                "Nice=-10",
                "IOSchedulingClass=best-effort",
                "IOSchedulingPriority=2",
            ]
            .map(String::from)
            .to_vec(),
            backup_dir: "/var/backups/etcd".into(),
            backup_keep: 7,
            backup_on_calendar: "daily".into(),
            backup_s3_url: None,
            backup_s3_endpoint: None,
            backup_s3_region: None,
            backup_s3_path_style: None,
            backup_s3_keep: None,
            init_system: InitSystem::Systemd,
            kubelet_pod_manifest_path: "/etc/kubernetes/manifests".into(),
            image_repository: "quay.io/coreos/etcd".into(),
            metrics_textfile_dir: DEFAULT_METRICS_TEXTFILE_DIR.into(),
            bootstrap: BootstrapConfig::default(),
        }
    }
}

impl Config {
    /// The systemd unit name, from the unit file's name.
    pub fn unit_name(&self) -> String {
        self.unit_file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "etcd.service".into())
    }

    /// The certificate renewal and backup services and timers, beside the etcd unit.
    pub fn timer_units(&self) -> [PathBuf; 4] {
        let dir = self
            .unit_file
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| "/etc/systemd/system".into());
        [dir.join(RENEW_UNIT), dir.join(RENEW_TIMER), dir.join(BACKUP_UNIT), dir.join(BACKUP_TIMER)]
    }

    /// The static pod manifest (kubelet mode).
    pub fn pod_manifest(&self) -> PathBuf {
        self.kubelet_pod_manifest_path.join("etcd.yaml")
    }

    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_seconds)
    }
}
