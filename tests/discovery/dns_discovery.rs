//! The `dns` provider against dnsmasq on 127.0.0.x, through the `nameserver` override.

use crate::support::{free_port, tool, ChildGuard};
use etcdadm::discovery::{discover, DiscoveryConfig, DiscoveryContext, DiscoveryError, PeerSet};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A dnsmasq authoritative for `etcd.test` only (no upstream, no /etc/hosts), with an extra
/// hosts file that grows on [`Dnsmasq::add_hosts`].
struct Dnsmasq {
    child: ChildGuard,
    addr: SocketAddr,
    hosts: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// `last_octet` picks 127.0.0.<n>, one per test, so that tests never share a server.
    fn start(last_octet: u8, records: &[&str]) -> Dnsmasq {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet));
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(&hosts, "").unwrap();
        let addr = SocketAddr::new(ip, free_port(ip));
        let mut d = Dnsmasq {
            child: ChildGuard(spawn_dnsmasq(addr, &hosts, records)),
            addr,
            hosts,
            _dir: dir,
        };
        d.wait_ready();
        d
    }

    /// Replaces the server by one with `records`, on the same address (dnsmasq reads
    /// `--srv-host` records only at start; SIGHUP does not reload them).
    fn restart(&mut self, records: &[&str]) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
        self.child = ChildGuard(spawn_dnsmasq(self.addr, &self.hosts, records));
        self.wait_ready();
    }

    /// Until dnsmasq answers a query (any answer).
    fn wait_ready(&mut self) {
        let sock = UdpSocket::bind((self.addr.ip(), 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        // ID 0x4242, recursion desired, one question: ready.etcd.test A IN.
        let mut q = vec![0x42, 0x42, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["ready", "etcd", "test"] {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let start = Instant::now();
        let mut buf = [0u8; 512];
        loop {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                panic!("dnsmasq exited at start ({status}); run it by hand with these options to see why");
            }
            sock.send_to(&q, self.addr).unwrap();
            if matches!(sock.recv_from(&mut buf), Ok((n, _)) if n >= 12 && buf[..2] == [0x42, 0x42])
            {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "dnsmasq did not answer on {}",
                self.addr
            );
        }
    }

    /// Appends `lines` to the extra hosts file and makes dnsmasq re-read it (SIGHUP).
    fn add_hosts(&self, lines: &[&str]) {
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.hosts).unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
        drop(f);
        let pid = nix::unistd::Pid::from_raw(self.child.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    }

    fn srv(&self, domain: &str) -> DiscoveryConfig {
        DiscoveryConfig::Dns {
            domain: Some(domain.into()),
            name: None,
            nameserver: Some(self.addr),
        }
    }

    fn name(&self, name: &str) -> DiscoveryConfig {
        DiscoveryConfig::Dns { domain: None, name: Some(name.into()), nameserver: Some(self.addr) }
    }
}

/// dnsmasq authoritative for `etcd.test` only (no upstream, no /etc/hosts) on `addr`.
fn spawn_dnsmasq(
    addr: SocketAddr,
    hosts: &std::path::Path,
    records: &[&str],
) -> std::process::Child {
    let bin = tool("dnsmasq", "ETCDADM_TEST_DNSMASQ", &["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]);
    Command::new(bin)
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--pid-file=",
            "--user=root",
            "--local=/etcd.test/",
            "--log-facility=-",
        ])
        .arg(format!("--listen-address={}", addr.ip()))
        .arg(format!("--port={}", addr.port()))
        .arg(format!("--addn-hosts={}", hosts.display()))
        .args(records)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dnsmasq")
}

fn shown(set: &PeerSet) -> Vec<String> {
    set.peers.iter().map(|p| p.to_string()).collect()
}

async fn run(cfg: &DiscoveryConfig) -> Result<PeerSet, DiscoveryError> {
    discover(cfg, &DiscoveryContext::default()).await
}

/// Polls until `cfg` gives `want` (dnsmasq re-reads its hosts file asynchronously on SIGHUP).
async fn eventually(cfg: &DiscoveryConfig, want: &[&str]) {
    let start = Instant::now();
    loop {
        let got = run(cfg).await.map(|s| shown(&s));
        if matches!(&got, Ok(g) if g == want) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "still {got:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn srv_discovery_names_peers_by_target_and_resolves_them() {
    let dns = Dnsmasq::start(
        21,
        &[
            "--srv-host=_etcd-server-ssl._tcp.etcd.test,etcd-a.etcd.test,2380,0,10",
            "--srv-host=_etcd-server-ssl._tcp.etcd.test,etcd-b.etcd.test,2380,0,10",
            "--srv-host=_etcd-server-ssl._tcp.etcd.test,etcd-c.etcd.test,2380,0,10",
            // Plain-HTTP peers are not the TLS cluster's.
            "--srv-host=_etcd-server._tcp.etcd.test,etcd-x.etcd.test,2380",
            "--host-record=etcd-a.etcd.test,127.1.0.1,fd00::1",
            "--host-record=etcd-b.etcd.test,fd00::2",
            "--host-record=etcd-x.etcd.test,127.1.0.9",
        ],
    );
    let cfg = dns.srv("etcd.test");
    let set = run(&cfg).await.unwrap();
    // etcd-a has both families (IPv4 wins), etcd-b only IPv6, etcd-c no address yet (kept by name).
    assert_eq!(shown(&set), ["etcd-a=127.1.0.1", "etcd-b=fd00::2", "etcd-c=etcd-c.etcd.test"]);
    assert_eq!((set.expected, set.authoritative), (None, false));
    // etcd-c gets its address: the same member, now by IP.
    dns.add_hosts(&["127.1.0.3 etcd-c.etcd.test"]);
    eventually(&cfg, &["etcd-a=127.1.0.1", "etcd-c=127.1.0.3", "etcd-b=fd00::2"]).await;
    // A trailing dot on the domain is the same domain.
    assert_eq!(run(&dns.srv("etcd.test.")).await.unwrap().peers.len(), 3);
}

#[tokio::test]
async fn name_discovery_gives_one_peer_per_address_and_follows_a_growing_zone() {
    let dns = Dnsmasq::start(22, &["--host-record=fixed.etcd.test,127.1.0.1,fd00::1"]);
    let set = run(&dns.name("fixed.etcd.test")).await.unwrap();
    assert_eq!(shown(&set), ["127.1.0.1", "fd00::1"]);
    assert!(set.peers.iter().all(|p| p.name.is_none() && p.instance_id.is_none()));

    let cfg = dns.name("members.etcd.test");
    let e = run(&cfg).await.unwrap_err();
    assert!(matches!(e, DiscoveryError::NoPeers { .. }) && e.is_retryable(), "{e}");
    assert!(
        e.to_string().contains("members.etcd.test")
            && e.to_string().contains(&dns.addr.to_string()),
        "{e}"
    );

    dns.add_hosts(&["127.1.0.2 members.etcd.test"]);
    eventually(&cfg, &["127.1.0.2"]).await;
    dns.add_hosts(&["127.1.0.1 members.etcd.test", "127.1.0.3 members.etcd.test"]);
    eventually(&cfg, &["127.1.0.1", "127.1.0.2", "127.1.0.3"]).await;
}

#[tokio::test]
async fn dns_discovery_errors_say_what_and_whether_to_retry() {
    let dns = Dnsmasq::start(23, &["--host-record=a.etcd.test,127.1.0.1"]);
    // No SRV records yet: retryable, names the record and the server.
    let e = run(&dns.srv("etcd.test")).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("_etcd-server-ssl._tcp.etcd.test."), "{e}");
    // Outside the served zone dnsmasq answers REFUSED: a configuration problem.
    let e = run(&dns.name("etcd.example.org")).await.unwrap_err();
    assert!(matches!(e, DiscoveryError::Dns { .. }) && !e.is_retryable(), "{e}");
    assert!(e.to_string().contains(&dns.addr.to_string()), "{e}");
    // Configuration errors come before any query.
    let both = DiscoveryConfig::Dns {
        domain: Some("a.test".into()),
        name: Some("b.test".into()),
        nameserver: Some(dns.addr),
    };
    assert!(matches!(run(&both).await, Err(DiscoveryError::Config(_))));
}

#[tokio::test]
async fn dns_discovery_retries_servfail_and_dead_nameservers() {
    // A server that answers every query with SERVFAIL.
    let sock = tokio::net::UdpSocket::bind("127.0.0.24:0").await.unwrap();
    let servfail = sock.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            if n >= 12 {
                buf[2] |= 0x80; // QR: response
                buf[3] = (buf[3] & 0xf0) | 2; // RCODE 2: SERVFAIL
                let _ = sock.send_to(&buf[..n], from).await;
            }
        }
    });
    let cfg = DiscoveryConfig::Dns {
        domain: None,
        name: Some("a.etcd.test".into()),
        nameserver: Some(servfail),
    };
    let e = run(&cfg).await.unwrap_err();
    assert!(e.is_retryable(), "SERVFAIL must be retryable: {e}");
    assert!(e.to_string().contains(&servfail.to_string()), "{e}");
    server.abort();

    // Nothing listens there at all (UDP port unreachable, TCP refused).
    let dead = SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 25)),
        free_port("127.0.0.25".parse().unwrap()),
    );
    let cfg = DiscoveryConfig::Dns {
        domain: Some("etcd.test".into()),
        name: None,
        nameserver: Some(dead),
    };
    let start = Instant::now();
    let e = run(&cfg).await.unwrap_err();
    assert!(e.is_retryable(), "an unreachable nameserver must be retryable: {e}");
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
}

