//! `etcdadm init`: the first member of a new cluster, optionally restored from a snapshot.

use super::existing::{check_existing, Existing};
use crate::config::Config;
use crate::member::LocalMember;
use crate::phases;
use crate::pki::Ca;
use crate::service::ClusterBootstrap;
use crate::state::{Origin, Phase, State};
use anyhow::{bail, Result};
use std::path::Path;
use tracing::info;

/// The cluster a new member starts: every initial member and the cluster token.
pub struct NewCluster {
    pub initial_cluster: Vec<(String, String)>,
    pub token: String,
}

pub async fn run(mut c: Config, snapshot: Option<&Path>, skip_hash_check: bool) -> Result<()> {
    let m = LocalMember::from_config(&c)?;
    c.name = Some(m.name.clone());
    let new = NewCluster {
        initial_cluster: vec![(m.name.clone(), m.peer_url.clone())],
        token: c.initial_cluster_token.clone().unwrap_or_else(|| format!("etcd-{}", m.name)),
    };
    if form(&c, &m, new, snapshot, skip_hash_check).await? {
        info!("this machine already runs a healthy member set up by init; nothing to do");
    }
    print_next_steps(&c, &m);
    Ok(())
}

/// Sets up this machine as a member of a new cluster and waits until it is healthy (for a
/// multi-member cluster, until enough of its members have started). Returns whether it was
/// already a healthy member, in which case nothing was changed.
pub async fn form(c: &Config, m: &LocalMember, new: NewCluster, snapshot: Option<&Path>, skip_hash_check: bool) -> Result<bool> {
    let mut state = match check_existing(c, m, Origin::Init).await? {
        Existing::HealthyMember => return Ok(true),
        Existing::Resume(state) => state,
        Existing::Fresh => {
            if crate::fsutil::dir_has_entries(&c.data_dir)? {
                bail!(
                    "{} already holds data that etcdadm did not create; move it away (never deleted by etcdadm) or, to start from it, take a snapshot and use `init --snapshot`",
                    c.data_dir.display()
                );
            }
            State::new(Origin::Init, c, m)
        }
    };
    // Everything that can be checked is checked before the system changes.
    let release = phases::fetch_release(c).await?;
    let restored = match snapshot {
        Some(_) if crate::fsutil::dir_has_entries(&c.data_dir)? => {
            info!(data_dir = %c.data_dir.display(), "data directory already restored; not restoring again");
            None
        }
        Some(snap) => Some(crate::snapshot::prepare(release.dir(), c, m, &new.token, snap, skip_hash_check)?),
        None => None,
    };
    state.save()?;
    phases::install(c, &release)?;
    if let Some(r) = restored {
        r.commit(&c.data_dir)?;
    }
    let ca = Ca::load_or_create(&m.pki.ca_cert, &m.pki.ca_key, c.ca_validity_days)?;
    phases::certificates(c, m, &ca)?;
    let bootstrap = ClusterBootstrap { initial_cluster: new.initial_cluster, state: "new", token: Some(new.token) };
    phases::configure(c, m, &bootstrap)?;
    phases::start(c)?;
    let cl = phases::wait_healthy(c, m).await?;
    let st = cl.status().await?;
    state.phase = Phase::Member;
    state.member_id = Some(crate::cluster::format_id(st.member_id));
    state.cluster_id = Some(crate::cluster::format_id(st.cluster_id));
    state.save()?;
    info!(member = %m.name, id = %crate::cluster::format_id(st.member_id), "etcd member of a new cluster is healthy");
    Ok(false)
}

fn print_next_steps(c: &Config, m: &LocalMember) {
    println!("etcd member {} is running; client URL {}", m.name, m.client_url);
    println!();
    println!("To add a member, copy {} and {} to the same paths on the new machine, then run there:",
        m.pki.ca_cert.display(), m.pki.ca_key.display());
    println!();
    println!("  etcdadm join {}{}", m.client_url, if c.version != crate::config::DEFAULT_ETCD_VERSION { format!(" --version {}", c.version) } else { String::new() });
}
