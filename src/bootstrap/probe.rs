//! Asking a peer's etcd what it is a member of, briefly: a peer that does not answer within
//! a few seconds counts as silent for this round.

use super::decide::{Candidate, Probe};
use crate::cluster::{peer_members, Cluster, PeerAnswer, TlsFiles};
use std::time::Duration;

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How much longer the client port may take once the peer port answered: a member with a
/// leader answers both at once, one without never answers on its client port.
const CLIENT_GRACE: Duration = Duration::from_millis(500);

/// A member of a cluster with a leader answers on its client port. Otherwise the peer port
/// tells the rest: the member list of a cluster without a leader (served by the member
/// itself), a refused connection (the machine is up, its etcd is not), or nothing. Both
/// ports are asked at once.
pub async fn probe(c: &Candidate, tls: &TlsFiles) -> Probe {
    let led = async {
        let attempt = async {
            let cl = Cluster::connect(&c.client_url, tls).await.ok()?;
            let st = cl.status().await.ok()?;
            if st.leader == 0 {
                return None;
            }
            let members = cl.members().await.ok()?;
            Some(Probe::Member { cluster_id: st.cluster_id, leader: st.leader, members })
        };
        tokio::time::timeout(PROBE_TIMEOUT, attempt).await.ok().flatten()
    };
    let peer = peer_members(&c.peer_url, tls, PROBE_TIMEOUT);
    tokio::pin!(led, peer);
    let answer = tokio::select! {
        led_first = &mut led => match led_first {
            Some(p) => return p,
            None => peer.await,
        },
        answer = &mut peer => {
            let wait = if matches!(answer, PeerAnswer::Members { .. }) { CLIENT_GRACE } else { PROBE_TIMEOUT };
            if let Ok(Some(p)) = tokio::time::timeout(wait, &mut led).await {
                return p;
            }
            answer
        }
    };
    match answer {
        PeerAnswer::Members { cluster_id, members } => {
            Probe::Member { cluster_id, leader: 0, members }
        }
        PeerAnswer::Refused => Probe::Refused,
        PeerAnswer::Nothing => Probe::Silent,
    }
}

pub async fn probe_all(peers: &[Candidate], tls: &TlsFiles) -> Vec<(Candidate, Probe)> {
    let probes = peers.iter().map(|p| async move { (p.clone(), probe(p, tls).await) });
    futures_util::future::join_all(probes).await
}
