//! The etcd v3 API as etcdadm uses it: membership (learner add, promote, remove), status and
//! health, over TLS with the member's client certificate.

use crate::net::Host;
use etcd_client::{Certificate, Client, ConnectOptions, Identity, MemberAddOptions, TlsOptions};
use std::path::PathBuf;
use std::time::Duration;
use tracing::{debug, info};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read TLS file {path}: {cause}")]
    TlsFile { path: String, cause: std::io::Error },
    #[error("no endpoint answered ({0}); check the endpoints, that etcd runs there, and that this machine holds that cluster's CA")]
    Unreachable(String),
    #[error("TLS handshake failed ({0}); check that the endpoints are etcd client URLs of that cluster and that this machine holds that cluster's CA")]
    Handshake(String),
    #[error("{endpoint}: {op} failed: {message}")]
    Api { endpoint: String, op: &'static str, message: String, retryable: bool },
}

impl ClusterError {
    /// Errors etcd expects callers to retry: not enough connected members yet, learner not
    /// caught up, leader elections, timeouts and transport failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClusterError::Api { retryable, .. } => *retryable,
            ClusterError::Unreachable(_) => true,
            ClusterError::Handshake(_) => false,
            ClusterError::TlsFile { .. } => false,
        }
    }
}

/// Whether an etcd-client error is transient (see `ClusterError::is_retryable`).
fn transient(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    const TRANSIENT_MESSAGES: &[&str] = &[
        "unhealthy cluster",
        "in sync with leader",
        "not enough started members",
        "request timed out",
        "leader changed",
        "no leader",
        "too many requests",
        // etcd admits one learner at a time: another machine joining at the same moment
        // (after a restore, or two replacements) is promoted within seconds
        "too many learner members",
        // the connection broke mid-call (e.g. the member is restarting); tonic reports it as
        // status Unknown
        "transport error",
    ];
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            matches!(
                s.code(),
                Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::ResourceExhausted
                    | Code::Aborted
                    | Code::Cancelled
            ) || TRANSIENT_MESSAGES.iter().any(|t| s.message().contains(t))
        }
        _ => false,
    }
}

/// Client TLS material.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    pub fn client(pki: &crate::member::PkiPaths) -> TlsFiles {
        TlsFiles {
            ca: pki.ca_cert.clone(),
            cert: pki.client_cert.clone(),
            key: pki.client_key.clone(),
        }
    }

    /// The PEM bytes of the CA certificate, the certificate and the key.
    fn read(&self) -> Result<[Vec<u8>; 3], ClusterError> {
        let r = |p: &PathBuf| {
            std::fs::read(p).map_err(|source| ClusterError::TlsFile {
                path: p.display().to_string(),
                cause: source,
            })
        };
        Ok([r(&self.ca)?, r(&self.cert)?, r(&self.key)?])
    }
}

/// What a member's peer port answered to `GET /members` (see `peer_members`).
#[derive(Debug, Clone, PartialEq)]
pub enum PeerAnswer {
    Members {
        cluster_id: u64,
        members: Vec<MemberInfo>,
    },
    /// The host is up and nothing listens on the peer port: etcd is not running there.
    Refused,
    /// No answer in time, no route, or an answer that is not etcd's.
    Nothing,
}

/// etcd's member JSON on its peer port (etcdserver/api/membership.Member).
#[derive(serde::Deserialize)]
struct PeerMember {
    id: u64,
    #[serde(default)]
    name: String,
    #[serde(rename = "peerURLs", default)]
    peer_urls: Vec<String>,
    #[serde(rename = "clientURLs", default)]
    client_urls: Vec<String>,
    #[serde(rename = "isLearner", default)]
    is_learner: bool,
}

/// The largest member list a peer may send (etcd's are a few hundred bytes per member).
const MEMBER_LIST_MAX: u64 = 1 << 20;

