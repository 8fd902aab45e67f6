//! The command line as a configuration layer: every settings flag names a key and sets it,
//! every key with a flag has one, and the subcommands take the flag groups they should
//! (the flags come from `cli::settings`, the layering from `load`).

use crate::cli::*;
use crate::config::{flags_layer, load, parse_duration_seconds, Config, ConfigSources};
use clap::{CommandFactory, Parser};

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
    let Command::Download(d) = parse(&["download", "--download-connect-timeout", "1m30s"]).command
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
    let Command::Init(a) = parse(&["init", "phase", "install", "--data-dir", "/d"]).command else {
        panic!()
    };
    let Some(InitPhaseCommand::Phase { phase, args }) = a.phase else { panic!("no phase") };
    assert_eq!(phase, InitPhase::Install);
    assert_eq!(args.flags.data_dir.as_deref(), Some(std::path::Path::new("/d")));
    let Command::Join(j) =
        parse(&["join", "phase", "membership", "https://10.0.0.1:2379", "--retry=false"]).command
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
    assert_eq!(flags_layer(&a.args.s3).get("backup-s3-endpoint"), Some(&"http://h:9000".into()));
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
