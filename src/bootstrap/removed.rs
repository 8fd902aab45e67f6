//! A member removed while its machine was away (stopped, then started again after its
//! replacement took its place). Its etcd cannot come back: the cluster refuses a removed
//! member for good ("the member has been permanently removed from the cluster"), and the
//! member's data directory is of no use to a new member. Before a machine that was a member
//! on an earlier boot starts its etcd, bootstrap asks its peers what they are members of and
//! classifies the answers here ([`classify`], pure, tested below); `super` acts on the
//! verdict through the state machine (`machine`): a removed member is moved aside and the
//! machine joins as a new member when the peer set still lists it, or stays out when it does
//! not. This runs before `decide` and outside the model (spec/), which covers forming and
//! replacing members of a cluster, not a member's own data.

use super::decide::{Candidate, Probe};
use crate::cluster::format_id;
use crate::state::State;
use std::path::{Path, PathBuf};

/// The member this machine set up on an earlier boot, as its state file records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalIds {
    pub member_id: u64,
    pub cluster_id: u64,
}

impl LocalIds {
    /// Both ids from the state file (hex, as etcd prints them); `None` when one is missing
    /// or unreadable (a state file of an older version): nothing can then be classified.
    pub fn of(state: &State) -> Option<LocalIds> {
        let parse = |s: &Option<String>| s.as_deref().and_then(|s| u64::from_str_radix(s, 16).ok());
        Some(LocalIds {
            member_id: parse(&state.member_id)?,
            cluster_id: parse(&state.cluster_id)?,
        })
    }
}

/// What the peers say about this machine's member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// A member of this machine's cluster lists its member id: start etcd as before.
    StillMember,
    /// The running cluster (same cluster id, with a leader) no longer lists the member id.
    Removed { member_id: u64, cluster_id: u64 },
    /// The peers run another cluster (a re-created or restored one): nothing is touched.
    OtherCluster { member_id: u64, local: u64, peers: Vec<u64> },
    /// No peer answered with a running cluster (all down, still booting, or the ids are not
    /// recorded): as before, etcd is started and waited for; nothing is touched.
    Unknown,
}

impl Membership {
    pub fn name(&self) -> &'static str {
        match self {
            Membership::StillMember => "still a member",
            Membership::Removed { .. } => "removed",
            Membership::OtherCluster { .. } => "another cluster",
            Membership::Unknown => "unknown",
        }
    }
}

/// Classifies the peers' answers for member `local` (`None`: its ids are not recorded).
/// `own_peer_url` is this machine's: its own etcd's answer does not count (a removed member
/// knows nothing of its removal). Only a running cluster (a member that sees a leader) says
/// that the member is gone; any answer of this cluster that lists it says it is not.
pub fn classify(
    local: Option<LocalIds>,
    own_peer_url: &str,
    probes: &[(Candidate, Probe)],
) -> Membership {
    let Some(local) = local else { return Membership::Unknown };
    let answers: Vec<(u64, u64, bool)> = probes
        .iter()
        .filter(|(c, _)| c.peer_url != own_peer_url)
        .filter_map(|(_, p)| match p {
            Probe::Member { cluster_id, leader, members } => {
                Some((*cluster_id, *leader, members.iter().any(|m| m.id == local.member_id)))
            }
            Probe::Silent | Probe::Refused => None,
        })
        .collect();
    if answers.iter().any(|(cluster, _, lists_me)| *cluster == local.cluster_id && *lists_me) {
        return Membership::StillMember;
    }
    let mut running: Vec<u64> = answers
        .iter()
        .filter(|(_, leader, _)| *leader != 0)
        .map(|(cluster, _, _)| *cluster)
        .collect();
    running.sort_unstable();
    running.dedup();
    match running.as_slice() {
        [] => Membership::Unknown,
        [only] if *only == local.cluster_id => {
            Membership::Removed { member_id: local.member_id, cluster_id: local.cluster_id }
        }
        _ => Membership::OtherCluster {
            member_id: local.member_id,
            local: local.cluster_id,
            peers: running,
        },
    }
}

