//! The bootstrap agent's states and the one place that decides its transitions (in the style
//! of coreos/zincati's update agent: an enum of states, transitions checked). The agent in
//! `super` does each state's work and reports what happened as an [`Event`];
//! [`BootstrapState::next`] is the only place that turns a state and an event into the next
//! state, and refuses every other pair. What to do in a round (form, join, remove, wait) is
//! `decide`'s pure decision, unchanged; this machine only sequences it.
//!
//! ```text
//! ReadSettings ─┬─ member on an earlier boot ─▶ CheckingMembership (asks the peers, `removed`)
//!               └─────────────────────────────▶ Discovering ◀── paused ── Waiting
//!   CheckingMembership ── still a member, or no running peer answered ─▶ AlreadyMember
//!                      ── removed, this machine in the peer set ─▶ MovingAside ── moved ─▶ Discovering
//!                      ── removed, this machine not in the peer set ─▶ StayingOut ── etcd stopped ─▶ Out
//!                      ── the peers run another cluster ─▶ Failed (nothing touched)
//!   AlreadyMember ── healthy ─────────────────────────────────────────────────────────▶ Ready
//!   Discovering ── decided: Wait ─▶ Waiting │ Form ─▶ Forming │ Join ─▶ Joining
//!                               Restore ─▶ Restoring (bootstrap.restore-from)
//!                               RemoveStale ─▶ RemovingStale ── removed ─▶ Discovering
//!   Forming / Restoring / Joining ── done, peer set not authoritative ─────────────────▶ Ready
//!                    └── done, authoritative (spec F4) ─▶ Settling
//!   Settling ── decided: Join and settled ─▶ Settled ── recorded (state file) ─────────▶ Ready
//!            ── decided: RemoveStale ─▶ RemovingStale ── removed ─▶ Settling
//!            ── anything else ─▶ SettlingWait ── paused ─▶ Settling
//!   every state but Ready, Out and Failed ── failed (an error, the deadline) ─▶ Failed
//! ```
//!
//! Ready and Out send READY=1 (Out: this machine's member was removed and it is not in the
//! peer set, so it stays out and says so); Failed exits non-zero.

use super::decide::Decision;
use super::removed::Membership;
use crate::cluster::{format_id, MemberInfo};

#[derive(Debug, Clone, PartialEq)]
pub enum BootstrapState {
    /// Reading the instance metadata, the configuration with it applied, the state file and,
    /// unless a member exists, the CA and this machine's client certificate.
    ReadSettings,
    /// The state file records member `name`, set up on an earlier boot: asking the peers
    /// whether their cluster still lists it (`removed::classify`) before etcd is started.
    CheckingMembership { name: String },
    /// The state file records member `name`, set up on an earlier boot: starting etcd and
    /// waiting for it to be healthy.
    AlreadyMember { name: String },
    /// Member `name` (`member_id`) was removed from cluster `cluster_id` while this machine
    /// was away, and the peer set lists this machine: stopping and disabling etcd, moving the
    /// data directory and the state file aside (kept, never deleted); then discovering, which
    /// joins the cluster as a new member.
    MovingAside { name: String, member_id: u64, cluster_id: u64 },
    /// As `MovingAside`, but the peer set does not list this machine: stopping and disabling
    /// etcd; the data stays where it is.
    StayingOut { name: String, member_id: u64, cluster_id: u64 },
    /// This machine stays out of the cluster: READY=1 is sent with `message`, etcd does not
    /// run, and the agent exits without an error (no restart loop).
    Out { message: String },
    /// One round: discovering the peer set, probing every peer, deciding (`decide`).
    Discovering,
    /// The round's decision was to wait (`why`); discovering again after a pause.
    Waiting { why: String },
    /// Forming a new cluster of these initial members (`init`'s steps).
    Forming { initial_cluster: Vec<(String, String)>, token: String },
    /// Restoring the newest backup of `bootstrap.restore-from` as a new cluster of these
    /// initial members (this machine alone; `init --snapshot`'s steps).
    Restoring { initial_cluster: Vec<(String, String)>, token: String },
    /// Joining the running cluster through these client URLs (`join`'s steps).
    Joining { endpoints: Vec<String> },
    /// Removing `member`, which left an authoritative peer set; then back to `Settling` as
    /// member `settling` when this machine is settling, else to `Discovering`.
    RemovingStale { member: MemberInfo, endpoints: Vec<String>, settling: Option<String> },
    /// Spec F4: member `name` is healthy, but with an authoritative peer set it is not done
    /// until a round with a complete view finds no departed member left. One such round.
    Settling { name: String },
    /// A settling round did not settle: another after a pause.
    SettlingWait { name: String },
    /// Member `name` settled: recording it in the state file (phase `member`).
    Settled { name: String },
    /// A healthy voter: READY=1 is sent with `message`.
    Ready { message: String },
    /// Bootstrap gave up (an error, or the deadline).
    Failed { message: String },
}

