//! Command-line interface. Flags that set configuration share their names with the YAML
//! keys and are turned into one more configuration layer (see `config::load`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "etcdadm",
    version,
    about = "Create, grow, shrink and restore TLS etcd clusters under systemd"
)]
pub struct Cli {
    /// Configuration file; drop-ins are read from `config.d/*.yaml` beside it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, short = 'l', global = true, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new cluster with this machine as its first member.
    Init(InitArgs),
    /// Add this machine to an existing cluster: learner first, then promoted to voter.
    Join(JoinArgs),
    /// Remove this member from its cluster and uninstall what etcdadm installed.
    Reset(ResetArgs),
    /// Fetch, verify and cache the etcd release without installing it.
    Download(DownloadArgs),
    /// Upgrade this member's etcd to --version in place (snapshot first, rolled back on failure).
    Upgrade(UpgradeArgs),
    /// First-boot agent: discover peers, then form, join or heal the cluster (systemd unit).
    Bootstrap(BootstrapArgs),
    /// Run the configured peer discovery as bootstrap does and print the peer set it finds.
    Discover(DiscoverArgs),
    /// Show this member and its cluster.
    Info(InfoArgs),
    /// Cluster-wide status: members, leader, raft lag, DB sizes, alarms, certificate expiry.
    Status(InfoArgs),
    /// Snapshot this member's database into backup-dir, keeping backup-keep snapshots;
    /// with --upload (or backup-s3-url) also upload it to an S3-compatible store.
    Backup {
        /// Directory for snapshots (default: backup-dir).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// How many snapshots of this member to keep (default: backup-keep).
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
        #[command(flatten)]
        flags: BackupFlags,
    },
    /// Show configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage the cluster CA.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Check and renew this member's certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Print etcdadm's version.
    Version,
    /// Write the man pages, or print a shell's completion script (what the packages carry).
    #[command(subcommand)]
    Generate(crate::commands::generate::GenerateCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (defaults, files, drop-ins and flags merged).
    View(MemberFlags),
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the cluster CA (ca.crt, ca.key in certs-dir) unless one exists, e.g. to hand
    /// it to machines through cloud-init or Ignition.
    Create(MemberFlags),
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Show every certificate's expiry and whether it is due for renewal.
    Check {
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        state: StateFlag,
    },
    /// Renew the member's certificates that expire within the renewal window (all with
    /// --force) from the local CA, then restart etcd once.
    Renew {
        #[arg(long)]
        force: bool,
        /// Validity of the new certificates (default: the member's cert-validity-days).
        #[arg(long, value_name = "DAYS")]
        cert_validity_days: Option<u32>,
        #[command(flatten)]
        state: StateFlag,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct InitArgs {
    #[command(subcommand)]
    pub phase: Option<InitPhaseCommand>,
    #[command(flatten)]
    pub args: InitOptions,
}

#[derive(Debug, Args)]
pub struct InitOptions {
    /// Restore the new cluster's data from this etcd v3 snapshot: a file, an
    /// s3://BUCKET/KEY object, or s3://BUCKET/PREFIX/ for the newest snapshot under it.
    #[arg(long, value_name = "FILE|S3URL")]
    pub snapshot: Option<PathBuf>,
    /// Skip the snapshot's integrity hash check (for a db file copied from a data dir).
    #[arg(long, requires = "snapshot")]
    pub skip_hash_check: bool,
    #[command(flatten)]
    pub flags: MemberFlags,
    #[command(flatten)]
    pub s3: S3Flags,
}

#[derive(Debug, Subcommand)]
pub enum InitPhaseCommand {
    /// Run one phase of init, after the phases it needs. Phases, in the order init runs them:
    /// install, certificates, snapshot, configure, start, etcdctl, health,
    /// post-init-instructions.
    Phase {
        #[arg(value_enum)]
        phase: InitPhase,
        #[command(flatten)]
        args: InitOptions,
    },
}

/// The phases of `init`, in the order it runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitPhase {
    /// Download, verify and install the etcd release (and check the snapshot).
    Install,
    /// Create the CA if there is none; issue the member certificates.
    Certificates,
    /// Restore the data directory from --snapshot.
    Snapshot,
    /// Write the etcd environment file and unit.
    Configure,
    /// Enable and start etcd.
    Start,
    /// Write the etcdctl environment file and wrapper.
    Etcdctl,
    /// Wait until the member is healthy.
    Health,
    /// Print the join command and the files to copy to a new member.
    PostInitInstructions,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct JoinArgs {
    #[command(subcommand)]
    pub phase: Option<JoinPhaseCommand>,
    #[command(flatten)]
    pub args: JoinOptions,
}

#[derive(Debug, Args)]
pub struct JoinOptions {
    /// Client URL(s) of existing members, comma-separated; whichever answers is used.
    #[arg(value_name = "ENDPOINT[,ENDPOINT...]", required = true)]
    pub endpoints: Option<String>,
    /// Retry membership changes with backoff until timeout-seconds (`--retry=false`: once).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub retry: bool,
    #[command(flatten)]
    pub flags: MemberFlags,
}

#[derive(Debug, Subcommand)]
pub enum JoinPhaseCommand {
    /// Run one phase of join, after the phases it needs. Phases, in the order join runs them:
    /// stop, certificates, install, membership, configure, start, etcdctl, health.
    Phase {
        #[arg(value_enum)]
        phase: JoinPhase,
        /// Client URL(s) of existing members (needed by membership and what follows it).
        #[arg(value_name = "ENDPOINT[,ENDPOINT...]")]
        endpoints: Option<String>,
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        retry: bool,
        #[command(flatten)]
        flags: MemberFlags,
    },
}

/// The phases of `join`, in the order it runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JoinPhase {
    /// Stop an etcd that runs here but is not a member set up by etcdadm.
    Stop,
    /// Issue the member certificates from the cluster CA (which must be present).
    Certificates,
    /// Download, verify and install the etcd release.
    Install,
    /// Add this machine as a learner, or find it in the member list.
    Membership,
    /// Write the etcd environment file and unit (initial-cluster-state=existing).
    Configure,
    /// Enable and start etcd.
    Start,
    /// Write the etcdctl environment file and wrapper.
    Etcdctl,
    /// Promote the learner once caught up; wait until the member is a healthy voter.
    Health,
}

impl crate::commands::phase_table::PhaseTable for InitPhase {
    fn prerequisites(self) -> &'static [Self] {
        use InitPhase::*;
        match self {
            Install | Certificates => &[],
            Snapshot => &[Install],
            Configure => &[Certificates],
            Start => &[Install, Configure],
            Etcdctl => &[Certificates],
            Health => &[Start],
            PostInitInstructions => &[],
        }
    }
}

impl crate::commands::phase_table::PhaseTable for JoinPhase {
    fn prerequisites(self) -> &'static [Self] {
        use JoinPhase::*;
        match self {
            Stop | Certificates | Install => &[],
            Membership => &[Certificates],
            Configure => &[Install, Membership],
            Start => &[Configure],
            Etcdctl => &[Certificates],
            Health => &[Start],
        }
    }
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub flags: MemberFlags,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Print the first answer, complete or not, instead of waiting for the whole peer set.
    #[arg(long)]
    pub once: bool,
    /// Give up after this many seconds (default: bootstrap.deadline-seconds).
    #[arg(long, value_name = "SECONDS")]
    pub deadline_seconds: Option<u64>,
    #[command(flatten)]
    pub flags: MemberFlags,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// Proceed even when removing this member would cost the cluster its quorum, when it
    /// is the last member, or when the cluster cannot be reached.
    #[arg(long)]
    pub force: bool,
    /// Also delete the cluster CA certificate and key.
    #[arg(long)]
    pub remove_ca: bool,
    /// Uninstall locally but leave the member in the cluster's member list.
    #[arg(long)]
    pub skip_remove_member: bool,
    #[command(flatten)]
    pub state: StateFlag,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    pub state: StateFlag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Args, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct StateFlag {
    /// Where etcdadm records the member it set up.
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
}

/// `etcdadm upgrade`: the release flags (`--version` is required), the state file, `--yes`.
#[derive(Debug, Args, Serialize)]
#[command(mut_arg("etcd_version", |a| a.required(true).help("etcd version to move this member to (e.g. 3.5.30)")))]
pub struct UpgradeArgs {
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    #[serde(skip)]
    pub yes: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub release: ReleaseFlags,
    #[command(flatten)]
    #[serde(flatten)]
    pub state: StateFlag,
}

/// How an S3-compatible store is reached (the backup-s3-* settings).
#[derive(Debug, Args, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct S3Flags {
    /// Base URL of an S3-compatible store, http(s)://HOST[:PORT] (default: AWS S3).
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_s3_endpoint: Option<String>,
    /// Region of the bucket (default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1).
    #[arg(long, value_name = "REGION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_s3_region: Option<String>,
    /// Path-style addressing (default: on with --backup-s3-endpoint or a dotted bucket name).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_s3_path_style: Option<bool>,
}

