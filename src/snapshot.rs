//! Restoring a data directory from an etcd v3 snapshot with the release's own tool
//! (`etcdutl` from 3.5, `etcdctl` before). The restore goes to a temporary directory beside
//! the data directory and is renamed into place only when it succeeded.

use crate::config::Config;
use crate::member::LocalMember;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use tracing::info;

fn tool(install_dir: &Path) -> (std::path::PathBuf, bool) {
    let etcdutl = install_dir.join("etcdutl");
    if etcdutl.exists() {
        (etcdutl, false)
    } else {
        (install_dir.join("etcdctl"), true)
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no error output");
        bail!("{what} failed: {}", last.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Restores `snapshot` into the configured data directory, which must be absent or empty.
pub fn restore(c: &Config, m: &LocalMember, token: &str, snapshot: &Path, skip_hash_check: bool) -> Result<()> {
    let meta = std::fs::metadata(snapshot).with_context(|| format!("cannot read snapshot {}", snapshot.display()))?;
    if !meta.is_file() || meta.len() == 0 {
        bail!("snapshot {} is empty or not a file", snapshot.display());
    }
    let (bin, legacy) = tool(&c.install_dir);
    let command = |sub: &str| {
        let mut cmd = Command::new(&bin);
        if legacy {
            cmd.env("ETCDCTL_API", "3");
        }
        cmd.args(["snapshot", sub]);
        cmd
    };
    run(command("status").arg(snapshot), &format!("{} snapshot status", bin.display()))
        .with_context(|| format!("snapshot {} is corrupt or truncated; nothing was changed", snapshot.display()))?;

    let parent = c.data_dir.parent().context("data-dir has no parent directory")?;
    crate::fsutil::create_dir_with_mode(parent, 0o755).with_context(|| format!("cannot create {}", parent.display()))?;
    let staging = tempfile::Builder::new().prefix(".etcdadm-restore-").tempdir_in(parent)?;
    let target = staging.path().join("data");
    let mut cmd = command("restore");
    cmd.arg(snapshot)
        .arg(format!("--name={}", m.name))
        .arg(format!("--initial-cluster={}={}", m.name, m.peer_url))
        .arg(format!("--initial-cluster-token={token}"))
        .arg(format!("--initial-advertise-peer-urls={}", m.peer_url))
        .arg(format!("--data-dir={}", target.display()));
    if skip_hash_check {
        cmd.arg("--skip-hash-check");
    }
    run(&mut cmd, &format!("{} snapshot restore", bin.display()))
        .with_context(|| format!("cannot restore snapshot {}; nothing was changed", snapshot.display()))?;
    if c.data_dir.exists() {
        // Only an empty directory can be here (checked by the caller); replace it.
        std::fs::remove_dir(&c.data_dir)
            .with_context(|| format!("{} is not empty; refusing to overwrite it", c.data_dir.display()))?;
    }
    crate::fsutil::create_dir_with_mode(&target, 0o700)?;
    std::fs::rename(&target, &c.data_dir)
        .with_context(|| format!("cannot move the restored data to {}", c.data_dir.display()))?;
    info!(snapshot = %snapshot.display(), data_dir = %c.data_dir.display(), "restored snapshot");
    Ok(())
}