/// What the work of a state came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The settings are read; `earlier_member` names the member an earlier boot set up.
    SettingsRead { earlier_member: Option<String> },
    /// What the peers said about the member of an earlier boot, and whether the peer set
    /// lists this machine. (`Membership::OtherCluster` is reported as `Failed`.)
    MembershipChecked { membership: Membership, in_peer_set: bool },
    /// The removed member's data directory is moved aside to `kept` (`None`: an earlier,
    /// interrupted run moved it) and its state file too.
    MovedAside { kept: Option<String> },
    /// etcd is stopped and disabled; the removed member's data is left in `data_dir`.
    StayedOut { data_dir: String },
    /// The member of an earlier boot answers health checks.
    MemberHealthy,
    /// A round's decision, and whether its view is settled (spec F4: complete, lists this
    /// machine, whose member answers in a cluster with no member outside the peer set).
    Decided { decision: Decision, settled: bool },
    /// The pause after a round that waited is over.
    Paused,
    /// `init`'s steps formed the cluster and member `name` is healthy; `settle` when the
    /// peer set is authoritative (the member is recorded only once settled).
    Formed { name: String, settle: bool },
    /// `join`'s steps made member `name` a healthy voter; `settle` as for `Formed`.
    Joined { name: String, settle: bool },
    /// The departed member is removed.
    StaleRemoved,
    /// The state file records the member.
    Recorded,
    /// An error, or the deadline, ended the run.
    Failed { message: String },
}

/// A transition the machine does not allow: a bug in the agent, never an outcome of input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("internal error: bootstrap cannot go from state {from} on event {event}")]
pub struct Refused {
    pub from: &'static str,
    pub event: &'static str,
}