/// Refusals of a member that came back.
#[derive(Debug, thiserror::Error)]
pub enum ComebackError {
    #[error(
        "this machine's member {member} belongs to cluster {local}, but its peers answer as members of cluster {peers}; nothing was changed. \
         If that cluster was re-created or restored, move {data_dir} and {state_file} aside (or run `etcdadm reset`) so that this machine joins it as a new member; \
         if these are the wrong peers, fix bootstrap.discovery"
    )]
    OtherCluster {
        member: String,
        local: String,
        peers: String,
        data_dir: String,
        state_file: String,
    },
    #[error(
        "cannot move {from} aside to {to} (the data of removed member {member}): {source}; nothing else was changed. \
         Fix the cause (space, permissions, a read-only file system), then start etcdadm-bootstrap again"
    )]
    MoveAside { member: String, from: PathBuf, to: PathBuf, source: std::io::Error },
}

impl ComebackError {
    /// The refusal for [`Membership::OtherCluster`], naming both cluster ids and the files.
    pub fn other_cluster(
        member_id: u64,
        local: u64,
        peers: &[u64],
        data_dir: &Path,
        state_file: &Path,
    ) -> ComebackError {
        ComebackError::OtherCluster {
            member: format_id(member_id),
            local: format_id(local),
            peers: peers.iter().map(|p| format_id(*p)).collect::<Vec<_>>().join(" and "),
            data_dir: data_dir.display().to_string(),
            state_file: state_file.display().to_string(),
        }
    }
}

/// Renames `path` to `<path>.removed-<stamp>` (`-2`, `-3`, ... appended when that exists) in
/// one rename in the same directory, which is then synced; never deletes anything. `None`
/// when `path` does not exist (moved on an earlier, interrupted run).
pub fn move_aside(path: &Path, stamp: &str, member: u64) -> Result<Option<PathBuf>, ComebackError> {
    let err = |to: &Path, source| ComebackError::MoveAside {
        member: format_id(member),
        from: path.to_path_buf(),
        to: to.to_path_buf(),
        source,
    };
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let to = crate::fsutil::aside_path(path, "removed", stamp);
    crate::fsutil::rename_synced(path, &to).map_err(|e| err(&to, e))?;
    Ok(Some(to))
}

