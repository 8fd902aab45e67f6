//! `etcdadm init`: the first member of a new cluster, optionally restored from a snapshot.
//! The operation is `membership::form`; this edge names the cluster and prints what next.

use crate::cli::InitPhase;
use crate::config::Config;
use crate::member::LocalMember;
use crate::membership::form::{form, NewCluster, Request};
use crate::outln;
use anyhow::Result;
use tracing::info;

pub async fn run(mut c: Config, req: Request) -> Result<()> {
    let m = LocalMember::from_config(&c)?;
    c.name = Some(m.name.parse().map_err(|e| anyhow::anyhow!("member name: {e}"))?);
    let new = NewCluster {
        initial_cluster: vec![(m.name.clone(), m.peer_url.clone())],
        token: c
            .initial_cluster_token
            .as_ref()
            .map_or_else(|| format!("etcd-{}", m.name), |t| t.to_string()),
    };
    // The instructions need only the configuration: printing them changes nothing.
    if req.phase == Some(InitPhase::PostInitInstructions) {
        return print_next_steps(&c, &m);
    }
    let whole = req.phase.is_none();
    if form(&c, &m, new, req).await? {
        info!("this machine already runs a healthy member set up by init; nothing to do");
    }
    if whole {
        outln!("etcd member {} is running; client URL {}", m.name, m.client_url)?;
        outln!()?;
        print_next_steps(&c, &m)?;
    }
    Ok(())
}

/// The seed's post-init instructions: the files to copy and the join command.
pub(super) fn print_next_steps(c: &Config, m: &LocalMember) -> Result<()> {
    outln!(
        "To add a member, copy {} and {} to the same paths on the new machine, then run there:",
        m.pki.ca_cert.display(),
        m.pki.ca_key.display()
    )?;
    outln!()?;
    outln!(
        "  etcdadm join {}{}",
        m.client_url,
        if c.version != crate::config::DEFAULT_ETCD_VERSION {
            format!(" --version {}", c.version)
        } else {
            String::new()
        }
    )?;
    Ok(())
}