impl BootstrapState {
    /// The next state after `event`, or `Refused`. The only place transitions are decided.
    pub fn next(&self, event: Event) -> Result<BootstrapState, Refused> {
        use BootstrapState as S;
        use Event as E;
        let refused = |event: &Event| Refused { from: self.name(), event: event.name() };
        Ok(match (self, event) {
            (S::Ready { .. } | S::Out { .. } | S::Failed { .. }, event) => {
                return Err(refused(&event))
            }
            (_, E::Failed { message }) => S::Failed { message },
            (S::ReadSettings, E::SettingsRead { earlier_member: Some(name) }) => {
                S::CheckingMembership { name }
            }
            (S::CheckingMembership { name }, E::MembershipChecked { membership, in_peer_set }) => {
                match membership {
                    Membership::StillMember | Membership::Unknown => {
                        S::AlreadyMember { name: name.clone() }
                    }
                    Membership::Removed { member_id, cluster_id } if in_peer_set => {
                        S::MovingAside { name: name.clone(), member_id, cluster_id }
                    }
                    Membership::Removed { member_id, cluster_id } => {
                        S::StayingOut { name: name.clone(), member_id, cluster_id }
                    }
                    other @ Membership::OtherCluster { .. } => {
                        return Err(refused(&E::MembershipChecked {
                            membership: other,
                            in_peer_set,
                        }))
                    }
                }
            }
            (S::MovingAside { .. }, E::MovedAside { .. }) => S::Discovering,
            (S::StayingOut { name, member_id, cluster_id }, E::StayedOut { data_dir }) => S::Out {
                message: format!(
                    "member {name} ({}) was removed from cluster {} and this machine is not in the discovered peer set: staying out; etcd is stopped and disabled, the member's data is left in {data_dir}; a boot that finds this machine in the peer set joins it as a new member",
                    format_id(*member_id),
                    format_id(*cluster_id)
                ),
            },
            (S::ReadSettings, E::SettingsRead { earlier_member: None }) => S::Discovering,
            (S::AlreadyMember { name }, E::MemberHealthy) => {
                S::Ready { message: format!("etcd member {name} is healthy") }
            }
            (S::Discovering, E::Decided { decision, .. }) => match decision {
                Decision::Wait(why) => S::Waiting { why },
                Decision::Form { initial_cluster, token } => S::Forming { initial_cluster, token },
                Decision::Restore { initial_cluster, token } => {
                    S::Restoring { initial_cluster, token }
                }
                Decision::Join { endpoints } => S::Joining { endpoints },
                Decision::RemoveStale { member, endpoints } => {
                    S::RemovingStale { member, endpoints, settling: None }
                }
            },
            (S::Waiting { .. }, E::Paused) => S::Discovering,
            (S::Forming { .. } | S::Restoring { .. }, E::Formed { name, settle: true })
            | (S::Joining { .. }, E::Joined { name, settle: true }) => S::Settling { name },
            (S::Forming { .. }, E::Formed { name, settle: false }) => {
                S::Ready { message: format!("etcd member {name} of a new cluster is healthy") }
            }
            (S::Restoring { .. }, E::Formed { name, settle: false }) => S::Ready {
                message: format!(
                    "etcd member {name} of the cluster restored from the backup is healthy"
                ),
            },
            (S::Joining { .. }, E::Joined { name, settle: false }) => {
                S::Ready { message: format!("etcd member {name} is a healthy voter") }
            }
            (S::Settling { name }, E::Decided { decision, settled }) => match decision {
                Decision::Join { .. } if settled => S::Settled { name: name.clone() },
                Decision::RemoveStale { member, endpoints } => {
                    S::RemovingStale { member, endpoints, settling: Some(name.clone()) }
                }
                _ => S::SettlingWait { name: name.clone() },
            },
            (S::SettlingWait { name }, E::Paused) => S::Settling { name: name.clone() },
            (S::RemovingStale { settling, .. }, E::StaleRemoved) => match settling {
                Some(name) => S::Settling { name: name.clone() },
                None => S::Discovering,
            },
            (S::Settled { name }, E::Recorded) => S::Ready {
                message: format!(
                    "etcd member {name} is a healthy voter and no departed member is left"
                ),
            },
            (_, event) => return Err(refused(&event)),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            BootstrapState::ReadSettings => "ReadSettings",
            BootstrapState::CheckingMembership { .. } => "CheckingMembership",
            BootstrapState::AlreadyMember { .. } => "AlreadyMember",
            BootstrapState::MovingAside { .. } => "MovingAside",
            BootstrapState::StayingOut { .. } => "StayingOut",
            BootstrapState::Out { .. } => "Out",
            BootstrapState::Discovering => "Discovering",
            BootstrapState::Waiting { .. } => "Waiting",
            BootstrapState::Forming { .. } => "Forming",
            BootstrapState::Restoring { .. } => "Restoring",
            BootstrapState::Joining { .. } => "Joining",
            BootstrapState::RemovingStale { .. } => "RemovingStale",
            BootstrapState::Settling { .. } => "Settling",
            BootstrapState::SettlingWait { .. } => "SettlingWait",
            BootstrapState::Settled { .. } => "Settled",
            BootstrapState::Ready { .. } => "Ready",
            BootstrapState::Failed { .. } => "Failed",
        }
    }

    /// The unit's status line in this state (sd_notify STATUS; with READY=1 for `Ready`).
    pub fn status(&self) -> String {
        match self {
            BootstrapState::ReadSettings => "reading the settings".into(),
            BootstrapState::CheckingMembership { name } => format!(
                "member {name} set up on an earlier boot; asking the peers whether it is still a member"
            ),
            BootstrapState::AlreadyMember { name } => {
                format!("member {name} set up on an earlier boot; waiting for etcd to be healthy")
            }
            BootstrapState::MovingAside { name, member_id, cluster_id } => format!(
                "member {name} ({}) was removed from cluster {} while this machine was away; stopping etcd and moving its data aside to join as a new member",
                format_id(*member_id),
                format_id(*cluster_id)
            ),
            BootstrapState::StayingOut { name, member_id, cluster_id } => format!(
                "member {name} ({}) was removed from cluster {} and this machine is not in the discovered peer set; stopping and disabling etcd",
                format_id(*member_id),
                format_id(*cluster_id)
            ),
            BootstrapState::Out { message } => message.clone(),
            BootstrapState::Discovering => "discovering peers".into(),
            BootstrapState::Waiting { why } => why.clone(),
            BootstrapState::Forming { initial_cluster, token } => format!(
                "forming a new cluster of {} members (token {token})",
                initial_cluster.len()
            ),
            BootstrapState::Restoring { token, .. } => {
                format!("restoring the cluster from the newest backup (token {token})")
            }
            BootstrapState::Joining { endpoints } => {
                format!("joining via {}", endpoints.join(","))
            }
            BootstrapState::RemovingStale { member, .. } => format!(
                "removing member {} ({}) which left the peer set",
                format_id(member.id),
                member.name
            ),
            BootstrapState::Settling { name } => {
                format!("settling: member {name} checks that no departed member is left")
            }
            BootstrapState::SettlingWait { .. } => {
                "settling: waiting for a complete view of the peer set".into()
            }
            BootstrapState::Settled { name } => {
                format!("member {name} settled; recording it in the state file")
            }
            BootstrapState::Ready { message } => message.clone(),
            BootstrapState::Failed { message } => format!("failed: {message}"),
        }
    }

    /// The decision a metrics report names once this state is entered (`form`, `join`,
    /// `member`).
    pub fn decision(&self) -> Option<&'static str> {
        match self {
            BootstrapState::AlreadyMember { .. } => Some("member"),
            BootstrapState::Forming { .. } => Some("form"),
            BootstrapState::Restoring { .. } => Some("restore"),
            BootstrapState::Joining { .. } => Some("join"),
            _ => None,
        }
    }
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::SettingsRead { .. } => "SettingsRead",
            Event::MembershipChecked { .. } => "MembershipChecked",
            Event::MovedAside { .. } => "MovedAside",
            Event::StayedOut { .. } => "StayedOut",
            Event::MemberHealthy => "MemberHealthy",
            Event::Decided { .. } => "Decided",
            Event::Paused => "Paused",
            Event::Formed { .. } => "Formed",
            Event::Joined { .. } => "Joined",
            Event::StaleRemoved => "StaleRemoved",
            Event::Recorded => "Recorded",
            Event::Failed { .. } => "Failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BootstrapState as S;
    use Event as E;

