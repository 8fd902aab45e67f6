//! The members of a new cluster start their etcd one after another. etcd forming a new
//! cluster first asks each other initial member for its member list (`isMemberBootstrapped`
//! in etcd's server bootstrap), one at a time, waiting up to 1 s for each answer. A peer
//! whose etcd started at the same moment listens on its peer port already but does not
//! serve yet (it is asking the others itself), so etcds started together wait out 1 s per
//! peer. Bootstrap's members decide at nearly the same moment, so each one, before it
//! starts etcd, waits until every member before it in name order serves its peer port:
//! the first starts at once, each next one 0.1-0.2 s later (etcd's own start until it
//! serves, under load). Bounded, as a peer may never come; a member that refuses (its etcd
//! not started yet) is waited for too, since it could start at the same moment as this one.

use crate::cluster::{peer_members, PeerAnswer, TlsFiles};
use std::time::{Duration, Instant};
use tracing::info;

/// The longest wait: at most what etcd's own wait would have cost with two peers.
const WAIT: Duration = Duration::from_secs(2);
/// How long one question to a peer may take, and the pause between questions.
const ASK: Duration = Duration::from_millis(300);
const POLL: Duration = Duration::from_millis(20);

/// Waits (at most `WAIT`) until every member of `initial_cluster` named before `me` serves
/// its peer port; returns whether they all did.
pub async fn wait_for_earlier(
    initial_cluster: &[(String, String)],
    me: &str,
    tls: &TlsFiles,
) -> bool {
    let earlier: Vec<&str> =
        initial_cluster.iter().filter(|(n, _)| n.as_str() < me).map(|(_, u)| u.as_str()).collect();
    if earlier.is_empty() {
        return true;
    }
    let started = Instant::now();
    let serving = futures_util::future::join_all(earlier.iter().map(|url| async move {
        while !matches!(peer_members(url, tls, ASK).await, PeerAnswer::Members { .. }) {
            tokio::time::sleep(POLL).await;
        }
    }));
    let all = tokio::time::timeout(WAIT, serving).await.is_ok();
    let waited_ms = started.elapsed().as_millis() as u64;
    if all {
        info!(
            waited_ms,
            members = earlier.len(),
            "the members before this one in the initial cluster serve; starting etcd"
        );
    } else {
        info!(waited_ms, "not every member before this one in the initial cluster serves yet; starting etcd anyway");
    }
    all
}
