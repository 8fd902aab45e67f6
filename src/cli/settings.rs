//! Every setting, declared once.
//!
//! One row per setting in the `settings_table!` below gives its name (the field, whose
//! kebab-case spelling is both the YAML key and the long flag), its type (which checks the
//! value when it is loaded, see `values`), its default, its documentation (the doc comment is
//! the flag's help text) and extra clap attributes. The table hands its rows to a macro of
//! the caller's choosing, and two read it:
//!
//! - here, `flag_groups!` makes one clap flag struct per group (`MemberFlags`,
//!   `ReleaseFlags`, `StateFlag`, `S3Flags`, `BackupFlags`): every field is the row's flag
//!   type (`Option<T>` or `Vec<T>`), an unset flag serializes to nothing, so a parsed struct
//!   is a configuration layer with the same keys (`config::flags_layer`); the groups flatten
//!   into the subcommands that take them;
//! - in `config`, `config_struct!` makes `Config`, the effective configuration with serde's
//!   YAML form (`etcdadm config view`), its `Default` (the seed tool's defaults), and
//!   `FLAG_KEYS` / `FILE_KEYS`: the keys with a flag and the keys set only in files. Only
//!   that expansion names the rows' value types and defaults that live above the command
//!   line (the `bootstrap:` section), so `cli` itself depends on nothing else in the crate.
//!
//! A macro rather than one struct that derives both clap and serde (as coreos-installer
//! does) because the layering needs to know which flags were given (Option-typed fields),
//! while `Config` holds the merged values, and subcommands take different groups of flags.

use super::values::{
    parse_duration_seconds, AbsPath, Arch, ClusterToken, CompactionMode, CompactionRetention,
    DiskPriority, EtcdVersion, Host, ImageRepository, InitSystem, MemberName, Region, ReleaseUrl,
    S3Endpoint, S3Location, Sha256Hex,
};
use std::net::IpAddr;

/// The help heading of every flag that sets a configuration key (tests find them by it).
pub const SETTINGS_HEADING: &str = "Settings (each also a key of config.yaml)";

/// Whether a flag was left unset (and so is no part of the command-line layer).
pub trait Unset {
    fn unset(&self) -> bool;
}
impl<T> Unset for Option<T> {
    fn unset(&self) -> bool {
        self.is_none()
    }
}
impl<T> Unset for Vec<T> {
    fn unset(&self) -> bool {
        self.is_empty()
    }
}
fn unset<T: Unset>(v: &T) -> bool {
    v.unset()
}