    fn member() -> MemberInfo {
        MemberInfo {
            id: 0x8e9e05c52164694d,
            name: "i-gone".into(),
            peer_urls: vec!["https://10.0.0.9:2380".into()],
            client_urls: vec!["https://10.0.0.9:2379".into()],
            is_learner: false,
        }
    }

    fn decided(decision: Decision, settled: bool) -> Event {
        E::Decided { decision, settled }
    }

    fn wait(why: &str) -> Decision {
        Decision::Wait(why.into())
    }

    fn form() -> Decision {
        Decision::Form {
            initial_cluster: vec![
                ("etcd-a".into(), "https://10.0.0.1:2380".into()),
                ("etcd-b".into(), "https://10.0.0.2:2380".into()),
                ("etcd-c".into(), "https://10.0.0.3:2380".into()),
            ],
            token: "etcdadm-1a2b".into(),
        }
    }

    fn join() -> Decision {
        Decision::Join { endpoints: vec!["https://10.0.0.1:2379".into()] }
    }

    fn remove() -> Decision {
        Decision::RemoveStale { member: member(), endpoints: vec!["https://10.0.0.1:2379".into()] }
    }

    /// Runs `events` from `ReadSettings`; the states entered, with their status lines.
    fn walk(events: Vec<Event>) -> Vec<(&'static str, String)> {
        let mut s = S::ReadSettings;
        let mut seen = Vec::new();
        for e in events {
            s = s.next(e.clone()).unwrap_or_else(|r| panic!("{r} ({e:?})"));
            seen.push((s.name(), s.status()));
        }
        seen
    }

