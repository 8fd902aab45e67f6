//! `etcdadm reset`: remove this member from its cluster, then what etcdadm installed. The
//! operation is `membership::reset`; this edge finds the state file and prints the outcome.

use crate::cli::ResetArgs;
use crate::config::Config;
use crate::membership::reset::{reset, Request};
use crate::outln;
use crate::state::State;
use anyhow::Result;

pub async fn run(requested: Config, args: &ResetArgs) -> Result<()> {
    let Some(state) = State::load(&requested.state_file)? else {
        outln!(
            "no member set up by etcdadm here ({} does not exist); nothing to reset",
            requested.state_file.display()
        )?;
        return Ok(());
    };
    let req = Request {
        skip_remove_member: args.skip_remove_member,
        force: args.force,
        remove_ca: args.remove_ca,
    };
    let done = reset(&state, &req).await?;
    outln!(
        "member {} was reset{}",
        done.name,
        if args.skip_remove_member { " (still listed in the cluster's member list)" } else { "" }
    )?;
    if let Some(kept) = done.data_kept {
        outln!(
            "its etcd data directory was moved to {} (etcdadm never deletes etcd data); remove it once it is no longer needed",
            kept.display()
        )?;
    }
    Ok(())
}
