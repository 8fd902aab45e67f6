//! Recovering from a permanent loss of quorum (`etcdadm recover`): the surviving member with
//! the most recent data becomes a one-member cluster holding that data, under a new cluster
//! identity, so the lost members can never rejoin the old cluster. etcd's documented path:
//! a snapshot of the survivor's database restored as a new cluster.
//!
//! The preflight reads every member's applied raft index through etcd's Status call, which
//! a member answers without a leader; it needs the survivors' etcd running. `decide` is the
//! pure rule: refuse while a quorum answers, name the better survivor when this is not it.

use super::error::{MembershipError, Result};
use super::quorum::{find_me, quorum};
use crate::cluster::{format_id, Cluster, ClusterError, PeerAnswer, TlsFiles};
use crate::config::{Config, InitSystem};
use crate::service::{ClusterBootstrap, Systemctl};
use crate::state::{Origin, Progress, State};
use std::path::PathBuf;
use std::time::Duration;
use tracing::info;

/// How long the preflight waits for one member's status.
const PROBE: Duration = Duration::from_secs(5);

/// One member of the lost cluster as the preflight saw it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Seen {
    pub name: String,
    #[serde(serialize_with = "hex")]
    pub id: u64,
    pub endpoint: String,
    pub is_learner: bool,
    pub is_local: bool,
    /// What it answered, or None when it did not answer.
    pub answer: Option<Answer>,
    /// It did not answer on its client port, but its etcd runs: its peer port answers for
    /// this cluster. A member restarted after the quorum was lost serves no clients until
    /// it has a quorum again (etcd publishes itself through raft first), so its applied
    /// index cannot be read.
    pub running_not_serving: bool,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Answer {
    pub raft_applied_index: u64,
    /// The leader it knows (0: none).
    #[serde(serialize_with = "hex")]
    pub leader: u64,
    #[serde(serialize_with = "hex")]
    pub cluster_id: u64,
}

fn hex<S: serde::Serializer>(id: &u64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format_id(*id))
}

/// What the preflight found: every member, and what to do.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preflight {
    pub members: Vec<Seen>,
    #[serde(serialize_with = "hex")]
    pub cluster_id: u64,
    pub decision: Decision,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    /// This member is alone in a healthy one-member cluster: nothing to recover.
    AlreadyAlone,
    /// A quorum of the voters answers: the cluster is not lost.
    QuorumReachable { answering: usize, voters: usize },
    /// Members whose etcd runs but cannot be asked for their applied index.
    Unreadable { names: Vec<String> },
    /// Another survivor holds more recent data: recover there.
    RunElsewhere { name: String, endpoint: String, applied: u64, local_applied: u64 },
    /// This member holds the most recent data of the survivors: restore it alone.
    Proceed,
}

/// The rule: a quorum of answering voters means the cluster is not lost (a single voter
/// answering alone: nothing to recover); a voter whose etcd runs but serves no clients
/// cannot be compared, so nothing is chosen; otherwise the answering voter with the highest
/// applied index must be the one recovered (this one on a tie).
pub fn decide(members: &[Seen]) -> Decision {
    let voters: Vec<&Seen> = members.iter().filter(|s| !s.is_learner).collect();
    let answering = voters.iter().filter(|s| s.answer.is_some()).count();
    if voters.len() == 1 && voters[0].is_local && answering == 1 && members.len() == 1 {
        return Decision::AlreadyAlone;
    }
    if answering >= quorum(voters.len()) {
        return Decision::QuorumReachable { answering, voters: voters.len() };
    }
    let unreadable: Vec<String> = voters
        .iter()
        .filter(|s| s.answer.is_none() && s.running_not_serving)
        .map(|s| s.name.clone())
        .collect();
    if !unreadable.is_empty() {
        return Decision::Unreadable { names: unreadable };
    }
    let applied = |s: &Seen| s.answer.as_ref().map_or(0, |a| a.raft_applied_index);
    let local_applied = members.iter().find(|s| s.is_local).map_or(0, applied);
    let best = voters
        .iter()
        .filter(|s| s.answer.is_some())
        .max_by_key(|s| (applied(s), s.is_local, std::cmp::Reverse(s.name.clone())));
    match best {
        Some(b) if !b.is_local && applied(b) > local_applied => Decision::RunElsewhere {
            name: b.name.clone(),
            endpoint: b.endpoint.clone(),
            applied: applied(b),
            local_applied,
        },
        _ => Decision::Proceed,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("etcd on this machine ({endpoint}) does not answer: {source}. recover reads each survivor's applied raft index from its running etcd: if {unit} is not running, start it (`systemctl start {unit}`) here and on every other surviving machine, then run again. If it runs but serves no clients, it was restarted after the quorum was lost and waits for a quorum: run recover on a survivor whose etcd kept running; nothing was changed")]
    LocalDown {
        endpoint: String,
        unit: String,
        #[source]
        source: ClusterError,
    },
    #[error("{name} is not in its own cluster's member list; nothing was changed")]
    NotAMember { name: String },
    #[error("recover refused: {answering} of the {voters} voters answer, a quorum: the cluster is not lost. Repair or replace the failed members instead (`etcdadm reset` / `etcdadm join`); nothing was changed")]
    QuorumReachable { answering: usize, voters: usize },
    #[error("recover refused: etcd runs on {} (its peer port answers for this cluster) but serves no clients: a member restarted after the quorum was lost waits for a quorum before it serves, so its applied index cannot be read. To recover without its data, stop etcd there (`systemctl stop etcd`) and run again; nothing was changed", names.join(", "))]
    Unreadable { names: Vec<String> },
    #[error("recover refused: {name} ({endpoint}) holds more recent data (applied index {applied}, this member {local_applied}): run `etcdadm recover` on {name} instead; nothing was changed")]
    RunElsewhere { name: String, endpoint: String, applied: u64, local_applied: u64 },
    #[error("recover supports members run by systemd (init-system: systemd); restore this kubelet-run member with `etcdadm init --snapshot` instead; nothing was changed")]
    Kubelet,
}

