//! Backups of this member: a snapshot of its database, streamed through the v3 API into
//! `backup-dir`, checked with the release's own tool, kept `backup-keep` deep; with an S3
//! prefix (`backup-s3-url`) also uploaded there, signed, and the prefix pruned the same way.
//! `etcdadm backup` and its timer run `run`; `upgrade` takes one with `take` first.

use crate::cluster::Cluster;
use crate::cluster::ClusterError;
use crate::config::Config;
use crate::fsutil::{create_dir_with_mode, on_file, FileError, MODE_PRIVATE};
use crate::member::LocalMember;
use crate::metrics::timers;
use crate::s3::S3Error;
use crate::s3::{S3Url, Settings};
use crate::snapshot;
use crate::snapshot::SnapshotError;
use crate::state::State;
use crate::state::StateError;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use tracing::info;

/// Why a backup failed; each names the file, directory or S3 place involved.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    S3(Box<S3Error>),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("the snapshot etcd sent does not check out; nothing was kept")]
    Unchecked(#[source] SnapshotError),
    #[error("{source}\nThe local snapshot {} was kept.", kept.display())]
    Upload { kept: PathBuf, source: Box<S3Error> },
    #[error("uploaded {object}, but removing old snapshots under {prefix} failed")]
    PruneRemote { object: String, prefix: String, source: Box<S3Error> },
}

impl From<S3Error> for BackupError {
    fn from(e: S3Error) -> Self {
        BackupError::S3(Box::new(e))
    }
}

type Result<T> = std::result::Result<T, BackupError>;

/// What a backup kept: the local snapshot and, with an upload, the object it became.
pub struct Outcome {
    pub snapshot: PathBuf,
    pub object: Option<String>,
}

/// One backup of the member `state` describes; its outcome (and the snapshot's size) goes to
/// the textfile metrics, in the directory the member was set up with (which its timer's
/// sandbox lets it write). An upload failure keeps the local snapshot and says where it is.
pub async fn run(
    requested: &Config,
    state: &State,
    dir: Option<PathBuf>,
    keep: Option<usize>,
) -> Result<Outcome> {
    let metrics_dir = state.config.metrics_textfile_dir.clone();
    let mut saved = None;
    let result = backup(requested, state, dir, keep, &mut saved).await;
    let snapshot = saved.as_deref().filter(|_| result.is_ok());
    timers::record(&metrics_dir, "backup", |d| {
        timers::write_backup(d, std::time::SystemTime::now(), snapshot)
    });
    result
}

/// The backup; `saved` is set to the snapshot as soon as it is kept (the run may still fail
/// afterwards, uploading it).
async fn backup(
    requested: &Config,
    state: &State,
    dir: Option<PathBuf>,
    keep: Option<usize>,
    saved: &mut Option<PathBuf>,
) -> Result<Outcome> {
    let c = &state.config;
    let m = state.member()?;
    // S3 settings are checked before anything is done; an upload failure later keeps the
    // local snapshot.
    let upload = upload_target(requested, c, keep)?;
    let target = take(c, &m, dir, keep).await?;
    *saved = Some(target.clone());
    if let Some(db) = measure_db(&m, c.quota_backend_bytes).await {
        timers::record(&c.metrics_textfile_dir, "database size", |d| {
            timers::write_db(d, std::time::SystemTime::now(), db)
        });
    }
    let Some(u) = upload else {
        return Ok(Outcome { snapshot: target, object: None });
    };
    let kept = |e| BackupError::Upload { kept: target.clone(), source: Box::new(e) };
    // Signed with a key derived from the cluster CA key, which restore checks.
    let key =
        crate::s3::BackupKey::from_ca_key_file(&m.pki.ca_key, "sign the upload").map_err(kept)?;
    let creds = crate::s3::credentials(&c.bootstrap.metadata).await.map_err(kept)?;
    let client = crate::s3::Client::new(&u.settings, &u.prefix.bucket, &creds).map_err(kept)?;
    let object =
        crate::s3::upload_snapshot(&client, &u.prefix, &target, &key).await.map_err(kept)?;
    crate::s3::prune_remote(&client, &u.prefix, &m.name, u.keep).await.map_err(|source| {
        BackupError::PruneRemote {
            object: object.to_string(),
            prefix: u.prefix.to_string(),
            source: Box::new(source),
        }
    })?;
    Ok(Outcome { snapshot: target, object: Some(object.to_string()) })
}

