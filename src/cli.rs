//! Command-line interface. Flags that set configuration are declared with their settings in
//! `config::settings` (one row per setting gives the flag, YAML key, default and help text);
//! parsed, they become one more configuration layer (see `config::load`).

pub use crate::config::{flags_layer, BackupFlags, MemberFlags, ReleaseFlags, S3Flags, StateFlag};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load, parse_duration_seconds, Config, ConfigSources};
    use clap::CommandFactory;

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

    /// Every command and subcommand, with its path.
    fn all_commands() -> Vec<(String, clap::Command)> {
        let mut out = Vec::new();
        let mut todo = vec![(String::from("etcdadm"), Cli::command())];
        while let Some((path, cmd)) = todo.pop() {
            for sub in cmd.get_subcommands() {
                todo.push((format!("{path} {}", sub.get_name()), sub.clone()));
            }
            out.push((path, cmd));
        }
        out
    }

    fn kebab(field: &str) -> String {
        field.replace('_', "-")
    }

    #[test]
    fn the_cli_is_well_formed_and_every_argument_has_help() {
        // clap's own checks, including help_expected: an argument without help panics here
        Cli::command().debug_assert();
        for (path, cmd) in all_commands() {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if ["help", "version"].contains(&id) {
                    continue;
                }
                assert!(
                    arg.get_help().is_some_and(|h| !h.to_string().trim().is_empty()),
                    "`{path}`: argument {id} has no help text"
                );
            }
        }
    }

    #[test]
    fn every_settings_flag_names_a_config_key_and_every_flag_key_has_a_flag() {
        let keys: Vec<String> = match serde_yaml_ng::to_value(Config::default()).unwrap() {
            serde_yaml_ng::Value::Mapping(m) => {
                m.keys().map(|k| k.as_str().unwrap().to_string()).collect()
            }
            _ => unreachable!(),
        };
        let flag_keys: Vec<String> = crate::config::FLAG_KEYS.iter().map(|k| kebab(k)).collect();
        let file_keys: Vec<String> = crate::config::FILE_KEYS.iter().map(|k| kebab(k)).collect();
        let mut declared = [flag_keys.clone(), file_keys.clone()].concat();
        declared.sort();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(declared, sorted, "the declaration covers every key of Config, once");

        let mut seen = std::collections::BTreeSet::new();
        let mut commands_with_settings = 0;
        for (path, cmd) in all_commands() {
            let mut any = false;
            for arg in cmd.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if arg.get_help_heading() == Some(crate::config::SETTINGS_HEADING) {
                    assert!(
                        flag_keys.iter().any(|k| k == long),
                        "`{path} --{long}` is under {:?} but names no config key with a flag",
                        crate::config::SETTINGS_HEADING
                    );
                    seen.insert(long.to_string());
                    any = true;
                } else {
                    assert!(
                        !file_keys.iter().any(|k| k == long),
                        "`{path} --{long}` is named like a file-only config key"
                    );
                }
            }
            commands_with_settings += usize::from(any);
        }
        assert!(commands_with_settings >= 10, "{commands_with_settings}");
        for k in &flag_keys {
            assert!(
                seen.contains(k),
                "config key `{k}` is declared with a flag, but no command has --{k}"
            );
        }
    }

    #[test]
    fn a_settings_flag_sets_the_config_key_it_is_named_after() {
        // Each flag of each settings group, given once, yields a layer with exactly its key.
        use clap::Args as _;
        let sample = |long: &str| match long {
            "name" => "n1",
            "version" => "3.4.23",
            "release-url" | "backup-s3-endpoint" => "https://m.example",
            "release-sha256" => "0000000000000000000000000000000000000000000000000000000000000000",
            "arch" => "arm64",
            "advertise-address" | "bind-address" | "server-cert-extra-sans" => "10.0.0.9",
            "disk-priorities" => "Nice=-5",
            "init-system" => "kubelet",
            "auto-compaction-mode" => "revision",
            "image-repository" => "r.example/etcd",
            "backup-s3-url" => "s3://b-1/p/",
            "backup-s3-region" => "eu-west-1",
            "backup-s3-path-style" | "apiserver-client-cert" | "allow-known-bad-release" => "false",
            l if l.ends_with("-dir") || l.ends_with("-file") || l.ends_with("-path") => "/x",
            _ => "7",
        };
        fn layer<T: clap::FromArgMatches + serde::Serialize>(
            cmd: &clap::Command,
            args: &[&str],
        ) -> serde_yaml_ng::Mapping {
            let m = cmd.clone().try_get_matches_from(args).unwrap();
            flags_layer(&T::from_arg_matches(&m).unwrap())
        }
        type ToLayer = fn(&clap::Command, &[&str]) -> serde_yaml_ng::Mapping;
        let groups: [(clap::Command, ToLayer); 3] = [
            (MemberFlags::augment_args(clap::Command::new("t")), layer::<MemberFlags>),
            (BackupFlags::augment_args(clap::Command::new("t")), layer::<BackupFlags>),
            (S3Flags::augment_args(clap::Command::new("t")), layer::<S3Flags>),
        ];
        let mut checked = 0;
        for (cmd, to_layer) in &groups {
            for arg in cmd.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                let flag = format!("--{long}");
                let l = to_layer(cmd, &["t", &flag, sample(long)]);
                let keys: Vec<_> = l.keys().map(|k| k.as_str().unwrap()).collect();
                assert_eq!(keys, [long], "{flag} {}", sample(long));
                checked += 1;
            }
        }
        assert!(checked >= crate::config::FLAG_KEYS.len(), "{checked}");
        // A bad value is refused by clap with the flag's name, never a panic; no flag takes
        // free text (the cluster token reaches the environment file and is checked too).
        let mut free_text = Vec::new();
        for (cmd, _) in &groups[..1] {
            for arg in cmd.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                match cmd.clone().try_get_matches_from(["t", &format!("--{long}"), "not valid!"]) {
                    Ok(_) => free_text.push(long),
                    Err(e) => assert!(e.to_string().contains(&format!("--{long}")), "{e}"),
                }
            }
        }
        assert!(free_text.is_empty(), "{free_text:?}");
        load(&ConfigSources {
            file: "/nonexistent/etcdadm-test.yaml".into(),
            flags: groups[0].1(&groups[0].0, &["t"]),
            ..Default::default()
        })
        .unwrap();
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
        // A bad value is refused when the flag is parsed, naming the flag (and key).
        let e = Cli::try_parse_from(["etcdadm", "backup", "--upload", "https://b/p"]).unwrap_err();
        assert!(e.to_string().contains("--backup-s3-url"), "{e}");
        assert!(e.to_string().contains("is not an s3://BUCKET/KEY URL"), "{e}");
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
        assert_eq!(u.release.version.as_deref(), Some("3.5.1"));
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
        assert_eq!(d.release.version.as_deref(), Some("3.5.16"));
    }
}
