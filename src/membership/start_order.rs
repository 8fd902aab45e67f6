//! When the members of a new cluster start their etcd. etcd forming a new cluster first
//! asks the other initial members for their member list (`isMemberBootstrapped` in etcd's
//! server bootstrap): it goes through their peer URLs sorted as strings, waiting up to 1 s
//! for each, and stops at the first that answers. A peer whose etcd started at the same
//! moment listens on its peer port already but does not serve yet (it is asking the others
//! itself), so etcds started together wait out 1 s per such peer; one that refuses (its etcd
//! not started) costs nothing.
//!
//! Bootstrap's members decide at nearly the same moment. So the member that owns the lowest
//! peer URL starts at once (the others are not running yet: its questions are refused), and
//! every other member waits until that URL serves before it starts: its question to it, the
//! first it asks, is then answered at once. All but one start together, 0.1-0.2 s (etcd's
//! own start until it serves, under load) after the first. Bounded, as the first member may
//! never come.

use crate::cluster::{PeerAnswer, PeerClient, TlsFiles};
use std::time::{Duration, Instant};
use tracing::info;

/// The longest wait: at most what etcd's own wait would have cost with two peers.
const WAIT: Duration = Duration::from_secs(2);
/// How long one question to a peer may take, and the pause between questions.
const ASK: Duration = Duration::from_millis(300);
const POLL: Duration = Duration::from_millis(20);

/// The peer URL that etcd starting as `me` asks first, when `me` must wait for it: the
/// lowest (as a string, as etcd sorts them) of the other members' peer URLs. None when one
/// of `me`'s own is lower still: every other member asks `me` first and waits for it.
fn waits_for<'a>(initial_cluster: &'a [(String, String)], me: &str) -> Option<&'a str> {
    let lowest = |mine: bool| {
        initial_cluster.iter().filter(|(n, _)| (n == me) == mine).map(|(_, u)| u.as_str()).min()
    };
    let first = lowest(false)?;
    match lowest(true) {
        Some(own) if own < first => None,
        _ => Some(first),
    }
}

/// Waits (at most `WAIT`) until the peer URL etcd starting as `me` asks first serves, unless
/// `me` owns the lowest peer URL of `initial_cluster`.
pub async fn wait_for_first(initial_cluster: &[(String, String)], me: &str, tls: &TlsFiles) {
    let Some(url) = waits_for(initial_cluster, me) else {
        info!("this member's peer URL sorts first in the initial cluster: starting etcd at once");
        return;
    };
    let started = Instant::now();
    let serving = async {
        let client = PeerClient::new(tls, ASK)?;
        while !matches!(client.members(url, ASK).await, PeerAnswer::Members { .. }) {
            tokio::time::sleep(POLL).await;
        }
        Some(())
    };
    let served = matches!(tokio::time::timeout(WAIT, serving).await, Ok(Some(())));
    let waited_ms = started.elapsed().as_millis() as u64;
    if served {
        info!(waited_ms, %url, "the member etcd asks first serves its peer port; starting etcd");
    } else {
        info!(waited_ms, %url, "the member etcd asks first does not serve its peer port yet; starting etcd anyway");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(members: &[(&str, &str)]) -> Vec<(String, String)> {
        members.iter().map(|(n, u)| (n.to_string(), u.to_string())).collect()
    }

    #[test]
    fn every_member_but_the_owner_of_the_lowest_peer_url_waits_for_that_url() {
        // etcd sorts the URLs as strings: .11 comes before .9.
        let c = cluster(&[
            ("a", "https://10.0.0.9:2380"),
            ("b", "https://10.0.0.11:2380"),
            ("c", "https://10.0.0.12:2380"),
        ]);
        assert_eq!(waits_for(&c, "b"), None);
        assert_eq!(waits_for(&c, "a"), Some("https://10.0.0.11:2380"));
        assert_eq!(waits_for(&c, "c"), Some("https://10.0.0.11:2380"));
        // A member with several peer URLs: its lowest counts.
        let c = cluster(&[
            ("a", "https://10.0.0.3:2380"),
            ("a", "https://10.0.0.1:2380"),
            ("b", "https://10.0.0.2:2380"),
        ]);
        assert_eq!(waits_for(&c, "a"), None);
        assert_eq!(waits_for(&c, "b"), Some("https://10.0.0.1:2380"));
        assert_eq!(waits_for(&cluster(&[("a", "https://10.0.0.1:2380")]), "a"), None);
    }
}
