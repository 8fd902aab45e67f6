//! The steps `init` and `join` share, each idempotent: running one again on a machine where
//! it already ran changes nothing.

use crate::cluster::{Cluster, ClusterError, TlsFiles};
use crate::config::{Config, InitSystem};
use crate::fsutil::{on_file, write_if_changed, FileError, MODE_EXEC, MODE_PUBLIC};
use crate::member::LocalMember;
use crate::pki::{self, Ca, PkiError};
use crate::release::{EtcdFirst, Prefetch, Ready, Release, ReleaseError, Unpacked};
use crate::service::user::UserError;
use crate::service::{self, ClusterBootstrap, Systemctl, SystemctlError};
use std::io;
use std::path::PathBuf;
use tracing::{info, warn};

/// Why a step of init or join failed; each names the file, unit or endpoint involved.
#[derive(Debug, thiserror::Error)]
pub enum PhaseError {
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    Systemctl(#[from] SystemctlError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error("cannot tell where the etcdadm binary is")]
    CurrentExe(#[source] io::Error),
    #[error("cannot create {} ({setting})", path.display())]
    CreateDir { path: PathBuf, setting: &'static str, source: io::Error },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("etcd on {endpoint} did not become healthy within {seconds}s ({state}); see {logs}")]
    NotHealthy {
        endpoint: String,
        seconds: u64,
        state: String,
        logs: String,
        source: Box<ClusterError>,
    },
}

type Result<T> = std::result::Result<T, PhaseError>;

/// The pinned etcd release ready to install (see `Release::ensure_unpacked`: already
/// installed, unpacked earlier, or downloaded and verified now), changing nothing on the
/// system yet.
pub async fn fetch_release(c: &Config) -> Result<Unpacked> {
    Ok(Release::from_config(c).ensure_unpacked(&c.install_dir, None).await?)
}

/// Starts fetching the configured release in the background (`release::Prefetch`), so that
/// install finds it ready, or its etcd alone; None for a version refused as known-bad (form
/// and join report that themselves).
pub fn prefetch_release(c: &Config) -> Option<Prefetch> {
    crate::release::known_bad::check(&c.version, "version", c.allow_known_bad_release)
        .is_ok()
        .then(|| Prefetch::start(Release::from_config(c), c.install_dir.to_path_buf()))
}

/// What of the release can be installed now: the etcd binary alone when that is all of the
/// prefetched release that is ready yet, else the whole release (fetched now when nothing was
/// prefetched or prefetching failed).
pub async fn ready_release(c: &Config, prefetch: Option<Prefetch>) -> Result<Ready> {
    if let Some(ready) = match prefetch {
        Some(p) => p.first_ready().await,
        None => None,
    } {
        return Ok(ready);
    }
    Ok(Ready::Whole(fetch_release(c).await?))
}

/// The whole release, once unpacked (fetched again if that failed).
pub async fn whole_release(c: &Config, ready: Ready) -> Result<Unpacked> {
    match ready.whole().await {
        Some(u) => Ok(u),
        None => fetch_release(c).await,
    }
}

/// Installs what is ready; with the etcd binary alone, etcd can start meanwhile, and the
/// rest is returned for `install_rest`, before the member is recorded.
pub async fn install_ready(c: &Config, ready: Ready) -> Result<Option<EtcdFirst>> {
    let whole = match ready {
        Ready::EtcdFirst(first) if first.install_etcd(&c.install_dir)? => return Ok(Some(first)),
        other => whole_release(c, other).await?,
    };
    install(c, &whole)?;
    Ok(None)
}

/// Installs what `install_ready` left out, once unpacked (fetched again if that failed),
/// and starts writing it to disk (see `start`). Runs while etcd starts (`wait_healthy`).
pub async fn install_rest(c: &Config, rest: Option<EtcdFirst>) -> Result<()> {
    let Some(rest) = rest else { return Ok(()) };
    install(c, &whole_release(c, Ready::EtcdFirst(rest)).await?)?;
    sync_in_background(c);
    Ok(())
}

/// Installs the unpacked release's binaries, not yet written to disk: `start` begins that
/// once etcd is starting (until then it would hold up the fsyncs of the certificates and
/// the configuration), and `make_durable` finishes it.
pub fn install(c: &Config, release: &Unpacked) -> Result<()> {
    release.install(&c.install_dir)?;
    Ok(())
}

fn sync_in_background(c: &Config) {
    let files = crate::release::installed_binaries(&c.install_dir);
    std::thread::spawn(move || {
        if let Err(e) = crate::fsutil::sync_files(&files) {
            tracing::debug!("early sync of the installed release: {e}");
        }
    });
}

/// Commits the installed binaries (written unsynced, so etcd could start sooner) to disk,
/// before the state file records a finished member; a no-op when nothing is installed yet.
pub fn make_durable(c: &Config) -> Result<()> {
    crate::fsutil::sync_files(&crate::release::installed_binaries(&c.install_dir))
        .map_err(on_file("cannot sync to disk", c.install_dir.to_path_buf()))?;
    Ok(())
}

/// Issues (or keeps) the member's certificates from the CA.
pub fn certificates(c: &Config, m: &LocalMember, ca: &Ca) -> Result<()> {
    for (spec, cert, key) in pki::member_certs(m, c) {
        ca.ensure_cert(&spec, &cert, &key, pki::Lifetime::of(c))?;
    }
    Ok(())
}

/// Writes the etcd environment file and the unit, or (kubelet mode) the static pod manifest.
/// Under systemd, first makes sure the `etcd` user exists and owns what etcd needs
/// (`own_member_files`); an etcd that runs under a different unit (one an earlier etcdadm
/// wrote, which ran etcd as root) is stopped first, and the start phase starts it again.
pub fn configure(c: &Config, m: &LocalMember, b: &ClusterBootstrap) -> Result<()> {
    if c.init_system == InitSystem::Kubelet {
        write_files(&[(&c.pod_manifest(), service::render_pod_manifest(m, c, b), MODE_PUBLIC)])?;
        return Ok(());
    }
    write_units(c, m, Some(service::render_env(m, c, b)))?;
    Ok(())
}

/// The ownership and units of a member set up by an earlier etcdadm (etcd running as root,
/// unsandboxed) are moved to this version's: run by a healthy member's `init`/`join` re-run.
/// etcd restarts once; its data stays. Returns whether anything changed.
pub async fn migrate(c: &Config, m: &LocalMember) -> Result<bool> {
    if !needs_migration(c, m)? {
        return Ok(false);
    }
    migrate_units(c, m)?;
    let unit = c.unit_name();
    if let Err(e) = Systemctl::reset_failed(&unit) {
        warn!(error = %e, "cannot reset the unit's failed state");
    }
    Systemctl::start_no_block(&[unit.as_str()])?;
    wait_healthy(c, m).await?;
    info!(member = %m.name, "etcd runs as {} in the sandboxed unit", service::user::ETCD_USER);
    Ok(true)
}

/// The part of `migrate` before etcd starts again (`upgrade` restarts etcd itself): stops
/// etcd if its unit changes, hands its files to the `etcd` user, writes the units.
pub fn migrate_units(c: &Config, m: &LocalMember) -> Result<bool> {
    info!(unit = %c.unit_name(), user = service::user::ETCD_USER, "moving etcd to its own user and the sandboxed unit; etcd restarts");
    write_units(c, m, None)
}

/// Whether the etcd unit on disk is not the one this version writes, or a file etcd needs
/// is not owned as `own_member_files` leaves it (never in kubelet mode: the pod runs as
/// root, see README).
pub fn needs_migration(c: &Config, m: &LocalMember) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    if c.init_system == InitSystem::Kubelet {
        return Ok(false);
    }
    if std::fs::read_to_string(&*c.unit_file).ok().as_deref() != Some(&service::render_unit(c)) {
        return Ok(true);
    }
    let ids = service::user::ensure_user()?;
    let owned_by = |p: &std::path::Path, want: service::user::Ids| {
        std::fs::metadata(p).is_ok_and(|x| (x.uid(), x.gid()) == (want.uid, want.gid))
    };
    Ok(!owned_by(&c.data_dir, ids)
        || !owned_by(&m.pki.server_key, ids)
        || !owned_by(&m.pki.peer_key, ids)
        || (m.pki.ca_key.exists() && !owned_by(&m.pki.ca_key, service::user::Ids::ROOT)))
}

/// Writes the etcd unit (and `env` when given) and the timers' units, and hands etcd's
/// files to the `etcd` user. An etcd running under a unit about to change is stopped first,
/// so that no file it writes afterwards is left root's. Returns whether anything changed.
fn write_units(c: &Config, m: &LocalMember, env: Option<String>) -> Result<bool> {
    let ids = service::user::ensure_user()?;
    let unit = c.unit_name();
    let unit_changes =
        std::fs::read_to_string(&*c.unit_file).ok().as_deref() != Some(&service::render_unit(c));
    if unit_changes
        && matches!(Systemctl::state(&unit).as_str(), "active" | "activating" | "reloading")
    {
        info!(%unit, "the etcd unit changes; stopping etcd so that it restarts under the new one");
        Systemctl::stop(&unit)?;
    }
    let mut changed = own_member_files(c, m, ids)?;
    // etcd reads its environment file when it starts: writing it needs no daemon-reload.
    if let Some(env) = env {
        changed |= write_files(&[(&c.env_file.to_path_buf(), env, MODE_PUBLIC)])?;
    }
    changed |= write_unit_files(c)?;
    Ok(changed)
}

/// Bootstrap's head start on a first boot, run while it discovers its peers: the `etcd`
/// user, and the etcd and timer units (with a `daemon-reload` only if systemd knew one of
/// them: `write_unit_files`). None of these depends on the decision or the member's name,
/// so once bootstrap has decided, `configure` writes only the environment file. Does nothing
/// in kubelet mode, or when the etcd unit exists already (then `configure` decides what
/// changes).
/// Returns whether it wrote the units.
pub fn prepare_units(c: &Config) -> Result<bool> {
    if c.init_system == InitSystem::Kubelet || c.unit_file.exists() {
        return Ok(false);
    }
    // Side by side: the units name the user, and systemd looks it up only when etcd starts.
    let (user, units) = std::thread::scope(|s| {
        let user = s.spawn(service::user::ensure_user);
        let units = write_unit_files(c);
        (user.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), units)
    });
    user?;
    units
}

/// `prepare_units` on a thread of its own, while something else is awaited (bootstrap's
/// discovery, join's download). Failures are only logged: `configure` does the same work
/// again and reports it.
pub struct UnitsAhead {
    task: tokio::task::JoinHandle<Result<bool>>,
    /// When the units are written, for the log: "while discovering", ...
    during: &'static str,
}

impl UnitsAhead {
    pub fn start(c: &Config, during: &'static str) -> UnitsAhead {
        let c = c.clone();
        UnitsAhead { task: tokio::task::spawn_blocking(move || prepare_units(&c)), during }
    }

