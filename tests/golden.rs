//! Golden files for everything etcdadm renders. Regenerate with `UPDATE_GOLDEN=1 cargo test`
//! and review the diff.

use etcdadm::config::Config;
use etcdadm::config::InitSystem;
use etcdadm::member::LocalMember;
use etcdadm::service::{
    render_backup_service, render_backup_timer, render_env, render_etcdctl_env,
    render_etcdctl_wrapper, render_pod_manifest, render_renew_service, render_renew_timer,
    render_unit, ClusterBootstrap,
};
use std::path::Path;

fn check(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, expected, "{name} differs from its golden file");
}

fn member(c: &Config) -> LocalMember {
    LocalMember::resolve(c, || Ok("m1".into()), || Ok("10.213.0.11".parse().unwrap())).unwrap()
}

#[test]
fn init_ipv4_defaults() {
    let c = Config::default();
    let m = member(&c);
    let b = ClusterBootstrap {
        initial_cluster: vec![("m1".into(), m.peer_url.clone())],
        state: "new",
        token: Some("etcd-m1".into()),
    };
    check("etcd.env.init-ipv4", &render_env(&m, &c, &b));
    check("etcd.service", &render_unit(&c));
    check("etcdctl.env", &render_etcdctl_env(&m));
    check("etcdctl.sh", &render_etcdctl_wrapper(&c));
    check("etcdadm-certs-renew.service", &render_renew_service(&c, Path::new("/opt/bin/etcdadm")));
    check("etcdadm-certs-renew.timer", &render_renew_timer());
    check("etcdadm-backup.service", &render_backup_service(&c, Path::new("/opt/bin/etcdadm")));
    check("etcdadm-backup.timer", &render_backup_timer(&c));
}

#[test]
fn join_ipv6_custom_paths() {
    let c = Config {
        name: Some("node-b".into()),
        advertise_address: Some("fd00:213::12".into()),
        data_dir: "/srv/etcd".into(),
        certs_dir: "/etc/kubernetes/pki/etcd".into(),
        install_dir: "/usr/local/bin".into(),
        env_file: "/etc/default/etcd".into(),
        client_port: 12379,
        peer_port: 12380,
        ..Default::default()
    };
    let m = member(&c);
    let b = ClusterBootstrap {
        initial_cluster: vec![
            ("m1".into(), "https://[fd00:213::11]:12380".into()),
            ("node-b".into(), m.peer_url.clone()),
        ],
        state: "existing",
        token: None,
    };
    check("etcd.env.join-ipv6", &render_env(&m, &c, &b));
    check("etcd.service.custom", &render_unit(&c));
    check("etcdctl.env.ipv6", &render_etcdctl_env(&m));
}

#[test]
fn kubelet_static_pod() {
    let c = Config { init_system: InitSystem::Kubelet, ..Default::default() };
    let m = member(&c);
    let b = ClusterBootstrap {
        initial_cluster: vec![("m1".into(), m.peer_url.clone())],
        state: "new",
        token: Some("etcd-m1".into()),
    };
    let pod = render_pod_manifest(&m, &c, &b);
    check("etcd-pod.yaml", &pod);
    // The container gets exactly the flags the unit gets through its environment file.
    let env = render_env(&m, &c, &b);
    let from_env: Vec<String> = env
        .lines()
        .filter_map(|l| l.strip_prefix("ETCD_"))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            format!("--{}={v}", k.to_ascii_lowercase().replace('_', "-"))
        })
        .collect();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&pod).unwrap();
    let command: Vec<String> = doc["spec"]["containers"][0]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(command[0], "etcd");
    assert_eq!(command[1..], from_env[..]);
}
