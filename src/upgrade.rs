//! Upgrading this member's etcd to release V in place (`etcdadm upgrade --version V`), one
//! member at a time: preflight (a member set up here, every member started and healthy,
//! every member's version read through the status API, V a supported step), download and
//! verify V, snapshot the member, keep the running binaries and stage V's beside them
//! (`release::swap`), swap them, restart etcd and wait until the member runs V and the
//! cluster is healthy. On failure the previous binaries are swapped back, etcd restarted and
//! waited for, and the command fails saying what failed and that it rolled back.

use crate::backup::{self, BackupError};
use crate::cluster::{Cluster, ClusterError, TlsFiles};
use crate::config::{Config, EtcdVersion, InitSystem, Sha256Hex};
use crate::member::LocalMember;
use crate::membership::MembershipError;
use crate::phases::{self, PhaseError};
use crate::release::known_bad::KnownBadError;
use crate::release::version::StepError;
use crate::release::{binary_version, known_bad, swap, version, ReleaseError, VersionError};
use crate::service::{Systemctl, SystemctlError};
use crate::state::{Progress, State, StateError};
use crate::stdout::StdoutError;
use semver::Version;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Why an upgrade did not happen or failed. Up to the swap, each says "nothing was changed";
/// after it, what was rolled back and where the kept binaries and the snapshot are.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Version(#[from] VersionError),
    #[error(transparent)]
    Step(Box<StepError>),
    #[error(transparent)]
    KnownBad(#[from] KnownBadError),
    #[error(transparent)]
    Membership(Box<MembershipError>),
    #[error(transparent)]
    Phase(#[from] PhaseError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(
        "etcdadm upgrade needs --version: the etcd version to move this member to (e.g. \
         --version 3.5.30)"
    )]
    NoVersion,
    #[error(
        "no member set up by etcdadm on this machine ({} does not exist); nothing to upgrade",
        .0.display()
    )]
    NoMember(PathBuf),
    #[error(
        "member {name} is not completely set up (phase {progress} in {}); finish it with \
         `etcdadm {origin}` before upgrading",
        state_file.display()
    )]
    Unfinished { name: String, progress: &'static str, state_file: PathBuf, origin: &'static str },
    #[error(
        "member {name} runs as a kubelet static pod ({}); etcdadm upgrade swaps the binaries \
         of a systemd unit. Change the image tag in the manifest instead",
        manifest.display()
    )]
    Kubelet { name: String, manifest: PathBuf },
    #[error("preflight: cannot read the cluster's member list; nothing was changed")]
    Survey(#[source] ClusterError),
    #[error(
        "preflight: {0}; upgrade one member at a time, while every member is started and \
         healthy (`etcdadm status`); nothing was changed"
    )]
    Unhealthy(String),
    #[error("{0}")]
    LocalVersion(String),
    #[error("cannot upgrade member {member} to etcd {target}; nothing was changed")]
    Refused { member: String, target: Version, source: Box<StepError> },
    #[error("cannot get etcd {target}; nothing was changed")]
    Fetch { target: Version, source: ReleaseError },
    #[error("cannot snapshot the member before the upgrade; nothing was changed")]
    Snapshot(#[source] BackupError),
    #[error("cannot keep a copy of the running etcd {old} for a rollback; it was not touched")]
    KeepRunning { old: String, source: ReleaseError },
    #[error(
        "the member runs etcd {old} but {}/etcd is {live} and no copy of {old} is kept in {}; \
         nothing was changed. Reinstall {old} (`etcdadm init phase install --version {old}` \
         with the member's other settings) first",
        install_dir.display(),
        kept_dir.display()
    )]
    NoKeptCopy { old: String, live: String, install_dir: PathBuf, kept_dir: PathBuf },
    #[error("cannot stage the binaries of etcd {new}; the running etcd {old} was not touched")]
    Stage { new: String, old: String, source: ReleaseError },
    #[error(
        "member {member} runs etcd {target}, but {}/etcd is {installed}; restart etcd \
         (`systemctl restart {unit}`) or install {target} by hand before running upgrade again",
        install_dir.display()
    )]
    InstalledDiffers {
        member: String,
        target: String,
        install_dir: PathBuf,
        installed: String,
        unit: String,
    },
    #[error("etcd {version} did not start (see `journalctl -u {unit}`)")]
    NotStarted { version: String, unit: String, source: SystemctlError },
    #[error(
        "after the restart with etcd {version}, the member and the cluster were not healthy \
         within {seconds}s: {problem} ({state})"
    )]
    NotHealthy { version: String, seconds: u64, problem: String, state: String },
    #[error(
        "upgrade of member {member} to etcd {new} failed; rolled back to etcd {old}, which runs \
         and is healthy (snapshot taken before: {})",
        snapshot.display()
    )]
    RolledBack {
        member: String,
        new: String,
        old: String,
        snapshot: PathBuf,
        source: Box<UpgradeError>,
    },
    #[error(
        "upgrade of member {} to etcd {} failed, and so did the rollback to etcd {} ({}). The \
         binaries of {} are in {}, the snapshot taken before is {}; see `journalctl -u {}`",
        .left.member,
        .left.new,
        .left.old,
        .left.rollback,
        .left.old,
        .left.kept_dir.display(),
        .left.snapshot.display(),
        .left.unit
    )]
    RollbackFailed { left: Box<FailedRollback>, source: Box<UpgradeError> },
}