/// The newest `<path>.removed-*` next to `path` (stamps sort by time): what an earlier,
/// interrupted run moved aside, to name it once more.
pub fn newest_kept(path: &Path) -> Option<PathBuf> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
    let prefix = format!("{}.removed-", path.file_name()?.to_string_lossy());
    std::fs::read_dir(parent)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .max()
        .map(|n| parent.join(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::MemberInfo;

    const ME: &str = "https://10.0.0.3:2380";
    const LOCAL: LocalIds = LocalIds { member_id: 0x33, cluster_id: 0xc1 };

    fn peer(n: u8) -> Candidate {
        Candidate {
            peer_url: format!("https://10.0.0.{n}:2380"),
            client_url: format!("https://10.0.0.{n}:2379"),
            name: format!("etcd-10-0-0-{n}"),
        }
    }

    fn member(id: u64, n: u8) -> MemberInfo {
        MemberInfo {
            id,
            name: format!("etcd-10-0-0-{n}"),
            peer_urls: vec![format!("https://10.0.0.{n}:2380")],
            client_urls: vec![format!("https://10.0.0.{n}:2379")],
            is_learner: false,
        }
    }

    fn answer(cluster_id: u64, leader: u64, ids: &[(u64, u8)]) -> Probe {
        Probe::Member {
            cluster_id,
            leader,
            members: ids.iter().map(|(i, n)| member(*i, *n)).collect(),
        }
    }

    #[test]
    fn a_running_cluster_that_lists_the_member_id_keeps_it() {
        let probes = [
            (peer(1), answer(0xc1, 0x11, &[(0x11, 1), (0x22, 2), (0x33, 3)])),
            (peer(2), Probe::Silent),
        ];
        assert_eq!(classify(Some(LOCAL), ME, &probes), Membership::StillMember);
    }

    #[test]
    fn a_leaderless_peer_that_lists_the_member_id_keeps_it_too() {
        // A whole cluster rebooting: the peers answer on their peer port, without a leader.
        let probes = [(peer(1), answer(0xc1, 0, &[(0x11, 1), (0x22, 2), (0x33, 3)]))];
        assert_eq!(classify(Some(LOCAL), ME, &probes), Membership::StillMember);
    }

    #[test]
    fn a_running_cluster_of_the_same_id_without_the_member_id_removed_it() {
        let probes = [
            (peer(1), answer(0xc1, 0x11, &[(0x11, 1), (0x22, 2)])),
            (peer(2), answer(0xc1, 0x11, &[(0x11, 1), (0x22, 2)])),
            (peer(3), Probe::Refused),
        ];
        assert_eq!(
            classify(Some(LOCAL), ME, &probes),
            Membership::Removed { member_id: 0x33, cluster_id: 0xc1 }
        );
    }

    #[test]
    fn a_replacement_at_the_same_address_is_another_member_so_this_one_was_removed() {
        // A new member at this machine's own peer URL (added by an operator): not this one.
        let probes = [(peer(1), answer(0xc1, 0x11, &[(0x11, 1), (0x22, 2), (0x44, 3)]))];
        assert_eq!(
            classify(Some(LOCAL), ME, &probes),
            Membership::Removed { member_id: 0x33, cluster_id: 0xc1 }
        );
    }

    #[test]
    fn this_machines_own_answer_does_not_count() {
        // Its own etcd lists itself (it does not know it was removed); the peers do not.
        let me = Candidate { peer_url: ME.into(), ..peer(3) };
        let probes = [
            (me.clone(), answer(0xc1, 0, &[(0x11, 1), (0x22, 2), (0x33, 3)])),
            (peer(1), answer(0xc1, 0x11, &[(0x11, 1), (0x22, 2)])),
        ];
        assert_eq!(
            classify(Some(LOCAL), ME, &probes),
            Membership::Removed { member_id: 0x33, cluster_id: 0xc1 }
        );
        assert_eq!(classify(Some(LOCAL), ME, &probes[..1]), Membership::Unknown);
    }

    #[test]
    fn peers_running_another_cluster_are_another_cluster() {
        let probes = [(peer(1), answer(0xc2, 0x55, &[(0x55, 1), (0x66, 2)]))];
        assert_eq!(
            classify(Some(LOCAL), ME, &probes),
            Membership::OtherCluster { member_id: 0x33, local: 0xc1, peers: vec![0xc2] }
        );
        // Peers of two clusters, this one among them but without the member: refused too.
        let mixed = [
            (peer(1), answer(0xc2, 0x55, &[(0x55, 1)])),
            (peer(2), answer(0xc1, 0x22, &[(0x22, 2)])),
        ];
        assert_eq!(
            classify(Some(LOCAL), ME, &mixed),
            Membership::OtherCluster { member_id: 0x33, local: 0xc1, peers: vec![0xc1, 0xc2] }
        );
    }

    #[test]
    fn no_running_answer_is_unknown() {
        for probes in [
            vec![],
            vec![(peer(1), Probe::Silent), (peer(2), Probe::Refused)],
            // Without a leader a member list may lag: it does not say the member is gone.
            vec![(peer(1), answer(0xc1, 0, &[(0x11, 1), (0x22, 2)]))],
            vec![(peer(1), answer(0xc2, 0, &[(0x55, 1)]))],
        ] {
            assert_eq!(classify(Some(LOCAL), ME, &probes), Membership::Unknown, "{probes:?}");
        }
    }

    #[test]
    fn without_recorded_ids_nothing_is_classified() {
        let probes = [(peer(1), answer(0xc1, 0x11, &[(0x11, 1)]))];
        assert_eq!(classify(None, ME, &probes), Membership::Unknown);
    }

    #[test]
    fn ids_come_from_the_state_file_in_hex() {
        let mut s = State {
            origin: crate::state::Origin::Join,
            progress: crate::state::Progress::Member,
            config: crate::config::Config::default(),
            advertise_address: "10.0.0.3".into(),
            member_id: None,
            cluster_id: None,
        };
        assert_eq!(LocalIds::of(&s), None);
        s.member_id = Some("8e9e05c52164694d".into());
        assert_eq!(LocalIds::of(&s), None, "no cluster id");
        s.cluster_id = Some("cdf818194e3a8c32".into());
        assert_eq!(
            LocalIds::of(&s),
            Some(LocalIds { member_id: 0x8e9e05c52164694d, cluster_id: 0xcdf818194e3a8c32 })
        );
        s.cluster_id = Some("not hex".into());
        assert_eq!(LocalIds::of(&s), None);
    }

    #[test]
    fn the_other_cluster_refusal_names_both_ids_and_what_to_do() {
        let e = ComebackError::other_cluster(
            0x33,
            0xc1,
            &[0xc2],
            Path::new("/var/lib/etcd"),
            Path::new("/etc/etcdadm/state.json"),
        )
        .to_string();
        for part in [
            "member 33",
            "cluster c1",
            "cluster c2",
            "nothing was changed",
            "/var/lib/etcd",
            "/etc/etcdadm/state.json",
            "etcdadm reset",
            "bootstrap.discovery",
        ] {
            assert!(e.contains(part), "{part} not in: {e}");
        }
    }

    #[test]
    fn moving_aside_renames_keeps_the_content_and_never_overwrites() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("etcd");
        std::fs::create_dir_all(data.join("member/snap")).unwrap();
        std::fs::write(data.join("member/snap/db"), "bolt").unwrap();
        let to = move_aside(&data, "20260101T000000Z", 0x33).unwrap().unwrap();
        assert_eq!(to, d.path().join("etcd.removed-20260101T000000Z"));
        assert!(!data.exists());
        assert_eq!(std::fs::read_to_string(to.join("member/snap/db")).unwrap(), "bolt");
        // Gone already (an interrupted earlier run moved it): nothing to do.
        assert_eq!(move_aside(&data, "20260101T000000Z", 0x33).unwrap(), None);
        assert_eq!(newest_kept(&data), Some(to.clone()));
        // The same second again: a new name, the first one kept.
        std::fs::create_dir_all(&data).unwrap();
        let second = move_aside(&data, "20260101T000000Z", 0x33).unwrap().unwrap();
        assert_eq!(second, d.path().join("etcd.removed-20260101T000000Z-2"));
        assert!(to.join("member/snap/db").exists());
        std::fs::create_dir_all(&data).unwrap();
        let later = move_aside(&data, "20260102T000000Z", 0x33).unwrap().unwrap();
        assert_eq!(newest_kept(&data), Some(later));
        assert_eq!(newest_kept(&d.path().join("other")), None);
    }

    #[test]
    fn a_failed_move_names_both_paths_and_the_member() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("f");
        std::fs::write(&file, "x").unwrap();
        // Renaming into a directory that is a file fails.
        let inside = file.join("etcd");
        assert_eq!(move_aside(&inside, "s", 0x33).unwrap(), None, "missing: nothing to move");
        let e = ComebackError::MoveAside {
            member: "33".into(),
            from: "/var/lib/etcd".into(),
            to: "/var/lib/etcd.removed-s".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        }
        .to_string();
        assert!(e.starts_with("cannot move /var/lib/etcd aside to /var/lib/etcd.removed-s (the data of removed member 33)"), "{e}");
        assert!(e.contains("start etcdadm-bootstrap again"), "{e}");
    }
}
