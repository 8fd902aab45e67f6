//! `etcdadm defrag`: the edge of `maintenance::defrag` (and of its timer, with
//! --this-member): builds the request from the member's settings, prints the report.

use crate::cli::Output;
use crate::cluster::{Cluster, TlsFiles};
use crate::config::Config;
use crate::maintenance::defrag::{self, human, Action, Report, Request, Rule, Scope};
use crate::membership::quorum::find_me;
use crate::outln;
use crate::state::State;
use anyhow::{bail, Context, Result};
use std::time::Duration;

pub async fn run(requested: Config, force: bool, this_member: bool, output: Output) -> Result<()> {
    let state = State::load(&requested.state_file)?.with_context(|| {
        format!(
            "no member set up by etcdadm on this machine ({} does not exist)",
            requested.state_file.display()
        )
    })?;
    let m = state.member()?;
    let tls = TlsFiles::client(&m.pki);
    // calls on it wait for the lock, and the keep-alive of its lease lasts the whole run
    let timeout = Duration::from_secs(requested.timeout_seconds);
    let local = Cluster::connect_for(&m.local_endpoint, &tls, timeout)
        .await
        .context("cannot reach the local member; is etcd running?")?;
    let members = local.members().await?;
    let Some(me) = find_me(&members, &m, &state) else {
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
