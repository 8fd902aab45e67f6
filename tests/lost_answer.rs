//! Membership changes that reached etcd but whose answer never came back (the machine cut
//! off, or its call timed out, right after etcd applied the change), against a real etcd
//! 3.5.30 from the local mirror (scripts/build-etcd-mirror.sh, cached; a mirror or etcd that
//! cannot be had fails the tests, never skips them): join's learner add, and the member
//! removal of `reset` and of bootstrap's departed members. Their retries meet etcd's refusals
//! ("Peer URLs already exists" or "member ID already exist"; "member not found"), which
//! must not fail a change that was made.
//!
//! Between etcdadm and etcd sits a proxy on 127.0.0.1 that forwards the requests but, once
//! told to, holds back what etcd sends until etcd's member list (read directly) shows the
//! change, then closes the connection: the answer is lost, every time. Fleet scenario
//! 85-faults cuts a real joining machine off right after its member add, where whether the
//! answer was through already depends on timing.

use etcdadm::cluster::{until_deadline, Cluster, MemberInfo, TlsFiles};
use etcdadm::membership::join::add_as_learner;
use etcdadm::net::Host;
use etcdadm::pki::{Ca, CertSpec, Lifetime};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const ETCD_VERSION: &str = "3.5.30";
const LEARNER_PEER_URL: &str = "https://127.0.0.1:1";

/// etcd's binary, unpacked from the local mirror's release archive into `dir`.
fn etcd_binary(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cache = std::env::var("ETCDADM_TEST_CACHE").unwrap_or("/var/tmp/etcdadm-test-cache".into());
    let mirror = Path::new(&cache).join("mirror");
    let built = Command::new(root.join("scripts/build-etcd-mirror.sh"))
        .arg(&mirror)
        .arg(ETCD_VERSION)
        .status()
        .expect("run scripts/build-etcd-mirror.sh");
    assert!(
        built.success(),
        "scripts/build-etcd-mirror.sh {} {ETCD_VERSION} failed",
        mirror.display()
    );
    let top = format!("etcd-v{ETCD_VERSION}-linux-amd64");
    let archive = mirror.join(format!("v{ETCD_VERSION}/{top}.tar.gz"));
    let unpacked = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(dir)
        .arg("--strip-components=1")
        .arg(format!("{top}/etcd"))
        .status()
        .expect("run tar");
    assert!(unpacked.success(), "cannot unpack etcd from {}", archive.display());
    dir.join("etcd")
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One etcd member on 127.0.0.1 with TLS client authentication, killed when dropped.
struct Etcd {
    child: Child,
    client: SocketAddr,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA, etcd's server certificate for 127.0.0.1 and a client certificate, under `dir`.
fn certificates(dir: &Path) -> (TlsFiles, PathBuf, PathBuf) {
    let ca = Ca::load_or_create(&dir.join("ca.crt"), &dir.join("ca.key"), 30).unwrap();
    let life = Lifetime { days: 30, renew_within_days: 1 };
    let spec = |cn: &str, server: bool| CertSpec {
        common_name: cn.into(),
        organization: None,
        sans: vec![Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST))],
        server_auth: server,
        client_auth: true,
    };
    let (server_crt, server_key) = (dir.join("server.crt"), dir.join("server.key"));
    ca.ensure_cert(&spec("etcd", true), &server_crt, &server_key, life).unwrap();
    let tls = TlsFiles { ca: dir.join("ca.crt"), cert: dir.join("c.crt"), key: dir.join("c.key") };
    ca.ensure_cert(&spec("client", false), &tls.cert, &tls.key, life).unwrap();
    (tls, server_crt, server_key)
}

fn start_etcd(bin: &Path, dir: &Path, server_crt: &Path, server_key: &Path) -> Etcd {
    let (client, peer) = (free_port(), free_port());
    let client_url = format!("https://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let child = Command::new(bin)
        .arg("--name=lost")
        .arg(format!("--data-dir={}", dir.join("data").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=lost={peer_url}"))
        .arg(format!("--cert-file={}", server_crt.display()))
        .arg(format!("--key-file={}", server_key.display()))
        .arg(format!("--trusted-ca-file={}", dir.join("ca.crt").display()))
        .arg("--client-cert-auth")
        .arg("--log-level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.join("etcd.log")).unwrap()))
        .spawn()
        .expect("start etcd");
    Etcd { child, client: SocketAddr::from(([127, 0, 0, 1], client)) }
}

/// A TCP proxy on 127.0.0.1 to `target`. While `holding` is true, what etcd sends is held
/// back; when it turns false, each connection that held something is closed with it (the
/// answer is lost) and counted, and later connections forward again.
async fn proxy(
    target: SocketAddr,
    holding: watch::Receiver<bool>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let lost = Arc::new(AtomicUsize::new(0));
    let counter = lost.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(etcd) = TcpStream::connect(target).await else { continue };
            tokio::spawn(pipe(client, etcd, holding.clone(), counter.clone()));
        }
    });
    (addr, lost)
}

async fn pipe(
    client: TcpStream,
    etcd: TcpStream,
    mut holding: watch::Receiver<bool>,
    lost: Arc<AtomicUsize>,
) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_etcd, mut to_etcd) = etcd.into_split();
    let requests = tokio::io::copy(&mut from_client, &mut to_etcd);
    let replies = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = from_etcd.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            if *holding.borrow_and_update() {
                let _ = holding.wait_for(|h| !*h).await;
                lost.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            to_client.write_all(&buf[..n]).await?;
        }
    };
    // Whichever direction ends first closes both: a lost answer takes its connection along.
    tokio::select! {
        _ = requests => {}
        r = replies => { let _: std::io::Result<()> = r; }
    }
}

