//! Resetting this machine (`etcdadm reset`): remove its member from the cluster (only while
//! the rest keeps quorum), then stop etcd and remove what etcdadm installed. The CA stays
//! unless asked.

use super::error::Result;
use super::remove::leave_cluster;
use crate::config::Config;
use crate::fsutil::remove_file_if_exists;
use crate::member::LocalMember;
use crate::service::Systemctl;
use crate::state::State;
use tracing::{info, warn};

/// What `reset` was asked for besides the member's own state.
pub struct Request {
    /// Leave the cluster's member list alone.
    pub skip_remove_member: bool,
    /// Uninstall even when the member cannot be removed safely.
    pub force: bool,
    /// Remove the CA certificate and key too.
    pub remove_ca: bool,
}

/// Resets the member recorded in `state`; returns its name.
pub async fn reset(state: &State, req: &Request) -> Result<String> {
    let c = state.config.clone();
    let m = state.member()?;

    if !req.skip_remove_member {
        leave_cluster(&c, &m, state, req.force).await?;
    }
    uninstall(&c, &m, req.remove_ca)?;
    Ok(m.name)
}

fn uninstall(c: &Config, m: &LocalMember, remove_ca: bool) -> Result<()> {
    let unit = c.unit_name();
    if remove_file_if_exists(&c.pod_manifest())
        .map_err(crate::fsutil::on_file("cannot remove", c.pod_manifest()))?
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
    for timer in crate::config::TIMERS {
        if timers.iter().any(|f| f.ends_with(timer) && f.exists()) {
            if let Err(e) = Systemctl::disable_now(timer) {
                warn!(error = %e, %timer, "cannot disable the timer");
            }
        }
    }
    let mut files = timers.to_vec();
    files.extend([
        c.unit_file.to_path_buf(),
        c.env_file.to_path_buf(),
        c.etcdctl_env_file.to_path_buf(),
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
        if remove_file_if_exists(f).map_err(crate::fsutil::on_file("cannot remove", f))? {
            info!(file = %f.display(), "removed");
        }
    }
    let wrapper = c.install_dir.join("etcdctl.sh");
    crate::phases::unlink_etcdctl(std::path::Path::new(crate::phases::ETCDCTL_LINK), &wrapper)?;
    // The generations behind the certificate links (`pair_files`).
    for (cert, key) in m.pki.member_pairs() {
        crate::pair_files::remove_pair(cert, key)
            .map_err(crate::fsutil::on_file("cannot remove the certificate pair of", cert))?;
    }
    // Binaries kept beside the live ones by `etcdadm upgrade` (etcd-v<V>/).
    for dir in crate::release::swap::prune(&c.install_dir, &[])? {
        info!(dir = %dir.display(), "removed");
    }
    // Directories etcdadm created go too once empty (a shared one like /usr/local/bin stays).
    for dir in [
        &c.install_dir.to_path_buf(),
        &m.pki.ca_cert.parent().map(|p| p.to_path_buf()).unwrap_or_default(),
    ] {
        if std::fs::remove_dir(dir).is_ok() {
            info!(dir = %dir.display(), "removed empty directory");
        }
    }
    Systemctl::daemon_reload()?;
    // The user asked for the member to go: its data goes too.
    match std::fs::remove_dir_all(&c.data_dir) {
        Ok(()) => info!(dir = %c.data_dir.display(), "removed data directory"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(crate::fsutil::on_file("cannot remove", c.data_dir.to_path_buf())(e).into())
        }
    }
    remove_file_if_exists(&c.state_file)
        .map_err(crate::fsutil::on_file("cannot remove", c.state_file.to_path_buf()))?;
    Ok(())
}
