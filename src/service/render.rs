//! Files etcdadm writes for systemd and etcdctl. Plain string building, pinned by golden
//! files under tests/golden/.

use crate::config::Config;
use crate::member::LocalMember;
use std::fmt::Write;

/// How etcd starts the first time: a new cluster, or joining an existing one.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterBootstrap {
    /// `name=peer-url` pairs.
    pub initial_cluster: Vec<(String, String)>,
    pub state: &'static str,
    pub token: Option<String>,
}

/// The etcd environment file: every flag as an `ETCD_*` variable.
pub fn render_env(m: &LocalMember, c: &Config, b: &ClusterBootstrap) -> String {
    let p = &m.pki;
    let initial_cluster = b
        .initial_cluster
        .iter()
        .map(|(n, u)| format!("{n}={u}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut vars: Vec<(&str, String)> = vec![
        ("ETCD_NAME", m.name.clone()),
        ("ETCD_DATA_DIR", c.data_dir.display().to_string()),
        ("ETCD_LISTEN_CLIENT_URLS", m.listen_client_urls.join(",")),
        ("ETCD_ADVERTISE_CLIENT_URLS", m.client_url.clone()),
        ("ETCD_LISTEN_PEER_URLS", m.listen_peer_urls.join(",")),
        ("ETCD_INITIAL_ADVERTISE_PEER_URLS", m.peer_url.clone()),
        ("ETCD_INITIAL_CLUSTER", initial_cluster),
        ("ETCD_INITIAL_CLUSTER_STATE", b.state.into()),
    ];
    if let Some(t) = &b.token {
        vars.push(("ETCD_INITIAL_CLUSTER_TOKEN", t.clone()));
    }
    vars.extend([
        ("ETCD_CERT_FILE", p.server_cert.display().to_string()),
        ("ETCD_KEY_FILE", p.server_key.display().to_string()),
        ("ETCD_TRUSTED_CA_FILE", p.ca_cert.display().to_string()),
        ("ETCD_CLIENT_CERT_AUTH", "true".into()),
        ("ETCD_PEER_CERT_FILE", p.peer_cert.display().to_string()),
        ("ETCD_PEER_KEY_FILE", p.peer_key.display().to_string()),
        ("ETCD_PEER_TRUSTED_CA_FILE", p.ca_cert.display().to_string()),
        ("ETCD_PEER_CLIENT_CERT_AUTH", "true".into()),
        ("ETCD_STRICT_RECONFIG_CHECK", "true".into()),
    ]);
    let mut out = String::from("# Written by etcdadm; changes are overwritten. Settings: etcdadm config view\n");
    for (k, v) in vars {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

/// The etcd unit: `Type=notify` (etcd signals readiness), flags from the environment file,
/// scheduling from `disk-priorities`.
pub fn render_unit(c: &Config) -> String {
    let priorities: String = c.disk_priorities.iter().map(|d| format!("{d}\n")).collect();
    format!(
        "# Written by etcdadm.
[Unit]
Description=etcd key-value store (managed by etcdadm)
Documentation=https://etcd.io/docs/
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
EnvironmentFile={env}
ExecStart={bin}/etcd
Restart=on-failure
RestartSec=5s
TimeoutStartSec=infinity
LimitNOFILE=65536
{priorities}
[Install]
WantedBy=multi-user.target
",
        env = c.env_file.display(),
        bin = c.install_dir.display(),
    )
}

/// Variables that make `etcdctl` talk to the local member with the client certificate.
pub fn render_etcdctl_env(m: &LocalMember) -> String {
    let p = &m.pki;
    format!(
        "# Written by etcdadm.\nETCDCTL_API=3\nETCDCTL_ENDPOINTS={}\nETCDCTL_CACERT={}\nETCDCTL_CERT={}\nETCDCTL_KEY={}\n",
        m.local_endpoint,
        p.ca_cert.display(),
        p.client_cert.display(),
        p.client_key.display()
    )
}

/// `etcdctl.sh`: etcdctl with the environment above, so it just works for root.
pub fn render_etcdctl_wrapper(c: &Config) -> String {
    format!(
        "#!/bin/sh\n# Written by etcdadm: etcdctl for the local member.\nset -a\n. {env}\nset +a\nexec {bin}/etcdctl \"$@\"\n",
        env = c.etcdctl_env_file.display(),
        bin = c.install_dir.display()
    )
}
