//! Cluster-aware defragmentation. Every member must be healthy first; members are done one
//! at a time, followers first and the leader last (after it handed leadership to a caught-up
//! follower), each waited for until it is healthy again; a rule skips members with little to
//! reclaim. Runs of different machines exclude each other through a lock held in etcd
//! itself. With the NOSPACE alarm raised, a run recovers the cluster: it compacts the
//! history to the current revision, defragments every member and disarms the alarm.

use super::{survey, SurveyError, Voter};
use crate::cluster::{format_id, Cluster, ClusterError, MemberInfo, TlsFiles};
use crate::leadership::{self, LeadershipError};
use crate::membership::quorum::quorum;
use serde::Serialize;
use std::time::Duration;
use tracing::{info, warn};

/// The etcd lock that keeps two defragmentation runs from overlapping.
pub const LOCK_NAME: &str = "etcdadm/defrag";
/// Lease of the lock: a run that dies frees it within this many seconds.
const LOCK_TTL_SECONDS: i64 = 30;

/// Which members a run may defragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every member (`etcdadm defrag`).
    Cluster,
    /// Only this machine's member (each member's timer); NOSPACE recovery still covers the
    /// whole cluster.
    ThisMember,
}

/// When a member is worth defragmenting: enough free space, absolute and relative.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub min_free_bytes: u64,
    pub min_free_percent: u8,
}

impl Rule {
    /// Why a member with this database is not worth it, or None when it is.
    pub fn skip_reason(&self, db_size: i64, in_use: i64) -> Option<String> {
        let size = db_size.max(0) as u64;
        let free = (db_size - in_use).max(0) as u64;
        if free < self.min_free_bytes || free * 100 < size * u64::from(self.min_free_percent) {
            Some(format!(
                "{} free of {} is below defrag-min-free-bytes {} or defrag-min-free-percent {}%",
                human(free),
                human(size),
                human(self.min_free_bytes),
                self.min_free_percent
            ))
        } else {
            None
        }
    }
}

pub struct Request {
    pub scope: Scope,
    /// Defragment whatever the rule says, and without the quorum margin.
    pub force: bool,
    pub rule: Rule,
    /// Bound of every wait: the lock, one member's defragmentation, its health afterwards.
    pub timeout: Duration,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    Defragmented { db_size_after: i64, db_size_in_use_after: i64 },
    Skipped { reason: String },
}