    #[test]
    fn a_static_peer_set_waits_forms_and_is_ready_without_settling() {
        let seen = walk(vec![
            E::SettingsRead { earlier_member: None },
            decided(wait("discovering peers 1/3"), false),
            E::Paused,
            decided(form(), false),
            E::Formed { name: "etcd-a".into(), settle: false },
        ]);
        assert_eq!(
            seen,
            [
                ("Discovering", "discovering peers".to_string()),
                ("Waiting", "discovering peers 1/3".into()),
                ("Discovering", "discovering peers".into()),
                ("Forming", "forming a new cluster of 3 members (token etcdadm-1a2b)".into()),
                ("Ready", "etcd member etcd-a of a new cluster is healthy".into()),
            ]
        );
    }

    fn checked(membership: Membership, in_peer_set: bool) -> Event {
        E::MembershipChecked { membership, in_peer_set }
    }

    fn removed() -> Membership {
        Membership::Removed { member_id: 0x33, cluster_id: 0xc1 }
    }

    #[test]
    fn a_member_of_an_earlier_boot_is_ready_once_healthy() {
        for membership in [Membership::StillMember, Membership::Unknown] {
            for in_peer_set in [true, false] {
                let seen = walk(vec![
                    E::SettingsRead { earlier_member: Some("etcd-b".into()) },
                    checked(membership.clone(), in_peer_set),
                    E::MemberHealthy,
                ]);
                assert_eq!(
                    seen,
                    [
                        (
                            "CheckingMembership",
                            "member etcd-b set up on an earlier boot; asking the peers whether it is still a member"
                                .to_string()
                        ),
                        (
                            "AlreadyMember",
                            "member etcd-b set up on an earlier boot; waiting for etcd to be healthy"
                                .into()
                        ),
                        ("Ready", "etcd member etcd-b is healthy".into()),
                    ]
                );
            }
        }
    }

    /// Issue 15 point 4: a removed member in the peer set is moved aside and joins anew.
    #[test]
    fn a_removed_member_in_the_peer_set_moves_aside_and_joins_as_a_new_member() {
        let seen = walk(vec![
            E::SettingsRead { earlier_member: Some("etcd-c".into()) },
            checked(removed(), true),
            E::MovedAside { kept: Some("/var/lib/etcd.removed-20260101T000000Z".into()) },
            decided(join(), false),
            E::Joined { name: "etcd-c".into(), settle: false },
        ]);
        let names: Vec<&str> = seen.iter().map(|s| s.0).collect();
        assert_eq!(names, ["CheckingMembership", "MovingAside", "Discovering", "Joining", "Ready"]);
        assert_eq!(
            seen[1].1,
            "member etcd-c (33) was removed from cluster c1 while this machine was away; stopping etcd and moving its data aside to join as a new member"
        );
    }

    /// Issue 15 point 4: a removed member outside the peer set stays out, ready, no etcd.
    #[test]
    fn a_removed_member_outside_the_peer_set_stays_out_and_is_done() {
        let seen = walk(vec![
            E::SettingsRead { earlier_member: Some("etcd-c".into()) },
            checked(removed(), false),
            E::StayedOut { data_dir: "/var/lib/etcd".into() },
        ]);
        let names: Vec<&str> = seen.iter().map(|s| s.0).collect();
        assert_eq!(names, ["CheckingMembership", "StayingOut", "Out"]);
        assert_eq!(
            seen[2].1,
            "member etcd-c (33) was removed from cluster c1 and this machine is not in the discovered peer set: staying out; etcd is stopped and disabled, the member's data is left in /var/lib/etcd; a boot that finds this machine in the peer set joins it as a new member"
        );
        let out = S::Out { message: "m".into() };
        assert_eq!(
            out.next(E::MemberHealthy),
            Err(Refused { from: "Out", event: "MemberHealthy" })
        );
        assert_eq!(out.decision(), None);
    }

    /// Another cluster is never acted on: the agent reports it as `Failed`, and the event
    /// itself is refused.
    #[test]
    fn another_cluster_is_refused_and_fails() {
        let s = S::CheckingMembership { name: "etcd-c".into() };
        let other = Membership::OtherCluster { member_id: 0x33, local: 0xc1, peers: vec![0xc2] };
        assert_eq!(
            s.next(checked(other, true)),
            Err(Refused { from: "CheckingMembership", event: "MembershipChecked" })
        );
        assert_eq!(
            s.next(E::Failed { message: "refused".into() }),
            Ok(S::Failed { message: "refused".into() })
        );
    }

