//! Crash-safe file writes: every file that matters is written to a temporary file in the
//! same directory, fsynced, given its final mode, renamed over the target, and the directory
//! is fsynced, so a reader sees either the old or the new content, never a torn file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// An I/O failure on one file or directory: "<what> <path>", with the OS error as its cause.
#[derive(Debug, thiserror::Error)]
#[error("{what} {}", path.display())]
pub struct FileError {
    pub what: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// For `map_err`: the failure of `what` ("cannot write", "cannot remove") on `path`.
pub fn on_file(
    what: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> FileError {
    let path = path.into();
    move |source| FileError { what, path, source }
}

/// Mode for private keys.
pub const MODE_PRIVATE: u32 = 0o600;
/// Mode for certificates, configuration and unit files.
pub const MODE_PUBLIC: u32 = 0o644;
/// Mode for executables.
pub const MODE_EXEC: u32 = 0o755;

/// Writes `contents` to `path` atomically with the given mode, creating parent directories.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent_dir(path)?;
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".etcdadm-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    // The umask may have narrowed the mode given at creation; set it exactly.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Writes `contents` atomically unless the file already holds exactly these bytes with this
/// mode. Returns whether anything changed, so re-runs can report "unchanged".
pub fn write_if_changed(path: &Path, contents: &[u8], mode: u32) -> io::Result<bool> {
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().mode() & 0o7777 == mode && fs::read(path)? == contents {
            return Ok(false);
        }
    }
    write_atomic(path, contents, mode)?;
    Ok(true)
}

/// Copies `src` to `dest` atomically with `mode`; returns whether anything changed.
pub fn copy_if_changed(src: &Path, dest: &Path, mode: u32) -> io::Result<bool> {
    if unchanged(src, dest, mode)? {
        return Ok(false);
    }
    let dir = parent_dir(dest)?;
    fs::create_dir_all(dir)?;
    let tmp = tempfile::Builder::new().prefix(".etcdadm-").tempfile_in(dir)?;
    io::copy(&mut File::open(src)?, &mut tmp.as_file())?;
    tmp.as_file().sync_all()?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
    tmp.persist(dest).map_err(|e| e.error)?;
    sync_dir(dir)?;
    Ok(true)
}

/// Puts `src` at `dest` unless `dest` already has its content and mode: a hard link renamed
/// into place when both are on one file system (no copy), else a copy. Not synced: the
/// caller makes it durable later with `sync_filesystem`, off its critical path (etcd's
/// binaries: a re-run compares contents, so a torn file after a crash is replaced).
pub fn place_if_changed(src: &Path, dest: &Path, mode: u32) -> io::Result<bool> {
    if unchanged(src, dest, mode)? {
        return Ok(false);
    }
    let dir = parent_dir(dest)?;
    fs::create_dir_all(dir)?;
    let tmp =
        tempfile::Builder::new().prefix(".etcdadm-").make_in(dir, |p| {
            match fs::hard_link(src, p) {
                Ok(()) => Ok(()),
                Err(_) => fs::copy(src, p).map(|_| ()),
            }
        })?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(true)
}

/// Commits files written unsynced (`place_if_changed`) to disk: each file's data, then the
/// directory naming it. Only these files: a syncfs(2) would also flush every other dirty
/// page of the file system (the cached archive, other writers) and hold up the fsyncs of
/// whatever runs meanwhile (etcd's first WAL writes, certificates).
pub fn sync_files(files: &[PathBuf]) -> io::Result<()> {
    let mut dirs = std::collections::BTreeSet::new();
    for f in files {
        File::open(f)?.sync_all()?;
        dirs.insert(parent_dir(f)?);
    }
    dirs.into_iter().try_for_each(sync_dir)
}

/// Whether `dest` already has `src`'s content and `mode`.
fn unchanged(src: &Path, dest: &Path, mode: u32) -> io::Result<bool> {
    Ok(match (fs::metadata(src), fs::metadata(dest)) {
        // one file under two names (installed as a hard link): nothing to compare
        (Ok(a), Ok(b)) if (a.dev(), a.ino()) == (b.dev(), b.ino()) => {
            b.permissions().mode() & 0o7777 == mode
        }
        (Ok(a), Ok(b)) => {
            a.len() == b.len()
                && b.permissions().mode() & 0o7777 == mode
                && same_contents(src, dest)?
        }
        _ => false,
    })
}

fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    Ok(crate::digest::sha256_file(a)? == crate::digest::sha256_file(b)?)
}

