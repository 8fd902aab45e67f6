//! `etcdadm defrag`: the edge of `maintenance::on_member` (and of its timer, with
//! --this-member): prints the report.

use crate::cli::Output;
use crate::config::Config;
use crate::maintenance::defrag::{human, Action, Report};
use crate::maintenance::on_member;
use crate::outln;
use anyhow::Result;

pub async fn run(requested: Config, force: bool, this_member: bool, output: Output) -> Result<()> {
    let state = super::member_state(&requested)?;
    let report = on_member::defrag(&requested, &state, force, this_member).await?;
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&report)?)?,
        Output::Table => print_table(&report)?,
    }
    Ok(())
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