/// Takes a checked snapshot of the local member into `dir` (default backup-dir), keeping the
/// newest `keep` (default backup-keep) there; returns the snapshot's path. (No upload.)
pub async fn take(
    c: &Config,
    m: &LocalMember,
    dir: Option<PathBuf>,
    keep: Option<usize>,
) -> Result<PathBuf> {
    let dir = dir.unwrap_or_else(|| c.backup_dir.to_path_buf());
    let keep = keep.unwrap_or(c.backup_keep).max(1);
    create_dir_with_mode(&dir, 0o700).map_err(on_file("cannot create", &dir))?;

    let cl = Cluster::connect_any(
        std::slice::from_ref(&m.local_endpoint),
        &crate::cluster::TlsFiles::client(&m.pki),
    )
    .await?;
    let mut part = tempfile::Builder::new()
        .prefix(".snapshot-")
        .suffix(".part")
        .tempfile_in(&dir)
        .map_err(on_file("cannot create a snapshot file in", &dir))?;
    let bytes = cl.snapshot_to(part.as_file_mut()).await?;
    part.as_file().sync_all().map_err(on_file("cannot write", part.path()))?;
    snapshot::check_status(&c.install_dir, part.path()).map_err(BackupError::Unchecked)?;
    std::fs::set_permissions(part.path(), std::fs::Permissions::from_mode(MODE_PRIVATE))
        .map_err(on_file("cannot set the mode of", part.path()))?;
    let target = unused_name(&dir, &m.name);
    part.persist(&target).map_err(|e| on_file("cannot write", &target)(e.error))?;
    info!(file = %target.display(), bytes, "snapshot saved");
    for old in prune(&dir, &m.name, keep)? {
        info!(file = %old.display(), "removed old snapshot");
    }
    Ok(target)
}

/// This member's database size (for the metrics), or None (logged) when etcd does not say.
async fn measure_db(m: &LocalMember, quota_bytes: u64) -> Option<timers::DbUsage> {
    let tls = crate::cluster::TlsFiles::client(&m.pki);
    let status = match Cluster::connect_any(std::slice::from_ref(&m.local_endpoint), &tls).await {
        Ok(cl) => cl.status().await,
        Err(e) => Err(e),
    };
    match status {
        Ok(s) => Some(timers::DbUsage {
            size_bytes: s.db_size,
            in_use_bytes: s.db_size_in_use,
            quota_bytes,
        }),
        Err(e) => {
            tracing::warn!("cannot measure the database for the metrics: {e}");
            None
        }
    }
}

/// Where and how a backup is uploaded.
struct Upload {
    prefix: S3Url,
    settings: Settings,
    keep: usize,
}

/// The upload settings: each from the command line and configuration file of this run,
/// else from the configuration the member was set up with.
fn upload_target(
    requested: &Config,
    saved: &Config,
    keep: Option<usize>,
) -> Result<Option<Upload>> {
    let Some(url) = requested.backup_s3_url.as_ref().or(saved.backup_s3_url.as_ref()) else {
        return Ok(None);
    };
    let prefix = url.parsed().as_prefix();
    let settings = Settings::new(
        requested.backup_s3_endpoint.as_deref().or(saved.backup_s3_endpoint.as_deref()),
        requested.backup_s3_region.as_deref().or(saved.backup_s3_region.as_deref()),
        requested.backup_s3_path_style.or(saved.backup_s3_path_style),
        saved.timeout(),
    )?;
    let keep = requested
        .backup_s3_keep
        .or(saved.backup_s3_keep)
        .or(keep)
        .unwrap_or(saved.backup_keep)
        .max(1);
    Ok(Some(Upload { prefix, settings, keep }))
}

