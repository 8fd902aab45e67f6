//! The command line as a configuration layer: each flag sets the YAML key of its name
//! (`cli::flags_layer` into `config::load`). Here rather than in `cli`, which depends on
//! nothing else in the crate.

use crate::cli::*;
use crate::config::{load, Config, ConfigSources};
use clap::Parser;

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
fn every_init_system_flag_value_loads_as_the_init_system_of_that_name() {
    use clap::ValueEnum;
    for v in InitSystemFlag::value_variants() {
        let name = v.to_possible_value().unwrap().get_name().to_string();
        let Command::Init(a) = parse(&["init", "--init-system", &name]).command else { panic!() };
        let c = effective(&a.args.flags);
        assert_eq!(serde_yaml_ng::to_value(c.init_system).unwrap(), name.as_str());
    }
}
