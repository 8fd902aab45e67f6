//! `etcdadm info`: this member and its cluster, as a table or JSON.

use crate::cli::Output;
use crate::cluster::{format_id, Cluster, EndpointStatus, MemberInfo};
use crate::config::Config;
use crate::outln;
use crate::phases;
use crate::state::State;
use anyhow::{bail, Result};
use serde::Serialize;

#[derive(Serialize)]
struct Info {
    /// The fields the seed tool printed for the local member, so its parsers keep working.
    #[serde(flatten)]
    seed: Option<SeedMember>,
    local: Local,
    cluster: Option<ClusterView>,
    error: Option<String>,
}

/// The local member as the Go etcdadm's `info` printed it (etcdserverpb.Member's JSON).
#[derive(Serialize)]
#[allow(non_snake_case)]
struct SeedMember {
    ID: u64,
    name: String,
    peerURLs: Vec<String>,
    clientURLs: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    isLearner: bool,
}

#[derive(Serialize)]
struct Local {
    name: String,
    id: Option<String>,
    /// Shown as `phase`, the state file's key.
    #[serde(rename = "phase")]
    progress: crate::state::Progress,
    origin: crate::state::Origin,
    service: String,
    client_url: String,
    peer_url: String,
    data_dir: String,
    etcd_version: String,
}

#[derive(Serialize)]
pub(super) struct ClusterView {
    pub(super) id: String,
    pub(super) leader: Option<String>,
    pub(super) healthy: bool,
    pub(super) members: Vec<MemberView>,
}

#[derive(Serialize)]
pub(super) struct MemberView {
    #[serde(flatten)]
    pub(super) member: MemberInfo,
    pub(super) is_leader: bool,
    pub(super) status: Option<EndpointStatus>,
    pub(super) error: Option<String>,
}

impl ClusterView {
    /// The table's first line: cluster id, leader, health.
    pub(super) fn header(&self) -> String {
        format!(
            "cluster {}  leader {}  {}",
            self.id,
            self.leader.as_deref().unwrap_or("none"),
            if self.healthy { "healthy" } else { "UNHEALTHY" }
        )
    }
}

impl MemberView {
    pub(super) fn role(&self) -> &'static str {
        if self.is_leader {
            "leader"
        } else if self.member.is_learner {
            "learner"
        } else {
            "voter"
        }
    }
}

pub async fn run(requested: Config, output: Output) -> Result<()> {
    let Some(state) = State::load(&requested.state_file)? else {
        bail!("no member set up by etcdadm on this machine ({} does not exist); run `etcdadm init` or `etcdadm join` first", requested.state_file.display());
    };
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
    let tls = crate::cluster::TlsFiles::client(&m.pki);
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
    let info = Info { seed, local, cluster, error };
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&info)?)?,
        Output::Table => print_table(&info)?,
    }
    Ok(())
}

pub(super) async fn cluster_view(
    cl: &Cluster,
    tls: &crate::cluster::TlsFiles,
) -> Result<ClusterView> {
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

fn print_table(info: &Info) -> Result<()> {
    let l = &info.local;
    outln!(
        "member {} (id {}): {}, set up by `etcdadm {}`, etcd {}, {}",
        l.name,
        l.id.as_deref().unwrap_or("-"),
        l.progress.as_str(),
        l.origin.as_str(),
        l.etcd_version,
        l.service
    )?;
    outln!("client {}  peer {}  data {}", l.client_url, l.peer_url, l.data_dir)?;
    let Some(c) = &info.cluster else {
        outln!("cluster: unreachable: {}", info.error.as_deref().unwrap_or("unknown error"))?;
        return Ok(());
    };
    outln!("{}", c.header())?;
    outln!()?;
    let rows: Vec<[String; 7]> = c
        .members
        .iter()
        .map(|v| {
            let role = v.role();
            let (version, db, index) = match &v.status {
                Some(s) => (
                    s.version.clone(),
                    format!("{} kB", s.db_size / 1024),
                    s.raft_index.to_string(),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let name =
                if v.member.name.is_empty() { "(unstarted)".into() } else { v.member.name.clone() };
            let health = v
                .error
                .clone()
                .map(|e| e.chars().take(40).collect())
                .unwrap_or_else(|| "ok".into());
            [format_id(v.member.id), name, role.into(), version, db, index, health]
        })
        .collect();
    let header = ["ID", "NAME", "ROLE", "VERSION", "DB", "RAFT INDEX", "HEALTH"].map(String::from);
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().chain([&header]).map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
        outln!("{}", line.join("  ").trim_end())?;
    }
    Ok(())
}