/// Asks the member at `peer_url` for its member list over the peer port. The member answers
/// from its own copy of the membership, with or without a leader, and before it serves
/// clients (a member of a cluster still forming serves no client requests): etcd asks its
/// peers the same when it checks that a new member was not bootstrapped already.
pub async fn peer_members(peer_url: &str, tls: &TlsFiles, timeout: Duration) -> PeerAnswer {
    match PeerClient::new(tls, timeout) {
        Some(client) => client.members(peer_url, timeout).await,
        None => PeerAnswer::Nothing,
    }
}

/// A client for members' peer ports (`GET /members`), built once for many questions.
pub struct PeerClient(reqwest::Client);

impl PeerClient {
    /// None when the TLS files cannot be read or used.
    pub fn new(tls: &TlsFiles, connect_timeout: Duration) -> Option<PeerClient> {
        let [ca, cert, key] = tls.read().ok()?;
        let identity = reqwest::Identity::from_pem(&[cert, key].concat()).ok()?;
        // HTTP/1.1 only: etcd's peer port offers h2 in TLS ALPN but breaks h2 streams.
        reqwest::Client::builder()
            .http1_only()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).ok()?])
            .identity(identity)
            .connect_timeout(connect_timeout)
            .build()
            .ok()
            .map(PeerClient)
    }

    /// What the member at `peer_url` answers within `timeout` (see `peer_members`).
    pub async fn members(&self, peer_url: &str, timeout: Duration) -> PeerAnswer {
        let url = format!("{}/members", peer_url.trim_end_matches('/'));
        let attempt = async {
            match self.0.get(&url).send().await {
                Err(e) if is_refused(&e) => PeerAnswer::Refused,
                Err(e) => {
                    debug!(%url, error = %crate::error_chain::error_chain(&e), "peer probe");
                    PeerAnswer::Nothing
                }
                Ok(resp) => member_list(resp, timeout).await,
            }
        };
        tokio::time::timeout(timeout, attempt).await.unwrap_or(PeerAnswer::Nothing)
    }
}

/// A peer's answer to `GET /members`: its cluster id and member list (read within `timeout`
/// per chunk, at most `MEMBER_LIST_MAX`), or Nothing when it is not etcd's.
async fn member_list(resp: reqwest::Response, timeout: Duration) -> PeerAnswer {
    let id = resp
        .headers()
        .get("X-Etcd-Cluster-ID")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| u64::from_str_radix(v, 16).ok());
    let body = match crate::bounded::Body::new(resp, "a member list", MEMBER_LIST_MAX, timeout) {
        Ok(body) => body.read_to_vec().await.ok(),
        Err(_) => None,
    };
    let list: Option<Vec<PeerMember>> = body.and_then(|b| serde_json::from_slice(&b).ok());
    match (id, list) {
        (Some(cluster_id), Some(list)) => PeerAnswer::Members {
            cluster_id,
            members: list
                .into_iter()
                .map(|m| MemberInfo {
                    id: m.id,
                    name: m.name,
                    peer_urls: m.peer_urls,
                    client_urls: m.client_urls,
                    is_learner: m.is_learner,
                })
                .collect(),
        },
        _ => PeerAnswer::Nothing,
    }
}

fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        cur = c.source();
    }
    false
}

/// A member as the cluster reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MemberInfo {
    #[serde(serialize_with = "hex_id")]
    pub id: u64,
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

fn hex_id<S: serde::Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_id(*id))
}

pub fn format_id(id: u64) -> String {
    format!("{id:x}")
}

impl MemberInfo {
    /// Whether its etcd ever ran: a member publishes its client URLs when it starts. (A
    /// name is no sign: members of a new cluster's initial set have theirs from the start.)
    pub fn started(&self) -> bool {
        !self.client_urls.is_empty()
    }

    fn from(m: &etcd_client::Member) -> MemberInfo {
        MemberInfo {
            id: m.id(),
            name: m.name().to_string(),
            peer_urls: m.peer_urls().to_vec(),
            client_urls: m.client_urls().to_vec(),
            is_learner: m.is_learner(),
        }
    }
}

