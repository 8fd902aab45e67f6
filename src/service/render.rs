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

/// Every etcd flag of the member, as (flag name, value): the one source both the
/// environment file (`ETCD_*`) and the static pod's command line (`--flag=value`) render.
pub fn etcd_flags(
    m: &LocalMember,
    c: &Config,
    b: &ClusterBootstrap,
) -> Vec<(&'static str, String)> {
    let p = &m.pki;
    let initial_cluster =
        b.initial_cluster.iter().map(|(n, u)| format!("{n}={u}")).collect::<Vec<_>>().join(",");
    let mut flags: Vec<(&str, String)> = vec![
        ("name", m.name.clone()),
        ("data-dir", c.data_dir.display().to_string()),
        ("listen-client-urls", m.listen_client_urls.join(",")),
        ("advertise-client-urls", m.client_url.clone()),
        ("listen-peer-urls", m.listen_peer_urls.join(",")),
        ("initial-advertise-peer-urls", m.peer_url.clone()),
        ("initial-cluster", initial_cluster),
        ("initial-cluster-state", b.state.into()),
    ];
    if let Some(t) = &b.token {
        flags.push(("initial-cluster-token", t.clone()));
    }
    flags.extend([
        ("listen-metrics-urls", m.metrics_url.clone()),
        ("cert-file", p.server_cert.display().to_string()),
        ("key-file", p.server_key.display().to_string()),
        ("trusted-ca-file", p.ca_cert.display().to_string()),
        ("client-cert-auth", "true".into()),
        ("peer-cert-file", p.peer_cert.display().to_string()),
        ("peer-key-file", p.peer_key.display().to_string()),
        ("peer-trusted-ca-file", p.ca_cert.display().to_string()),
        ("peer-client-cert-auth", "true".into()),
        ("strict-reconfig-check", "true".into()),
        ("quota-backend-bytes", c.quota_backend_bytes.to_string()),
        ("auto-compaction-mode", c.auto_compaction_mode.as_str().into()),
        ("auto-compaction-retention", c.auto_compaction_retention.to_string()),
        // refuse to start on a data directory whose hash differs from its peers'
        ("experimental-initial-corrupt-check", "true".into()),
        // what kube-apiserver expects (kubeadm sets the same)
        ("experimental-watch-progress-notify-interval", "5s".into()),
    ]);
    if release_at_least(&c.version, COMPACT_HASH_CHECK_SINCE) {
        // the leader compares its peers' hashes after each compaction (every minute) and
        // raises the CORRUPT alarm on a mismatch
        flags.push(("experimental-compact-hash-check-enabled", "true".into()));
    }
    flags.extend(tls_floor_flags(&c.version));
    flags
}

/// The TLS 1.2 cipher suites etcd offers on its client and peer ports: ECDHE key exchange
/// with AES-GCM only (no CBC, no RSA key exchange, no 3DES/RC4). The names are the ones both
/// etcd 3.4 (its own table) and 3.5 (Go's `tls.CipherSuites()`) accept; the ChaCha20 suites
/// are left out because their names differ between the two. TLS 1.3 suites are fixed by Go.
pub const CIPHER_SUITES: &str = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384";

/// The first etcd 3.5 release with `--tls-min-version` (etcd's CHANGELOG-3.5, v3.5.8).
const TLS_MIN_VERSION_SINCE: (u64, u64, u64) = (3, 5, 8);

/// From this release on, etcdadm enables the periodic compact hash check: the first release
/// etcd recommends for production that has `--experimental-compact-hash-check-enabled`
/// (3.5.0 and 3.5.1 lack it, 3.5.16 has it; `tests/etcd-flags.sh` runs each mirrored one).
const COMPACT_HASH_CHECK_SINCE: (u64, u64, u64) = (3, 5, 6);

/// Whether etcd `version` is `since` or later (false when it cannot be read).
fn release_at_least(version: &str, since: (u64, u64, u64)) -> bool {
    semver::Version::parse(version).is_ok_and(|v| (v.major, v.minor, v.patch) >= since)
}

/// The TLS floor for etcd `version`: `--cipher-suites` on every release (3.4 has it), and
/// `--tls-min-version=TLS1.2` where the release has the flag (3.5.8 and later; etcd 3.4 and
/// older 3.5 releases have TLS 1.2 as their built-in minimum).
pub fn tls_floor_flags(version: &str) -> Vec<(&'static str, String)> {
    let mut flags = vec![("cipher-suites", CIPHER_SUITES.to_string())];
    if release_at_least(version, TLS_MIN_VERSION_SINCE) {
        flags.push(("tls-min-version", "TLS1.2".into()));
    }
    flags
}

/// The etcd environment file: every flag as an `ETCD_*` variable.
pub fn render_env(m: &LocalMember, c: &Config, b: &ClusterBootstrap) -> String {
    let mut out = String::from(
        "# Written by etcdadm; changes are overwritten. Settings: etcdadm config view\n",
    );
    for (k, v) in etcd_flags(m, c, b) {
        let _ = writeln!(out, "ETCD_{}={v}", k.to_ascii_uppercase().replace('-', "_"));
    }
    out
}