impl Decision {
    /// The refusal this decision means, if it is one.
    pub fn refusal(&self) -> Option<RecoverError> {
        match self.clone() {
            Decision::QuorumReachable { answering, voters } => {
                Some(RecoverError::QuorumReachable { answering, voters })
            }
            Decision::RunElsewhere { name, endpoint, applied, local_applied } => {
                Some(RecoverError::RunElsewhere { name, endpoint, applied, local_applied })
            }
            Decision::Unreadable { names } => Some(RecoverError::Unreadable { names }),
            Decision::AlreadyAlone | Decision::Proceed => None,
        }
    }
}

/// Asks every member of this machine's cluster for its status (nothing is changed).
pub async fn preflight(state: &State) -> Result<Preflight> {
    let m = state.member()?;
    let c = &state.config;
    if c.init_system == InitSystem::Kubelet {
        return Err(RecoverError::Kubelet.into());
    }
    let tls = TlsFiles::client(&m.pki);
    let local_down = |source| RecoverError::LocalDown {
        endpoint: m.local_endpoint.clone(),
        unit: c.unit_name(),
        source,
    };
    let local = Cluster::connect_for(&m.local_endpoint, &tls, PROBE).await.map_err(local_down)?;
    // A member list without quorum: served by the member itself (not linearizable).
    let list = local.members().await.map_err(local_down)?;
    let local_status = local.status().await.map_err(local_down)?;
    let me = find_me(&list, &m, state)
        .ok_or_else(|| RecoverError::NotAMember { name: m.name.clone() })?
        .id;
    // Every other member asked at once: a dead one costs one probe timeout, not one each.
    let probes = list.iter().map(|x| {
        let is_local = x.id == me;
        let endpoint = if is_local {
            m.local_endpoint.clone()
        } else {
            x.client_urls.first().cloned().unwrap_or_default()
        };
        let (tls, local_status) = (&tls, &local_status);
        async move {
            // its client port and its peer port asked at once: a dead member costs one
            // probe timeout, not two
            let client = async {
                if is_local {
                    Some(answer_of(local_status))
                } else if endpoint.is_empty() {
                    None
                } else {
                    probe(&endpoint, tls).await
                }
            };
            let peer = async {
                match x.peer_urls.first() {
                    Some(peer) if !is_local => Some(
                        crate::cluster::peer_members(peer, tls, PROBE).await,
                    ),
                    _ => None,
                }
            };
            let (answer, peer) = tokio::join!(client, peer);
            let running_not_serving = answer.is_none()
                && matches!(peer, Some(PeerAnswer::Members { cluster_id, .. }) if cluster_id == local_status.cluster_id);
            Seen {
                running_not_serving,
                name: x.name.clone(),
                id: x.id,
                endpoint,
                is_learner: x.is_learner,
                is_local,
                answer,
            }
        }
    });
    let members = futures_util::future::join_all(probes).await;
    let decision = decide(&members);
    Ok(Preflight { members, cluster_id: local_status.cluster_id, decision })
}

fn answer_of(s: &crate::cluster::EndpointStatus) -> Answer {
    Answer { raft_applied_index: s.raft_applied_index, leader: s.leader, cluster_id: s.cluster_id }
}

