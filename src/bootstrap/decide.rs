//! Where bootstrap picks init or join: a pure function of what discovery and the probes of
//! the peers saw. No I/O here, so every rule is unit-tested, and the model in spec/ checks the
//! same rules (spec/README.md; the fixes F2, F3, F5, F6 it names are marked below).
//!
//! The algorithm (README, "How bootstrap decides"):
//! 1. If any peer answers as a member of a running cluster (one with a leader), join it (or,
//!    if it lists this machine as an initial member that never started, form exactly it). When the
//!    peer set is authoritative (an autoscaling group) and this round's view of it is complete
//!    and lists this machine, first remove, one per round, a departed member: one whose peer URL
//!    is no longer in the set (or, F5, a started predecessor at this machine's own peer URL while
//!    this machine has no data), that does not answer, and only while the other healthy voters
//!    form a quorum of the current membership on their own.
//! 2. Otherwise, if a peer answers as a member of a cluster without a leader (F3): when its
//!    member list names this machine as an initial voter that never started, form exactly that
//!    cluster; any other leaderless cluster means wait.
//! 3. Otherwise, form a new cluster only from a complete peer set (its size is the expected
//!    size) that contains this machine and whose other machines are all reachable (F6: up,
//!    even if their etcd is not): every machine computes the same `initial-cluster` (all peers,
//!    sorted) and the same token (a digest of it), so machines booting together start one
//!    cluster; etcd itself waits for a quorum of them.
//!    With `bootstrap.restore-from` (R, spec/README.md) such a set is restored instead of
//!    formed empty: every other peer of the complete set answers and runs no etcd, so no
//!    peer holds a running member; the first machine of the sorted set alone restores the
//!    newest backup as a one-member cluster, and the others wait until it runs, then join it
//!    by rule 1.
//! 4. Otherwise wait and discover again.

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
    /// No answer at all: the machine is down, unreachable, or did not answer in time.
    Silent,
    /// The machine is up but refuses connections on the peer port: its etcd is not running.
    Refused,
    /// A member of a cluster; `leader` 0 when it has none (its member list then comes from
    /// the member itself, over the peer port).
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
    /// What each peer answered: the others, this machine's own member, and members of a
    /// running cluster that are outside the peer set.
    pub probes: Vec<(Candidate, Probe)>,
    /// Whether this machine's data directory holds member data.
    pub has_data: bool,
    /// Whether a cluster formed from nothing is restored from a backup
    /// (`bootstrap.restore-from`) instead of starting empty.
    pub restore: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Wait(String),
    Form {
        initial_cluster: Vec<(String, String)>,
        token: String,
    },
    /// Restore the newest backup as a one-member cluster of this machine alone; the other
    /// peers join it once it runs.
    Restore {
        initial_cluster: Vec<(String, String)>,
        token: String,
    },
    Join {
        endpoints: Vec<String>,
    },
    RemoveStale {
        member: MemberInfo,
        endpoints: Vec<String>,
    },
}