/// What one member says about itself.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EndpointStatus {
    #[serde(serialize_with = "hex_id")]
    pub member_id: u64,
    #[serde(serialize_with = "hex_id")]
    pub cluster_id: u64,
    #[serde(serialize_with = "hex_id")]
    pub leader: u64,
    pub version: String,
    pub db_size: i64,
    /// Bytes of the database in use; `db_size` minus this is what defragmentation frees.
    pub db_size_in_use: i64,
    /// The key-value store's revision this member has applied.
    pub revision: i64,
    pub raft_index: u64,
    pub raft_applied_index: u64,
    pub raft_term: u64,
    pub is_learner: bool,
    pub errors: Vec<String>,
}

/// A connection to one etcd endpoint.
pub struct Cluster {
    client: Client,
    pub endpoint: String,
}

fn api<'a>(
    endpoint: &'a str,
    op: &'static str,
) -> impl FnOnce(etcd_client::Error) -> ClusterError + 'a {
    move |e| ClusterError::Api {
        endpoint: endpoint.to_string(),
        op,
        retryable: transient(&e),
        message: e.to_string(),
    }
}

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

impl Cluster {
    /// Connects to the first of `endpoints` that answers a member list.
    pub async fn connect_any(
        endpoints: &[String],
        tls: &TlsFiles,
    ) -> Result<Cluster, ClusterError> {
        let mut failures = Vec::new();
        for ep in endpoints {
            match Cluster::connect(ep, tls).await {
                Ok(c) => match c.members().await {
                    Ok(_) => return Ok(c),
                    Err(e) => failures.push(e.to_string()),
                },
                Err(e @ ClusterError::TlsFile { .. }) => return Err(e),
                Err(e) => failures.push(e.to_string()),
            }
        }
        const HANDSHAKE: &[&str] = &[
            "invalid peer certificate",
            "InvalidCertificate",
            "InvalidContentType",
            "corrupt message",
            "AlertReceived",
        ];
        if !failures.is_empty() && failures.iter().all(|f| HANDSHAKE.iter().any(|h| f.contains(h)))
        {
            return Err(ClusterError::Handshake(failures.join("; ")));
        }
        Err(ClusterError::Unreachable(failures.join("; ")))
    }

    /// Connects to one endpoint. Host names are resolved here (not by libc) and the
    /// certificate is checked against the name.
    pub async fn connect(endpoint: &str, tls: &TlsFiles) -> Result<Cluster, ClusterError> {
        Cluster::connect_for(endpoint, tls, CALL_TIMEOUT).await
    }