    /// Waits for them; whether it wrote the units.
    pub async fn finish(self) -> bool {
        let during = self.during;
        match self.task.await {
            Ok(Ok(wrote)) => {
                if wrote {
                    info!("units written {during}");
                }
                wrote
            }
            Ok(Err(e)) => {
                warn!("writing the units {during} failed: {e}");
                false
            }
            Err(e) => {
                warn!("writing the units {during} stopped: {e}");
                false
            }
        }
    }

    /// Waits for them and removes the units again if it wrote them (`unprepare_units`):
    /// what they were written for failed.
    pub async fn undo(self, c: &Config) {
        let during = self.during;
        if !self.finish().await {
            return;
        }
        let c = c.clone();
        match tokio::task::spawn_blocking(move || unprepare_units(&c)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!("cannot remove the units written {during}: {e}"),
            Err(e) => warn!("removing the units written {during} stopped: {e}"),
        }
    }
}

/// Writes the etcd unit and the timers' units, and the directories their sandboxes need;
/// reloads systemd once if a unit it knew changed (`Systemctl::all_unknown`: none when all
/// are new to it). Returns whether a unit changed.
fn write_unit_files(c: &Config) -> Result<bool> {
    let create_dir = |path: &std::path::Path, mode, setting| {
        crate::fsutil::create_dir_with_mode_if_missing(path, mode)
            .map_err(|source| PhaseError::CreateDir { path: path.to_path_buf(), setting, source })
    };
    create_dir(&c.backup_dir, 0o700, "backup-dir")?;
    // The timers' sandboxes may write the metrics directory but cannot create it.
    if !c.metrics_textfile_dir.as_os_str().is_empty() {
        create_dir(&c.metrics_textfile_dir, 0o755, "metrics-textfile-dir")?;
    }
    let files = unit_files(c)?;
    let names: Vec<&str> =
        files.iter().filter_map(|(p, _)| p.file_name().and_then(|n| n.to_str())).collect();
    // On a first install systemd knows none of them and loads each when it first starts.
    let differs =
        files.iter().any(|(p, t)| std::fs::read_to_string(p).ok().as_deref() != Some(t.as_str()));
    let first = differs && Systemctl::all_unknown(&names);
    let refs: Vec<_> = files.iter().map(|(p, t)| (p, t.clone(), MODE_PUBLIC)).collect();
    let changed = write_files(&refs)?;
    if changed && first {
        info!("new units: systemd loads them when they start, no daemon-reload");
    } else if changed {
        Systemctl::daemon_reload()?;
    }
    Ok(changed)
}

/// Undoes `prepare_units` after a bootstrap that failed before it decided to form or join,
/// or a join whose release failed: removes each unit that still holds what this version
/// writes (such a failure leaves no etcd unit behind), and reloads systemd. The `etcd` user
/// stays. Returns whether it removed any.
pub fn unprepare_units(c: &Config) -> Result<bool> {
    let mut removed = false;
    for (path, text) in unit_files(c)? {
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            std::fs::remove_file(&path).map_err(on_file("cannot remove", path.clone()))?;
            info!(file = %path.display(), "removed: written ahead of a step that failed");
            removed = true;
        }
    }
    if removed {
        Systemctl::daemon_reload()?;
    }
    Ok(removed)
}

