//! `etcdadm recover`: after a permanent loss of quorum, this survivor becomes a one-member
//! cluster holding its data. The operation is `membership::recover`; this edge prints its
//! preflight, asks before acting and prints what the other machines run next.

use crate::config::Config;
use crate::membership::recover::{self, Decision, Preflight};
use crate::outln;
use anyhow::Result;

pub async fn run(requested: Config, yes: bool) -> Result<()> {
    let state = super::member_state(&requested)?;
    let pre = recover::preflight(&state).await?;
    print_preflight(&pre)?;
    match &pre.decision {
        Decision::AlreadyAlone => {
            outln!("this member is alone in a healthy one-member cluster; nothing to recover")?;
            return Ok(());
        }
        Decision::Proceed => {}
        d => return Err(d.refusal().expect("a refusal").into()),
    }
    let m = state.member()?;
    outln!(
        "{} holds the most recent data of the survivors: it will be restored as a one-member cluster with a new cluster id; its data directory {} is moved aside, not deleted",
        m.name,
        state.config.data_dir.display()
    )?;
    super::confirm(yes, &format!("recovering {} as a one-member cluster", m.name))?;
    let done = recover::recover(&state, &requested, &pre).await?;
    outln!(
        "member {} recovered: cluster id {} (was {}); the old data directory is kept at {}",
        done.name,
        done.cluster_id,
        done.old_cluster_id,
        done.old_data_dir.display()
    )?;
    outln!(
        "The other members of cluster {} can never rejoin it: on each other machine run `etcdadm reset --skip-remove-member` (its data directory is moved aside, not deleted), then join as below.",
        done.old_cluster_id
    )?;
    outln!()?;
    super::init::print_next_steps(&state.config, &m)
}

fn print_preflight(p: &Preflight) -> Result<()> {
    outln!("cluster {}:", crate::cluster::format_id(p.cluster_id))?;
    outln!(
        "{:<16} {:<8} {:<32} {:<8} {:>14}",
        "NAME",
        "ROLE",
        "ENDPOINT",
        "ANSWERS",
        "APPLIED INDEX"
    )?;
    for s in &p.members {
        let role = if s.is_learner { "learner" } else { "voter" };
        let (answers, applied) = match &s.answer {
            Some(a) => ("yes", a.raft_applied_index.to_string()),
            None => ("no", "-".into()),
        };
        let endpoint = if s.endpoint.is_empty() { "(never started)" } else { &s.endpoint };
        let note = if s.is_local {
            "  (this machine)"
        } else if s.running_not_serving {
            "  (etcd runs but serves no clients)"
        } else {
            ""
        };
        outln!("{:<16} {role:<8} {endpoint:<32} {answers:<8} {applied:>14}{note}", s.name)?;
    }
    Ok(())
}