/// `<member>-<UTC time to the millisecond>.db`: names sort in time order, which pruning
/// relies on. A name already taken waits for the next millisecond rather than taking a
/// suffix (which would sort wrongly).
fn unused_name(dir: &Path, member: &str) -> PathBuf {
    loop {
        let stamp = crate::s3::stamp_of(OffsetDateTime::now_utc());
        let candidate = dir.join(format!("{member}-{stamp}.db"));
        if !candidate.exists() {
            return candidate;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Removes all but the newest `keep` snapshots of `member` (names `unused_name` gives it,
/// exactly: member `m1` never touches `m1-a`'s); returns what was removed.
fn prune(dir: &Path, member: &str, keep: usize) -> Result<Vec<PathBuf>> {
    let mut snaps: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map_err(on_file("cannot read", dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let (m, stamp) = crate::s3::snapshot_name_stamp(name)?;
            (m == member).then_some((stamp, p))
        })
        .collect();
    snaps.sort();
    let excess = snaps.len().saturating_sub(keep);
    let old: Vec<PathBuf> = snaps.into_iter().take(excess).map(|(_, p)| p).collect();
    for p in &old {
        std::fs::remove_file(p).map_err(on_file("cannot remove", p))?;
    }
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_settings_prefer_this_run_then_the_member_setup() {
        let saved = Config { backup_keep: 5, ..Config::default() };
        assert!(upload_target(&Config::default(), &saved, None).unwrap().is_none());
        let saved = Config {
            backup_s3_url: Some("s3://saved-bucket/p".into()),
            backup_s3_endpoint: Some("http://10.0.0.1:9000".into()),
            backup_keep: 5,
            ..Config::default()
        };
        let u = upload_target(&Config::default(), &saved, None).unwrap().unwrap();
        assert_eq!(u.prefix.to_string(), "s3://saved-bucket/p/");
        assert_eq!(
            (u.keep, u.settings.path_style_for("b"), u.settings.base_url().as_str()),
            (5, true, "http://10.0.0.1:9000")
        );
        let requested = Config {
            backup_s3_url: Some("s3://flag-bucket/x/".into()),
            backup_s3_keep: Some(2),
            ..Config::default()
        };
        let u = upload_target(&requested, &saved, Some(9)).unwrap().unwrap();
        assert_eq!((u.prefix.bucket.as_str(), u.keep), ("flag-bucket", 2));
        assert_eq!(upload_target(&Config::default(), &saved, Some(9)).unwrap().unwrap().keep, 9);
        // a bad URL cannot get this far: it is refused when the configuration is loaded
        assert!("s3://Bad/x".parse::<crate::config::S3Location>().is_err());
    }

    #[test]
    fn prune_keeps_the_newest_of_this_member_only() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "m1-20260101T000000Z.db",
            "m1-20260102T000000Z.db",
            "m1-20260103T000000Z.db",
            "m2-20250101T000000Z.db",
            "m1-a-20250101T000000Z.db",
            "m1-notes.txt",
            "m1-old.db",
        ] {
            std::fs::write(d.path().join(n), b"x").unwrap();
        }
        let removed = prune(d.path(), "m1", 2).unwrap();
        assert_eq!(removed, [d.path().join("m1-20260101T000000Z.db")]);
        assert!(d.path().join("m2-20250101T000000Z.db").exists());
        assert!(d.path().join("m1-notes.txt").exists());
        assert!(d.path().join("m1-a-20250101T000000Z.db").exists(), "another member's, m1-a");
        assert!(d.path().join("m1-old.db").exists(), "not a name etcdadm backup gives");
        // Names taken back to back stay distinct and sort in the order they were taken.
        let first = unused_name(d.path(), "m1");
        std::fs::write(&first, b"x").unwrap();
        let second = unused_name(d.path(), "m1");
        assert!(first < second, "{first:?} {second:?}");
    }
}
