//! What this member and its cluster look like now: `etcdadm info` (the member as recorded,
//! and the cluster when it answers) and `etcdadm status` (the cluster at a glance: members,
//! leader, raft lag, database sizes, alarms, certificate expiry).

use crate::cluster::ClusterError;
use crate::cluster::{format_id, Cluster, EndpointStatus, MemberInfo, TlsFiles};
use crate::phases;
use crate::pki;
use crate::state::State;
use crate::state::StateError;

/// Why the member or its cluster could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum OverviewError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    #[error(
        "cannot reach the local member; is etcd running? (`etcdadm info` shows what is known \
         offline)"
    )]
    LocalDown(#[source] ClusterError),
}

type Result<T> = std::result::Result<T, OverviewError>;
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Serialize)]
pub struct Info {
    /// The fields the seed tool printed for the local member, so its parsers keep working.
    #[serde(flatten)]
    pub seed: Option<SeedMember>,
    pub local: Local,
    pub cluster: Option<ClusterView>,
    pub error: Option<String>,
}

/// The local member as the Go etcdadm's `info` printed it (etcdserverpb.Member's JSON).
#[derive(Serialize)]
#[allow(non_snake_case)]
pub struct SeedMember {
    pub ID: u64,
    pub name: String,
    pub peerURLs: Vec<String>,
    pub clientURLs: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub isLearner: bool,
}

#[derive(Serialize)]
pub struct Local {
    pub name: String,
    pub id: Option<String>,
    /// Shown as `phase`, the state file's key.
    #[serde(rename = "phase")]
    pub progress: crate::state::Progress,
    pub origin: crate::state::Origin,
    pub service: String,
    pub client_url: String,
    pub peer_url: String,
    pub data_dir: String,
    pub etcd_version: String,
}

#[derive(Serialize)]
pub struct ClusterView {
    pub id: String,
    pub leader: Option<String>,
    pub healthy: bool,
    pub members: Vec<MemberView>,
}

#[derive(Serialize)]
pub struct MemberView {
    #[serde(flatten)]
    pub member: MemberInfo,
    pub is_leader: bool,
    pub status: Option<EndpointStatus>,
    pub error: Option<String>,
}

impl ClusterView {
    /// The table's first line: cluster id, leader, health.
    pub fn header(&self) -> String {
        format!(
            "cluster {}  leader {}  {}",
            self.id,
            self.leader.as_deref().unwrap_or("none"),
            if self.healthy { "healthy" } else { "UNHEALTHY" }
        )
    }
}

impl MemberView {
    pub fn role(&self) -> &'static str {
        if self.is_leader {
            "leader"
        } else if self.member.is_learner {
            "learner"
        } else {
            "voter"
        }
    }
}

/// This member as recorded and as its cluster sees it; offline parts only (and the error)
/// when the cluster cannot be reached.
pub async fn info(state: &State) -> Result<Info> {
    let c = &state.config;
    let m = state.member()?;
    let local = Local {
        name: m.name.clone(),
        id: state.member_id.clone(),
        progress: state.progress,
        origin: state.origin,
        service: phases::service_state(c),
        client_url: m.client_url.clone(),
        peer_url: m.peer_url.clone(),
        data_dir: c.data_dir.display().to_string(),
        etcd_version: c.version.to_string(),
    };
    let tls = TlsFiles::client(&m.pki);
    let (cluster, error) =
        match Cluster::connect_any(std::slice::from_ref(&m.local_endpoint), &tls).await {
            Ok(cl) => match cluster_view(&cl, &tls).await {
                Ok(v) => (Some(v), None),
                Err(e) => (None, Some(e.to_string())),
            },
            Err(e) => (None, Some(e.to_string())),
        };
    let seed = cluster
        .as_ref()
        .and_then(|cv| cv.members.iter().find(|v| Some(format_id(v.member.id)) == state.member_id))
        .map(|v| SeedMember {
            ID: v.member.id,
            name: v.member.name.clone(),
            peerURLs: v.member.peer_urls.clone(),
            clientURLs: v.member.client_urls.clone(),
            isLearner: v.member.is_learner,
        });
    Ok(Info { seed, local, cluster, error })
}

/// The cluster as the member behind `cl` sees it, each member asked for its own status.
pub async fn cluster_view(cl: &Cluster, tls: &TlsFiles) -> Result<ClusterView> {
    let local_status = cl.status().await?;
    let members = cl.members().await?;
    let mut views = Vec::new();
    for member in members {
        let (status, error) = match Cluster::connect_any(&member.client_urls, tls).await {
            Ok(mc) => match mc.status().await {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e.to_string())),
            },
            Err(_) if !member.started() => (None, Some("not started".into())),
            Err(e) => (None, Some(e.to_string())),
        };
        views.push(MemberView {
            is_leader: member.id == local_status.leader,
            member,
            status,
            error,
        });
    }
    let healthy = local_status.leader != 0
        && views.iter().filter(|v| !v.member.is_learner).all(|v| v.status.is_some());
    Ok(ClusterView {
        id: format_id(local_status.cluster_id),
        leader: (local_status.leader != 0).then(|| format_id(local_status.leader)),
        healthy,
        members: views,
    })
}

#[derive(Serialize)]
pub struct Status {
    pub cluster: ClusterView,
    /// Raft index behind the leader, per member id (hex).
    pub raft_lag: Vec<(String, u64)>,
    pub alarms: Vec<(String, String)>,
    /// This member's space quota (quota-backend-bytes); each DB size is shown against it.
    pub quota_backend_bytes: u64,
    /// Days until this member's certificates expire, by file.
    pub cert_days_left: Vec<(String, i64)>,
}

/// The whole cluster at a glance, through the local member (which must answer).
pub async fn status(state: &State) -> Result<Status> {
    let m = state.member()?;
    let tls = TlsFiles::client(&m.pki);
    let cl = Cluster::connect_any(std::slice::from_ref(&m.local_endpoint), &tls)
        .await
        .map_err(OverviewError::LocalDown)?;
    let cluster = cluster_view(&cl, &tls).await?;
    let leader_index = cluster
        .members
        .iter()
        .find(|v| v.is_leader)
        .and_then(|v| v.status.as_ref())
        .map(|s| s.raft_index)
        .unwrap_or(0);
    let raft_lag = cluster
        .members
        .iter()
        .filter_map(|v| {
            v.status
                .as_ref()
                .map(|s| (format_id(v.member.id), leader_index.saturating_sub(s.raft_index)))
        })
        .collect();
    let alarms = cl.alarms().await?.into_iter().map(|(id, a)| (format_id(id), a)).collect();
    let now = OffsetDateTime::now_utc();
    let mut cert_days_left = Vec::new();
    for (_, cert, _) in pki::member_certs(&m, &state.config) {
        let (_, not_after) = pki::describe(&cert)?;
        cert_days_left.push((cert.display().to_string(), (not_after - now).whole_days()));
    }
    let quota_backend_bytes = state.config.quota_backend_bytes;
    Ok(Status { cluster, raft_lag, alarms, quota_backend_bytes, cert_days_left })
}