impl From<StepError> for UpgradeError {
    fn from(e: StepError) -> Self {
        UpgradeError::Step(Box::new(e))
    }
}

impl From<MembershipError> for UpgradeError {
    fn from(e: MembershipError) -> Self {
        UpgradeError::Membership(Box::new(e))
    }
}

type Result<T> = std::result::Result<T, UpgradeError>;

/// What a failed rollback left: the member, the versions, why the rollback failed, and
/// where the previous binaries and the snapshot are.
#[derive(Debug)]
pub struct FailedRollback {
    pub member: String,
    pub new: String,
    pub old: String,
    pub rollback: String,
    pub kept_dir: PathBuf,
    pub snapshot: PathBuf,
    pub unit: String,
}

/// Why the operator's side stopped the upgrade (`Hooks`): it was declined or could not be
/// asked, before anything changed; or its output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{0}")]
    Declined(String),
    #[error("cannot print the upgrade's progress")]
    Output(#[from] StdoutError),
}

/// What `upgrade` was asked for besides the configuration.
pub struct Request {
    /// `--version`: the release to move to.
    pub version: Option<EtcdVersion>,
    /// `--release-sha256`: a pinned digest of that release's tarball.
    pub release_sha256: Option<Sha256Hex>,
}

/// Where the upgrade meets its user: asked once, after the preflight and the download,
/// before anything changes (an error cancels); told what it kept on the way.
pub struct Hooks<'a> {
    pub confirm: &'a dyn Fn(&str) -> std::result::Result<(), HookError>,
    pub say: &'a dyn Fn(&str) -> std::result::Result<(), HookError>,
}

/// How an upgrade ended well.
pub enum Outcome {
    /// The member runs the target already (an interrupted run's record is completed).
    Current { member: String, version: Version },
    /// Upgraded; the previous binaries stay in `kept`.
    Upgraded { member: String, from: String, to: String, kept: std::path::PathBuf },
}