/// `etcdadm backup`'s configuration flags.
#[derive(Debug, Args, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct BackupFlags {
    /// Also upload the snapshot under this S3 prefix, s3://BUCKET/PREFIX/ (default:
    /// backup-s3-url). Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_SESSION_TOKEN, else the EC2 instance role.
    #[arg(long, value_name = "S3URL")]
    #[serde(skip_serializing_if = "Option::is_none", rename = "backup-s3-url")]
    pub upload: Option<String>,
    /// How many snapshots of this member to keep under the S3 prefix (default:
    /// backup-s3-keep, else --keep, else backup-keep).
    #[arg(long, value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_s3_keep: Option<usize>,
    #[command(flatten)]
    #[serde(flatten)]
    pub s3: S3Flags,
    #[command(flatten)]
    #[serde(flatten)]
    pub state: StateFlag,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    pub release: ReleaseFlags,
}

/// Flags about the etcd release.
#[derive(Debug, Args, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct ReleaseFlags {
    /// etcd version to install (e.g. 3.5.30).
    #[arg(long = "version", value_name = "VERSION")]
    #[serde(skip_serializing_if = "Option::is_none", rename = "version")]
    pub etcd_version: Option<String>,
    /// Release mirror base URL (https://, http:// or file://).
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_url: Option<String>,
    /// Pinned SHA-256 of the release tarball.
    #[arg(long, value_name = "HEX")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_sha256: Option<String>,
    /// Release architecture (amd64, arm64, ppc64le, s390x).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    #[arg(long, value_name = "SECONDS", conflicts_with = "download_connect_timeout")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_connect_timeout_seconds: Option<u64>,
    /// The seed tool's spelling: a duration such as 10s or 1m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_seconds)]
    #[serde(skip_serializing_if = "Option::is_none", rename = "download-connect-timeout-seconds")]
    pub download_connect_timeout: Option<u64>,
}