async fn probe(endpoint: &str, tls: &TlsFiles) -> Option<Answer> {
    let ask = async {
        let cl = Cluster::connect_for(endpoint, tls, PROBE).await?;
        cl.status().await
    };
    match tokio::time::timeout(PROBE * 2, ask).await {
        Ok(Ok(s)) => Some(answer_of(&s)),
        Ok(Err(e)) => {
            info!(%endpoint, error = %e, "member does not answer");
            None
        }
        Err(_) => {
            info!(%endpoint, "member does not answer in time");
            None
        }
    }
}

/// What a recovery did.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub name: String,
    pub old_cluster_id: String,
    pub cluster_id: String,
    /// Where the old data directory was moved to (never deleted).
    pub old_data_dir: PathBuf,
}

/// Restores this member as a one-member cluster holding its data, once the preflight said
/// `Proceed` (and the operator confirmed). `requested` gives restore-bump-revision and the
/// timeout; everything else is the member's own settings (the state file).
pub async fn recover(state: &State, requested: &Config, pre: &Preflight) -> Result<Recovered> {
    if let Some(refusal) = pre.decision.refusal() {
        return Err(refusal.into());
    }
    let m = state.member()?;
    let mut c = state.config.clone();
    c.restore_bump_revision = requested.restore_bump_revision;
    c.timeout_seconds = requested.timeout_seconds;
    let stamp = crate::fsutil::utc_stamp(time::OffsetDateTime::now_utc());
    // A new token gives the new cluster a new id: the lost members' peers reject it.
    let token = format!("etcd-{}-recovered-{}", m.name, stamp.to_ascii_lowercase());

    // Everything that can fail is done before the system changes: the snapshot, taken from
    // the running member (served without a leader) and checked by its restore into staging.
    let parent = c.data_dir.parent().unwrap_or(std::path::Path::new("/"));
    let mut snap = tempfile::Builder::new()
        .prefix(".etcdadm-recover-")
        .suffix(".db")
        .tempfile_in(parent)
        .map_err(crate::fsutil::on_file("cannot create a snapshot file in", parent))?;
    let tls = TlsFiles::client(&m.pki);
    let local = Cluster::connect_for(&m.local_endpoint, &tls, c.timeout()).await?;
    let bytes = local.snapshot_to(snap.as_file_mut()).await.map_err(|e| {
        MembershipError::Refused(format!(
            "cannot take a snapshot of this member's data ({}); nothing was changed",
            crate::error_chain::error_chain(&e)
        ))
    })?;
    snap.as_file().sync_all().map_err(crate::fsutil::on_file("cannot write", snap.path()))?;
    info!(bytes, "took a snapshot of this member's data");
    // The member's installed tools are the release its data was written by, and need no
    // mirror, which a disaster may have taken too; the release is fetched only without them.
    let fetched;
    let tools: &std::path::Path =
        if ["etcdutl", "etcdctl"].iter().any(|t| c.install_dir.join(t).is_file()) {
            &c.install_dir
        } else {
            fetched = crate::phases::fetch_release(&c).await?;
            fetched.dir()
        };
    let restored = crate::snapshot::prepare(tools, &c, &m, &token, snap.path(), false)?;

    // From here on the system changes; every error names the data kept aside.
    let unit = c.unit_name();
    Systemctl::stop(&unit)?;
    let aside = crate::fsutil::aside_path(&c.data_dir, "recovered", &stamp);
    crate::fsutil::rename_synced(&c.data_dir, &aside).map_err(|e| {
        MembershipError::Refused(format!(
            "cannot move {} aside to {} ({e}); etcd is stopped, its data untouched: `systemctl start {unit}` restores the member as it was",
            c.data_dir.display(),
            aside.display()
        ))
    })?;
    info!(from = %c.data_dir.display(), to = %aside.display(), "moved the old data directory aside");
    let kept = |e: MembershipError| {
        MembershipError::AfterMovingAside {
        context: format!(
            "recover failed after moving the old data directory to {}: it is intact; to go back, stop etcd, move {} away and {} back to it, then start etcd",
            aside.display(),
            c.data_dir.display(),
            aside.display()
        ),
        source: Box::new(e),
    }
    };
    restored.commit(&c.data_dir).map_err(|e| kept(e.into()))?;
    let b = ClusterBootstrap {
        initial_cluster: vec![(m.name.clone(), m.peer_url.clone())],
        state: "new",
        token: Some(token),
    };
    crate::phases::configure(&c, &m, &b).map_err(|e| kept(e.into()))?;
    crate::phases::start(&c).map_err(|e| kept(e.into()))?;
    let cl = crate::phases::wait_healthy(&c, &m).await.map_err(|e| kept(e.into()))?;
    let st = cl.status().await.map_err(|e| kept(e.into()))?;
    let mut s = state.clone();
    s.origin = Origin::Init;
    s.progress = Progress::Member;
    s.member_id = Some(format_id(st.member_id));
    s.cluster_id = Some(format_id(st.cluster_id));
    s.save().map_err(|e| kept(e.into()))?;
    info!(member = %m.name, cluster = %format_id(st.cluster_id), "recovered as a one-member cluster");
    Ok(Recovered {
        name: m.name,
        old_cluster_id: format_id(pre.cluster_id),
        cluster_id: format_id(st.cluster_id),
        old_data_dir: aside,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, local: bool, applied: Option<u64>) -> Seen {
        Seen {
            name: name.into(),
            id: name.bytes().map(u64::from).sum(),
            endpoint: format!("https://{name}:2379"),
            is_learner: false,
            is_local: local,
            answer: applied.map(|a| Answer { raft_applied_index: a, leader: 0, cluster_id: 7 }),
            running_not_serving: false,
        }
    }

    #[test]
    fn a_quorum_answering_is_refused() {
        let d = decide(&[
            seen("m1", true, Some(9)),
            seen("m2", false, Some(9)),
            seen("m3", false, None),
        ]);
        assert_eq!(d, Decision::QuorumReachable { answering: 2, voters: 3 });
        let d = decide(&[
            seen("m1", true, Some(9)),
            seen("m2", false, Some(3)),
            seen("m3", false, Some(3)),
            seen("m4", false, None),
            seen("m5", false, None),
        ]);
        assert_eq!(d, Decision::QuorumReachable { answering: 3, voters: 5 });
    }

    #[test]
    fn the_only_survivor_proceeds() {
        let d =
            decide(&[seen("m1", true, Some(9)), seen("m2", false, None), seen("m3", false, None)]);
        assert_eq!(d, Decision::Proceed);
    }

    #[test]
    fn a_survivor_with_older_data_names_the_newer_one() {
        let members = [
            seen("m1", false, Some(40)),
            seen("m2", true, Some(25)),
            seen("m3", false, None),
            seen("m4", false, None),
            seen("m5", false, None),
        ];
        assert_eq!(
            decide(&members),
            Decision::RunElsewhere {
                name: "m1".into(),
                endpoint: "https://m1:2379".into(),
                applied: 40,
                local_applied: 25
            }
        );
        let e = decide(&members).refusal().unwrap().to_string();
        assert!(e.contains("run `etcdadm recover` on m1 instead"), "{e}");
        assert!(e.contains("nothing was changed"), "{e}");
    }

    #[test]
    fn the_newest_survivor_proceeds_and_a_tie_is_this_members() {
        let newest = [
            seen("m1", true, Some(40)),
            seen("m2", false, Some(25)),
            seen("m3", false, None),
            seen("m4", false, None),
            seen("m5", false, None),
        ];
        assert_eq!(decide(&newest), Decision::Proceed);
        let tie = [
            seen("m1", false, Some(40)),
            seen("m2", true, Some(40)),
            seen("m3", false, None),
            seen("m4", false, None),
            seen("m5", false, None),
        ];
        assert_eq!(decide(&tie), Decision::Proceed);
    }

    #[test]
    fn learners_do_not_count_and_are_never_chosen() {
        let mut learner = seen("m4", false, Some(99));
        learner.is_learner = true;
        let d = decide(&[
            seen("m1", true, Some(9)),
            seen("m2", false, None),
            seen("m3", false, None),
            learner,
        ]);
        assert_eq!(d, Decision::Proceed);
    }

    #[test]
    fn a_survivor_whose_etcd_runs_but_serves_no_clients_stops_the_choice() {
        let mut restarted = seen("m2", false, None);
        restarted.running_not_serving = true;
        let members = [seen("m1", true, Some(40)), restarted, seen("m3", false, None)];
        assert_eq!(decide(&members), Decision::Unreadable { names: vec!["m2".into()] });
        let e = decide(&members).refusal().unwrap().to_string();
        assert!(e.contains("etcd runs on m2"), "{e}");
        assert!(e.contains("stop etcd there (`systemctl stop etcd`) and run again"), "{e}");
    }

    #[test]
    fn a_healthy_one_member_cluster_is_left_alone() {
        assert_eq!(decide(&[seen("m1", true, Some(9))]), Decision::AlreadyAlone);
    }
}