pub async fn run(requested: Config, req: Request, hooks: Hooks<'_>) -> Result<Outcome> {
    let target_text = req.version.ok_or(UpgradeError::NoVersion)?;
    let target = version::parse("--version", &target_text)?;
    known_bad::check(&target_text, "--version", requested.allow_known_bad_release)?;
    let mut state = State::load(&requested.state_file)?
        .ok_or_else(|| UpgradeError::NoMember(requested.state_file.to_path_buf()))?;
    let name = state.config.name.as_deref().unwrap_or_default().to_string();
    if state.progress != Progress::Member {
        return Err(UpgradeError::Unfinished {
            name,
            progress: state.progress.as_str(),
            state_file: requested.state_file.to_path_buf(),
            origin: state.origin.as_str(),
        });
    }
    if state.config.init_system == InitSystem::Kubelet {
        return Err(UpgradeError::Kubelet { name, manifest: state.config.pod_manifest() });
    }
    let m = state.member()?;
    let c = upgrade_config(&state.config, &requested, &target_text, req.release_sha256);
    let tls = crate::cluster::TlsFiles::client(&m.pki);

    // Preflight: nothing changes unless every member is healthy and the step is supported.
    let survey = Survey::take(&m, &tls).await.map_err(UpgradeError::Survey)?;
    survey.require_healthy().map_err(UpgradeError::Unhealthy)?;
    let current = survey.local_version().map_err(UpgradeError::LocalVersion)?;
    let step = version::plan(&current, &target, &survey.versions()).map_err(|source| {
        UpgradeError::Refused {
            member: m.name.clone(),
            target: target.clone(),
            source: Box::new(source),
        }
    })?;
    if step == version::Step::Current {
        return already_current(&mut state, &c, &target);
    }
    info!(member = %m.name, from = %current, to = %target, ?step, "preflight passed");

    // Everything that can be checked before the system changes: the release.
    // From the verified archive: the live binaries may be the target's after an interrupted
    // run, and are not what gets kept.
    let release = crate::release::Release::from_config(&c)
        .unpack_verified(None)
        .await
        .map_err(|source| UpgradeError::Fetch { target: target.clone(), source })?;
    (hooks.confirm)(&format!(
        "upgrading member {} from etcd {current} to {target} (etcd restarts on this machine)",
        m.name
    ))?;

    let snap = backup::take(&state.config, &m, None, None).await.map_err(UpgradeError::Snapshot)?;
    (hooks.say)(&format!("snapshot of member {} before the upgrade: {}", m.name, snap.display()))?;

    let (old, new) = (current.to_string(), target.to_string());
    keep_running_binaries(&c.install_dir, &old)?;
    swap::keep(release.dir(), &c.install_dir, &new).map_err(|source| UpgradeError::Stage {
        new: new.clone(),
        old: old.clone(),
        source,
    })?;

    // The restart (or the migration's stop) should not cost the cluster an election.
    crate::membership::planned_stop::prepare(&m, &state, "the upgrade's restart", false).await?;
    // A member set up by an earlier version moves to the etcd user with this restart.
    if phases::needs_migration(&c, &m)? {
        phases::migrate_units(&c, &m)?;
    }
    if let Err(e) = switch_and_wait(&c, &m, &tls, &new).await {
        warn!(error = %crate::error_chain::error_chain(&e), to = %old, "upgrade failed; rolling back");
        let (member, source) = (m.name.clone(), Box::new(e));
        return Err(match switch_and_wait(&c, &m, &tls, &old).await {
            Ok(()) => UpgradeError::RolledBack { member, new, old, snapshot: snap, source },
            Err(rb) => UpgradeError::RollbackFailed {
                left: Box::new(FailedRollback {
                    member,
                    rollback: crate::error_chain::error_chain(&rb),
                    kept_dir: swap::versioned_dir(&c.install_dir, &old),
                    new,
                    old,
                    snapshot: snap,
                    unit: c.unit_name(),
                }),
                source,
            },
        });
    }

    state.config.version = target_text.clone();
    state.config.release_url = c.release_url.clone();
    state.save()?;
    for dir in swap::prune(&c.install_dir, &[&old, &new])? {
        info!(dir = %dir.display(), "removed binaries of an older version");
    }
    let kept = swap::versioned_dir(&c.install_dir, &old);
    Ok(Outcome::Upgraded { member: m.name.clone(), from: old, to: new, kept })
}

/// The configuration of the upgraded member: the recorded one with the new version, and the
/// download and timing settings (which may change freely between runs) from the flags and
/// configuration files where they set them, else as recorded. A pinned digest counts only
/// from the command line: one recorded or configured belongs to the old release.
fn upgrade_config(
    recorded: &Config,
    requested: &Config,
    version: &EtcdVersion,
    pinned: Option<Sha256Hex>,
) -> Config {
    let default = Config::default();
    fn pick<T: PartialEq + Clone>(requested: &T, recorded: &T, default: &T) -> T {
        if requested != default { requested } else { recorded }.clone()
    }
    Config {
        version: version.clone(),
        allow_known_bad_release: requested.allow_known_bad_release,
        release_url: pick(&requested.release_url, &recorded.release_url, &default.release_url),
        release_sha256: pinned,
        arch: pick(&requested.arch, &recorded.arch, &default.arch),
        cache_dir: pick(&requested.cache_dir, &recorded.cache_dir, &default.cache_dir),
        download_connect_timeout_seconds: pick(
            &requested.download_connect_timeout_seconds,
            &recorded.download_connect_timeout_seconds,
            &default.download_connect_timeout_seconds,
        ),
        timeout_seconds: pick(
            &requested.timeout_seconds,
            &recorded.timeout_seconds,
            &default.timeout_seconds,
        ),
        ..recorded.clone()
    }
}

