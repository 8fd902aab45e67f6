//! `etcdadm reset`: remove this member from its cluster (only while the rest keeps quorum),
//! then stop etcd and remove what etcdadm installed. The CA stays unless `--remove-ca`.

use crate::cli::ResetArgs;
use crate::cluster::{format_id, Cluster, MemberInfo};
use crate::config::Config;
use crate::fsutil::remove_file_if_exists;
use crate::member::LocalMember;
use crate::outln;
use crate::retry::until_deadline;
use crate::service::Systemctl;
use crate::state::State;
use anyhow::{bail, Context, Result};
use tracing::{info, warn};

pub async fn run(requested: Config, args: &ResetArgs) -> Result<()> {
    let Some(state) = State::load(&requested.state_file)? else {
        outln!(
            "no member set up by etcdadm here ({} does not exist); nothing to reset",
            requested.state_file.display()
        )?;
        return Ok(());
    };
    let c = state.config.clone();
    let m = state.member()?;

    if !args.skip_remove_member {
        leave_cluster(&c, &m, &state, args.force).await?;
    }
    uninstall(&c, &m, args.remove_ca)?;
    outln!(
        "member {} was reset{}",
        m.name,
        if args.skip_remove_member { " (still listed in the cluster's member list)" } else { "" }
    )?;
    Ok(())
}

async fn leave_cluster(c: &Config, m: &LocalMember, state: &State, force: bool) -> Result<()> {
    let tls = crate::cluster::TlsFiles::client(&m.pki);
    let mut cl = match Cluster::connect_any(std::slice::from_ref(&m.local_endpoint), &tls).await {
        Ok(cl) => cl,
        Err(e) if force => {
            warn!(error = %e, "cannot reach the local member; --force: uninstalling without removing it from the cluster");
            return Ok(());
        }
        Err(e) => bail!(
            "cannot reach the local member to remove it from the cluster ({e}); start etcd and retry, use --skip-remove-member to leave the member list alone, or --force"
        ),
    };
    let members = cl.members().await?;
    let me = members.iter().find(|x| {
        state.member_id.as_deref() == Some(format_id(x.id).as_str())
            || x.peer_urls.contains(&m.peer_url)
    });
    let Some(me) = me.cloned() else {
        info!("this member is no longer in the cluster's member list");
        return Ok(());
    };
    if !force {
        check_quorum_after_removal(&members, &me, &tls).await?;
    }
    if members.len() == 1 {
        // etcd cannot remove its only member; with --force the cluster ends with it.
        warn!("this is the cluster's only member; --force: the cluster ends with it");
        return Ok(());
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
            outln!(
                "member {} ({}) is still listed in the cluster's member list: the cluster refused to remove it ({e}); \
                 once the cluster is healthy, remove it from a member with `etcdctl member remove {}`",
                me.name, format_id(me.id), format_id(me.id)
            )?;
            return Ok(());
        }
        Err(e) => {
            return Err(e)
                .context("cannot remove this member from the cluster; nothing was uninstalled")
        }
    }
    info!(id = %format_id(me.id), via = %cl.endpoint, "removed from the cluster");
    Ok(())
}

/// Refuses when this is the last voter, or when the other voters that answer are not a
/// quorum of the current membership on their own (the removal must not depend on us).
async fn check_quorum_after_removal(
    members: &[MemberInfo],
    me: &MemberInfo,
    tls: &crate::cluster::TlsFiles,
) -> Result<()> {
    if me.is_learner {
        return Ok(());
    }
    let voters: Vec<&MemberInfo> = members.iter().filter(|x| !x.is_learner).collect();
    if voters.len() <= 1 {
        bail!("{} is the last voting member; removing it destroys the cluster. Nothing was changed; use --force to do it anyway", me.name);
    }
    let quorum = voters.len() / 2 + 1;
    let mut healthy = 0;
    for v in voters.iter().filter(|v| v.id != me.id) {
        if let Ok(cl) = Cluster::connect_any(&v.client_urls, tls).await {
            if cl.status().await.is_ok_and(|s| s.leader != 0) {
                healthy += 1;
            }
        }
    }
    if healthy < quorum {
        bail!(
            "removing {} is unsafe: the cluster has {} voting members, quorum is {quorum}, and only {healthy} other healthy voter(s) would remain to keep it. Nothing was changed; add or repair members first, or use --force",
            me.name, voters.len()
        );
    }
    Ok(())
}

fn uninstall(c: &Config, m: &LocalMember, remove_ca: bool) -> Result<()> {
    let unit = c.unit_name();
    if remove_file_if_exists(&c.pod_manifest())
        .with_context(|| format!("cannot remove {}", c.pod_manifest().display()))?
    {
        info!(manifest = %c.pod_manifest().display(), "removed the static pod manifest; the kubelet stops etcd");
    }
    if c.init_system == crate::config::InitSystem::Systemd && c.unit_file.exists() {
        Systemctl::stop(&unit)?;
        if let Err(e) = Systemctl::disable(&unit) {
            warn!(error = %e, "cannot disable the unit");
        }
    }
    let timers = c.timer_units();
    let [_, renew_timer, _, backup_timer] = &timers;
    for (file, timer) in
        [(renew_timer, crate::config::RENEW_TIMER), (backup_timer, crate::config::BACKUP_TIMER)]
    {
        if file.exists() {
            if let Err(e) = Systemctl::disable_now(timer) {
                warn!(error = %e, %timer, "cannot disable the timer");
            }
        }
    }
    let wrapper = c.install_dir.join("etcdctl.sh");
    crate::phases::unlink_etcdctl(std::path::Path::new(crate::phases::ETCDCTL_LINK), &wrapper)?;
    let mut files = timers.to_vec();
    files.extend([
        c.unit_file.clone(),
        c.env_file.clone(),
        c.etcdctl_env_file.clone(),
        c.install_dir.join("etcdctl.sh"),
        c.install_dir.join("etcd"),
        c.install_dir.join("etcdctl"),
        c.install_dir.join("etcdutl"),
    ]);
    files.extend(m.pki.member_files().into_iter().cloned());
    if remove_ca {
        files.extend([m.pki.ca_cert.clone(), m.pki.ca_key.clone()]);
    }
    for f in &files {
        if remove_file_if_exists(f).with_context(|| format!("cannot remove {}", f.display()))? {
            info!(file = %f.display(), "removed");
        }
    }
    // Binaries kept beside the live ones by `etcdadm upgrade` (etcd-v<V>/).
    for dir in crate::release::swap::prune(&c.install_dir, &[])? {
        info!(dir = %dir.display(), "removed");
    }
    // Directories etcdadm created go too once empty (a shared one like /usr/local/bin stays).
    for dir in
        [&c.install_dir, &m.pki.ca_cert.parent().map(|p| p.to_path_buf()).unwrap_or_default()]
    {
        if std::fs::remove_dir(dir).is_ok() {
            info!(dir = %dir.display(), "removed empty directory");
        }
    }
    Systemctl::daemon_reload()?;
    // The user asked for the member to go: its data goes too.
    match std::fs::remove_dir_all(&c.data_dir) {
        Ok(()) => info!(dir = %c.data_dir.display(), "removed data directory"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", c.data_dir.display())),
    }
    remove_file_if_exists(&c.state_file)?;
    Ok(())
}