pub fn decide(v: &View) -> Decision {
    // Only members that see a leader count as a running cluster. A member without one is
    // part of a cluster still forming (etcd waits for a quorum of its initial members), and
    // a machine of that same peer set must start too for it to form.
    let running: Vec<(&Candidate, u64, &Vec<MemberInfo>)> = v
        .probes
        .iter()
        .filter_map(|(c, p)| match p {
            Probe::Member { cluster_id, leader, members } if *leader != 0 => {
                Some((c, *cluster_id, members))
            }
            _ => None,
        })
        .collect();
    let mut clusters: Vec<u64> = running.iter().map(|a| a.1).collect();
    clusters.sort_unstable();
    clusters.dedup();
    match clusters.as_slice() {
        [] => form_or_wait(v),
        [cluster_id] => {
            // An initial member of that cluster that never started is started as one ("new",
            // the same initial cluster and token), not joined: etcd stalls when such members
            // start with "existing" at once, each waiting on the other's peer port.
            if let Some(form) = v.me.as_ref().and_then(|me| unstarted_initial_member(me, running[0].2)) {
                return form;
            }
            let endpoints: Vec<String> = running.iter().map(|a| a.0.client_url.clone()).collect();
            // F2: only a complete view that lists this machine says who departed.
            if v.authoritative && v.me.is_some() && v.expected == Some(v.peers.len()) {
                if let Some(stale) = removable_stale_member(v, *cluster_id, running[0].2, &running) {
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
    if let Some(d) = leaderless(v, me) {
        return d;
    }
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
    // F6: a machine that does not answer at all may run a member this one cannot see.
    let silent: Vec<&str> = v
        .peers
        .iter()
        .filter(|p| *p != me && !v.probes.iter().any(|(c, pr)| c == *p && *pr != Probe::Silent))
        .map(|p| p.name.as_str())
        .collect();
    if !silent.is_empty() {
        return Decision::Wait(format!(
            "waiting for {} to answer before forming the cluster",
            silent.join(", ")
        ));
    }
    debug_assert!(v.peers.contains(me));
    let mut sorted = v.peers.clone();
    sorted.sort();
    // Sorted as `name=url` pairs, the order in which a machine that comes later recovers
    // the list from the forming cluster's members (`leaderless`, `unstarted_initial_member`):
    // the token is a digest of this list, so both must be one order, or the later machine
    // starts another cluster. (Candidates sort by peer URL first; names such as instance ids
    // need not sort as their addresses do.)
    let mut initial_cluster: Vec<(String, String)> =
        sorted.iter().map(|c| (c.name.clone(), c.peer_url.clone())).collect();
    initial_cluster.sort();
    if v.restore {
        // Every other peer answered without a running etcd (a silent one waits above, a
        // member of any cluster is rule 1 or F3), so no peer runs a member. Exactly one
        // machine restores: the first of the set every machine sorts the same way.
        let first = &sorted[0];
        if first != me {
            return Decision::Wait(format!(
                "waiting for {} to restore the cluster from the backup (bootstrap.restore-from), then joining it",
                first.name
            ));
        }
        return Decision::Restore {
            token: restore_token(&initial_cluster),
            initial_cluster: vec![(me.name.clone(), me.peer_url.clone())],
        };
    }
    Decision::Form { token: token(&initial_cluster), initial_cluster }
}

/// F3: what members of clusters without a leader say. `None` when no peer answers so.
fn leaderless(v: &View, me: &Candidate) -> Option<Decision> {
    let mut adopt: Vec<(u64, &Vec<MemberInfo>)> = Vec::new();
    let mut other = None;
    for (c, p) in &v.probes {
        let Probe::Member { cluster_id, leader: 0, members } = p else { continue };
        // This machine is an initial voter of it that never started: starting it is what
        // that cluster waits for.
        let lists_me = members.iter().any(|m| {
            m.peer_urls.contains(&me.peer_url) && m.name == me.name && !m.is_learner && !m.started()
        });
        if lists_me {
            if !adopt.iter().any(|(id, _)| id == cluster_id) {
                adopt.push((*cluster_id, members));
            }
        } else {
            other = Some((c, *cluster_id, members.iter().any(MemberInfo::started)));
        }
    }
    match (adopt.as_slice(), other) {
        ([], None) => None,
        ([(_, members)], None) => {
            let mut initial_cluster: Vec<(String, String)> = members
                .iter()
                .filter_map(|m| Some((m.name.clone(), m.peer_urls.first()?.clone())))
                .collect();
            initial_cluster.sort();
            Some(Decision::Form { token: token(&initial_cluster), initial_cluster })
        }
        (_, Some((c, id, true))) => Some(Decision::Wait(format!(
            "{} is a member of cluster {} which has no leader right now; waiting for it to recover",
            c.name,
            format_id(id)
        ))),
        (_, Some((c, id, false))) => Some(Decision::Wait(format!(
            "{} is forming cluster {} without this machine; waiting",
            c.name,
            format_id(id)
        ))),
        (many, None) => Some(Decision::Wait(format!(
            "{} forming clusters list this machine ({}); waiting",
            many.len(),
            many.iter().map(|(i, _)| format_id(*i)).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Form exactly the cluster whose member list names `me` as an initial voter that never
/// started, when its initial cluster and token can be recovered from the list: the member
/// id etcd gave `me` must be the one it computes from the peer URL and that token.
fn unstarted_initial_member(me: &Candidate, members: &[MemberInfo]) -> Option<Decision> {
    let mine = members.iter().find(|m| {
        m.peer_urls.contains(&me.peer_url) && m.name == me.name && !m.is_learner && !m.started()
    })?;
    let mut initial_cluster: Vec<(String, String)> = members
        .iter()
        .filter_map(|m| Some((m.name.clone(), m.peer_urls.first()?.clone())))
        .collect();
    initial_cluster.sort();
    let token = token(&initial_cluster);
    (mine.id == initial_member_id(&mine.peer_urls, &token))
        .then_some(Decision::Form { initial_cluster, token })
}

/// The id etcd gives a member of the initial cluster: the first 8 bytes of the SHA-1 of its
/// sorted peer URLs and the cluster token (etcd's `computeMemberID`).
pub fn initial_member_id(peer_urls: &[String], token: &str) -> u64 {
    use sha1::Digest as _;
    let mut urls = peer_urls.to_vec();
    urls.sort();
    let digest = sha1::Sha1::digest(format!("{}{token}", urls.concat()).as_bytes());
    u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

/// `etcd-` and 16 hex digits of the SHA-256 of the sorted `name=url` list: the same on every
/// machine that saw the same set, different for any other set.
pub fn token(initial_cluster: &[(String, String)]) -> String {
    digest_token("", initial_cluster)
}

/// The token of a cluster restored by the first machine of `peer_set` (sorted `name=url`):
/// another than [`token`]'s for the same set, so the restored cluster's id is new.
pub fn restore_token(peer_set: &[(String, String)]) -> String {
    digest_token("restored from a backup\n", peer_set)
}

fn digest_token(salt: &str, list: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    for (n, u) in list {
        h.update(format!("{n}={u}\n"));
    }
    let digest: [u8; 32] = h.finalize().into();
    format!("etcd-{}", &hex::encode(digest)[..16])
}

/// The member to remove first, if one departed: `Some(Ok(member))` when it is safe,
/// `Some(Err(why))` when removing it now would risk quorum, `None` when none departed.
fn removable_stale_member(
    v: &View,
    cluster_id: u64,
    members: &[MemberInfo],
    answering: &[(&Candidate, u64, &Vec<MemberInfo>)],
) -> Option<Result<MemberInfo, String>> {
    let in_set = |m: &MemberInfo| v.peers.iter().any(|c| m.peer_urls.contains(&c.peer_url));
    // F5: a started member at this machine's own peer URL while this machine has no data is
    // a predecessor that died with its disk (a replacement reusing its address).
    let predecessor = |m: &MemberInfo| {
        !v.has_data
            && m.started()
            && v.me.as_ref().is_some_and(|me| m.peer_urls.contains(&me.peer_url))
    };
    // F2: a member whose etcd still answers as a member of this cluster has not departed.
    let answers = |m: &MemberInfo| {
        v.probes.iter().any(|(c, p)| {
            m.peer_urls.contains(&c.peer_url)
                && matches!(p, Probe::Member { cluster_id: id, .. } if *id == cluster_id)
        })
    };
    let mut stale: Vec<&MemberInfo> =
        members.iter().filter(|m| (!in_set(m) || predecessor(m)) && !answers(m)).collect();
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
        .filter(|m| {
            m.id != first.id && answering.iter().any(|a| m.peer_urls.contains(&a.0.peer_url))
        })
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
            probes: peers
                .iter()
                .filter(|i| **i != me)
                .map(|i| (cand(*i), Probe::Refused))
                .collect(),
            has_data: false,
            restore: false,
        }
    }

    fn cluster(members: Vec<MemberInfo>) -> Probe {
        Probe::Member { cluster_id: 77, leader: members[0].id, members }
    }

    #[test]
    fn complete_set_forms_the_same_cluster_on_every_machine() {
        let decisions: Vec<Decision> =
            [1, 2, 3].iter().map(|me| decide(&view(*me, &[3, 1, 2], Some(3)))).collect();
        assert!(
            matches!(&decisions[0], Decision::Form { initial_cluster, .. } if initial_cluster.len() == 3)
        );
        assert!(decisions.iter().all(|d| *d == decisions[0]), "{decisions:?}");
        let Decision::Form { initial_cluster, token } = &decisions[0] else { unreachable!() };
        assert_eq!(initial_cluster[0], ("m1".into(), "https://10.0.0.1:2380".into()));
        assert_ne!(*token, super::token(&initial_cluster[..2]));
    }

    #[test]
    fn a_machine_that_adopts_a_forming_cluster_computes_the_token_of_the_machine_that_formed_it() {
        // Names that do not sort as their addresses do (instance ids): m1 at .1 is named
        // i-7…, m2 at .2 is i-6…, m3 at .3 is i-8….
        let named = |i: u8, name: &str| Candidate { name: name.into(), ..cand(i) };
        let set = [
            named(1, "i-70992e0afaecbf9f0"),
            named(2, "i-65cc740174eb54f88"),
            named(3, "i-8c15f54b45f21996b"),
        ];
        let mut first = view(1, &[1, 2, 3], Some(3));
        first.peers = set.to_vec();
        first.me = Some(set[0].clone());
        first.probes = set[1..].iter().map(|c| (c.clone(), Probe::Refused)).collect();
        let Decision::Form { initial_cluster, token: formed } = decide(&first) else {
            panic!("{:?}", decide(&first))
        };
        // m1's etcd runs, without a leader yet, listing its initial cluster with the ids etcd
        // computes from the token; m3 comes later and finds it.
        let members: Vec<MemberInfo> = initial_cluster
            .iter()
            .map(|(name, url)| MemberInfo {
                id: initial_member_id(std::slice::from_ref(url), &formed),
                name: name.clone(),
                peer_urls: vec![url.clone()],
                client_urls: if name == &set[0].name {
                    vec![set[0].client_url.clone()]
                } else {
                    vec![]
                },
                is_learner: false,
            })
            .collect();
        let mut late = first.clone();
        late.me = Some(set[2].clone());
        late.probes = vec![
            (set[0].clone(), Probe::Member { cluster_id: 9, leader: 0, members }),
            (set[1].clone(), Probe::Refused),
        ];
        assert_eq!(decide(&late), Decision::Form { initial_cluster, token: formed });
    }

    #[test]
    fn incomplete_unknown_or_foreign_sets_wait() {
        assert_eq!(
            decide(&view(1, &[1, 2], Some(3))),
            Decision::Wait("discovering peers 2/3".into())
        );
        assert!(matches!(decide(&view(1, &[1, 2, 3, 4], Some(3))), Decision::Wait(_)));
        assert!(matches!(decide(&view(1, &[1, 2, 3], None)), Decision::Wait(_)));
        assert!(
            matches!(decide(&view(9, &[1, 2, 3], Some(3))), Decision::Wait(w) if w.contains("not in the discovered peer set"))
        );
    }

    #[test]
    fn a_running_cluster_is_joined_even_by_a_member_of_its_initial_set() {
        let mut v = view(3, &[1, 2, 3], Some(3));
        v.probes[0].1 =
            cluster(vec![member(1, true, false), member(2, true, false), member(3, false, false)]);
        assert_eq!(decide(&v), Decision::Join { endpoints: vec!["https://10.0.0.1:2379".into()] });
        // A late extra machine joins too, whatever the expected size says.
        let mut late = view(4, &[1, 2, 3, 4], Some(3));
        late.probes[0].1 = cluster(vec![member(1, true, false)]);
        assert!(matches!(decide(&late), Decision::Join { .. }));
    }

    #[test]
    fn an_unstarted_initial_member_of_a_running_cluster_starts_as_one() {
        // 1 and 2 formed {1,2,3} and have a leader; 3 never started. Its member id is the
        // one etcd computes from its peer URL and the token, so 3 forms that cluster.
        let ic: Vec<(String, String)> = [1, 2, 3]
            .iter()
            .map(|i| (format!("m{i}"), format!("https://10.0.0.{i}:2380")))
            .collect();
        let tok = token(&ic);
        let id = |i: u8| initial_member_id(&[format!("https://10.0.0.{i}:2380")], &tok);
        let members: Vec<MemberInfo> = [1, 2, 3]
            .iter()
            .map(|i| MemberInfo { id: id(*i), name: format!("m{i}"), ..member(*i, *i != 3, false) })
            .collect();
        let mut v = view(3, &[1, 2, 3], Some(3));
        v.probes[0].1 = Probe::Member { cluster_id: 5, leader: id(1), members: members.clone() };
        assert_eq!(decide(&v), Decision::Form { initial_cluster: ic, token: tok.clone() });
        // A list that does not give back its id (membership changed since): join instead.
        let mut other = members;
        other[0].peer_urls = vec!["https://10.0.0.9:2380".into()];
        v.probes[0].1 = Probe::Member { cluster_id: 5, leader: id(1), members: other };
        assert!(matches!(decide(&v), Decision::Join { .. }));
    }

    #[test]
    fn with_restore_from_only_the_first_machine_restores_and_the_others_wait_for_it() {
        let set: Vec<(String, String)> = [1, 2, 3]
            .iter()
            .map(|i| (format!("m{i}"), format!("https://10.0.0.{i}:2380")))
            .collect();
        let decisions: Vec<Decision> = [1, 2, 3]
            .iter()
            .map(|me| decide(&View { restore: true, ..view(*me, &[3, 1, 2], Some(3)) }))
            .collect();
        assert_eq!(
            decisions[0],
            Decision::Restore { initial_cluster: vec![set[0].clone()], token: restore_token(&set) }
        );
        assert_ne!(restore_token(&set), token(&set), "the restored cluster gets a new identity");
        for d in &decisions[1..] {
            assert!(
                matches!(d, Decision::Wait(w) if w.contains("waiting for m1 to restore")),
                "{d:?}"
            );
        }
        // A silent peer, an incomplete set, or a peer that answers as a member (of a forming
        // cluster, or of a running one): no restore.
        let mut silent = View { restore: true, ..view(1, &[1, 2, 3], Some(3)) };
        silent.probes[1].1 = Probe::Silent;
        assert!(matches!(decide(&silent), Decision::Wait(w) if w.contains("m3 to answer")));
        let partial = View { restore: true, ..view(1, &[1, 2], Some(3)) };
        assert!(matches!(decide(&partial), Decision::Wait(_)));
        let mut forming = View { restore: true, ..view(1, &[1, 2, 3], Some(3)) };
        forming.probes[0].1 =
            Probe::Member { cluster_id: 5, leader: 0, members: vec![member(2, true, false)] };
        assert!(matches!(decide(&forming), Decision::Wait(w) if w.contains("no leader")));
        let mut running = View { restore: true, ..view(2, &[1, 2, 3], Some(3)) };
        running.probes[0].1 = cluster(vec![member(1, true, false)]);
        assert!(matches!(decide(&running), Decision::Join { .. }));
    }

    #[test]
    fn a_silent_peer_blocks_forming() {
        // F6: up but etcd not started (refused) is fine; no answer at all is not.
        let mut v = view(3, &[1, 2, 3], Some(3));
        v.probes[1].1 = Probe::Silent;
        assert!(matches!(decide(&v), Decision::Wait(w) if w.contains("m2 to answer")));
    }

    #[test]
    fn a_forming_cluster_that_lists_me_is_formed_exactly_others_are_waited_for() {
        // F3: m1 started etcd for {m1,m2,m3}; m3's view has meanwhile changed to {m1,m3,m4}.
        let forming =
            vec![member(1, false, false), member(2, false, false), member(3, false, false)];
        let forming: Vec<MemberInfo> =
            forming.into_iter().map(|m| MemberInfo { name: format!("m{}", m.id), ..m }).collect();
        let mut v = view(3, &[1, 3, 4], Some(3));
        v.probes[0].1 = Probe::Member { cluster_id: 5, leader: 0, members: forming.clone() };
        let ic: Vec<(String, String)> = [1, 2, 3]
            .iter()
            .map(|i| (format!("m{i}"), format!("https://10.0.0.{i}:2380")))
            .collect();
        assert_eq!(decide(&v), Decision::Form { token: token(&ic), initial_cluster: ic });
        // A forming cluster without this machine, or one whose members started: wait.
        let mut w = view(4, &[1, 3, 4], Some(3));
        w.probes[0].1 = Probe::Member { cluster_id: 5, leader: 0, members: forming.clone() };
        assert!(matches!(decide(&w), Decision::Wait(x) if x.contains("without this machine")));
        let started = vec![member(1, true, false), member(3, true, false)];
        let mut x = view(4, &[1, 3, 4], Some(3));
        x.probes[0].1 = Probe::Member { cluster_id: 5, leader: 0, members: started };
        assert!(matches!(decide(&x), Decision::Wait(y) if y.contains("no leader right now")));
    }

    #[test]
    fn a_dead_predecessor_at_my_address_is_removed_when_i_have_no_data() {
        // F5: 3 died with its disk; its replacement got the same address.
        let members = vec![member(1, true, false), member(2, true, false), member(3, true, false)];
        let mut v = view(3, &[1, 2, 3], Some(3));
        v.authoritative = true;
        v.probes = vec![
            (cand(1), cluster(members.clone())),
            (cand(2), cluster(members.clone())),
            (cand(3), Probe::Refused),
        ];
        assert!(matches!(decide(&v), Decision::RemoveStale { member, .. } if member.id == 3));
        v.has_data = true;
        assert!(matches!(decide(&v), Decision::Join { .. }));
    }

    #[test]
    fn no_removal_from_an_incomplete_view_or_of_a_member_that_answers() {
        // F2
        let members = vec![member(1, true, false), member(2, true, false), member(3, true, false)];
        let mut v = view(4, &[1, 2, 4], Some(3));
        v.authoritative = true;
        v.probes = vec![
            (cand(1), cluster(members.clone())),
            (cand(2), cluster(members.clone())),
            (cand(3), cluster(members.clone())),
        ];
        assert!(matches!(decide(&v), Decision::Join { .. }), "3 answers");
        v.probes.pop();
        v.peers.pop();
        v.me = None;
        assert!(matches!(decide(&v), Decision::Join { .. }), "the view does not list this machine");
    }

    #[test]
    fn two_running_clusters_wait() {
        let mut v = view(3, &[1, 2, 3], Some(3));
        v.probes[0].1 = cluster(vec![member(1, true, false)]);
        v.probes[1].1 =
            Probe::Member { cluster_id: 78, leader: 2, members: vec![member(2, true, false)] };
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
        let members = vec![
            member(1, true, false),
            member(2, true, false),
            member(3, true, false),
            member(5, false, true),
        ];
        let mut v = view(4, &[1, 2, 4], Some(3));
        v.authoritative = true;
        v.probes = vec![(cand(1), cluster(members.clone())), (cand(2), Probe::Silent)];
        assert!(matches!(decide(&v), Decision::RemoveStale { member, .. } if member.id == 5));
    }
}
