//! Whether the cluster keeps its quorum without this member: before it is removed (for
//! good) or restarted (for a moment). Both count the other voters that answer with a leader;
//! they alone must be a quorum of the current voters.

use super::error::{MembershipError, Result};
use crate::cluster::{format_id, Cluster, MemberInfo, TlsFiles};
use crate::member::LocalMember;
use crate::state::State;
use std::time::Duration;

/// How long a restart check waits for other voters to answer with a leader again: longer
/// than etcd takes to restart a member and elect (a few seconds on the test bed).
const RESTART_SETTLE: Duration = Duration::from_secs(30);

/// This machine's member in `members`: by the id the state file recorded, else by peer URL.
pub fn find_me<'a>(
    members: &'a [MemberInfo],
    m: &LocalMember,
    state: &State,
) -> Option<&'a MemberInfo> {
    members.iter().find(|x| {
        state.member_id.as_deref() == Some(format_id(x.id).as_str())
            || x.peer_urls.contains(&m.peer_url)
    })
}

/// The voters, and how many voters other than `me` answer with a leader.
async fn healthy_others(members: &[MemberInfo], me: u64, tls: &TlsFiles) -> (usize, usize) {
    let voters: Vec<&MemberInfo> = members.iter().filter(|x| !x.is_learner).collect();
    let mut healthy = 0;
    for v in voters.iter().filter(|v| v.id != me) {
        if let Ok(cl) = Cluster::connect_any(&v.client_urls, tls).await {
            if cl.status().await.is_ok_and(|s| s.leader != 0) {
                healthy += 1;
            }
        }
    }
    (voters.len(), healthy)
}

/// The smallest majority of `voters`.
pub fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

/// Refuses when `me` is the last voter, or when the other voters that answer are not a
/// quorum of the current membership on their own (the removal must not depend on `me`).
pub async fn check_removal(members: &[MemberInfo], me: &MemberInfo, tls: &TlsFiles) -> Result<()> {
    if me.is_learner {
        return Ok(());
    }
    let (voters, healthy) = healthy_others(members, me.id, tls).await;
    if voters <= 1 {
        return Err(MembershipError::Refused(format!("{} is the last voting member; removing it destroys the cluster. Nothing was changed; use --force to do it anyway", me.name)));
    }
    let quorum = quorum(voters);
    if healthy < quorum {
        return Err(MembershipError::Refused(format!(
            "removing {} is unsafe: the cluster has {voters} voting members, quorum is {quorum}, and only {healthy} other healthy voter(s) would remain to keep it. Nothing was changed; add or repair members first, or use --force",
            me.name
        )));
    }
    Ok(())
}

/// Refuses a restart of this machine's member when the other voters that answer are not a
/// quorum without it: the restart would stop the cluster. A learner, and the only voter of
/// a one-member cluster (unavailable for the moment of any restart), may restart.
pub async fn check_restart(m: &LocalMember, state: &State, what: &str) -> Result<()> {
    let tls = TlsFiles::client(&m.pki);
    let cl = Cluster::connect_any(std::slice::from_ref(&m.local_endpoint), &tls)
        .await
        .map_err(|source| MembershipError::QuorumUnknown { what: what.into(), source })?;
    let members = cl.members().await?;
    let Some(me) = find_me(&members, m, state) else {
        return Err(MembershipError::Refused(format!(
            "{} is not in its cluster's member list; nothing was changed",
            m.name
        )));
    };
    if me.is_learner {
        return Ok(());
    }
    // A voter that has just restarted (a renewal on another member a moment ago) answers
    // without a leader for a few seconds: it gets RESTART_SETTLE to count again.
    let started = tokio::time::Instant::now();
    let (voters, healthy) = loop {
        let (voters, healthy) = healthy_others(&members, me.id, &tls).await;
        if voters <= 1 || healthy >= quorum(voters) || started.elapsed() >= RESTART_SETTLE {
            break (voters, healthy);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let quorum = quorum(voters);
    if voters > 1 && healthy < quorum {
        return Err(MembershipError::Refused(format!(
            "{what} restarts {}, and that is unsafe now: the cluster has {voters} voting members, quorum is {quorum}, and only {healthy} other healthy voter(s) would keep it while {} restarts. Nothing was changed; repair the other members first, or use --force",
            m.name, m.name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn quorum_is_the_smallest_majority() {
        let q: Vec<usize> = (1..=7).map(super::quorum).collect();
        assert_eq!(q, [1, 2, 2, 3, 3, 4, 4]);
    }
}
