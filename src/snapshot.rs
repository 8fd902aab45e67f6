//! Restoring a data directory from an etcd v3 snapshot with the release's own tool
//! (`etcdutl` from 3.5, `etcdctl` before). The restore goes to a temporary directory beside
//! the data directory before anything else on the system changes, and is renamed into place
//! only once the member is being set up.

use crate::config::Config;
use crate::member::LocalMember;
use crate::pki::PkiError;
use crate::s3::S3Error;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use tracing::info;

/// Why a snapshot could not be fetched, checked or restored. Each names the file, URL or
/// setting involved; "nothing was changed" where that holds.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot run {0}")]
    Spawn(String, #[source] io::Error),
    #[error("{what} failed: {last}")]
    ToolFailed { what: String, last: String },
    #[error(
        "restoring from {url} needs the CA of the cluster that made the backups (they are \
         signed with a key derived from its key): copy its ca.crt and ca.key into {} and run \
         again; nothing was changed",
        certs_dir.display()
    )]
    NoCa { url: String, certs_dir: PathBuf, source: PkiError },
    #[error("cannot restore from {url}; nothing was changed")]
    Download { url: String, source: Box<S3Error> },
    #[error(transparent)]
    S3(Box<S3Error>),
    #[error("data-dir {} has no parent directory", .0.display())]
    NoParent(PathBuf),
    #[error("cannot create {}", .0.display())]
    CreateDir(PathBuf, #[source] io::Error),
    #[error("cannot read bootstrap.restore-from {}", .0.display())]
    SourceUnreadable(PathBuf, #[source] io::Error),
    #[error(
        "bootstrap.restore-from {} holds no *.db snapshot; copy a backup there, or remove \
         restore-from to form an empty cluster",
        .0.display()
    )]
    SourceEmpty(PathBuf),
    #[error(
        "restore-bump-revision is set but {0} of this release has no --bump-revision (etcd \
         3.5.10 and later have it); set version to such a release, or set \
         restore-bump-revision: 0; nothing was changed"
    )]
    NoBumpRevision(String),
    #[error("cannot read snapshot {}", .0.display())]
    Unreadable(PathBuf, #[source] io::Error),
    #[error("snapshot {} is empty or not a file; nothing was changed", .0.display())]
    NotAFile(PathBuf),
    #[error("snapshot {} is corrupt or truncated; nothing was changed", .0.display())]
    Corrupt(PathBuf, #[source] Box<SnapshotError>),
    #[error("{} is not empty; refusing to overwrite it", .0.display())]
    NotEmpty(PathBuf, #[source] io::Error),
    #[error("cannot move the restored data to {}", .0.display())]
    Commit(PathBuf, #[source] io::Error),
}

impl From<S3Error> for SnapshotError {
    fn from(e: S3Error) -> Self {
        SnapshotError::S3(Box::new(e))
    }
}

type Result<T> = std::result::Result<T, SnapshotError>;

/// The directory the data directory lives in (where staging and downloads go), created.
fn data_parent(c: &Config) -> Result<&Path> {
    let parent =
        c.data_dir.parent().ok_or_else(|| SnapshotError::NoParent(c.data_dir.to_path_buf()))?;
    std::fs::create_dir_all(parent).map_err(|e| SnapshotError::CreateDir(parent.into(), e))?;
    Ok(parent)
}

/// `etcdutl snapshot <sub>` (or `ETCDCTL_API=3 etcdctl snapshot <sub>` for 3.4).
fn snapshot_command(tools: &Path, sub: &str) -> (Command, String) {
    let etcdutl = tools.join("etcdutl");
    let (bin, legacy) =
        if etcdutl.exists() { (etcdutl, false) } else { (tools.join("etcdctl"), true) };
    let mut cmd = Command::new(&bin);
    if legacy {
        cmd.env("ETCDCTL_API", "3");
    }
    cmd.args(["snapshot", sub]);
    let name = format!("{} snapshot {sub}", bin.file_name().unwrap_or_default().to_string_lossy());
    (cmd, name)
}

fn run(mut cmd: Command, what: &str) -> Result<()> {
    let out =
        crate::blocking::output(&mut cmd).map_err(|e| SnapshotError::Spawn(what.into(), e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no error output");
        return Err(SnapshotError::ToolFailed { what: what.into(), last: last.trim().into() });
    }
    Ok(())
}

/// Checks that `file` is a readable etcd v3 snapshot (`etcdutl snapshot status`).
pub fn check_status(tools: &Path, file: &Path) -> Result<()> {
    let (mut cmd, what) = snapshot_command(tools, "status");
    cmd.arg(file);
    run(cmd, &what)
}

/// For an `s3://BUCKET/KEY` (or `s3://BUCKET/PREFIX/`, the newest genuine snapshot under
/// it) `--snapshot`: the object downloaded into a temporary file beside the data directory
/// and verified against its MAC (keyed from the cluster CA key in certs-dir, which must be
/// there already) and the SHA-256 recorded at upload. None for a local file.
pub async fn fetch_s3(c: &Config, snapshot: &Path) -> Result<Option<crate::s3::Downloaded>> {
    let Some(url) = crate::s3::snapshot_url_of(snapshot)? else {
        return Ok(None);
    };
    // The backups are signed with a key derived from the cluster CA key: without it nothing
    // can be verified, and a new CA would not be the cluster's anyway.
    let pki = crate::member::PkiPaths::new(&c.certs_dir);
    crate::pki::Ca::load_existing(&pki.ca_cert, &pki.ca_key).map_err(|source| {
        SnapshotError::NoCa { url: url.to_string(), certs_dir: c.certs_dir.to_path_buf(), source }
    })?;
    let key = crate::s3::BackupKey::from_ca_key_file(&pki.ca_key, "verify the backups").map_err(
        |source| SnapshotError::Download { url: url.to_string(), source: Box::new(source) },
    )?;
    let settings = crate::s3::Settings::new(
        c.backup_s3_endpoint.as_deref(),
        c.backup_s3_region.as_deref(),
        c.backup_s3_path_style,
        c.timeout(),
    )?;
    let parent = data_parent(c)?;
    let creds = crate::s3::credentials(&c.bootstrap.metadata).await?;
    let client = crate::s3::Client::new(&settings, &url.bucket, &creds)?;
    let d = crate::s3::download_snapshot(&client, &url, parent, &key).await.map_err(|source| {
        SnapshotError::Download { url: url.to_string(), source: Box::new(source) }
    })?;
    // download_snapshot logged each newer object it skipped, with the reason.
    info!(object = %d.source, skipped = d.skipped.len(), "restoring the snapshot");
    Ok(Some(d))
}

/// Where `bootstrap.restore-from` points, as `init --snapshot` takes it: an `s3://` URL or
/// a file as it is, a directory as its newest `*.db` file (by modification time).
pub fn resolve_source(from: &crate::config::SnapshotSource) -> Result<std::path::PathBuf> {
    let path = Path::new(from.as_str());
    if from.starts_with("s3://") || !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let unreadable = |e| SnapshotError::SourceUnreadable(path.to_path_buf(), e);
    let mut newest: Option<(std::time::SystemTime, std::path::PathBuf)> = None;
    for e in std::fs::read_dir(path).map_err(unreadable)? {
        let e = e.map_err(unreadable)?;
        let (p, meta) = (e.path(), e.metadata().map_err(unreadable)?);
        if meta.is_file() && p.extension().is_some_and(|x| x == "db") {
            let t = meta.modified().map_err(unreadable)?;
            if newest.as_ref().is_none_or(|(n, _)| t > *n) {
                newest = Some((t, p));
            }
        }
    }
    newest.map(|(_, p)| p).ok_or_else(|| SnapshotError::SourceEmpty(path.to_path_buf()))
}

/// Refuses `restore-bump-revision` when the release's restore tool lacks --bump-revision
/// (etcdctl of 3.4, etcdutl before 3.5.10): asked by its own help, not by a version table.
fn require_bump_revision(tools: &Path) -> Result<()> {
    let (mut cmd, what) = snapshot_command(tools, "restore");
    let out = crate::blocking::output(cmd.arg("--help"))
        .map_err(|e| SnapshotError::Spawn(format!("{what} --help"), e))?;
    let help = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    if !help.contains("--bump-revision") || !help.contains("--mark-compacted") {
        return Err(SnapshotError::NoBumpRevision(what));
    }
    Ok(())
}

/// A snapshot restored into a staging directory beside the data directory; removed on drop
/// unless committed.
pub struct Restored {
    _staging: tempfile::TempDir,
    data: std::path::PathBuf,
}

/// Restores `snapshot` into staging. This is also the check: `etcdutl snapshot restore`
/// verifies the snapshot's integrity hash, which `snapshot status` does not.
pub fn prepare(
    tools: &Path,
    c: &Config,
    m: &LocalMember,
    token: &str,
    snapshot: &Path,
    skip_hash_check: bool,
) -> Result<Restored> {
    let meta = std::fs::metadata(snapshot)
        .map_err(|e| SnapshotError::Unreadable(snapshot.to_path_buf(), e))?;
    if !meta.is_file() || meta.len() == 0 {
        return Err(SnapshotError::NotAFile(snapshot.to_path_buf()));
    }
    if c.restore_bump_revision > 0 {
        require_bump_revision(tools)?;
    }
    let parent = data_parent(c)?;
    let staging = tempfile::Builder::new()
        .prefix(".etcdadm-restore-")
        .tempdir_in(parent)
        .map_err(|e| SnapshotError::CreateDir(parent.join(".etcdadm-restore-*"), e))?;
    let data = staging.path().join("data");
    let (mut cmd, what) = snapshot_command(tools, "restore");
    cmd.arg(snapshot)
        .arg(format!("--name={}", m.name))
        .arg(format!("--initial-cluster={}={}", m.name, m.peer_url))
        .arg(format!("--initial-cluster-token={token}"))
        .arg(format!("--initial-advertise-peer-urls={}", m.peer_url))
        .arg(format!("--data-dir={}", data.display()));
    if skip_hash_check {
        cmd.arg("--skip-hash-check");
    }
    if c.restore_bump_revision > 0 {
        cmd.arg(format!("--bump-revision={}", c.restore_bump_revision)).arg("--mark-compacted");
    }
    run(cmd, &what).map_err(|e| SnapshotError::Corrupt(snapshot.to_path_buf(), Box::new(e)))?;
    Ok(Restored { _staging: staging, data })
}

impl Restored {
    /// Moves the restored data to the data directory, which must be absent or empty.
    pub fn commit(self, data_dir: &Path) -> Result<()> {
        if data_dir.exists() {
            std::fs::remove_dir(data_dir)
                .map_err(|e| SnapshotError::NotEmpty(data_dir.to_path_buf(), e))?;
        }
        let commit = |e| SnapshotError::Commit(data_dir.to_path_buf(), e);
        crate::fsutil::create_dir_with_mode(&self.data, 0o700).map_err(commit)?;
        std::fs::rename(&self.data, data_dir).map_err(commit)?;
        info!(data_dir = %data_dir.display(), "restored snapshot");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tool(dir: &Path, name: &str, help: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\ncat <<'EOF'\n{help}\nEOF\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn bump_revision_is_refused_naming_the_setting_when_the_restore_tool_lacks_the_flag() {
        let d = tempfile::tempdir().unwrap();
        tool(d.path(), "etcdctl", "      --skip-hash-check   Ignore snapshot integrity hash");
        let e = format!("{:#}", require_bump_revision(d.path()).unwrap_err());
        assert!(e.contains("restore-bump-revision is set but etcdctl snapshot restore"), "{e}");
        assert!(e.contains("3.5.10"), "{e}");
    }

    #[test]
    fn bump_revision_is_accepted_when_etcdutl_offers_both_flags() {
        let d = tempfile::tempdir().unwrap();
        tool(
            d.path(),
            "etcdutl",
            "      --bump-revision uint   How much to increase\n      --mark-compacted   Mark",
        );
        require_bump_revision(d.path()).unwrap();
    }
}