    #[test]
    fn a_join_without_authoritative_set_is_ready_at_once() {
        let seen = walk(vec![
            E::SettingsRead { earlier_member: None },
            decided(join(), false),
            E::Joined { name: "etcd-d".into(), settle: false },
        ]);
        assert_eq!(seen[1], ("Joining", "joining via https://10.0.0.1:2379".to_string()));
        assert_eq!(seen[2], ("Ready", "etcd member etcd-d is a healthy voter".to_string()));
    }

    /// Spec F4: with an authoritative set a joined member is ready only after a settled
    /// round; an unsettled Join, a Wait or a Form while settling waits; a departed member is
    /// removed and settling goes on.
    #[test]
    fn an_authoritative_join_settles_before_ready() {
        let seen = walk(vec![
            E::SettingsRead { earlier_member: None },
            decided(remove(), false),
            E::StaleRemoved,
            decided(join(), true),
            E::Joined { name: "i-new".into(), settle: true },
            decided(join(), false),
            E::Paused,
            decided(wait("discovering peers 2/3"), false),
            E::Paused,
            decided(form(), true),
            E::Paused,
            decided(remove(), false),
            E::StaleRemoved,
            decided(join(), true),
            E::Recorded,
        ]);
        let names: Vec<&str> = seen.iter().map(|s| s.0).collect();
        assert_eq!(
            names,
            [
                "Discovering",
                "RemovingStale",
                "Discovering",
                "Joining",
                "Settling",
                "SettlingWait",
                "Settling",
                "SettlingWait",
                "Settling",
                "SettlingWait",
                "Settling",
                "RemovingStale",
                "Settling",
                "Settled",
                "Ready",
            ]
        );
        assert_eq!(seen[1].1, "removing member 8e9e05c52164694d (i-gone) which left the peer set");
        assert_eq!(seen[5].1, "settling: waiting for a complete view of the peer set");
        assert_eq!(
            seen.last().unwrap().1,
            "etcd member i-new is a healthy voter and no departed member is left"
        );
    }

    #[test]
    fn an_authoritative_form_settles_too() {
        let seen = walk(vec![
            E::SettingsRead { earlier_member: None },
            decided(form(), false),
            E::Formed { name: "i-a".into(), settle: true },
            decided(join(), true),
            E::Recorded,
        ]);
        let names: Vec<&str> = seen.iter().map(|s| s.0).collect();
        assert_eq!(names, ["Discovering", "Forming", "Settling", "Settled", "Ready"]);
    }

    #[test]
    fn a_restore_is_formed_from_the_backup_and_settles_like_a_form() {
        let restore = Decision::Restore {
            initial_cluster: vec![("etcd-a".into(), "https://10.0.0.1:2380".into())],
            token: "etcd-0123456789abcdef".into(),
        };
        let seen = walk(vec![
            E::SettingsRead { earlier_member: None },
            decided(restore.clone(), false),
            E::Formed { name: "etcd-a".into(), settle: false },
        ]);
        assert_eq!(
            seen[1..],
            [
                (
                    "Restoring",
                    "restoring the cluster from the newest backup (token etcd-0123456789abcdef)"
                        .to_string()
                ),
                (
                    "Ready",
                    "etcd member etcd-a of the cluster restored from the backup is healthy".into()
                ),
            ]
        );
        let settling = walk(vec![
            E::SettingsRead { earlier_member: None },
            decided(restore, false),
            E::Formed { name: "i-a".into(), settle: true },
        ]);
        assert_eq!(settling[2].0, "Settling");
        assert_eq!(
            S::Restoring { initial_cluster: vec![], token: "t".into() }
                .next(E::Joined { name: "a".into(), settle: false }),
            Err(Refused { from: "Restoring", event: "Joined" })
        );
        assert_eq!(
            S::Restoring { initial_cluster: vec![], token: "t".into() }.decision(),
            Some("restore")
        );
    }