/// The etcd unit and the timers' units, as this version writes them.
fn unit_files(c: &Config) -> Result<Vec<(PathBuf, String)>> {
    let etcdadm = std::env::current_exe().map_err(PhaseError::CurrentExe)?;
    let [renew_service, renew_timer, backup_service, backup_timer, defrag_service, defrag_timer] =
        c.timer_units();
    Ok(vec![
        (c.unit_file.to_path_buf(), service::render_unit(c)),
        (renew_service, service::render_renew_service(c, &etcdadm)),
        (renew_timer, service::render_renew_timer()),
        (backup_service, service::render_backup_service(c, &etcdadm)),
        (backup_timer, service::render_backup_timer(c)),
        (defrag_service, service::render_defrag_service(c, &etcdadm)),
        (defrag_timer, service::render_defrag_timer(c)),
    ])
}

/// Gives etcd's files to the `etcd` user: the data directory (0700) and everything in it,
/// the server and peer keys (0600). The CA key becomes root's, 0600: etcd needs only the CA
/// certificate, and `certs renew`, `join` and `bootstrap` run as root. Returns whether
/// anything changed.
pub fn own_member_files(
    c: &Config,
    m: &LocalMember,
    ids: service::user::Ids,
) -> std::result::Result<bool, UserError> {
    use crate::fsutil::MODE_PRIVATE;
    use service::user::{own_file, own_tree, Ids};
    let mut changed = own_tree(&c.data_dir, ids)?;
    for key in [&m.pki.server_key, &m.pki.peer_key] {
        if key.exists() {
            changed |= own_file(key, ids, MODE_PRIVATE)?;
        }
    }
    if m.pki.ca_key.exists() {
        changed |= own_file(&m.pki.ca_key, Ids::ROOT, MODE_PRIVATE)?;
    }
    if changed {
        info!(user = service::user::ETCD_USER, data_dir = %c.data_dir.display(), "etcd's data directory and member keys belong to the etcd user; the CA key to root");
    }
    Ok(changed)
}

