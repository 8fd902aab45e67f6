//! Where bootstrap picks init or join: a pure function of what discovery and the probes of
//! the peers saw. No I/O here, so every rule is unit-tested.
//!
//! The algorithm (README, "How bootstrap decides"):
//! 1. If any peer answers as a member of a running cluster (one with a leader), join it. When the
//!    peer set is authoritative (an autoscaling group), first remove, one per round, a member
//!    whose peer URL is no longer in the set, but only while the other healthy voters form a
//!    quorum of the current membership on their own.
//! 2. Otherwise, form a new cluster only from a complete peer set (its size is the expected
//!    size) that contains this machine: every machine computes the same `initial-cluster`
//!    (all peers, sorted) and the same token (a digest of it), so machines booting together
//!    start one cluster; etcd itself waits for a quorum of them.
//! 3. Otherwise wait and discover again.

use crate::cluster::{format_id, MemberInfo};
use sha2::{Digest, Sha256};

/// A machine of the intended peer set, with its etcd URLs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    pub peer_url: String,
    pub client_url: String,
    pub name: String,
}

/// What a peer's etcd answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// No etcd answering there (not started, not quorate, unreachable).
    Silent,
    /// A member of a cluster.
    Member { cluster_id: u64, leader: u64, members: Vec<MemberInfo> },
}

/// One round's view of the world.
#[derive(Debug, Clone)]
pub struct View {
    /// This machine, if the peer set lists it.
    pub me: Option<Candidate>,
    /// The discovered peer set, this machine included.
    pub peers: Vec<Candidate>,
    /// The intended cluster size, when known.
    pub expected: Option<usize>,
    /// Whether members outside the peer set may be removed.
    pub authoritative: bool,
    /// What each other peer answered.
    pub probes: Vec<(Candidate, Probe)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Wait(String),
    Form { initial_cluster: Vec<(String, String)>, token: String },
    Join { endpoints: Vec<String> },
    RemoveStale { member: MemberInfo, endpoints: Vec<String> },
}