/// The member runs the target already: record it if an interrupted run did not, and say so.
fn already_current(state: &mut State, c: &Config, target: &Version) -> Result<Outcome> {
    let installed = binary_version(&c.install_dir)?;
    if installed != target.to_string() {
        return Err(UpgradeError::InstalledDiffers {
            member: state.config.name.as_deref().unwrap_or("?").to_string(),
            target: target.to_string(),
            install_dir: c.install_dir.to_path_buf(),
            installed,
            unit: c.unit_name(),
        });
    }
    if state.config.version != *target.to_string() {
        state.config.version =
            target.to_string().parse().expect("a semver version is an etcd version");
        state.save()?;
        info!(file = %state.config.state_file.display(), version = %target, "recorded the version");
    }
    Ok(Outcome::Current {
        member: state.config.name.as_deref().unwrap_or("?").to_string(),
        version: target.clone(),
    })
}

/// Keeps the binaries the member runs now (version `old`) for a rollback. After an
/// interrupted upgrade the live files may be the new release already; the copy kept then
/// is used.
fn keep_running_binaries(install_dir: &Path, old: &str) -> Result<()> {
    match binary_version(install_dir) {
        Ok(v) if v == old => {
            swap::keep(install_dir, install_dir, old)
                .map_err(|source| UpgradeError::KeepRunning { old: old.into(), source })?;
        }
        live if swap::is_kept(install_dir, old) => {
            let live = live.unwrap_or_else(|e| e.chain());
            info!(%live, kept = %swap::versioned_dir(install_dir, old).display(), "the live binaries are not the running etcd's; using the copy kept by an earlier run");
        }
        live => {
            return Err(UpgradeError::NoKeptCopy {
                old: old.into(),
                live: live.unwrap_or_else(|e| e.chain()),
                install_dir: install_dir.to_path_buf(),
                kept_dir: swap::versioned_dir(install_dir, old),
            })
        }
    }
    Ok(())
}