/// `10s`, `1m`, `1m30s`, `90` (seconds) -> whole seconds, rounded up.
fn parse_duration_seconds(s: &str) -> Result<u64, String> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let (mut total_ms, mut num) = (0u64, String::new());
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        num.clear();
        num.push_str(&rest[..digits]);
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(format!("{s:?} is not a duration like 10s, 1m or 1m30s")),
        };
        let n: u64 =
            num.parse().map_err(|_| format!("{s:?} is not a duration like 10s, 1m or 1m30s"))?;
        total_ms += n * factor;
        rest = &rest[unit_len..];
    }
    Ok(total_ms.div_ceil(1000))
}

/// Flags that define the member (and, flattened, the release).
#[derive(Debug, Args, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct MemberFlags {
    /// Member name (default: host name).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub install_dir: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certs_dir: Option<PathBuf>,
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_file: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_file: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcdctl_env_file: Option<PathBuf>,
    /// Address peers and clients use to reach this member (IP or host name).
    #[arg(long, value_name = "ADDRESS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise_address: Option<String>,
    /// Address etcd listens on (default: the advertise address).
    #[arg(long, value_name = "IP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_address: Option<IpAddr>,
    #[arg(long, value_name = "PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_port: Option<u16>,
    #[arg(long, value_name = "PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_port: Option<u16>,
    /// Extra names/IPs for the server certificate, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "SAN")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_cert_extra_sans: Vec<String>,
    /// Also issue a client certificate for kube-apiserver.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apiserver_client_cert: Option<bool>,
    #[arg(long, value_name = "DAYS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_validity_days: Option<u32>,
    /// Renew member certificates this many days before they expire.
    #[arg(long, value_name = "DAYS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_renew_within_days: Option<u32>,
    #[arg(long, value_name = "TOKEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_cluster_token: Option<String>,
    /// How long to wait for etcd health, catch-up and membership changes.
    #[arg(long, value_name = "SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Scheduling settings for the etcd unit (repeat or comma-separate), e.g. Nice=-10.
    #[arg(long, value_delimiter = ',', value_name = "KEY=VALUE")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disk_priorities: Vec<String>,
    #[arg(long, value_name = "PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_port: Option<u16>,
    /// Who runs etcd: a systemd unit, or the kubelet from a static pod manifest.
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_system: Option<crate::config::InitSystem>,
    /// Directory of the kubelet's static pod manifests (kubelet mode).
    #[arg(long, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_pod_manifest_path: Option<PathBuf>,
    /// Image of the static pod, tagged v<version> (kubelet mode).
    #[arg(long, value_name = "REPOSITORY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,
    #[command(flatten)]
    #[serde(flatten)]
    pub state: StateFlag,
    #[command(flatten)]
    #[serde(flatten)]
    pub release: ReleaseFlags,
}

