//! `etcdadm status`: the whole cluster at a glance — members, leader, how far each lags
//! behind the leader's raft index, database sizes, alarms — and this member's certificate
//! expiry.

use super::info::{cluster_view, ClusterView};
use crate::cli::Output;
use crate::cluster::{format_id, Cluster};
use crate::config::Config;
use crate::outln;
use crate::pki;
use anyhow::{Context, Result};
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Serialize)]
struct Status {
    cluster: ClusterView,
    /// Raft index behind the leader, per member id (hex).
    raft_lag: Vec<(String, u64)>,
    alarms: Vec<(String, String)>,
    /// This member's space quota (quota-backend-bytes); each DB size is shown against it.
    quota_backend_bytes: u64,
    /// Days until this member's certificates expire, by file.
    cert_days_left: Vec<(String, i64)>,
}

pub async fn run(requested: Config, output: Output) -> Result<()> {
    let state = super::member_state(&requested)?;
    let m = state.member()?;
    let tls = crate::cluster::TlsFiles::client(&m.pki);
    let cl = Cluster::connect_any(std::slice::from_ref(&m.local_endpoint), &tls)
        .await
        .context("cannot reach the local member; is etcd running? (`etcdadm info` shows what is known offline)")?;
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
    let status = Status { cluster, raft_lag, alarms, quota_backend_bytes, cert_days_left };
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&status)?)?,
        Output::Table => print_table(&status)?,
    }
    Ok(())
}

fn print_table(s: &Status) -> Result<()> {
    let c = &s.cluster;
    outln!("{}", c.header())?;
    outln!(
        "{:<18} {:<16} {:<8} {:<8} {:>18} {:>9}",
        "ID",
        "NAME",
        "ROLE",
        "VERSION",
        "DB (OF QUOTA)",
        "RAFT LAG"
    )?;
    for v in &c.members {
        let id = format_id(v.member.id);
        let role = v.role();
        let lag = s
            .raft_lag
            .iter()
            .find(|(i, _)| *i == id)
            .map_or("-".to_string(), |(_, l)| l.to_string());
        let (version, db) = v.status.as_ref().map_or(("-".into(), "-".into()), |st| {
            let percent = st.db_size.max(0) as u64 * 100 / s.quota_backend_bytes.max(1);
            (st.version.clone(), format!("{} kB ({percent}%)", st.db_size / 1024))
        });
        outln!(
            "{id:<18} {:<16} {role:<8} {version:<8} {db:>18} {lag:>9}",
            if v.member.name.is_empty() { "(unstarted)" } else { &v.member.name }
        )?;
    }
    if s.alarms.is_empty() {
        outln!("alarms: none")?;
    }
    for (id, a) in &s.alarms {
        outln!("ALARM {a} on member {id}")?;
    }
    for (file, days) in &s.cert_days_left {
        outln!("certificate {file}: {days} days left")?;
    }
    Ok(())
}