pub fn decide(v: &View) -> Decision {
    // Only members that see a leader count as a running cluster. A member without one is
    // part of a cluster still forming (etcd waits for a quorum of its initial members), and
    // a machine of that same peer set must start too for it to form.
    let running: Vec<(&Candidate, u64, &Vec<MemberInfo>)> = v
        .probes
        .iter()
        .filter_map(|(c, p)| match p {
            Probe::Member { cluster_id, leader, members } if *leader != 0 => Some((c, *cluster_id, members)),
            _ => None,
        })
        .collect();
    let mut clusters: Vec<u64> = running.iter().map(|a| a.1).collect();
    clusters.sort_unstable();
    clusters.dedup();
    match clusters.as_slice() {
        [] => form_or_wait(v),
        [_] => {
            let endpoints: Vec<String> = running.iter().map(|a| a.0.client_url.clone()).collect();
            if v.authoritative {
                if let Some(stale) = removable_stale_member(v, running[0].2, &running) {
                    return stale.map_or_else(Decision::Wait, |member| Decision::RemoveStale { member, endpoints });
                }
            }
            Decision::Join { endpoints }
        }
        many => Decision::Wait(format!(
            "peers belong to {} different clusters ({}); refusing to act until an operator resolves it",
            many.len(),
            many.iter().map(|i| format_id(*i)).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn form_or_wait(v: &View) -> Decision {
    let Some(me) = &v.me else {
        return Decision::Wait("this machine is not in the discovered peer set yet".into());
    };
    let Some(expected) = v.expected else {
        return Decision::Wait("the cluster size is unknown; set bootstrap cluster-size".into());
    };
    let found = v.peers.len();
    if found < expected {
        return Decision::Wait(format!("discovering peers {found}/{expected}"));
    }
    if found > expected {
        return Decision::Wait(format!("discovered {found} peers but the cluster size is {expected}; waiting for the set to settle"));
    }
    debug_assert!(v.peers.contains(me));
    let mut sorted = v.peers.clone();
    sorted.sort();
    let initial_cluster: Vec<(String, String)> = sorted.iter().map(|c| (c.name.clone(), c.peer_url.clone())).collect();
    Decision::Form { token: token(&initial_cluster), initial_cluster }
}

/// `etcd-` and 16 hex digits of the SHA-256 of the sorted `name=url` list: the same on every
/// machine that saw the same set, different for any other set.
pub fn token(initial_cluster: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    for (n, u) in initial_cluster {
        h.update(format!("{n}={u}\n"));
    }
    let digest: [u8; 32] = h.finalize().into();
    format!("etcd-{}", &hex::encode(digest)[..16])
}

/// The member to remove first, if one is outside the peer set: `Some(Ok(member))` when it is
/// safe, `Some(Err(why))` when removing it now would risk quorum, `None` when none is stale.
fn removable_stale_member(
    v: &View,
    members: &[MemberInfo],
    answering: &[(&Candidate, u64, &Vec<MemberInfo>)],
) -> Option<Result<MemberInfo, String>> {
    let in_set = |m: &MemberInfo| v.peers.iter().any(|c| m.peer_urls.contains(&c.peer_url));
    let mut stale: Vec<&MemberInfo> = members.iter().filter(|m| !in_set(m)).collect();
    // Learners and never-started members first: removing them cannot cost quorum.
    stale.sort_by_key(|m| (!m.is_learner, m.started(), m.id));
    let first = *stale.first()?;
    if first.is_learner {
        return Some(Ok(first.clone()));
    }
    let voters: Vec<&MemberInfo> = members.iter().filter(|m| !m.is_learner).collect();
    let quorum = voters.len() / 2 + 1;
    let healthy_others = voters
        .iter()
        .filter(|m| m.id != first.id && answering.iter().any(|a| m.peer_urls.contains(&a.0.peer_url)))
        .count();
    if healthy_others >= quorum {
        Some(Ok(first.clone()))
    } else {
        Some(Err(format!(
            "member {} left the peer set, but removing it needs {quorum} healthy voters besides it and only {healthy_others} answer",
            format_id(first.id)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(i: u8) -> Candidate {
        Candidate {
            name: format!("m{i}"),
            peer_url: format!("https://10.0.0.{i}:2380"),
            client_url: format!("https://10.0.0.{i}:2379"),
        }
    }

    fn member(i: u8, started: bool, learner: bool) -> MemberInfo {
        MemberInfo {
            id: u64::from(i),
            name: if started { format!("m{i}") } else { String::new() },
            peer_urls: vec![format!("https://10.0.0.{i}:2380")],
            client_urls: if started { vec![format!("https://10.0.0.{i}:2379")] } else { vec![] },
            is_learner: learner,
        }
    }

    fn view(me: u8, peers: &[u8], expected: Option<usize>) -> View {
        View {
            me: peers.contains(&me).then(|| cand(me)),
            peers: peers.iter().map(|i| cand(*i)).collect(),
            expected,
            authoritative: false,
            probes: peers.iter().filter(|i| **i != me).map(|i| (cand(*i), Probe::Silent)).collect(),
        }
    }

    fn cluster(members: Vec<MemberInfo>) -> Probe {
        Probe::Member { cluster_id: 77, leader: members[0].id, members }
    }

    #[test]
    fn complete_set_forms_the_same_cluster_on_every_machine() {
        let decisions: Vec<Decision> = [1, 2, 3].iter().map(|me| decide(&view(*me, &[3, 1, 2], Some(3)))).collect();
        assert!(matches!(&decisions[0], Decision::Form { initial_cluster, .. } if initial_cluster.len() == 3));
        assert!(decisions.iter().all(|d| *d == decisions[0]), "{decisions:?}");
        let Decision::Form { initial_cluster, token } = &decisions[0] else { unreachable!() };
        assert_eq!(initial_cluster[0], ("m1".into(), "https://10.0.0.1:2380".into()));
        assert_ne!(*token, super::token(&initial_cluster[..2]));
    }

    #[test]
    fn incomplete_unknown_or_foreign_sets_wait() {
        assert_eq!(decide(&view(1, &[1, 2], Some(3))), Decision::Wait("discovering peers 2/3".into()));
        assert!(matches!(decide(&view(1, &[1, 2, 3, 4], Some(3))), Decision::Wait(_)));
        assert!(matches!(decide(&view(1, &[1, 2, 3], None)), Decision::Wait(_)));
        assert!(matches!(decide(&view(9, &[1, 2, 3], Some(3))), Decision::Wait(w) if w.contains("not in the discovered peer set")));
    }

    #[test]
    fn a_running_cluster_is_joined_even_by_a_member_of_its_initial_set() {
        let mut v = view(3, &[1, 2, 3], Some(3));
        v.probes[0].1 = cluster(vec![member(1, true, false), member(2, true, false), member(3, false, false)]);
        assert_eq!(decide(&v), Decision::Join { endpoints: vec!["https://10.0.0.1:2379".into()] });
        // A late extra machine joins too, whatever the expected size says.
        let mut late = view(4, &[1, 2, 3, 4], Some(3));
        late.probes[0].1 = cluster(vec![member(1, true, false)]);
        assert!(matches!(decide(&late), Decision::Join { .. }));
    }

    #[test]
    fn a_forming_cluster_without_leader_is_formed_with_not_waited_for() {
        let mut v = view(3, &[1, 2, 3], Some(3));
        v.probes[0].1 = Probe::Member { cluster_id: 5, leader: 0, members: vec![] };
        assert_eq!(decide(&v), decide(&view(3, &[1, 2, 3], Some(3))));
        assert!(matches!(decide(&v), Decision::Form { .. }));
    }

    #[test]
    fn two_running_clusters_wait() {
        let mut v = view(3, &[1, 2, 3], Some(3));
        v.probes[0].1 = cluster(vec![member(1, true, false)]);
        v.probes[1].1 = Probe::Member { cluster_id: 78, leader: 2, members: vec![member(2, true, false)] };
        assert!(matches!(decide(&v), Decision::Wait(w) if w.contains("2 different clusters")));
    }

    #[test]
    fn authoritative_set_removes_a_replaced_member_only_while_quorum_holds() {
        // 1,2,3 formed; 3 died and was replaced by 4.
        let members = vec![member(1, true, false), member(2, true, false), member(3, true, false)];
        let mut v = view(4, &[1, 2, 4], Some(3));
        v.authoritative = true;
        v.probes = vec![(cand(1), cluster(members.clone())), (cand(2), cluster(members.clone()))];
        assert!(matches!(decide(&v), Decision::RemoveStale { member, .. } if member.id == 3));
        // Only one other voter answers: removing 3 could cost quorum.
        v.probes = vec![(cand(1), cluster(members.clone())), (cand(2), Probe::Silent)];
        assert!(matches!(decide(&v), Decision::Wait(w) if w.contains("needs 2 healthy voters")));
        // Not authoritative: just join.
        v.authoritative = false;
        assert!(matches!(decide(&v), Decision::Join { .. }));
    }

    #[test]
    fn stale_learners_go_first_and_always_may_go() {
        let members = vec![member(1, true, false), member(2, true, false), member(3, true, false), member(5, false, true)];
        let mut v = view(4, &[1, 2, 4], Some(3));
        v.authoritative = true;
        v.probes = vec![(cand(1), cluster(members.clone())), (cand(2), Probe::Silent)];
        assert!(matches!(decide(&v), Decision::RemoveStale { member, .. } if member.id == 5));
    }
}