/// Turns set flags into a configuration layer keyed like the YAML file.
pub fn flags_layer(flags: &impl Serialize) -> serde_yaml_ng::Mapping {
    match serde_yaml_ng::to_value(flags) {
        Ok(serde_yaml_ng::Value::Mapping(m)) => m,
        _ => serde_yaml_ng::Mapping::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, Config, ConfigSources};

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("etcdadm").chain(args.iter().copied())).unwrap()
    }

    fn effective(flags: &MemberFlags) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let sources = ConfigSources {
            file: dir.path().join("none.yaml"),
            flags: flags_layer(flags),
            ..Default::default()
        };
        load(&sources).unwrap()
    }

    #[test]
    fn every_flag_sets_the_yaml_key_of_the_same_name() {
        let cli = parse(&[
            "init",
            "--name",
            "n1",
            "--version",
            "3.4.23",
            "--release-url",
            "file:///m",
            "--arch",
            "arm64",
            "--install-dir",
            "/i",
            "--certs-dir",
            "/c",
            "--data-dir",
            "/d",
            "--env-file",
            "/e",
            "--unit-file",
            "/u.service",
            "--etcdctl-env-file",
            "/ce",
            "--cache-dir",
            "/k",
            "--state-file",
            "/s.json",
            "--advertise-address",
            "fd00::1",
            "--bind-address",
            "::",
            "--client-port",
            "1",
            "--peer-port",
            "2",
            "--server-cert-extra-sans",
            "a.example,10.0.0.9",
            "--apiserver-client-cert",
            "--cert-validity-days",
            "30",
            "--initial-cluster-token",
            "tok",
            "--timeout-seconds",
            "7",
            "--download-connect-timeout-seconds",
            "3",
            "--disk-priorities",
            "Nice=-5,IOSchedulingClass=idle",
            "--metrics-port",
            "9",
            "--init-system",
            "kubelet",
            "--kubelet-pod-manifest-path",
            "/k8s",
            "--image-repository",
            "r.example/etcd",
        ]);
        let Command::Init(args) = cli.command else { panic!("not init") };
        let from_flags = effective(&args.args.flags);
        let yaml = "name: n1\nversion: 3.4.23\nrelease-url: file:///m\narch: arm64\ninstall-dir: /i\ncerts-dir: /c\n\
            data-dir: /d\nenv-file: /e\nunit-file: /u.service\netcdctl-env-file: /ce\ncache-dir: /k\nstate-file: /s.json\n\
            advertise-address: fd00::1\nbind-address: '::'\nclient-port: 1\npeer-port: 2\n\
            server-cert-extra-sans: [a.example, 10.0.0.9]\napiserver-client-cert: true\ncert-validity-days: 30\n\
            initial-cluster-token: tok\ntimeout-seconds: 7\ndownload-connect-timeout-seconds: 3\n\
            disk-priorities: [Nice=-5, IOSchedulingClass=idle]\nmetrics-port: 9\ninit-system: kubelet\n\
            kubelet-pod-manifest-path: /k8s\nimage-repository: r.example/etcd\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.yaml"), yaml).unwrap();
        let from_yaml =
            load(&ConfigSources { file: dir.path().join("c.yaml"), ..Default::default() }).unwrap();
        assert_eq!(from_flags, from_yaml);
        assert_ne!(from_flags, Config::default());
    }

    #[test]
    fn seed_duration_flag_sets_the_seconds_key() {
        let Command::Download(d) =
            parse(&["download", "--download-connect-timeout", "1m30s"]).command
        else {
            panic!()
        };
        assert_eq!(
            flags_layer(&d.release).get("download-connect-timeout-seconds"),
            Some(&90u64.into())
        );
        assert_eq!(parse_duration_seconds("1500ms"), Ok(2));
        assert_eq!(parse_duration_seconds("10"), Ok(10));
        assert!(parse_duration_seconds("10 parsecs").is_err());
        assert!(Cli::try_parse_from([
            "etcdadm",
            "download",
            "--download-connect-timeout",
            "5s",
            "--download-connect-timeout-seconds",
            "5"
        ])
        .is_err());
    }

    #[test]
    fn phase_subcommands_take_the_same_flags() {
        let Command::Init(a) = parse(&["init", "phase", "install", "--data-dir", "/d"]).command
        else {
            panic!()
        };
        let Some(InitPhaseCommand::Phase { phase, args }) = a.phase else { panic!("no phase") };
        assert_eq!(phase, InitPhase::Install);
        assert_eq!(args.flags.data_dir.as_deref(), Some(std::path::Path::new("/d")));
        let Command::Join(j) =
            parse(&["join", "phase", "membership", "https://10.0.0.1:2379", "--retry=false"])
                .command
        else {
            panic!()
        };
        let Some(JoinPhaseCommand::Phase { phase, endpoints, retry, .. }) = j.phase else {
            panic!("no phase")
        };
        assert_eq!(
            (phase, endpoints.as_deref(), retry),
            (JoinPhase::Membership, Some("https://10.0.0.1:2379"), false)
        );
        assert!(Cli::try_parse_from(["etcdadm", "join"]).is_err(), "join needs an endpoint");
        assert!(parse(&["join", "https://a:2379", "--retry"]).command.is_join_with_retry());
    }

    impl Command {
        fn is_join_with_retry(&self) -> bool {
            matches!(self, Command::Join(j) if j.args.retry)
        }
    }

    #[test]
    fn s3_flags_set_the_backup_s3_keys() {
        let Command::Backup { flags, .. } = parse(&[
            "backup",
            "--upload",
            "s3://b-1/p/",
            "--backup-s3-keep",
            "3",
            "--backup-s3-endpoint",
            "http://10.0.0.1:9000",
            "--backup-s3-region",
            "eu-west-1",
            "--backup-s3-path-style=false",
            "--state-file",
            "/s.json",
        ])
        .command
        else {
            panic!("not backup")
        };
        let dir = tempfile::tempdir().unwrap();
        let c = load(&ConfigSources {
            file: dir.path().join("none.yaml"),
            flags: flags_layer(&flags),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.backup_s3_url.as_deref(), Some("s3://b-1/p/"));
        assert_eq!(c.backup_s3_keep, Some(3));
        assert_eq!(c.backup_s3_endpoint.as_deref(), Some("http://10.0.0.1:9000"));
        assert_eq!(c.backup_s3_region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.backup_s3_path_style, Some(false));
        assert_eq!(c.state_file, std::path::Path::new("/s.json"));
        let Command::Init(a) =
            parse(&["init", "--snapshot", "s3://b-1/p/", "--backup-s3-endpoint", "http://h:9000"])
                .command
        else {
            panic!()
        };
        assert_eq!(
            flags_layer(&a.args.s3).get("backup-s3-endpoint"),
            Some(&"http://h:9000".into())
        );
        // Bad values are configuration errors that name the key.
        let Command::Backup { flags, .. } = parse(&["backup", "--upload", "https://b/p"]).command
        else {
            panic!()
        };
        let e = load(&ConfigSources {
            file: dir.path().join("none.yaml"),
            flags: flags_layer(&flags),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("backup-s3-url"), "{e}");
    }

    #[test]
    fn unset_flags_leave_the_config_alone() {
        let Command::Init(args) = parse(&["init"]).command else { panic!() };
        assert!(flags_layer(&args.args.flags).is_empty());
    }

    #[test]
    fn upgrade_takes_the_release_flags_and_yes() {
        let Command::Upgrade(u) = parse(&[
            "upgrade",
            "--version",
            "3.5.1",
            "--release-url",
            "file:///m",
            "-y",
            "--state-file",
            "/s.json",
        ])
        .command
        else {
            panic!("not upgrade")
        };
        assert!(u.yes);
        assert_eq!(u.release.etcd_version.as_deref(), Some("3.5.1"));
        let layer = flags_layer(&u);
        assert_eq!(layer.get("release-url"), Some(&"file:///m".into()));
        assert_eq!(layer.get("state-file"), Some(&"/s.json".into()));
        assert!(layer.get("yes").is_none(), "--yes is no configuration key");
        assert!(
            Cli::try_parse_from(["etcdadm", "upgrade", "--yes"]).is_err(),
            "upgrade needs --version"
        );
    }

    #[test]
    fn tool_version_and_etcd_version_are_distinct() {
        assert!(Cli::try_parse_from(["etcdadm", "--version"])
            .is_err_and(|e| e.kind() == clap::error::ErrorKind::DisplayVersion));
        let Command::Download(d) = parse(&["download", "--version", "3.5.16"]).command else {
            panic!()
        };
        assert_eq!(d.release.etcd_version.as_deref(), Some("3.5.16"));
    }
}