/// The etcd unit: `Type=notify` (etcd signals readiness), flags from the environment file,
/// scheduling from `disk-priorities`, run as the unprivileged `etcd` user and confined by
/// systemd's sandboxing (`systemd-analyze security` exposure about 1.2).
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
{priorities}{sandbox}
[Install]
WantedBy=multi-user.target
",
        env = c.env_file.display(),
        bin = c.install_dir.display(),
        sandbox = etcd_sandbox(c),
    )
}

/// etcd's user and sandbox. etcd needs: its data directory read-write, the certificates
/// and binaries read-only, TCP and the notify socket, nothing else. The CA key is root's
/// (0600) and not readable by the `etcd` user.
fn etcd_sandbox(c: &Config) -> String {
    let low_ports: Vec<u16> =
        [c.client_port, c.peer_port, c.metrics_port].into_iter().filter(|p| *p < 1024).collect();
    // Ports below 1024 need CAP_NET_BIND_SERVICE, and nothing else does.
    let caps = if low_ports.is_empty() {
        "CapabilityBoundingSet=\nAmbientCapabilities=\n".to_string()
    } else {
        format!(
            "# Ports below 1024 ({}) need CAP_NET_BIND_SERVICE, granted alone.\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n",
            low_ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        )
    };
    // A realtime CPUSchedulingPolicy from disk-priorities is set by systemd before etcd
    // starts; RestrictRealtime would still be fine, but is left out so nothing in etcd that
    // re-applies the inherited policy is refused.
    let realtime = c.disk_priorities.iter().any(|d| {
        let d = d.to_string();
        d.starts_with("CPUSchedulingPolicy=") && (d.ends_with("=fifo") || d.ends_with("=rr"))
    });
    let home = if under_home(&c.data_dir) { "read-only" } else { "yes" };
    format!(
        "User={user}
Group={user}
UMask=0077
NoNewPrivileges=yes
{caps}ProtectSystem=strict
ReadWritePaths={data}
ProtectHome={home}
{ISOLATION}ProcSubset=pid
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
{realtime}RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
KeyringMode=private
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
",
        user = super::user::ETCD_USER,
        data = c.data_dir.display(),
        realtime = if realtime { "" } else { "RestrictRealtime=yes\n" },
    )
}

/// What the etcd unit and the timers' services both hide from their process: temporary
/// files, devices, mounts, kernel settings, the clock, the host name and other processes.
const ISOLATION: &str = "PrivateTmp=yes\n\
PrivateDevices=yes\n\
DevicePolicy=closed\n\
PrivateMounts=yes\n\
ProtectKernelTunables=yes\n\
ProtectKernelModules=yes\n\
ProtectKernelLogs=yes\n\
ProtectControlGroups=yes\n\
ProtectClock=yes\n\
ProtectHostname=yes\n\
ProtectProc=invisible\n";

/// Whether `path` is under a directory `ProtectHome=yes` hides.
fn under_home(path: &std::path::Path) -> bool {
    ["/home", "/root", "/run/user"].iter().any(|h| path.starts_with(h))
}

/// The sandbox of the renewal and backup services, which run etcdadm as root: root is
/// needed (the CA key, restarting etcd), but not new privileges, devices, kernel tunables,
/// other namespaces, writes outside the directories each one writes, or capabilities
/// beyond `caps` (`certs renew` keeps the etcd user's ownership of the keys it replaces).
fn timer_service_sandbox(writes: &[&std::path::Path], caps: &str) -> String {
    let rw: Vec<String> = writes.iter().map(|p| format!("-{}", p.display())).collect();
    let home = if writes.iter().any(|p| under_home(p)) { "read-only" } else { "yes" };
    format!(
        "UMask=0077
NoNewPrivileges=yes
CapabilityBoundingSet={caps}
ProtectSystem=strict
ReadWritePaths={rw}
ProtectHome={home}
{ISOLATION}RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
KeyringMode=private
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
",
        rw = rw.join(" ")
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

/// The kubelet static pod (`init-system: kubelet`): the same etcd flags on the container's
/// command line, host network, the data and PKI directories as hostPath volumes, and a
/// liveness probe on /health over the loopback metrics port.
pub fn render_pod_manifest(m: &LocalMember, c: &Config, b: &ClusterBootstrap) -> String {
    use serde_json::json;
    let mut command = vec!["etcd".to_string()];
    command.extend(etcd_flags(m, c, b).into_iter().map(|(k, v)| format!("--{k}={v}")));
    let probe = |delay: u32, failures: u32| {
        json!({
            "httpGet": {
                "host": "127.0.0.1",
                "path": "/health?exclude=NOSPACE&serializable=true",
                "port": c.metrics_port,
                "scheme": "HTTP",
            },
            "initialDelaySeconds": delay,
            "periodSeconds": 10,
            "timeoutSeconds": 15,
            "failureThreshold": failures,
        })
    };
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "etcd",
            "namespace": "kube-system",
            "labels": {"component": "etcd", "tier": "control-plane"},
            "annotations": {"etcdadm/member-name": m.name, "etcdadm/client-url": m.client_url},
        },
        "spec": {
            "hostNetwork": true,
            "priorityClassName": "system-node-critical",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "etcd",
                "image": format!("{}:v{}", c.image_repository, c.version),
                "imagePullPolicy": "IfNotPresent",
                "command": command,
                "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}},
                "livenessProbe": probe(10, 8),
                "startupProbe": probe(10, 24),
                "volumeMounts": [
                    {"name": "etcd-data", "mountPath": c.data_dir},
                    {"name": "etcd-certs", "mountPath": c.certs_dir, "readOnly": true},
                ],
            }],
            "volumes": [
                {"name": "etcd-data", "hostPath": {"path": c.data_dir, "type": "DirectoryOrCreate"}},
                {"name": "etcd-certs", "hostPath": {"path": c.certs_dir, "type": "DirectoryOrCreate"}},
            ],
        },
    });
    let yaml = serde_yaml_ng::to_string(&pod).unwrap_or_default();
    format!("# Written by etcdadm (init-system: kubelet); changes are overwritten.\n{yaml}")
}

