//! Planned stops without an election: before a member that leads is restarted, stopped or
//! defragmented, leadership moves to the most caught-up healthy voter (etcd's MoveLeader),
//! so writes pause for one round trip instead of an election timeout.

use crate::cluster::{format_id, Cluster, ClusterError, MemberInfo, TlsFiles};
use std::time::Duration;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum LeadershipError {
    #[error("{name} leads the cluster and no other voter is healthy and caught up to take over; repair the other members first")]
    NoSuccessor { name: String },
    #[error("leadership did not move from {from} to {to} within {seconds} s; check both members' logs (journalctl -u etcd)")]
    NotMoved { from: String, to: String, seconds: u64 },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// The voter other than `me` that has applied the most of the log, among those that answer
/// and follow `me`: (its id, its name).
async fn successor(members: &[MemberInfo], me: u64, tls: &TlsFiles) -> Option<(u64, String)> {
    let mut best: Option<(u64, u64, String)> = None;
    for v in members.iter().filter(|x| !x.is_learner && x.id != me && x.started()) {
        let Ok(cl) = Cluster::connect_any(&v.client_urls, tls).await else { continue };
        let Ok(st) = cl.status().await else { continue };
        if st.leader != me {
            continue;
        }
        let better = match &best {
            None => true,
            Some((applied, _, name)) => {
                st.raft_applied_index > *applied
                    || (st.raft_applied_index == *applied && v.name < *name)
            }
        };
        if better {
            best = Some((st.raft_applied_index, v.id, v.name.clone()));
        }
    }
    best.map(|(_, id, name)| (id, name))
}

/// When `member` (reached through `own`, a connection to it) leads, hands leadership to the
/// most caught-up healthy voter and waits up to `wait` until `member` no longer leads.
/// Returns the new leader's name, or None when `member` did not lead (or is the only voter).
pub async fn hand_over(
    own: &Cluster,
    member: &MemberInfo,
    members: &[MemberInfo],
    tls: &TlsFiles,
    wait: Duration,
) -> Result<Option<String>, LeadershipError> {
    let st = own.status().await?;
    if st.leader != member.id {
        return Ok(None);
    }
    if members.iter().filter(|x| !x.is_learner).count() <= 1 {
        return Ok(None);
    }
    let Some((to, to_name)) = successor(members, member.id, tls).await else {
        return Err(LeadershipError::NoSuccessor { name: member.name.clone() });
    };
    info!(from = %member.name, to = %to_name, "moving leadership");
    // A leader election or a slow member fails MoveLeader transiently: retried within
    // `wait`, unless a failed attempt moved leadership after all (etcd refuses a MoveLeader
    // from a member that no longer leads).
    crate::cluster::until_deadline("moving leadership", wait, || async {
        if own.status().await?.leader != member.id {
            return Ok(());
        }
        own.move_leader(to).await
    })
    .await?;
    let started = tokio::time::Instant::now();
    loop {
        if own.status().await.is_ok_and(|s| s.leader != 0 && s.leader != member.id) {
            info!(from = %member.name, to = %to_name, "leadership moved");
            return Ok(Some(to_name));
        }
        if started.elapsed() >= wait {
            return Err(LeadershipError::NotMoved {
                from: member.name.clone(),
                to: format!("{to_name} ({})", format_id(to)),
                seconds: wait.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
