//! Maintenance started on this machine (`etcdadm defrag` and its timer, `etcdadm alarm`):
//! reaches the local member, builds the request from the member's settings, runs it, and
//! records a defragmentation's outcome in the textfile metrics.

use super::alarm::{self, Alarm};
use super::defrag::{self, Action, Report, Request, Rule, Scope};
use crate::cluster::ClusterError;
use crate::cluster::{format_id, Cluster, TlsFiles};
use crate::config::Config;
use crate::membership::quorum::find_me;
use crate::metrics::timers;
use crate::state::State;
use crate::state::StateError;

/// Why maintenance from this machine's member could not run.
#[derive(Debug, thiserror::Error)]
pub enum OnMemberError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Defrag(#[from] super::defrag::DefragError),
    #[error(transparent)]
    Alarm(#[from] super::alarm::AlarmError),
    #[error("{0} is not in its cluster's member list; nothing was changed")]
    NotAMember(String),
    #[error("cannot reach the local member; is etcd running?")]
    LocalDown(#[source] ClusterError),
}

type Result<T> = std::result::Result<T, OnMemberError>;
use std::time::{Duration, SystemTime};

/// A defragmentation run from this machine (the whole cluster, or with `this_member` only
/// this machine's member, as its timer does), with the rule and timeout of `requested` (the
/// files and flags of this invocation); its outcome (bytes reclaimed, this member's database
/// size) goes to the textfile metrics.
pub async fn defrag(
    requested: &Config,
    state: &State,
    force: bool,
    this_member: bool,
) -> Result<Report> {
    // the directory the member was set up with, which its timer's sandbox lets it write
    let metrics_dir = state.config.metrics_textfile_dir.clone();
    let result = run(requested, state, force, this_member).await;
    let done = result.as_ref().ok().map(|(report, _)| done(report));
    timers::record(&metrics_dir, "defrag", |d| timers::write_defrag(d, SystemTime::now(), done));
    if let Ok((_, Some(db))) = &result {
        timers::record(&metrics_dir, "database size", |d| {
            timers::write_db(d, SystemTime::now(), *db)
        });
    }
    result.map(|(report, _)| report)
}

/// What a run reclaimed, over the members it defragmented.
fn done(r: &Report) -> timers::DefragDone {
    let mut d = timers::DefragDone { reclaimed_bytes: 0, members_defragmented: 0 };
    for m in &r.members {
        if let Action::Defragmented { db_size_after, .. } = m.action {
            d.reclaimed_bytes += (m.db_size_before - db_size_after).max(0) as u64;
            d.members_defragmented += 1;
        }
    }
    d
}

/// This machine's member's database after the run, when the run looked at it.
fn db_after(r: &Report, me: &str, quota_bytes: u64) -> Option<timers::DbUsage> {
    let m = r.members.iter().find(|m| m.id == me)?;
    let (size_bytes, in_use_bytes) = match m.action {
        Action::Defragmented { db_size_after, db_size_in_use_after } => {
            (db_size_after, db_size_in_use_after)
        }
        Action::Skipped { .. } => (m.db_size_before, m.db_size_in_use_before),
    };
    Some(timers::DbUsage { size_bytes, in_use_bytes, quota_bytes })
}

async fn run(
    requested: &Config,
    state: &State,
    force: bool,
    this_member: bool,
) -> Result<(Report, Option<timers::DbUsage>)> {
    let m = state.member()?;
    // calls on it wait for the lock, and the keep-alive of its lease lasts the whole run
    let timeout = Duration::from_secs(requested.timeout_seconds);
    let (local, tls) = connect_local(state, Some(timeout)).await?;
    let members = local.members().await?;
    let Some(me) = find_me(&members, &m, state) else {
        return Err(OnMemberError::NotAMember(m.name));
    };
    // The rule and timeout from this invocation's configuration (file and flags).
    let req = Request {
        scope: if this_member { Scope::ThisMember } else { Scope::Cluster },
        force,
        rule: Rule {
            min_free_bytes: requested.defrag_min_free_bytes,
            min_free_percent: requested.defrag_min_free_percent,
        },
        timeout,
    };
    let report = defrag::run(&local, me.id, &tls, &req).await?;
    let db = db_after(&report, &format_id(me.id), state.config.quota_backend_bytes);
    Ok((report, db))
}

/// The local member, with calls allowed `timeout` each (default: the client's).
async fn connect_local(state: &State, timeout: Option<Duration>) -> Result<(Cluster, TlsFiles)> {
    let m = state.member()?;
    let tls = TlsFiles::client(&m.pki);
    let local = std::slice::from_ref(&m.local_endpoint);
    let cl = match timeout {
        Some(t) => Cluster::connect_for(&m.local_endpoint, &tls, t).await,
        None => Cluster::connect_any(local, &tls).await,
    }
    .map_err(OnMemberError::LocalDown)?;
    Ok((cl, tls))
}

/// The cluster's alarms, through the local member.
pub async fn alarms(state: &State) -> Result<Vec<Alarm>> {
    let (cl, _) = connect_local(state, None).await?;
    Ok(alarm::list(&cl).await?)
}

/// Disarms the cluster's alarms that no longer hold (see `alarm::disarm`); returns them.
pub async fn disarm(state: &State) -> Result<Vec<Alarm>> {
    let (cl, tls) = connect_local(state, None).await?;
    Ok(alarm::disarm(&cl, &tls, state.config.quota_backend_bytes).await?)
}

#[cfg(test)]
mod tests {
    use super::super::defrag::MemberReport;
    use super::*;

    fn member(id: &str, before: i64, in_use: i64, action: Action) -> MemberReport {
        MemberReport {
            name: format!("n{id}"),
            id: id.into(),
            endpoint: String::new(),
            was_leader: false,
            db_size_before: before,
            db_size_in_use_before: in_use,
            action,
        }
    }

    #[test]
    fn the_metrics_count_what_was_defragmented_and_this_members_size_after() {
        let r = Report {
            members: vec![
                member(
                    "a",
                    100,
                    40,
                    Action::Defragmented { db_size_after: 45, db_size_in_use_after: 40 },
                ),
                member("b", 90, 80, Action::Skipped { reason: "little free".into() }),
                member(
                    "c",
                    70,
                    10,
                    Action::Defragmented { db_size_after: 20, db_size_in_use_after: 10 },
                ),
            ],
            ..Report::default()
        };
        assert_eq!(
            done(&r),
            timers::DefragDone { reclaimed_bytes: 55 + 50, members_defragmented: 2 }
        );
        let db = |me| db_after(&r, me, 1000).map(|d| (d.size_bytes, d.in_use_bytes, d.quota_bytes));
        assert_eq!(db("a"), Some((45, 40, 1000)));
        assert_eq!(db("b"), Some((90, 80, 1000)), "skipped: its size before");
        assert_eq!(db("z"), None);
        assert_eq!(done(&Report::default()).members_defragmented, 0);
    }
}