#[derive(Debug, Serialize)]
pub struct MemberReport {
    pub name: String,
    pub id: String,
    pub endpoint: String,
    /// Whether it led when the run started (the leader is done last).
    pub was_leader: bool,
    pub db_size_before: i64,
    pub db_size_in_use_before: i64,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Whether the NOSPACE alarm was raised when the run started.
    pub nospace: bool,
    /// The revision the history was compacted to (NOSPACE recovery).
    pub compacted_to: Option<i64>,
    /// Where leadership went before the leader was defragmented.
    pub leadership_moved_to: Option<String>,
    pub members: Vec<MemberReport>,
    /// Alarms disarmed, as (member id, alarm).
    pub disarmed: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum DefragError {
    #[error(transparent)]
    Survey(#[from] SurveyError),
    #[error("the cluster has {voters} voting member(s); quorum is {quorum}, so defragmenting one of them (it answers nothing meanwhile) would leave the cluster unavailable. Nothing was changed; add members, or use --force to accept the pause")]
    NoMargin { voters: usize, quorum: usize },
    #[error("the cluster has the CORRUPT alarm (member {member}): defragmentation cannot fix that; restore the member from a snapshot or replace it (see README, disaster recovery). Nothing was changed")]
    Corrupt { member: String },
    #[error("cannot take the defragmentation lock {LOCK_NAME}: {0}. Nothing was changed")]
    Lock(ClusterError),
    #[error("defragmenting {name}: {cause}")]
    Member { name: String, cause: String },
    #[error(transparent)]
    Leadership(#[from] LeadershipError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Runs one defragmentation as `req` says, from this machine's member `me_id`, reached
/// through `local`.
pub async fn run(
    local: &Cluster,
    me_id: u64,
    tls: &TlsFiles,
    req: &Request,
) -> Result<Report, DefragError> {
    let mut report = Report::default();
    let alarms = local.alarms().await?;
    if let Some((m, _)) = alarms.iter().find(|(_, a)| a == "CORRUPT") {
        return Err(DefragError::Corrupt { member: format_id(*m) });
    }
    report.nospace = alarms.iter().any(|(_, a)| a == "NOSPACE");
    let members = local.members().await?;
    // Under NOSPACE no lease can be granted, so no lock: each run that sees the alarm
    // recovers the whole cluster. Runs that overlap then only pause reads of a cluster that
    // refuses writes already; etcd defragments one member for one caller at a time.
    let lock = if report.nospace {
        warn!("NOSPACE alarm raised: compacting, defragmenting every member, then disarming");
        None
    } else {
        Some(
            local
                .lock(LOCK_NAME, LOCK_TTL_SECONDS, req.timeout)
                .await
                .map_err(DefragError::Lock)?,
        )
    };
    let result = defragment(local, me_id, &members, tls, req, &mut report).await;
    if let Some(l) = lock {
        l.release().await;
    }
    result.map(|()| report)
}

async fn defragment(
    local: &Cluster,
    me_id: u64,
    members: &[MemberInfo],
    tls: &TlsFiles,
    req: &Request,
    report: &mut Report,
) -> Result<(), DefragError> {
    // surveyed after the lock was taken: a run that waited sees the cluster as it is now
    let mut voters = survey(members, tls, req.timeout).await?;
    let quorum = quorum(voters.len());
    if !report.nospace && !req.force && voters.len().saturating_sub(1) < quorum {
        return Err(DefragError::NoMargin { voters: voters.len(), quorum });
    }
    if report.nospace {
        let revision = voters.iter().map(|v| v.status.revision).max().unwrap_or_default();
        info!(revision, "compacting the history to the current revision");
        local.compact(revision).await?;
        report.compacted_to = Some(revision);
    }
    let leader = voters.iter().find(|v| v.status.leader == v.member.id).map(|v| v.member.id);
    // followers by name, then the leader
    voters.sort_by_key(|v| (Some(v.member.id) == leader, v.member.name.clone()));
    for v in &voters {
        let whole_cluster = req.scope == Scope::Cluster || report.nospace;
        if !whole_cluster && v.member.id != me_id {
            continue;
        }
        let action = defragment_one(v, members, tls, req, report).await?;
        report.members.push(MemberReport {
            name: v.member.name.clone(),
            id: format_id(v.member.id),
            endpoint: v.conn.endpoint.clone(),
            was_leader: Some(v.member.id) == leader,
            db_size_before: v.status.db_size,
            db_size_in_use_before: v.status.db_size_in_use,
            action,
        });
    }
    if report.nospace {
        for (member, alarm) in local.alarms().await? {
            if alarm == "NOSPACE" {
                local.disarm(member, &alarm).await?;
                info!(member = %format_id(member), "disarmed NOSPACE");
                report.disarmed.push((format_id(member), alarm));
            }
        }
    }
    Ok(())
}

async fn defragment_one(
    v: &Voter,
    members: &[MemberInfo],
    tls: &TlsFiles,
    req: &Request,
    report: &mut Report,
) -> Result<Action, DefragError> {
    let name = v.member.name.clone();
    if !req.force && !report.nospace {
        if let Some(reason) = req.rule.skip_reason(v.status.db_size, v.status.db_size_in_use) {
            info!(%name, %reason, "not worth defragmenting");
            return Ok(Action::Skipped { reason });
        }
    }
    if let Some(to) = leadership::hand_over(&v.conn, &v.member, members, tls, req.timeout).await? {
        report.leadership_moved_to = Some(to);
    }
    let failed = |cause: String| DefragError::Member { name: name.clone(), cause };
    info!(%name, db_size = v.status.db_size, "defragmenting");
    v.conn.defragment().await.map_err(|e| failed(e.to_string()))?;
    crate::cluster::until_deadline(
        &format!("health of {name} after defragmentation"),
        req.timeout,
        || v.conn.check_health(),
    )
    .await
    .map_err(|e| failed(format!("not healthy again: {e}")))?;
    let after = v.conn.status().await.map_err(|e| failed(e.to_string()))?;
    info!(%name, before = v.status.db_size, after = after.db_size, "defragmented");
    Ok(Action::Defragmented {
        db_size_after: after.db_size,
        db_size_in_use_after: after.db_size_in_use,
    })
}

/// Bytes in the largest binary unit that keeps a whole number before the point.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: i64 = 1024 * 1024;

    #[test]
    fn the_rule_needs_both_enough_bytes_and_enough_of_the_database_free() {
        let rule = Rule { min_free_bytes: 100 * MIB as u64, min_free_percent: 25 };
        // 150 MiB free of 400 MiB: both met
        assert_eq!(rule.skip_reason(400 * MIB, 250 * MIB), None);
        // 150 MiB free of 1000 MiB: 15 % only
        assert!(rule.skip_reason(1000 * MIB, 850 * MIB).unwrap().contains("15"));
        // 50 MiB free of 100 MiB: half, but too few bytes
        assert!(rule.skip_reason(100 * MIB, 50 * MIB).is_some());
        // nothing free, and a member reporting more in use than its size
        assert!(rule.skip_reason(10 * MIB, 10 * MIB).is_some());
        assert!(rule.skip_reason(10 * MIB, 20 * MIB).is_some());
        let any = Rule { min_free_bytes: 0, min_free_percent: 0 };
        assert_eq!(any.skip_reason(10 * MIB, 10 * MIB), None);
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(human(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }
}
