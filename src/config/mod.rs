//! The effective configuration: defaults (those of the seed tool), then the YAML file, then
//! its drop-ins in name order, then command-line flags. See `load` for the merge.
//!
//! Each setting is declared once, in the table of `cli::settings`: its key (= long flag),
//! type, default and help text; `settings` here makes `Config` from that table. A value's
//! type (`cli::values`, re-exported here) checks it when it is loaded; `validate` adds the
//! checks that involve several settings.

#[cfg(test)]
mod flags_tests;
mod load;
mod settings;
mod validate;

pub use crate::cli::settings::{
    BackupFlags, MemberFlags, ReleaseFlags, S3Flags, StateFlag, SETTINGS_HEADING,
};
pub use crate::cli::values::*;
pub use load::{check_layer, flags_layer, load, merge, ConfigSources};
pub use settings::{Config, FILE_KEYS, FLAG_KEYS};
pub use validate::ConfigError;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The etcd release installed when none is configured.
pub const DEFAULT_ETCD_VERSION: &str = "3.5.30";
pub const DEFAULT_RELEASE_URL: &str = "https://github.com/etcd-io/etcd/releases/download";
pub const DEFAULT_CONFIG_FILE: &str = "/etc/etcdadm/config.yaml";
pub const RENEW_UNIT: &str = "etcdadm-certs-renew.service";
pub const RENEW_TIMER: &str = "etcdadm-certs-renew.timer";
pub const BACKUP_UNIT: &str = "etcdadm-backup.service";
pub const BACKUP_TIMER: &str = "etcdadm-backup.timer";
pub const DEFRAG_UNIT: &str = "etcdadm-defrag.service";
pub const DEFRAG_TIMER: &str = "etcdadm-defrag.timer";
/// The timers etcdadm installs and enables beside the etcd unit.
pub const TIMERS: [&str; 3] = [RENEW_TIMER, BACKUP_TIMER, DEFRAG_TIMER];
/// node_exporter's textfile collector directory, as its documentation sets it up.
pub const DEFAULT_METRICS_TEXTFILE_DIR: &str = "/var/lib/node_exporter/textfile_collector";

/// `bootstrap:` — how the first-boot agent learns about this machine and its peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct BootstrapConfig {
    /// Cloud metadata source (`provider: none|ec2|gce|openstack|nocloud|azure`).
    pub metadata: crate::metadata::MetadataConfig,
    /// Peer discovery (`provider: static|dns|aws-asg|aws-tags|gce-mig|gce-labels|azure-vmss`).
    pub discovery: Option<crate::discovery::DiscoveryConfig>,
    /// Intended number of members; defaults to the static list's length, the autoscaling
    /// group's desired capacity, the managed instance group's target size or the scale set's
    /// capacity (required with aws-tags and gce-labels).
    pub cluster_size: Option<usize>,
    /// Whether members whose machines left the discovered peer set are removed (one at a
    /// time, only while quorum holds). Default: only for aws-asg, gce-mig and azure-vmss,
    /// whose set is the truth (aws-tags, gce-labels: only when set true).
    pub remove_departed_members: Option<bool>,
    /// Overall deadline of one bootstrap run.
    pub deadline_seconds: u64,
    /// A fleet that finds no running cluster and no member on any peer forms its cluster from
    /// the newest backup here instead of an empty one (one machine restores, the others join).
    pub restore_from: Option<SnapshotSource>,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            metadata: Default::default(),
            discovery: None,
            cluster_size: None,
            remove_departed_members: None,
            deadline_seconds: 900,
            restore_from: None,
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

    /// The certificate renewal, backup and defragmentation services and timers, beside the
    /// etcd unit.
    pub fn timer_units(&self) -> [PathBuf; 6] {
        let dir = self
            .unit_file
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| "/etc/systemd/system".into());
        [RENEW_UNIT, RENEW_TIMER, BACKUP_UNIT, BACKUP_TIMER, DEFRAG_UNIT, DEFRAG_TIMER]
            .map(|u| dir.join(u))
    }

    /// The static pod manifest (kubelet mode).
    pub fn pod_manifest(&self) -> PathBuf {
        self.kubelet_pod_manifest_path.join("etcd.yaml")
    }

    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_seconds)
    }
}