/// Removes a file; a missing file is not an error. Returns whether it existed.
pub fn remove_file_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `dir` exists and holds at least one entry.
pub fn dir_has_entries(dir: &Path) -> io::Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_some()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates a directory (and parents) and sets its mode.
pub fn create_dir_with_mode(dir: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
}

/// Creates a directory (and parents) with `mode` unless it exists; an existing one is left
/// as it is.
pub fn create_dir_with_mode_if_missing(dir: &Path, mode: u32) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    create_dir_with_mode(dir, mode)
}

fn parent_dir(path: &Path) -> io::Result<&Path> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => Ok(p),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no parent directory", path.display()),
        )),
    }
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new().read(true).custom_flags(nix::libc::O_DIRECTORY).open(dir)?.sync_all()
}

/// `YYYYMMDDTHHMMSSZ` of `t` in UTC: the suffix of a directory moved aside.
pub fn utc_stamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `<path>.<label>-<stamp>`, with `-2`, `-3`, ... appended while that name exists: where
/// `path` is moved aside (data directories are moved, never deleted).
pub fn aside_path(path: &Path, label: &str, stamp: &str) -> std::path::PathBuf {
    let base = format!("{}.{label}-{stamp}", path.display());
    let mut to = std::path::PathBuf::from(&base);
    let mut n = 1;
    while std::fs::symlink_metadata(&to).is_ok() {
        n += 1;
        to = std::path::PathBuf::from(format!("{base}-{n}"));
    }
    to
}

/// Renames `from` to `to` (one rename, same file system) and syncs `to`'s directory, so the
/// rename survives a crash.
pub fn rename_synced(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    match to.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_exact_mode_and_reports_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/key.pem");
        write_atomic(&p, b"secret", MODE_PRIVATE).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o7777, 0o600);
        assert_eq!(fs::read(&p).unwrap(), b"secret");
        assert!(!write_if_changed(&p, b"secret", MODE_PRIVATE).unwrap());
        assert!(write_if_changed(&p, b"secret", MODE_PUBLIC).unwrap());
        assert!(write_if_changed(&p, b"other", MODE_PUBLIC).unwrap());
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn place_if_changed_links_and_skips_identical_files() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("bin/b"));
        fs::write(&a, b"binary").unwrap();
        assert!(place_if_changed(&a, &b, MODE_EXEC).unwrap());
        assert!(!place_if_changed(&a, &b, MODE_EXEC).unwrap());
        assert_eq!(fs::read(&b).unwrap(), b"binary");
        assert_eq!(fs::metadata(&b).unwrap().permissions().mode() & 0o7777, 0o755);
        assert_eq!(
            fs::read_dir(dir.path().join("bin")).unwrap().count(),
            1,
            "no temporary file left"
        );
        fs::write(dir.path().join("c"), b"other").unwrap();
        assert!(place_if_changed(&dir.path().join("c"), &b, MODE_EXEC).unwrap());
        assert_eq!(fs::read(&b).unwrap(), b"other");
        sync_files(&[b.clone(), a.clone()]).unwrap();
        assert!(sync_files(&[dir.path().join("missing")]).is_err(), "a missing file is an error");
    }

    #[test]
    fn copy_if_changed_skips_identical_files() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, b"binary").unwrap();
        assert!(copy_if_changed(&a, &b, MODE_EXEC).unwrap());
        assert!(!copy_if_changed(&a, &b, MODE_EXEC).unwrap());
        assert_eq!(fs::metadata(&b).unwrap().permissions().mode() & 0o7777, 0o755);
    }

    #[test]
    fn a_directory_moved_aside_gets_a_name_that_is_free() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("etcd");
        let first = aside_path(&data, "recovered", "20261205T000000Z");
        assert_eq!(first, d.path().join("etcd.recovered-20261205T000000Z"));
        std::fs::create_dir(&first).unwrap();
        assert_eq!(
            aside_path(&data, "recovered", "20261205T000000Z"),
            d.path().join("etcd.recovered-20261205T000000Z-2")
        );
    }

    #[test]
    fn stamps_are_utc_seconds() {
        let t = time::OffsetDateTime::from_unix_timestamp(1_765_000_000).unwrap();
        assert_eq!(utc_stamp(t), "20251206T054640Z");
    }
}
