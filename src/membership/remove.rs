//! Removing members from a cluster: this machine's own member (only while the rest keeps
//! quorum), or a member whose machine departed.

use super::error::{MembershipError, Result};
use crate::cluster::{format_id, until_deadline, Cluster, ClusterError, TlsFiles};
use crate::config::Config;
use crate::member::LocalMember;
use crate::retry::{retry_observed, RetryObserver};
use crate::state::State;
use std::time::Duration;
use tracing::{info, warn};

/// Removes member `id`, which left the peer set, through the members at `endpoints`;
/// retries etcd's transient refusals until `deadline`, telling `retries` about each.
pub async fn remove_departed(
    endpoints: &[String],
    tls: &TlsFiles,
    id: u64,
    deadline: Duration,
    retries: Option<&RetryObserver>,
) -> Result<()> {
    let cl = Cluster::connect_any(endpoints, tls).await?;
    retry_observed(
        "removing a member that left the peer set",
        deadline,
        ClusterError::is_retryable,
        retries,
        || cl.remove(id),
    )
    .await?;
    Ok(())
}

/// Removes this machine's member from its cluster.
pub async fn leave_cluster(c: &Config, m: &LocalMember, state: &State, force: bool) -> Result<()> {
    let tls = crate::cluster::TlsFiles::client(&m.pki);
    let mut cl = match Cluster::connect_any(std::slice::from_ref(&m.local_endpoint), &tls).await {
        Ok(cl) => cl,
        Err(e) if force => {
            warn!(error = %e, "cannot reach the local member; --force: uninstalling without removing it from the cluster");
            return Ok(());
        }
        Err(e) => return Err(MembershipError::Refused(format!(
            "cannot reach the local member to remove it from the cluster ({e}); start etcd and retry, use --skip-remove-member to leave the member list alone, or --force"
        ))),
    };
    let members = cl.members().await?;
    let Some(me) = super::quorum::find_me(&members, m, state).cloned() else {
        info!("this member is no longer in the cluster's member list");
        return Ok(());
    };
    if !force {
        super::quorum::check_removal(&members, &me, &tls).await?;
    }
    if members.len() == 1 {
        // etcd cannot remove its only member; with --force the cluster ends with it.
        warn!("this is the cluster's only member; --force: the cluster ends with it");
        return Ok(());
    }
    // A leader that is removed steps down only after the removal is committed: hand
    // leadership over first, so the cluster does not wait out an election.
    let wait = c.timeout().min(std::time::Duration::from_secs(30));
    if let Err(e) = crate::leadership::hand_over(&cl, &me, &members, &tls, wait).await {
        warn!(error = %e, "cannot hand leadership over before leaving; the cluster elects a new leader instead");
    }
    // Remove through another member when one answers, so the answer does not depend on the
    // member being removed.
    let others: Vec<String> =
        members.iter().filter(|x| x.id != me.id).flat_map(|x| x.client_urls.clone()).collect();
    if let Ok(other) = Cluster::connect_any(&others, &tls).await {
        cl = other;
    }
    let deadline =
        if force { c.timeout().min(std::time::Duration::from_secs(10)) } else { c.timeout() };
    match until_deadline("removing this member from the cluster", deadline, || cl.remove(me.id))
        .await
    {
        Ok(()) => {}
        Err(e) if force => {
            crate::outln!(
                "member {} ({}) is still listed in the cluster's member list: the cluster refused to remove it ({e}); \
                 once the cluster is healthy, remove it from a member with `etcdctl member remove {}`",
                me.name, format_id(me.id), format_id(me.id)
            )?;
            return Ok(());
        }
        Err(e) => return Err(MembershipError::Remove(e)),
    }
    info!(id = %format_id(me.id), via = %cl.endpoint, "removed from the cluster");
    Ok(())
}
