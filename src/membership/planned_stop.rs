//! Before this machine's member is restarted or stopped on purpose (certificate renewal,
//! upgrade, reset): the quorum check, then leadership handed to the most caught-up voter,
//! so the cluster keeps writing through the stop instead of waiting out an election.

use super::error::Result;
use super::quorum::{check_restart, find_me};
use crate::cluster::{Cluster, TlsFiles};
use crate::leadership;
use crate::member::LocalMember;
use crate::state::State;
use tracing::warn;

/// Refuses (unless `force`) when the others are no quorum without this member, then moves
/// leadership away from it when it leads. A hand-over that fails is a warning, not a
/// refusal: the stop costs an election then, as it would have without etcdadm.
pub async fn prepare(m: &LocalMember, state: &State, what: &str, force: bool) -> Result<()> {
    if !force {
        check_restart(m, state, what).await?;
    }
    if let Err(e) = hand_over(m, state).await {
        warn!(
            error = crate::error_chain::error_chain(&e),
            "cannot hand leadership over before {what}; the cluster elects a new leader instead"
        );
    }
    Ok(())
}

async fn hand_over(m: &LocalMember, state: &State) -> Result<()> {
    let tls = TlsFiles::client(&m.pki);
    let cl = Cluster::connect_any(std::slice::from_ref(&m.local_endpoint), &tls).await?;
    let members = cl.members().await?;
    if let Some(me) = find_me(&members, m, state) {
        let wait = state.config.timeout().min(std::time::Duration::from_secs(30));
        leadership::hand_over(&cl, me, &members, &tls, wait).await?;
    }
    Ok(())
}