/// Where `etcdctl` for root points to the wrapper: /usr/local/bin is on root's PATH in a
/// login shell on Debian and in sudo's secure_path, unlike /opt/bin.
pub const ETCDCTL_LINK: &str = "/usr/local/bin/etcdctl";

/// Writes the etcdctl environment file and the `etcdctl.sh` wrapper, and links `etcdctl` on
/// root's PATH to the wrapper so `etcdctl member list` just works.
pub fn etcdctl(c: &Config, m: &LocalMember) -> Result<()> {
    let wrapper = c.install_dir.join("etcdctl.sh");
    write_files(&[
        (&c.etcdctl_env_file.to_path_buf(), service::render_etcdctl_env(m), MODE_PUBLIC),
        (&wrapper, service::render_etcdctl_wrapper(c), MODE_EXEC),
    ])?;
    link_etcdctl(std::path::Path::new(ETCDCTL_LINK), &wrapper);
    Ok(())
}

/// Links `link` to the wrapper unless something else is there already (a user's etcdctl is
/// left alone) or the link would replace the live binary (install-dir is the link's
/// directory). Failing to link is not fatal: on a read-only /usr (Flatcar) the wrapper stays
/// where it is and the warning names it.
pub fn link_etcdctl(link: &std::path::Path, wrapper: &std::path::Path) {
    if link.parent() == wrapper.parent() {
        return;
    }
    let result = match std::fs::read_link(link) {
        Ok(to) if to == wrapper => return,
        Ok(to) => Err(format!("it is a link to {}, left alone", to.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => link
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::os::unix::fs::symlink(wrapper, link))
            .map_err(|e| e.to_string()),
        Err(_) if link.symlink_metadata().is_ok() => Err("it exists, left alone".into()),
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => info!(link = %link.display(), to = %wrapper.display(), "linked etcdctl"),
        Err(why) => warn!(
            link = %link.display(),
            "cannot link etcdctl to the wrapper ({why}); run {} instead",
            wrapper.display()
        ),
    }
}

/// Removes the link `link_etcdctl` made, and only that.
pub fn unlink_etcdctl(link: &std::path::Path, wrapper: &std::path::Path) -> Result<()> {
    if std::fs::read_link(link).is_ok_and(|to| to == wrapper) {
        std::fs::remove_file(link).map_err(on_file("cannot remove", link))?;
        info!(file = %link.display(), "removed");
    }
    Ok(())
}

/// Writes each file unless it already has that content and mode; returns whether any changed.
fn write_files(files: &[(&std::path::PathBuf, String, u32)]) -> Result<bool> {
    let mut changed = false;
    for (path, text, mode) in files {
        if write_if_changed(path, text.as_bytes(), *mode)
            .map_err(on_file("cannot write", path.as_path()))?
        {
            info!(file = %path.display(), "wrote");
            changed = true;
        }
    }
    Ok(changed)
}

/// Enables etcd and starts it unless it runs already. In kubelet mode the kubelet starts the
/// static pod once its manifest is in place.
pub fn start(c: &Config) -> Result<()> {
    if c.init_system == InitSystem::Kubelet {
        info!(manifest = %c.pod_manifest().display(), "the kubelet starts etcd from its static pod manifest");
        return Ok(());
    }
    // etcd's start job first, on its own: enabling the units, which a start with them
    // would wait for, took about 10 ms of an idle machine (twice that on a busy first
    // boot). Then one call enables etcd and starts and enables the timers (all written by
    // `configure`, which reloaded systemd if it knew one of them already); starting a unit
    // that runs already changes nothing. Then the installed binaries go to disk in the
    // background: etcd runs from the page cache meanwhile, and `make_durable` (before the
    // member is recorded) finds little left to write.
    let unit = c.unit_name();
    let mut units = vec![unit.as_str()];
    units.extend(crate::config::TIMERS);
    info!(%unit, "starting etcd");
    Systemctl::start_no_block(&[unit.as_str()])?;
    Systemctl::enable_now_no_block(&units)?;
    sync_in_background(c);
    Ok(())
}

/// Waits until the local member answers health checks; returns a connection to it.
pub async fn wait_healthy(c: &Config, m: &LocalMember) -> Result<Cluster> {
    let tls = TlsFiles::client(&m.pki);
    let endpoint = m.local_endpoint.clone();
    let result =
        crate::cluster::poll_until("waiting for etcd to become healthy", c.timeout(), || async {
            let cl = Cluster::connect(&endpoint, &tls).await?;
            cl.check_health().await?;
            Ok(cl)
        })
        .await;
    result.map_err(|source| PhaseError::NotHealthy {
        endpoint: endpoint.clone(),
        seconds: c.timeout_seconds,
        state: service_state(c),
        logs: match c.init_system {
            InitSystem::Systemd => format!("`journalctl -u {}`", c.unit_name()),
            InitSystem::Kubelet => {
                "the kubelet's log and `crictl logs` of the etcd container".into()
            }
        },
        source: Box::new(source),
    })
}

/// Who runs etcd and in what state, for messages and `info`.
pub fn service_state(c: &Config) -> String {
    match c.init_system {
        InitSystem::Systemd => {
            format!("unit {} is {}", c.unit_name(), Systemctl::state(&c.unit_name()))
        }
        InitSystem::Kubelet => format!(
            "static pod {} {}",
            c.pod_manifest().display(),
            if c.pod_manifest().exists() { "present" } else { "missing" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{link_etcdctl, own_member_files, unlink_etcdctl};
    use crate::config::Config;
    use crate::member::LocalMember;
    use crate::service::user::{Ids, UserError};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::path::Path;

    /// The data directory (and what is in it) and the server and peer keys become the etcd
    /// user's; the CA key root's 0600; the client key is left alone. Giving files away
    /// needs root, as etcdadm runs; without it the CA key is the file that cannot be given.
    #[test]
    fn own_member_files_gives_etcd_its_files_and_root_the_ca_key() {
        let d = tempfile::tempdir().unwrap();
        let c = Config {
            data_dir: d.path().join("data").into(),
            certs_dir: d.path().join("pki").into(),
            ..Default::default()
        };
        let m = LocalMember::resolve(&c, || Ok("m1".into()), || Ok("10.0.0.1".parse().unwrap()))
            .unwrap();
        std::fs::create_dir_all(c.data_dir.join("member/wal")).unwrap();
        std::fs::write(c.data_dir.join("member/wal/0.wal"), "w").unwrap();
        for f in [&m.pki.server_key, &m.pki.peer_key, &m.pki.ca_key, &m.pki.client_key] {
            crate::fsutil::write_atomic(f, b"key", 0o644).unwrap();
        }
        let etcd = Ids { uid: 4321, gid: 4322 };
        let result = own_member_files(&c, &m, etcd);
        if !nix::unistd::Uid::effective().is_root() {
            assert!(matches!(result, Err(UserError::Chown { .. })), "{result:?}");
            return;
        }
        assert!(result.unwrap(), "reported no change");
        let owner = |p: &Path| {
            let x = std::fs::metadata(p).unwrap();
            (x.uid(), x.gid(), x.permissions().mode() & 0o7777)
        };
        assert_eq!(owner(&c.data_dir), (4321, 4322, 0o700), "data dir");
        assert_eq!(owner(&c.data_dir.join("member/wal/0.wal")).0, 4321, "file in the data dir");
        assert_eq!(owner(&m.pki.server_key), (4321, 4322, 0o600), "server key");
        assert_eq!(owner(&m.pki.peer_key), (4321, 4322, 0o600), "peer key");
        assert_eq!(owner(&m.pki.ca_key), (0, 0, 0o600), "CA key");
        assert_eq!(owner(&m.pki.client_key), (0, 0, 0o644), "client key untouched");
        assert!(!own_member_files(&c, &m, etcd).unwrap(), "a second run changes nothing");
    }

    #[test]
    fn etcdctl_link_points_to_the_wrapper_and_unlink_removes_it() {
        let d = tempfile::tempdir().unwrap();
        let (link, wrapper) =
            (d.path().join("usr/local/bin/etcdctl"), d.path().join("opt/etcdctl.sh"));
        link_etcdctl(&link, &wrapper);
        assert_eq!(std::fs::read_link(&link).unwrap(), wrapper);
        link_etcdctl(&link, &wrapper);
        assert_eq!(std::fs::read_link(&link).unwrap(), wrapper);
        unlink_etcdctl(&link, &wrapper).unwrap();
        assert!(link.symlink_metadata().is_err(), "link still there");
        unlink_etcdctl(&link, &wrapper).unwrap();
    }

    #[test]
    fn an_etcdctl_that_etcdadm_did_not_link_is_neither_replaced_nor_removed() {
        let d = tempfile::tempdir().unwrap();
        let wrapper = d.path().join("etcdctl.sh");
        let file = d.path().join("bin/etcdctl");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "user's etcdctl").unwrap();
        link_etcdctl(&file, &wrapper);
        unlink_etcdctl(&file, &wrapper).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "user's etcdctl");
        let other = d.path().join("other");
        std::os::unix::fs::symlink("/elsewhere/etcdctl", &other).unwrap();
        link_etcdctl(&other, &wrapper);
        unlink_etcdctl(&other, &wrapper).unwrap();
        assert_eq!(std::fs::read_link(&other).unwrap(), Path::new("/elsewhere/etcdctl"));
    }

    #[test]
    fn no_etcdctl_link_over_the_binary_when_install_dir_is_the_links_directory() {
        let d = tempfile::tempdir().unwrap();
        let (link, wrapper) = (d.path().join("etcdctl"), d.path().join("etcdctl.sh"));
        link_etcdctl(&link, &wrapper);
        assert!(link.symlink_metadata().is_err(), "linked over the binary's path");
    }
}