/// The clap flag structs, one per group of the table.
macro_rules! flag_groups {
    (
        $(
            $(#[doc = $gdoc:literal])*
            flags $Group:ident { $(flatten $sub:ident : $Sub:ident;)* } {
                $(
                    $(#[doc = $doc:literal])+
                    [$($arg:meta),*]
                    $field:ident : $ty:ty, flag $fty:ty = $default:expr;
                )*
            }
        )*
        file {
            $(
                $(#[doc = $fdoc:literal])+
                $ffield:ident : $ffty:ty = $fdefault:expr;
            )*
        }
    ) => {
        $(
            $(#[doc = $gdoc])*
            #[derive(Debug, Clone, Default, clap::Args, serde::Serialize)]
            #[serde(rename_all = "kebab-case")]
            #[command(next_help_heading = SETTINGS_HEADING)]
            pub struct $Group {
                $(
                    $(#[doc = $doc])+
                    #[arg(long $(, $arg)*)]
                    #[serde(skip_serializing_if = "unset")]
                    pub $field: $fty,
                )*
                $(
                    #[command(flatten)]
                    #[serde(flatten)]
                    pub $sub: $Sub,
                )*
            }
        )*
    };
}

/// The table: calls `$callback!` with every row. Types and defaults are resolved where the
/// callback expands.
macro_rules! settings_table {
    ($callback:ident) => {
        $callback! {
        /// Flags that define the member (and, flattened, the release and the state file).
        flags MemberFlags { flatten state: StateFlag; flatten release: ReleaseFlags; } {
            /// Member name (default: the host name).
            [value_name = "NAME"]
            name: Option<MemberName>, flag Option<MemberName> = None;
            /// Where the etcd binaries and the etcdctl wrapper are installed.
            [value_name = "DIR"]
            install_dir: AbsPath, flag Option<AbsPath> = "/opt/bin".into();
            /// Directory of the CA and member certificates and keys.
            [value_name = "DIR"]
            certs_dir: AbsPath, flag Option<AbsPath> = "/etc/etcd/pki".into();
            /// etcd's data directory.
            [value_name = "DIR"]
            data_dir: AbsPath, flag Option<AbsPath> = "/var/lib/etcd".into();
            /// etcd's environment file (its configuration).
            [value_name = "FILE"]
            env_file: AbsPath, flag Option<AbsPath> = "/etc/etcd/etcd.env".into();
            /// The etcd systemd unit; the renewal and backup units are written beside it.
            [value_name = "FILE"]
            unit_file: AbsPath, flag Option<AbsPath> = "/etc/systemd/system/etcd.service".into();
            /// File holding the ETCDCTL_* variables for the etcdctl wrapper.
            [value_name = "FILE"]
            etcdctl_env_file: AbsPath, flag Option<AbsPath> = "/etc/etcd/etcdctl.env".into();
            /// Address peers and clients use to reach this member: an IP or a host name
            /// (default: the address of the default-route interface).
            [value_name = "ADDRESS"]
            advertise_address: Option<Host>, flag Option<Host> = None;
            /// Address etcd listens on (default: the advertise address, plus loopback for
            /// clients).
            [value_name = "IP"]
            bind_address: Option<IpAddr>, flag Option<IpAddr> = None;
            /// Port of the client URLs.
            [value_name = "PORT"]
            client_port: u16, flag Option<u16> = 2379;
            /// Port of the peer URLs.
            [value_name = "PORT"]
            peer_port: u16, flag Option<u16> = 2380;
            /// Loopback port for plain-HTTP metrics and /health.
            [value_name = "PORT"]
            metrics_port: u16, flag Option<u16> = 2381;
            /// Extra names or IPs for the server certificate (comma-separated).
            [value_delimiter = ',', value_name = "SAN"]
            server_cert_extra_sans: Vec<Host>, flag Vec<Host> = Vec::new();
            /// Also issue a client certificate for kube-apiserver.
            [num_args = 0..=1, default_missing_value = "true", value_name = "BOOL"]
            apiserver_client_cert: bool, flag Option<bool> = false;
            /// Validity of the member certificates, in days.
            [value_name = "DAYS"]
            cert_validity_days: u32, flag Option<u32> = 365;
            /// Member certificates are issued again when they expire within this many days.
            [value_name = "DAYS"]
            cert_renew_within_days: u32, flag Option<u32> = 30;
            /// Cluster token for init (default: etcd-<name>).
            [value_name = "TOKEN"]
            initial_cluster_token: Option<ClusterToken>, flag Option<ClusterToken> = None;
            /// How long init, join and reset wait for etcd (health, catch-up, membership
            /// changes).
            [value_name = "SECONDS"]
            timeout_seconds: u64, flag Option<u64> = 300;
            /// Scheduling settings for the etcd unit's [Service] section, as the seed tool's
            /// --disk-priorities (Nice=, IOSchedulingClass=, IOSchedulingPriority=,
            /// CPUSchedulingPolicy=, CPUSchedulingPriority=); repeat or comma-separate.
            [value_delimiter = ',', value_name = "KEY=VALUE"]
            disk_priorities: Vec<DiskPriority>, flag Vec<DiskPriority> =
                ["Nice=-10", "IOSchedulingClass=best-effort", "IOSchedulingPriority=2"]
                    .map(|d| d.parse().expect("valid default"))
                    .to_vec();
            /// etcd's space quota in bytes (etcd's --quota-backend-bytes): above it etcd raises
            /// the NOSPACE alarm and accepts only reads and deletes until `etcdadm defrag`
            /// recovers it. At most 8 GiB, etcd's recommended maximum.
            [value_name = "BYTES"]
            quota_backend_bytes: u64, flag Option<u64> = 2 * 1024 * 1024 * 1024;
            /// How etcd compacts its history by itself: periodic (keep
            /// auto-compaction-retention of time) or revision (keep that many revisions).
            [value_enum]
            auto_compaction_mode: CompactionMode, flag Option<CompactionMode> =
                CompactionMode::Periodic;
            /// History etcd's auto-compaction keeps: a duration such as 1h (periodic) or a
            /// number of revisions (revision); 0 turns auto-compaction off.
            [value_name = "RETENTION"]
            auto_compaction_retention: CompactionRetention, flag Option<CompactionRetention> =
                "1h".into();
            /// Who runs etcd: a systemd unit, or the kubelet from a static pod manifest.
            [value_enum]
            init_system: InitSystem, flag Option<InitSystem> = InitSystem::Systemd;
            /// Directory of the kubelet's static pod manifests (kubelet mode).
            [value_name = "DIR"]
            kubelet_pod_manifest_path: AbsPath, flag Option<AbsPath> =
                "/etc/kubernetes/manifests".into();
            /// Image of the static pod, tagged v<version> (kubelet mode).
            [value_name = "REPOSITORY"]
            image_repository: ImageRepository, flag Option<ImageRepository> =
                "quay.io/coreos/etcd".parse().expect("valid default");
        }

        /// Flags about the etcd release.
        flags ReleaseFlags {} {
            /// etcd version to install, without the leading v (e.g. 3.5.30).
            [id = "etcd_version", value_name = "VERSION"]
            version: EtcdVersion, flag Option<EtcdVersion> =
                DEFAULT_ETCD_VERSION.parse().expect("valid default");
            /// Install a release etcd's maintainers warn against (3.4.0-3.4.7, 3.4.20-3.4.21,
            /// 3.5.0-3.5.5: data inconsistency bugs) instead of refusing it.
            [num_args = 0..=1, default_missing_value = "true", value_name = "BOOL"]
            allow_known_bad_release: bool, flag Option<bool> = false;
            /// Base URL of the release mirror: https://, http:// or file://.
            [value_name = "URL"]
            release_url: ReleaseUrl, flag Option<ReleaseUrl> =
                DEFAULT_RELEASE_URL.parse().expect("valid default");
            /// Pinned SHA-256 of the release tarball; when set, SHA256SUMS is not consulted.
            [value_name = "HEX"]
            release_sha256: Option<Sha256Hex>, flag Option<Sha256Hex> = None;
            /// Release architecture: amd64, arm64, ppc64le or s390x (default: this machine's).
            [value_name = "ARCH"]
            arch: Option<Arch>, flag Option<Arch> = None;
            /// Where downloaded releases are cached.
            [value_name = "DIR"]
            cache_dir: AbsPath, flag Option<AbsPath> = "/var/cache/etcdadm".into();
            /// Connect timeout of release downloads, in seconds (or, with the seed tool's
            /// --download-connect-timeout, a duration such as 10s or 1m).
            [value_name = "SECONDS", visible_alias = "download-connect-timeout",
             value_parser = parse_duration_seconds]
            download_connect_timeout_seconds: u64, flag Option<u64> = 10;
        }

        /// The state file, which every command reads.
        flags StateFlag {} {
            /// Where etcdadm records the member it set up.
            [value_name = "FILE"]
            state_file: AbsPath, flag Option<AbsPath> = "/etc/etcdadm/state.json".into();
        }

        /// How an S3-compatible store is reached (the backup-s3-* settings).
        flags S3Flags {} {
            /// Base URL of an S3-compatible store (MinIO, moto, ...), http(s)://HOST[:PORT]
            /// (default: AWS S3 in backup-s3-region).
            [value_name = "URL"]
            backup_s3_endpoint: Option<S3Endpoint>, flag Option<S3Endpoint> = None;
            /// Region of the bucket (default: AWS_REGION, AWS_DEFAULT_REGION, then us-east-1).
            [value_name = "REGION"]
            backup_s3_region: Option<Region>, flag Option<Region> = None;
            /// Path-style addressing, endpoint/bucket/key (default: on with backup-s3-endpoint
            /// or a bucket name with dots, else virtual-hosted bucket.endpoint/key).
            [num_args = 0..=1, default_missing_value = "true", value_name = "BOOL"]
            backup_s3_path_style: Option<bool>, flag Option<bool> = None;
        }

        /// `etcdadm backup`'s configuration flags.
        flags BackupFlags { flatten s3: S3Flags; flatten state: StateFlag; } {
            /// Also upload each backup under this S3 prefix, s3://BUCKET/PREFIX/. Credentials:
            /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, else the EC2
            /// instance role.
            [visible_alias = "upload", value_name = "S3URL"]
            backup_s3_url: Option<S3Location>, flag Option<S3Location> = None;
            /// How many snapshots of this member to keep under the S3 prefix (default:
            /// --keep, else backup-keep).
            [value_name = "N"]
            backup_s3_keep: Option<usize>, flag Option<usize> = None;
        }

        file {
            /// Validity of the CA certificate, in days.
            ca_validity_days: u32 = 3650;
            /// Where `etcdadm backup` writes snapshots.
            backup_dir: AbsPath = "/var/backups/etcd".into();
            /// How many snapshots `etcdadm backup` keeps in backup-dir.
            backup_keep: usize = 7;
            /// Kubernetes-safe restores: when above 0, every restore (`init --snapshot`,
            /// bootstrap restore-from) raises the restored revision by this much and marks it
            /// compacted (etcdutl's --bump-revision and --mark-compacted, etcd 3.5.10 and
            /// later), so that watchers never see revisions go backwards. 0 (default): off.
            restore_bump_revision: u64 = 0;
            /// When the backup timer runs (a systemd OnCalendar expression).
            backup_on_calendar: Calendar = "daily".parse().expect("valid default");
            /// When the defragmentation timer runs (a systemd OnCalendar expression); each run
            /// defragments this member when the rule below says it is worth it, and recovers
            /// the cluster from a NOSPACE alarm.
            defrag_on_calendar: Calendar = "daily".parse().expect("valid default");
            /// A member is defragmented only when at least this many bytes of its database are
            /// free (reclaimable) ...
            defrag_min_free_bytes: u64 = 100 * 1024 * 1024;
            /// ... and they are at least this percentage of its database size.
            defrag_min_free_percent: u8 = 25;
            /// Directory of node_exporter's textfile collector, where `etcdadm bootstrap` writes
            /// `etcdadm.prom` with its outcome and timings; empty disables it.
            metrics_textfile_dir: PathBuf = DEFAULT_METRICS_TEXTFILE_DIR.into();
            /// Settings of `etcdadm bootstrap`.
            bootstrap: BootstrapConfig = BootstrapConfig::default();
        }
        }
    };
}
pub(crate) use settings_table;

settings_table!(flag_groups);
