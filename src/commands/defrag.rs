//! `etcdadm defrag`: the edge of `maintenance::defrag` (and of its timer, with
//! --this-member): builds the request from the member's settings, prints the report.

use crate::cli::Output;
use crate::cluster::{format_id, Cluster, TlsFiles};
use crate::config::Config;
use crate::maintenance::defrag::{self, human, Action, Report, Request, Rule, Scope};
use crate::membership::quorum::find_me;
use crate::metrics::timers;
use crate::outln;
use crate::state::State;
use anyhow::{bail, Context, Result};
use std::time::{Duration, SystemTime};

/// `etcdadm defrag`; its outcome (bytes reclaimed, this member's database size) goes to the
/// textfile metrics.
pub async fn run(requested: Config, force: bool, this_member: bool, output: Output) -> Result<()> {
    let state = super::member_state(&requested)?;
    // the directory the member was set up with, which its timer's sandbox lets it write
    let metrics_dir = state.config.metrics_textfile_dir.clone();
    let result = defrag(requested, &state, force, this_member, output).await;
    let done = result.as_ref().ok().map(|(report, _)| done(report));
    timers::record(&metrics_dir, "defrag", |d| timers::write_defrag(d, SystemTime::now(), done));
    if let Ok((_, Some(db))) = &result {
        timers::record(&metrics_dir, "database size", |d| {
            timers::write_db(d, SystemTime::now(), *db)
        });
    }
    result.map(|_| ())
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

async fn defrag(
    requested: Config,
    state: &State,
    force: bool,
    this_member: bool,
    output: Output,
) -> Result<(Report, Option<timers::DbUsage>)> {
    let m = state.member()?;
    let tls = TlsFiles::client(&m.pki);
    // calls on it wait for the lock, and the keep-alive of its lease lasts the whole run
    let timeout = Duration::from_secs(requested.timeout_seconds);
    let local = Cluster::connect_for(&m.local_endpoint, &tls, timeout)
        .await
        .context("cannot reach the local member; is etcd running?")?;
    let members = local.members().await?;
    let Some(me) = find_me(&members, &m, state) else {
        bail!("{} is not in its cluster's member list; nothing was changed", m.name);
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
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&report)?)?,
        Output::Table => print_table(&report)?,
    }
    let db = db_after(&report, &format_id(me.id), state.config.quota_backend_bytes);
    Ok((report, db))
}

fn print_table(r: &Report) -> Result<()> {
    if let Some(rev) = r.compacted_to {
        outln!("NOSPACE alarm: compacted the history to revision {rev}")?;
    }
    outln!(
        "{:<16} {:<8} {:>12} {:>12} {:>12}  RESULT",
        "NAME",
        "ROLE",
        "DB BEFORE",
        "IN USE",
        "DB AFTER"
    )?;
    for m in &r.members {
        let role = if m.was_leader { "leader" } else { "follower" };
        let before = human(m.db_size_before.max(0) as u64);
        let in_use = human(m.db_size_in_use_before.max(0) as u64);
        let (after, result) = match &m.action {
            Action::Defragmented { db_size_after, .. } => {
                (human((*db_size_after).max(0) as u64), "defragmented".to_string())
            }
            Action::Skipped { reason } => ("-".into(), format!("skipped: {reason}")),
        };
        outln!("{:<16} {role:<8} {before:>12} {in_use:>12} {after:>12}  {result}", m.name)?;
    }
    if let Some(to) = &r.leadership_moved_to {
        outln!("leadership moved to {to} before the leader was defragmented")?;
    }
    for (member, alarm) in &r.disarmed {
        outln!("disarmed {alarm} on member {member}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maintenance::defrag::MemberReport;

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
