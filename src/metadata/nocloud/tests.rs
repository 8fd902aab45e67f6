//! NoCloud seed directories in a temporary directory, in the formats cloud-init documents:
//! https://cloudinit.readthedocs.io/en/latest/reference/datasources/nocloud.html

use super::*;

fn seed(files: &[(&str, &str)]) -> (tempfile::TempDir, NocloudConfig) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let cfg = NocloudConfig { seed_dir: dir.path().to_path_buf() };
    (dir, cfg)
}

#[tokio::test]
async fn meta_data_and_network_config_v2() {
    // As the test bed writes it.
    let (_dir, cfg) = seed(&[
        ("meta-data", "instance-id: etcd-a-0001\nlocal-hostname: etcd-a\n"),
        ("user-data", "#cloud-config\nlocale: false\n"),
        (
            "network-config",
            "version: 2\nethernets:\n  host0:\n    addresses: [10.88.0.11/24, \"fd88::11/64\"]\n",
        ),
    ]);
    let md = fetch(&cfg).await.unwrap();
    assert_eq!(
        md,
        InstanceMetadata {
            provider: "nocloud",
            instance_id: "etcd-a-0001".into(),
            hostname: Some("etcd-a".into()),
            private_ipv4: Some("10.88.0.11".parse().unwrap()),
            private_ipv6: Some("fd88::11".parse().unwrap()),
            region: None,
            availability_zone: None,
            attributes: BTreeMap::new(),
        }
    );
}

#[tokio::test]
async fn meta_data_alone() {
    let (_dir, cfg) = seed(&[("meta-data", "instance-id: 1234\n")]);
    let md = fetch(&cfg).await.unwrap();
    assert_eq!(md.instance_id, "1234");
    assert_eq!((md.hostname, md.private_ipv4, md.private_ipv6), (None, None, None));
}

#[tokio::test]
async fn legacy_network_interfaces_in_meta_data() {
    let meta = "instance-id: i-9\nlocal-hostname: n9\nnetwork-interfaces: |\n  auto eth0\n  iface eth0 inet static\n  address 192.168.1.9\n  netmask 255.255.255.0\n  gateway 192.168.1.1\n";
    let (_dir, cfg) = seed(&[("meta-data", meta)]);
    let md = fetch(&cfg).await.unwrap();
    assert_eq!(md.private_ipv4, Some("192.168.1.9".parse().unwrap()));

    // network-config wins over the legacy key, family by family.
    let (_dir, cfg) = seed(&[
        ("meta-data", meta),
        (
            "network-config",
            "network:\n  version: 2\n  ethernets:\n    eth0:\n      addresses: [\"fd00::9/64\"]\n",
        ),
    ]);
    let md = fetch(&cfg).await.unwrap();
    assert_eq!(md.private_ipv4, Some("192.168.1.9".parse().unwrap()));
    assert_eq!(md.private_ipv6, Some("fd00::9".parse().unwrap()));
}

#[test]
fn network_config_v1() {
    let v1 = r#"
version: 1
config:
  - type: physical
    name: eth0
    mac_address: "52:54:00:12:34:00"
    subnets:
      - type: dhcp6
      - type: static
        address: 10.0.2.15/24
        gateway: 10.0.2.2
      - type: static6
        address: "fd00:2::15/64"
  - type: nameserver
    address: [10.0.2.3]
"#;
    let a = parse_network_config(v1).unwrap();
    assert_eq!(a.v4, Some("10.0.2.15".parse().unwrap()));
    assert_eq!(a.v6, Some("fd00:2::15".parse().unwrap()));
}

#[test]
fn network_config_v2_variants() {
    let dhcp_only = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n";
    assert_eq!(parse_network_config(dhcp_only).unwrap(), Addresses::default());
    let lifetime = "version: 2\nethernets:\n  eth0:\n    addresses:\n      - 10.1.0.5/16:\n          lifetime: 0\n";
    assert_eq!(parse_network_config(lifetime).unwrap().v4, Some("10.1.0.5".parse().unwrap()));
    let bond = "version: 2\nbonds:\n  bond0:\n    interfaces: [eth0, eth1]\n    addresses: [10.2.0.5/16]\n";
    assert_eq!(parse_network_config(bond).unwrap().v4, Some("10.2.0.5".parse().unwrap()));
    let disabled = "network:\n  config: disabled\n";
    assert_eq!(parse_network_config(disabled).unwrap(), Addresses::default());
    assert_eq!(parse_network_config("").unwrap(), Addresses::default());
}

#[tokio::test]
async fn missing_seed_is_a_read_error_naming_the_file() {
    let (dir, cfg) = seed(&[("user-data", "#cloud-config\n")]);
    let err = fetch(&cfg).await.unwrap_err();
    assert!(matches!(err, MetadataError::ReadFile { .. }), "{err}");
    let path = dir.path().join("meta-data");
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    assert!(err.to_string().contains("seed-dir"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn invalid_files_name_the_file_and_the_problem() {
    for (files, file, needle) in [
        (vec![("meta-data", "local-hostname: x\n")], "meta-data", "instance-id"),
        (vec![("meta-data", "instance-id: \"\"\n")], "meta-data", "instance-id"),
        (vec![("meta-data", "instance-id: [a, b]\n")], "meta-data", "instance-id"),
        (vec![("meta-data", "- just\n- a list\n")], "meta-data", "mapping"),
        (vec![("meta-data", "instance-id: x\n  bad: indent\n")], "meta-data", "YAML"),
        (
            vec![
                ("meta-data", "instance-id: x\n"),
                (
                    "network-config",
                    "version: 2\nethernets:\n  e:\n    addresses: [10.0.0.300/24]\n",
                ),
            ],
            "network-config",
            "10.0.0.300",
        ),
        (
            vec![("meta-data", "instance-id: x\nnetwork-interfaces: |\n  address nowhere\n")],
            "meta-data",
            "nowhere",
        ),
    ] {
        let (dir, cfg) = seed(&files);
        let err = fetch(&cfg).await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, MetadataError::InvalidFile { .. }), "{msg}");
        assert!(msg.contains(&dir.path().join(file).display().to_string()), "{msg}");
        assert!(msg.contains(needle), "{msg}");
    }
}

#[tokio::test]
async fn non_utf8_seed_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("meta-data"), [0xff, 0xfe, b'\n']).unwrap();
    let cfg = NocloudConfig { seed_dir: dir.path().to_path_buf() };
    assert!(matches!(fetch(&cfg).await.unwrap_err(), MetadataError::InvalidFile { .. }));
}
