//! `etcdadm upgrade --version V`: the edge of `crate::upgrade` (asks on a terminal unless
//! --yes, prints the outcome).

use crate::config::Config;
use crate::outln;
use crate::upgrade::{self, HookError, Hooks, Outcome, Request};
use anyhow::Result;

pub async fn run(requested: Config, req: Request, yes: bool) -> Result<()> {
    let confirm = |action: &str| {
        super::confirm(yes, action).map_err(|e| HookError::Declined(format!("{e:#}")))
    };
    let say = |line: &str| Ok(outln!("{line}")?);
    match upgrade::run(requested, req, Hooks { confirm: &confirm, say: &say }).await? {
        Outcome::Current { member, version } => outln!(
            "member {member} already runs etcd {version} and the cluster is healthy; nothing to do"
        )?,
        Outcome::Upgraded { member, from, to, kept } => outln!(
            "member {member} upgraded from etcd {from} to {to}; it and the cluster are healthy. The binaries of {from} stay in {}",
            kept.display()
        )?,
    }
    Ok(())
}