/// Machines booting while their SRV records are published one by one: each runs
/// `etcdadm discover` (the built binary) with `cluster-size: 5` as soon as its own record is
/// up, so the first ones see 1, 2, 3... peers at first. All end with the same five.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_discovery_follows_a_growing_record_set_to_one_peer_set() {
    const SIZE: usize = 5;
    let srv = |i: usize| {
        format!("--srv-host=_etcd-server-ssl._tcp.etcd.test,etcd-{i}.etcd.test,2380,0,10")
    };
    let hosts: Vec<String> =
        (1..=SIZE).map(|i| format!("--host-record=etcd-{i}.etcd.test,127.1.0.{i}")).collect();
    let records =
        |n: usize| -> Vec<String> { hosts.iter().cloned().chain((1..=n).map(srv)).collect() };
    let mut dns = Dnsmasq::start(26, &hosts.iter().map(String::as_str).collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    let mut machines = Vec::new();
    for i in 1..=SIZE {
        let now = records(i);
        dns.restart(&now.iter().map(String::as_str).collect::<Vec<_>>());
        let config = dir.path().join(format!("m{i}.yaml"));
        std::fs::write(
            &config,
            format!(
                "advertise-address: 127.1.0.{i}\nstate-file: {}\nbootstrap:\n  cluster-size: {SIZE}\n  deadline-seconds: 60\n  \
                 discovery: {{provider: dns, domain: etcd.test, nameserver: '{}'}}\n",
                dir.path().join(format!("m{i}.json")).display(),
                dns.addr
            ),
        )
        .unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_etcdadm"))
            .args(["discover", "--output", "json", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start etcdadm discover");
        machines.push((i, child));
        // Let the machines that run see this state of the zone for a round or two.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let want: Vec<(String, String)> =
        (1..=SIZE).map(|i| (format!("etcd-{i}"), format!("https://127.1.0.{i}:2380"))).collect();
    let mut rounds = Vec::new();
    for (i, child) in machines {
        let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
            .await
            .expect("etcdadm discover did not end")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "machine {i}: {}\n{stderr}", out.status);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["complete"], true, "machine {i}: {report}");
        let got: Vec<(String, String)> = report["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["peer-url"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(got, want, "machine {i}");
        let me: Vec<&str> = report["peers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["this-machine"] == true)
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(me, [format!("etcd-{i}")]);
        rounds.push(report["rounds"].as_u64().unwrap());
    }
    // The first machine started with one record and had to wait for the other four.
    assert!(rounds[0] >= 2, "rounds per machine: {rounds:?}");
}
