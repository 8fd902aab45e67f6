//! The command line, and the one declaration of every setting behind it. It uses nothing
//! else in the crate: everything else builds on it.
//!
//! - this module: the clap command tree (verbs, phases, their own arguments);
//! - `settings`: the table of settings (one row gives a setting's flag, YAML key, type,
//!   default and help text) and the flag groups made from it; parsed, a group becomes one
//!   more configuration layer (`config::flags_layer`);
//! - `values`: the checked value types of settings, which parse once at the edge;
//! - `safe_chars`: what a value written unquoted into a unit, environment file or script
//!   may hold.

pub mod safe_chars;
pub mod settings;
pub mod values;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
pub use settings::{BackupFlags, MemberFlags, ReleaseFlags, S3Flags, StateFlag};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "etcdadm",
    version,
    help_expected = true,
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
    /// After a permanent loss of quorum: restore the survivor with the most recent data as a
    /// one-member cluster with a new identity (old data directory kept aside), for the other
    /// machines to join.
    Recover(RecoverArgs),
    /// First-boot agent: discover peers, then form, join or heal the cluster (systemd unit).
    Bootstrap(BootstrapArgs),
    /// Run the configured peer discovery as bootstrap does and print the peer set it finds.
    Discover(DiscoverArgs),
    /// Show this member and its cluster.
    Info(InfoArgs),
    /// Cluster-wide status: members, leader, raft lag, DB sizes, alarms, certificate expiry.
    Status(InfoArgs),
    /// Defragment the members one at a time, followers first and the leader last (after
    /// handing leadership over), when the defrag-min-free rule says it is worth it; with the
    /// NOSPACE alarm raised, compact, defragment every member and disarm it.
    Defrag(DefragArgs),
    /// List or disarm the cluster's alarms (NOSPACE, CORRUPT).
    #[command(subcommand)]
    Alarm(AlarmCommand),
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
    Generate(GenerateCommand),
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Write etcdadm.8 and etcdadm-<command>[-<subcommand>].8 for every command into DIR.
    Man {
        /// Directory to write the pages into (created if needed).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the completion script for SHELL to standard output.
    Completions {
        /// The shell to print the completion script for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
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
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(flatten)]
        state: StateFlag,
    },
    /// Renew the member's certificates that expire within the renewal window (all with
    /// --force) from the local CA, then restart etcd once; refused while the other members
    /// are not a quorum without this one (unless --force).
    Renew {
        /// Renew every member certificate, not only those due, and restart etcd even when
        /// the other members are not a quorum without this one.
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
        /// The phase to run.
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
        /// The phase to run.
        #[arg(value_enum)]
        phase: JoinPhase,
        /// Client URL(s) of existing members (needed by membership and what follows it).
        #[arg(value_name = "ENDPOINT[,ENDPOINT...]")]
        endpoints: Option<String>,
        /// Retry membership changes with backoff until timeout-seconds (`--retry=false`: once).
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

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub flags: MemberFlags,
}

#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Output format.
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
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    pub state: StateFlag,
}

/// `etcdadm defrag`.
#[derive(Debug, Args)]
pub struct DefragArgs {
    /// Defragment every member whatever the defrag-min-free rule says, even when the
    /// cluster has no quorum margin (a one- or two-member cluster pauses meanwhile).
    #[arg(long)]
    pub force: bool,
    /// Only this machine's member (what each member's etcdadm-defrag.timer runs); the
    /// NOSPACE recovery still covers every member.
    #[arg(long)]
    pub this_member: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    pub state: StateFlag,
}

#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// List the active alarms.
    List(InfoArgs),
    /// Disarm every active alarm; NOSPACE only once every database is below the quota
    /// (else `etcdadm defrag` recovers it).
    Disarm(InfoArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
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

/// `etcdadm recover`.
#[derive(Debug, Args, Serialize)]
pub struct RecoverArgs {
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long, short = 'y')]
    #[serde(skip)]
    pub yes: bool,
    #[command(flatten)]
    #[serde(flatten)]
    pub state: StateFlag,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    pub release: ReleaseFlags,
}