    #[test]
    fn every_state_but_the_ends_can_fail_and_the_ends_accept_nothing() {
        let states = [
            S::ReadSettings,
            S::CheckingMembership { name: "a".into() },
            S::AlreadyMember { name: "a".into() },
            S::MovingAside { name: "a".into(), member_id: 1, cluster_id: 2 },
            S::StayingOut { name: "a".into(), member_id: 1, cluster_id: 2 },
            S::Discovering,
            S::Waiting { why: "w".into() },
            S::Forming { initial_cluster: vec![], token: "t".into() },
            S::Restoring { initial_cluster: vec![], token: "t".into() },
            S::Joining { endpoints: vec![] },
            S::RemovingStale { member: member(), endpoints: vec![], settling: None },
            S::Settling { name: "a".into() },
            S::SettlingWait { name: "a".into() },
            S::Settled { name: "a".into() },
        ];
        for s in states {
            let failed = s.next(E::Failed { message: "boom".into() }).unwrap();
            assert_eq!(failed, S::Failed { message: "boom".into() });
            assert_eq!(failed.status(), "failed: boom");
        }
        for end in [
            S::Ready { message: "ok".into() },
            S::Out { message: "out".into() },
            S::Failed { message: "boom".into() },
        ] {
            for e in [
                E::Failed { message: "again".into() },
                E::MemberHealthy,
                E::Paused,
                decided(join(), true),
                E::Recorded,
            ] {
                let name = e.name();
                assert_eq!(end.next(e), Err(Refused { from: end.name(), event: name }));
            }
        }
    }

    #[test]
    fn transitions_out_of_order_are_refused() {
        let refused = [
            // settings are read once
            (S::Discovering, E::SettingsRead { earlier_member: None }),
            // nothing is decided before the settings are read, or while acting on a decision
            (S::ReadSettings, decided(form(), false)),
            (S::Forming { initial_cluster: vec![], token: "t".into() }, decided(join(), true)),
            (S::Joining { endpoints: vec![] }, decided(join(), true)),
            // outcomes of actions only in the state that does the action
            (S::Discovering, E::Formed { name: "a".into(), settle: false }),
            (S::Joining { endpoints: vec![] }, E::Formed { name: "a".into(), settle: false }),
            (
                S::Forming { initial_cluster: vec![], token: "t".into() },
                E::Joined { name: "a".into(), settle: false },
            ),
            (S::Discovering, E::StaleRemoved),
            (S::Discovering, E::MemberHealthy),
            // a member of an earlier boot is checked before etcd starts, and only then
            (S::ReadSettings, E::MemberHealthy),
            (S::CheckingMembership { name: "a".into() }, E::MemberHealthy),
            (S::AlreadyMember { name: "a".into() }, checked(removed(), true)),
            (S::Discovering, checked(removed(), true)),
            (S::Discovering, E::MovedAside { kept: None }),
            (
                S::StayingOut { name: "a".into(), member_id: 1, cluster_id: 2 },
                E::MovedAside { kept: None },
            ),
            (
                S::MovingAside { name: "a".into(), member_id: 1, cluster_id: 2 },
                E::StayedOut { data_dir: "d".into() },
            ),
            // a member is recorded only once settled; a round runs before any pause
            (S::Settling { name: "a".into() }, E::Recorded),
            (S::Joining { endpoints: vec![] }, E::Recorded),
            (S::Discovering, E::Paused),
            (S::Settling { name: "a".into() }, E::Paused),
            // READY never straight from discovery
            (S::Discovering, E::MemberHealthy),
        ];
        for (s, e) in refused {
            let name = e.name();
            assert_eq!(
                s.next(e),
                Err(Refused { from: s.name(), event: name }),
                "{} on {name} was allowed",
                s.name()
            );
        }
    }

    #[test]
    fn a_settled_view_outside_settling_is_acted_on_as_decided() {
        // `settled` only matters while settling: a first join is a join, not Ready.
        let s = S::Discovering.next(decided(join(), true)).unwrap();
        assert_eq!(s.name(), "Joining");
    }

    #[test]
    fn decisions_metrics_name() {
        assert_eq!(S::AlreadyMember { name: "a".into() }.decision(), Some("member"));
        assert_eq!(
            S::Forming { initial_cluster: vec![], token: "t".into() }.decision(),
            Some("form")
        );
        assert_eq!(S::Joining { endpoints: vec![] }.decision(), Some("join"));
        assert_eq!(S::Settling { name: "a".into() }.decision(), None);
    }
}