/// The renewal service the timer runs: `etcdadm certs renew` for this member.
pub fn render_renew_service(c: &Config, etcdadm: &std::path::Path) -> String {
    format!(
        "# Written by etcdadm.
[Unit]
Description=Renew etcd member certificates ahead of expiry (etcdadm)
After={unit}

[Service]
Type=oneshot
ExecStart={exe} certs renew --state-file {state}
{sandbox}",
        unit = c.unit_name(),
        exe = etcdadm.display(),
        state = c.state_file.display(),
        sandbox = timer_service_sandbox(
            &with_metrics(c, &[&c.certs_dir, state_dir(c)]),
            "CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER",
        ),
    )
}

/// `writes` and the textfile metrics directory the timers' runs write (when metrics are on).
/// Like every writable path of these services it is optional (`-`): node_exporter's package
/// or the administrator creates it, the sandboxed run does not.
fn with_metrics<'a>(c: &'a Config, writes: &[&'a std::path::Path]) -> Vec<&'a std::path::Path> {
    let mut all = writes.to_vec();
    if !c.metrics_textfile_dir.as_os_str().is_empty() {
        all.push(&c.metrics_textfile_dir);
    }
    all
}

/// The directory of the state file (`certs renew` records the renewal there).
fn state_dir(c: &Config) -> &std::path::Path {
    c.state_file.parent().unwrap_or(std::path::Path::new("/etc/etcdadm"))
}

/// Daily, at a random time per machine so members do not restart together.
pub fn render_renew_timer() -> String {
    timer("Renew etcd member certificates ahead of expiry (etcdadm)", "daily", "6h")
}

/// The backup service the timer runs: `etcdadm backup` for this member.
pub fn render_backup_service(c: &Config, etcdadm: &std::path::Path) -> String {
    format!(
        "# Written by etcdadm.
[Unit]
Description=Snapshot the etcd member (etcdadm)
After={unit}

[Service]
Type=oneshot
ExecStart={exe} backup --state-file {state}
{sandbox}",
        unit = c.unit_name(),
        exe = etcdadm.display(),
        state = c.state_file.display(),
        sandbox = timer_service_sandbox(&with_metrics(c, &[&c.backup_dir]), ""),
    )
}

pub fn render_backup_timer(c: &Config) -> String {
    timer("Snapshot the etcd member (etcdadm)", &c.backup_on_calendar, "15min")
}

/// The defragmentation service its timer runs: `etcdadm defrag --this-member`, which waits
/// for the lock in etcd that keeps members' runs apart, so it may take a while. It talks to
/// etcd and writes only its metrics, so it holds no capabilities.
pub fn render_defrag_service(c: &Config, etcdadm: &std::path::Path) -> String {
    format!(
        "# Written by etcdadm.
[Unit]
Description=Defragment the etcd member when worth it; recover from NOSPACE (etcdadm)
After={unit}

[Service]
Type=oneshot
ExecStart={exe} defrag --this-member --state-file {state}
{sandbox}",
        unit = c.unit_name(),
        exe = etcdadm.display(),
        state = c.state_file.display(),
        sandbox = timer_service_sandbox(&with_metrics(c, &[]), ""),
    )
}

pub fn render_defrag_timer(c: &Config) -> String {
    timer(
        "Defragment the etcd member when worth it; recover from NOSPACE (etcdadm)",
        &c.defrag_on_calendar,
        "1h",
    )
}

fn timer(description: &str, on_calendar: &str, spread: &str) -> String {
    format!(
        "# Written by etcdadm.
[Unit]
Description={description}

[Timer]
OnCalendar={on_calendar}
RandomizedDelaySec={spread}
Persistent=true

[Install]
WantedBy=timers.target
"
    )
}