    /// Like `connect`, for calls that may take up to `call_timeout` each (defragmentation
    /// of a large database).
    pub async fn connect_for(
        endpoint: &str,
        tls: &TlsFiles,
        call_timeout: Duration,
    ) -> Result<Cluster, ClusterError> {
        let [ca, cert, key] = tls.read()?;
        let unreachable = |m: String| ClusterError::Unreachable(format!("{endpoint}: {m}"));
        let url = url::Url::parse(endpoint).map_err(|e| unreachable(e.to_string()))?;
        let host = Host::parse(url.host_str().unwrap_or_default()).map_err(unreachable)?;
        let port = url.port().unwrap_or(2379);
        let mut tls_opts = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(ca))
            .identity(Identity::from_pem(cert, key));
        let target = match &host {
            Host::Ip(_) => endpoint.to_string(),
            Host::Name(name) => {
                let ip = *crate::resolver::resolve_host(name)
                    .await
                    .map_err(|e| unreachable(crate::error_chain::error_chain(&e)))?
                    .first()
                    .ok_or_else(|| unreachable("no address".into()))?;
                tls_opts = tls_opts.domain_name(name.clone());
                format!("https://{}:{port}", Host::Ip(ip).url_host())
            }
        };
        debug!(%endpoint, %target, "connecting");
        let opts = ConnectOptions::new()
            .with_tls(tls_opts)
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(call_timeout);
        let client = tokio::time::timeout(CALL_TIMEOUT, Client::connect([target], Some(opts)))
            .await
            .map_err(|_| unreachable("connection timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Cluster { client, endpoint: endpoint.to_string() })
    }

    pub async fn members(&self) -> Result<Vec<MemberInfo>, ClusterError> {
        let r =
            self.client.clone().member_list().await.map_err(api(&self.endpoint, "member list"))?;
        Ok(r.members().iter().map(MemberInfo::from).collect())
    }

    /// Adds `peer_url` as a learner; returns its id and the member list after the add.
    /// A retry after an add whose answer was lost finds the peer URL taken: etcd says "Peer
    /// URLs already exists" ("member ID already exist" within the same second, as the id
    /// hashes the time in seconds). A learner at that peer URL that never started is the one
    /// the lost answer named.
    pub async fn add_learner(
        &self,
        peer_url: &str,
    ) -> Result<(u64, Vec<MemberInfo>), ClusterError> {
        let added = self
            .client
            .clone()
            .member_add([peer_url], Some(MemberAddOptions::new().with_is_learner()))
            .await;
        let r = match added {
            Ok(r) => r,
            Err(e) => {
                return self
                    .made_anyway("member add", e, |list| {
                        let ours = list.iter().find(|m| {
                            m.is_learner
                                && !m.started()
                                && m.peer_urls.iter().any(|u| u == peer_url)
                        })?;
                        Some((ours.id, list.to_vec()))
                    })
                    .await
            }
        };
        let id = r.member().map(|m| m.id()).ok_or_else(|| ClusterError::Api {
            endpoint: self.endpoint.clone(),
            op: "member add",
            message: "the answer names no member".into(),
            retryable: false,
        })?;
        Ok((id, r.member_list().iter().map(MemberInfo::from).collect()))
    }

    /// A retry after a promotion whose answer was lost finds etcd saying "can only promote a
    /// learner member"; the member is a voter already.
    pub async fn promote(&self, id: u64) -> Result<(), ClusterError> {
        match self.client.clone().member_promote(id).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.made_anyway("member promote", e, |list| {
                    list.iter().any(|m| m.id == id && !m.is_learner).then_some(())
                })
                .await
            }
        }
    }

    /// A retry after a removal whose answer was lost finds etcd saying "member not found";
    /// when the member list indeed no longer has the member, the removal is done.
    pub async fn remove(&self, id: u64) -> Result<(), ClusterError> {
        match self.client.clone().member_remove(id).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.made_anyway("member remove", e, |list| {
                    (!list.iter().any(|m| m.id == id)).then_some(())
                })
                .await
            }
        }
    }

    /// After the membership change `op` failed with `e`: an earlier try's answer may have
    /// been lost (a timeout, a partition), so that etcd refuses this retry of a change it
    /// made. When the member list shows the change made (`made` finds the outcome in it),
    /// that is the result; otherwise `e` is the error.
    async fn made_anyway<T>(
        &self,
        op: &'static str,
        e: etcd_client::Error,
        made: impl FnOnce(&[MemberInfo]) -> Option<T>,
    ) -> Result<T, ClusterError> {
        if let Ok(list) = self.members().await {
            if let Some(done) = made(&list) {
                info!(op, endpoint = %self.endpoint, refusal = %e, "the member list shows the change made: an earlier try's answer was lost");
                return Ok(done);
            }
        }
        Err(api(&self.endpoint, op)(e))
    }

    pub async fn status(&self) -> Result<EndpointStatus, ClusterError> {
        let s = self.client.clone().status().await.map_err(api(&self.endpoint, "status"))?;
        let header = s.header();
        Ok(EndpointStatus {
            member_id: header.map(|h| h.member_id()).unwrap_or_default(),
            cluster_id: header.map(|h| h.cluster_id()).unwrap_or_default(),
            leader: s.leader(),
            version: s.version().to_string(),
            db_size: s.db_size(),
            db_size_in_use: s.raft_used_db_size(),
            revision: header.map(|h| h.revision()).unwrap_or_default(),
            raft_index: s.raft_index(),
            raft_applied_index: s.raft_applied_index(),
            raft_term: s.raft_term(),
            is_learner: s.is_learner(),
            errors: s.errors().to_vec(),
        })
    }

    /// Streams a snapshot of this member's database into `out`; returns the bytes written.
    pub async fn snapshot_to(&self, out: &mut impl std::io::Write) -> Result<u64, ClusterError> {
        let mut stream =
            self.client.clone().snapshot().await.map_err(api(&self.endpoint, "snapshot"))?;
        let mut written = 0u64;
        while let Some(part) = stream.message().await.map_err(api(&self.endpoint, "snapshot"))? {
            out.write_all(part.blob()).map_err(|e| ClusterError::Api {
                endpoint: self.endpoint.clone(),
                op: "snapshot",
                message: format!("cannot write the snapshot: {e}"),
                retryable: false,
            })?;
            written += part.blob().len() as u64;
        }
        Ok(written)
    }

    /// Active alarms (NOSPACE, CORRUPT) as (member id, alarm name).
    pub async fn alarms(&self) -> Result<Vec<(u64, String)>, ClusterError> {
        use etcd_client::{AlarmAction, AlarmType};
        let r = self
            .client
            .clone()
            .alarm(AlarmAction::Get, AlarmType::None, None)
            .await
            .map_err(api(&self.endpoint, "alarm list"))?;
        Ok(r.alarms()
            .iter()
            .map(|a| (a.member_id(), format!("{:?}", a.alarm()).to_uppercase()))
            .collect())
    }

    /// Clears `alarm` (e.g. "NOSPACE") of `member`.
    pub async fn disarm(&self, member: u64, alarm: &str) -> Result<(), ClusterError> {
        use etcd_client::{AlarmAction, AlarmOptions, AlarmType};
        let kind = match alarm {
            "NOSPACE" => AlarmType::Nospace,
            "CORRUPT" => AlarmType::Corrupt,
            _ => AlarmType::None,
        };
        let mut opts = AlarmOptions::new();
        opts.with_member(member);
        self.client
            .clone()
            .alarm(AlarmAction::Deactivate, kind, Some(opts))
            .await
            .map_err(api(&self.endpoint, "alarm disarm"))?;
        Ok(())
    }

    /// Defragments this endpoint's member (it answers nothing else meanwhile).
    pub async fn defragment(&self) -> Result<(), ClusterError> {
        self.client.clone().defragment().await.map_err(api(&self.endpoint, "defragment"))?;
        Ok(())
    }

    /// Compacts the key-value history up to `revision` and waits until the compaction is
    /// applied to the backend (physical).
    pub async fn compact(&self, revision: i64) -> Result<(), ClusterError> {
        let opts = etcd_client::CompactionOptions::new().with_physical();
        match self.client.clone().compact(revision, Some(opts)).await {
            Ok(_) => Ok(()),
            // compacted already (another run, or auto-compaction): the history is gone
            Err(e) if e.to_string().contains("required revision has been compacted") => Ok(()),
            Err(e) => Err(api(&self.endpoint, "compact")(e)),
        }
    }

    /// Asks this endpoint's member, which must be the leader, to hand leadership to `target`.
    pub async fn move_leader(&self, target: u64) -> Result<(), ClusterError> {
        self.client
            .clone()
            .move_leader(target)
            .await
            .map_err(api(&self.endpoint, "move leader"))?;
        Ok(())
    }

    /// Takes the cluster-wide lock `name` under a lease of `ttl` seconds that is kept alive
    /// until the returned guard is released or dropped (and expires if this process dies).
    /// Waits for the lock at most `wait`.
    pub async fn lock(
        &self,
        name: &str,
        ttl: i64,
        wait: Duration,
    ) -> Result<LockGuard, ClusterError> {
        let mut client = self.client.clone();
        // Both calls go through the raft leader: a leader change (another run handing
        // leadership over before it defragments its member) fails them transiently, so they
        // are retried within `wait`.
        let started = tokio::time::Instant::now();
        let lease = until_deadline("granting the lease of a lock", wait, || {
            let mut c = client.clone();
            async move {
                c.lease_grant(ttl, None)
                    .await
                    .map(|r| r.id())
                    .map_err(api(&self.endpoint, "lease grant"))
            }
        })
        .await?;
        let mut renewer = client.clone();
        let keep_alive = tokio::spawn(async move {
            let period = Duration::from_secs((ttl as u64 / 3).max(1));
            // A keep-alive stream ends with the connection's call timeout: open a new one.
            loop {
                if let Ok((mut keeper, mut stream)) = renewer.lease_keep_alive(lease).await {
                    while keeper.keep_alive().await.is_ok()
                        && matches!(stream.message().await, Ok(Some(_)))
                    {
                        tokio::time::sleep(period).await;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let left = wait.saturating_sub(started.elapsed());
        // Retrying with the same lease is safe: etcd's lock key is the name and the lease,
        // so a retry waits on the key the first attempt created.
        let acquire = until_deadline("waiting for a lock", left, || {
            let mut c = client.clone();
            let opts = etcd_client::LockOptions::new().with_lease(lease);
            async move { c.lock(name, Some(opts)).await.map_err(api(&self.endpoint, "lock")) }
        });
        let locked = match tokio::time::timeout(left, acquire).await {
            Ok(r) => r,
            Err(_) => Err(ClusterError::Api {
                endpoint: self.endpoint.clone(),
                op: "lock",
                message: format!("{name} is still held by another run after {} s", wait.as_secs()),
                retryable: false,
            }),
        };
        match locked {
            Ok(r) => Ok(LockGuard { client, lease, key: r.key().to_vec(), keep_alive }),
            Err(e) => {
                keep_alive.abort();
                let _ = client.lease_revoke(lease).await;
                Err(e)
            }
        }
    }

    /// Healthy as `etcdctl endpoint health` means it: a leader exists and a linearizable
    /// read goes through the cluster.
    pub async fn check_health(&self) -> Result<(), ClusterError> {
        let st = self.status().await?;
        if st.leader == 0 {
            return Err(ClusterError::Api {
                endpoint: self.endpoint.clone(),
                op: "health",
                message: "no leader".into(),
                retryable: true,
            });
        }
        self.client
            .clone()
            .get("health", None)
            .await
            .map_err(api(&self.endpoint, "health read"))?;
        Ok(())
    }
}

/// A held cluster-wide lock (see `Cluster::lock`).
pub struct LockGuard {
    client: Client,
    lease: i64,
    key: Vec<u8>,
    keep_alive: tokio::task::JoinHandle<()>,
}

impl LockGuard {
    /// Releases the lock now; the lease ends with it.
    pub async fn release(mut self) {
        self.keep_alive.abort();
        let _ = self.client.unlock(self.key.clone()).await;
        let _ = self.client.lease_revoke(self.lease).await;
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // not released (an error path): stop renewing, so the lease expires within its TTL
        self.keep_alive.abort();
    }
}

/// Retries an etcd operation on the errors etcd asks callers to retry.
pub async fn until_deadline<T, F, Fut>(
    what: &str,
    deadline: Duration,
    op: F,
) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClusterError>>,
{
    crate::retry::retry_while(what, deadline, ClusterError::is_retryable, op).await
}

/// How often `poll_until` tries: each try is one small request (a status to the local
/// member, a promote to the leader), so 20 a second for the fraction of a second these
/// waits last cost nothing, and the moment is noticed 25 ms later on average.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Retries `op` on transient etcd errors every `POLL_INTERVAL` until `deadline`: for what
/// comes true by itself soon (the local member starting, a learner catching up), so that it
/// is noticed within 0.05 s rather than after a grown backoff.
pub async fn poll_until<T, F, Fut>(what: &str, deadline: Duration, op: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClusterError>>,
{
    crate::retry::poll_while(what, deadline, POLL_INTERVAL, ClusterError::is_retryable, op).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Client TLS files from a throwaway CA (the peer below speaks plain HTTP, but
    /// `peer_members` needs its identity to build the client).
    fn client_tls(dir: &std::path::Path) -> TlsFiles {
        let (ca, cert, key) = (dir.join("ca.crt"), dir.join("c.crt"), dir.join("c.key"));
        let issuer = crate::pki::Ca::load_or_create(&ca, &dir.join("ca.key"), 30).unwrap();
        let spec = crate::pki::CertSpec {
            common_name: "probe".into(),
            organization: None,
            sans: vec![],
            server_auth: false,
            client_auth: true,
        };
        let life = crate::pki::Lifetime { days: 30, renew_within_days: 1 };
        issuer.ensure_cert(&spec, &cert, &key, life).unwrap();
        TlsFiles { ca, cert, key }
    }

    /// A peer that answers every request with `head` and then `body` (endless: 64 KiB
    /// chunks until the client goes); returns its URL and the bytes of body it sent.
    async fn peer(
        head: &'static str,
        body: Option<&'static [u8]>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        use std::sync::atomic::{AtomicU64, Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let sent = std::sync::Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut req = [0u8; 4096];
                    let _ = s.read(&mut req).await;
                    s.write_all(head.as_bytes()).await?;
                    match body {
                        Some(b) => s.write_all(b).await?,
                        None => loop {
                            s.write_all(&[b' '; 64 << 10]).await?;
                            counter.fetch_add(64 << 10, Ordering::Relaxed);
                        },
                    }
                    std::io::Result::Ok(())
                });
            }
        });
        (url, sent)
    }

    #[tokio::test]
    async fn a_peer_member_list_is_read_but_an_endless_one_is_cut_at_its_cap() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let tls = client_tls(dir.path());
        let list = br#"[{"id":1,"name":"a","peerURLs":["https://10.0.0.1:2380"],"clientURLs":[]}]"#;
        let (url, _) = peer(
            "HTTP/1.1 200 OK\r\nX-Etcd-Cluster-ID: 2a\r\nContent-Length: 74\r\nConnection: close\r\n\r\n",
            Some(list),
        )
        .await;
        assert_eq!(list.len(), 74);
        match peer_members(&url, &tls, Duration::from_secs(5)).await {
            PeerAnswer::Members { cluster_id, members } => {
                assert_eq!(cluster_id, 0x2a);
                assert_eq!(members.len(), 1);
            }
            other => panic!("a well-formed member list was not read: {other:?}"),
        }
        let (url, sent) =
            peer("HTTP/1.1 200 OK\r\nX-Etcd-Cluster-ID: 2a\r\nConnection: close\r\n\r\n[", None)
                .await;
        let answer = peer_members(&url, &tls, Duration::from_secs(5)).await;
        assert!(matches!(answer, PeerAnswer::Nothing), "an endless member list: {answer:?}");
        let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
        assert!(sent < 16 << 20, "the peer sent {sent} bytes before the client stopped reading");
    }

    #[test]
    fn broken_connections_are_transient_other_unknown_errors_are_not() {
        let status =
            |code, msg: &str| etcd_client::Error::GRpcStatus(tonic::Status::new(code, msg));
        // what a call gets while the member restarts (seen renewing certificates)
        assert!(transient(&status(tonic::Code::Unknown, "transport error")));
        assert!(transient(&status(tonic::Code::Unavailable, "tcp connect error")));
        assert!(!transient(&status(tonic::Code::Unknown, "etcdserver: member not found")));
        // what a second machine joining while another one is a learner gets from member add
        assert!(transient(&status(
            tonic::Code::FailedPrecondition,
            "etcdserver: too many learner members in cluster"
        )));
        assert!(!transient(&status(
            tonic::Code::PermissionDenied,
            "etcdserver: permission denied"
        )));
    }
}