/// A real etcd, a proxy in front of it, and clients through each.
struct Fixture {
    _dir: tempfile::TempDir,
    _etcd: Etcd,
    /// Straight to etcd: what the cluster really holds.
    direct: Cluster,
    /// Through the proxy: the client whose answers get lost.
    via_proxy: Cluster,
    hold: watch::Sender<bool>,
    /// Connections whose held answer the proxy dropped.
    lost: Arc<AtomicUsize>,
}

impl Fixture {
    async fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let bin = etcd_binary(dir.path());
        let (tls, server_crt, server_key) = certificates(dir.path());
        let etcd = start_etcd(&bin, dir.path(), &server_crt, &server_key);
        let direct_url = format!("https://{}", etcd.client);
        let deadline = Instant::now() + Duration::from_secs(30);
        let direct = loop {
            if let Ok(c) = Cluster::connect(&direct_url, &tls).await {
                if c.members().await.is_ok() {
                    break c;
                }
            }
            let log = std::fs::read_to_string(dir.path().join("etcd.log")).unwrap_or_default();
            assert!(Instant::now() < deadline, "etcd at {direct_url} never answered:\n{log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (hold, holding) = watch::channel(false);
        let (proxy_addr, lost) = proxy(etcd.client, holding).await;
        let via_proxy = Cluster::connect(&format!("https://{proxy_addr}"), &tls).await.unwrap();
        via_proxy.members().await.expect("member list through the proxy");
        Fixture { _dir: dir, _etcd: etcd, direct, via_proxy, hold, lost }
    }

    /// Runs `op` through the proxy with etcd's answers held back until etcd's member list
    /// (read directly) satisfies `applied`; then the held answers are lost. Returns what
    /// `op` returned, and the member list `applied` accepted.
    async fn lose_answer<T>(
        &self,
        op: impl std::future::Future<Output = T>,
        applied: impl Fn(&[MemberInfo]) -> bool,
    ) -> (T, Vec<MemberInfo>) {
        self.hold.send(true).unwrap();
        let out = tokio::join!(op, async {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(list) = self.direct.members().await {
                    if applied(&list) {
                        self.hold.send(false).unwrap();
                        return list;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "etcd never applied the change: the request did not reach it"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        assert!(
            self.lost.load(Ordering::SeqCst) >= 1,
            "the proxy lost no answer: the test did not cut the answer off"
        );
        out
    }
}

fn at_learner_url(m: &MemberInfo) -> bool {
    m.peer_urls.iter().any(|u| u == LEARNER_PEER_URL)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_add_whose_answer_was_lost_continues_with_the_one_learner_etcd_added() {
    let f = Fixture::start().await;
    let (added, listed) = f
        .lose_answer(add_as_learner(&f.via_proxy, LEARNER_PEER_URL, Duration::from_secs(60)), |l| {
            l.iter().any(at_learner_url)
        })
        .await;
    let learner = listed.iter().find(|m| at_learner_url(m)).unwrap().id;
    let (id, _) = added.expect("the add whose answer was lost");
    assert_eq!(id, learner, "the id returned is the learner etcd added");

    let after = f.direct.members().await.unwrap();
    let ours: Vec<_> = after.iter().filter(|m| at_learner_url(m)).collect();
    assert_eq!(ours.len(), 1, "one member at {LEARNER_PEER_URL}, no duplicate: {after:?}");
    assert!(ours[0].is_learner, "still a learner: {after:?}");
    assert_eq!(after.len(), 2, "etcd's own member and the learner: {after:?}");
}

/// The removal as `reset` (`membership::remove::leave_cluster`) and bootstrap's removal of
/// departed members retry it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_remove_whose_answer_was_lost_succeeds_once_the_member_is_gone() {
    let f = Fixture::start().await;
    let (id, _) = f.direct.add_learner(LEARNER_PEER_URL).await.unwrap();
    let (removed, _) = f
        .lose_answer(
            until_deadline("removing the learner", Duration::from_secs(60), || {
                f.via_proxy.remove(id)
            }),
            |l| !l.iter().any(|m| m.id == id),
        )
        .await;
    removed.expect("the removal whose answer was lost");
    let after = f.direct.members().await.unwrap();
    assert_eq!(after.len(), 1, "only etcd's own member is left: {after:?}");
}
