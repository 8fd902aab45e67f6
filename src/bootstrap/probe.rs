//! Asking a peer's etcd what it is a member of, briefly: a peer that does not answer within
//! a few seconds counts as silent for this round.

use super::decide::{Candidate, Probe};
use crate::cluster::{Cluster, TlsFiles};
use std::time::Duration;

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn probe(c: &Candidate, tls: &TlsFiles) -> Probe {
    let attempt = async {
        let cl = Cluster::connect(&c.client_url, tls).await.ok()?;
        let st = cl.status().await.ok()?;
        // The member list needs a leader (it is linearizable); a forming cluster has none.
        let members = if st.leader != 0 { cl.members().await.ok()? } else { Vec::new() };
        Some(Probe::Member { cluster_id: st.cluster_id, leader: st.leader, members })
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt).await.ok().flatten().unwrap_or(Probe::Silent)
}

pub async fn probe_all(peers: &[Candidate], tls: &TlsFiles) -> Vec<(Candidate, Probe)> {
    let probes = peers.iter().map(|p| async move { (p.clone(), probe(p, tls).await) });
    futures_util::future::join_all(probes).await
}