/// Makes `version` the live binaries, restarts etcd and waits until the member runs it and
/// the cluster is healthy.
async fn switch_and_wait(c: &Config, m: &LocalMember, tls: &TlsFiles, version: &str) -> Result<()> {
    swap::activate(&c.install_dir, version)?;
    let unit = c.unit_name();
    if let Err(e) = Systemctl::reset_failed(&unit) {
        warn!(error = %e, "cannot reset the unit's failed state");
    }
    info!(%unit, %version, "restarting etcd");
    Systemctl::restart_wait(&unit, c.timeout()).await.map_err(|source| {
        UpgradeError::NotStarted { version: version.into(), unit: unit.clone(), source }
    })?;
    let deadline = Instant::now() + c.timeout();
    loop {
        let problem = match Survey::take(m, tls).await {
            Ok(s) => match (s.require_healthy(), s.local_version()) {
                (Ok(()), Ok(v)) if v.to_string() == version => return Ok(()),
                (Ok(()), Ok(v)) => format!("member {} reports etcd {v}", m.name),
                (Err(e), _) | (_, Err(e)) => e,
            },
            Err(e) => crate::error_chain::error_chain(&e),
        };
        if Instant::now() >= deadline {
            return Err(UpgradeError::NotHealthy {
                version: version.into(),
                seconds: c.timeout_seconds,
                problem,
                state: phases::service_state(c),
            });
        }
        info!(%problem, "waiting for the member and the cluster to be healthy");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

const NOT_LISTED: &str = "this machine's member is not in the cluster's member list";

/// Every member as seen from this machine: started, a voter, healthy, and its version.
struct Survey {
    members: Vec<Seen>,
}

struct Seen {
    name: String,
    endpoint: String,
    is_local: bool,
    /// The version it reports, or why it could not be read or is not healthy.
    health: std::result::Result<Version, String>,
}

impl Survey {
    async fn take(m: &LocalMember, tls: &TlsFiles) -> std::result::Result<Survey, ClusterError> {
        let local = Cluster::connect(&m.local_endpoint, tls).await?;
        let list = local.members().await?;
        let mut members = Vec::new();
        for x in list {
            let is_local = x.peer_urls.contains(&m.peer_url);
            let name =
                if x.name.is_empty() { crate::cluster::format_id(x.id) } else { x.name.clone() };
            let endpoint = if is_local {
                m.local_endpoint.clone()
            } else {
                x.client_urls.first().cloned().unwrap_or_default()
            };
            let health = if !x.started() {
                Err("has not started".to_string())
            } else if x.is_learner {
                Err("is a learner (a join is in progress)".to_string())
            } else {
                probe(&endpoint, tls, &name).await
            };
            members.push(Seen { name, endpoint, is_local, health });
        }
        Ok(Survey { members })
    }

    /// Every member started, a voter and healthy, this machine's among them; else what is
    /// not.
    fn require_healthy(&self) -> std::result::Result<(), String> {
        let problems: Vec<String> = self
            .members
            .iter()
            .filter_map(|s| {
                s.health.as_ref().err().map(|e| format!("member {} ({}) {e}", s.name, s.endpoint))
            })
            .collect();
        if !problems.is_empty() {
            return Err(format!("the cluster is not healthy: {}", problems.join("; ")));
        }
        if !self.members.iter().any(|s| s.is_local) {
            return Err(NOT_LISTED.into());
        }
        Ok(())
    }

    /// The version this machine's member runs, else why it cannot be read.
    fn local_version(&self) -> std::result::Result<Version, String> {
        match self.members.iter().find(|s| s.is_local) {
            Some(Seen { health: Ok(v), .. }) => Ok(v.clone()),
            Some(Seen { health: Err(e), name, .. }) => {
                Err(format!("member {name} (this machine) {e}"))
            }
            None => Err(NOT_LISTED.into()),
        }
    }

    fn versions(&self) -> Vec<(String, Version)> {
        self.members
            .iter()
            .filter_map(|s| s.health.as_ref().ok().map(|v| (s.name.clone(), v.clone())))
            .collect()
    }
}

/// Health (a leader, a linearizable read) and version of one member, through its own endpoint.
async fn probe(endpoint: &str, tls: &TlsFiles, name: &str) -> std::result::Result<Version, String> {
    let cl =
        Cluster::connect(endpoint, tls).await.map_err(|e| format!("cannot be reached: {e}"))?;
    cl.check_health().await.map_err(|e| format!("is not healthy: {e}"))?;
    let status = cl.status().await.map_err(|e| format!("reports no status: {e}"))?;
    version::parse(&format!("version of member {name}"), &status.version).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_settings_come_from_flags_else_from_the_record() {
        let recorded = Config {
            version: "3.4.23".into(),
            release_url: "http://mirror.example/etcd".into(),
            release_sha256: Some("ab".repeat(32).parse().unwrap()),
            data_dir: "/srv/etcd".into(),
            timeout_seconds: 60,
            ..Default::default()
        };
        // nothing requested: the recorded mirror, no pinned digest of the old release
        let c = upgrade_config(&recorded, &Config::default(), &"3.5.1".into(), None);
        assert_eq!(
            (c.version.as_str(), c.release_url.as_str(), c.release_sha256.as_deref()),
            ("3.5.1", "http://mirror.example/etcd", None)
        );
        assert_eq!((c.data_dir.to_str(), c.timeout_seconds), (Some("/srv/etcd"), 60));
        // flags or config files win for the free settings only
        let requested = Config {
            release_url: "file:///m".into(),
            timeout_seconds: 30,
            data_dir: "/elsewhere".into(),
            ..Default::default()
        };
        let c = upgrade_config(
            &recorded,
            &requested,
            &"3.5.1".into(),
            Some("cd".repeat(32).parse().unwrap()),
        );
        assert_eq!((c.release_url.as_str(), c.timeout_seconds), ("file:///m", 30));
        assert_eq!(
            c.data_dir.to_str(),
            Some("/srv/etcd"),
            "member-defining settings stay as recorded"
        );
        assert_eq!(c.release_sha256, Some("cd".repeat(32).parse().unwrap()));
        let c = upgrade_config(
            &recorded,
            &Config { arch: Some("arm64".into()), ..Default::default() },
            &"3.5.1".into(),
            None,
        );
        assert_eq!(c.arch.as_deref(), Some("arm64"));
    }
}
