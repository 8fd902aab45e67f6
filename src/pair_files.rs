//! A certificate and its key on disk as one unit: both become visible together.
//!
//! Two files cannot be replaced by one rename, so a pair lives in a generation directory and
//! the paths etcd reads are symbolic links through one `live` link:
//!
//! ```text
//! DIR/server.crt -> pairs/server/live/server.crt
//! DIR/server.key -> pairs/server/live/server.key
//! DIR/pairs/server/live -> g-<unique>          (switched by one rename)
//! DIR/pairs/server/g-<unique>/server.{crt,key}
//! ```
//!
//! A new pair is written and synced into a new generation, then `live` is switched with one
//! rename, then older generations are removed. A crash at any point leaves either the old or
//! the new pair behind the paths, never one of each. Pairs written as two plain files (by
//! earlier versions) are first moved into a generation of their own, unchanged, so the paths
//! keep a matched pair while they become links. The links are relative, so the directory
//! works wherever it is mounted whole (a kubelet static pod mounts it as a hostPath).

use crate::fsutil::{sync_dir, write_atomic, MODE_PUBLIC};
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the generations of pairs live, beside the links.
pub const PAIRS_DIR: &str = "pairs";

/// One file of a pair: its path (a link once written), content and mode.
pub struct PairFile<'a> {
    pub path: &'a Path,
    pub contents: &'a [u8],
    pub mode: u32,
}

/// Writes `files` (a certificate and its key, in one directory) so that they switch
/// together. `checkpoint` is called after each step that changes what the paths show
/// (tests check the pair is whole at each one).
pub fn write_pair(files: &[PairFile; 2], checkpoint: &mut dyn FnMut(&str)) -> io::Result<()> {
    let (dir, name) = layout(files[0].path)?;
    let names = [file_name(files[0].path)?, file_name(files[1].path)?];
    if layout(files[1].path)?.0 != dir {
        return Err(io::Error::other(format!(
            "{} and {} must be in one directory to be replaced together",
            files[0].path.display(),
            files[1].path.display()
        )));
    }
    let pair_dir = dir.join(PAIRS_DIR).join(&name);
    create_dir(&dir.join(PAIRS_DIR))?;
    create_dir(&pair_dir)?;
    // Plain files of an earlier version: into a generation of their own first, unchanged.
    if files.iter().all(|f| is_plain_file(f.path)) {
        let old = new_generation(&pair_dir)?;
        for (f, n) in files.iter().zip(&names) {
            let meta = fs::metadata(f.path)?;
            write_atomic(&old.join(n), &fs::read(f.path)?, meta.permissions().mode() & 0o7777)?;
            keep_owner(&old.join(n), Some(&meta))?;
        }
        switch_live(&pair_dir, &old)?;
        checkpoint("earlier pair moved into a generation");
        link_paths(files, &names, &dir, &name, checkpoint)?;
    }
    // A new file keeps the owner of the one it replaces (a member key belongs to the etcd
    // user, set once by etcdadm), before anything can see it.
    let owners: Vec<Option<fs::Metadata>> =
        files.iter().map(|f| fs::metadata(f.path).ok()).collect();
    let new = new_generation(&pair_dir)?;
    for ((f, n), owner) in files.iter().zip(&names).zip(&owners) {
        write_atomic(&new.join(n), f.contents, f.mode)?;
        keep_owner(&new.join(n), owner.as_ref())?;
    }
    switch_live(&pair_dir, &new)?;
    checkpoint("live switched to the new generation");
    link_paths(files, &names, &dir, &name, checkpoint)?;
    remove_other_generations(&pair_dir, &new)
}

/// Gives `path` the owner of `like` (when there is one and it differs).
fn keep_owner(path: &Path, like: Option<&fs::Metadata>) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(like) = like else { return Ok(()) };
    let now = fs::metadata(path)?;
    if (now.uid(), now.gid()) != (like.uid(), like.gid()) {
        std::os::unix::fs::chown(path, Some(like.uid()), Some(like.gid()))?;
    }
    Ok(())
}

/// Removes a pair's links and generations (what `reset` does); missing parts are fine.
pub fn remove_pair(cert: &Path, key: &Path) -> io::Result<()> {
    for p in [cert, key] {
        crate::fsutil::remove_file_if_exists(p)?;
    }
    let (dir, name) = layout(cert)?;
    match fs::remove_dir_all(dir.join(PAIRS_DIR).join(name)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // The `pairs` directory itself goes once it is empty.
    match fs::remove_dir(dir.join(PAIRS_DIR)) {
        Err(e)
            if !matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::DirectoryNotEmpty) =>
        {
            Err(e)
        }
        _ => Ok(()),
    }
}

/// The directory of a pair's files and the pair's name (the first file's stem).
fn layout(path: &Path) -> io::Result<(PathBuf, String)> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| io::Error::other(format!("{} has no parent directory", path.display())))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| io::Error::other(format!("{} has no file name", path.display())))?;
    Ok((dir.to_path_buf(), stem.to_string()))
}

fn file_name(path: &Path) -> io::Result<String> {
    path.file_name()
        .and_then(|s| s.to_str())
        .map(str::to_string)
        .ok_or_else(|| io::Error::other(format!("{} has no file name", path.display())))
}

fn is_plain_file(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file())
}

fn create_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {
            fs::set_permissions(dir, fs::Permissions::from_mode(MODE_PUBLIC | 0o111))?;
            sync_dir(dir.parent().unwrap_or(Path::new("/")))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// A new, empty generation directory `g-<unique>` in `pair_dir`.
fn new_generation(pair_dir: &Path) -> io::Result<PathBuf> {
    let dir = tempfile::Builder::new().prefix("g-").rand_bytes(8).tempdir_in(pair_dir)?.keep();
    fs::set_permissions(&dir, fs::Permissions::from_mode(MODE_PUBLIC | 0o111))?;
    Ok(dir)
}

/// Points `pair_dir/live` at `generation` with one rename.
fn switch_live(pair_dir: &Path, generation: &Path) -> io::Result<()> {
    let target = generation.file_name().ok_or_else(|| io::Error::other("generation name"))?;
    replace_with_link(&pair_dir.join("live"), Path::new(target))
}

/// Makes each path a link to `pairs/NAME/live/FILE`, unless it already is one.
fn link_paths(
    files: &[PairFile; 2],
    names: &[String; 2],
    dir: &Path,
    name: &str,
    checkpoint: &mut dyn FnMut(&str),
) -> io::Result<()> {
    for (f, n) in files.iter().zip(names) {
        let target = Path::new(PAIRS_DIR).join(name).join("live").join(n);
        if fs::read_link(f.path).ok().as_deref() != Some(target.as_path()) {
            replace_with_link(f.path, &target)?;
            checkpoint("path linked");
        }
    }
    sync_dir(dir)
}

/// Creates a link to `target` beside `path` and renames it over `path`.
fn replace_with_link(path: &Path, target: &Path) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(".etcdadm-link-{}", fastrand::u64(..)));
    symlink(target, &tmp)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

fn remove_other_generations(pair_dir: &Path, keep: &Path) -> io::Result<()> {
    for entry in fs::read_dir(pair_dir)? {
        let path = entry?.path();
        let is_generation =
            path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("g-"));
        if is_generation && path != keep {
            fs::remove_dir_all(&path)?;
        }
    }
    sync_dir(pair_dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::MODE_PRIVATE;

    struct Dir {
        _tmp: tempfile::TempDir,
        cert: PathBuf,
        key: PathBuf,
    }

    fn dir() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let (cert, key) = (tmp.path().join("server.crt"), tmp.path().join("server.key"));
        Dir { _tmp: tmp, cert, key }
    }

    /// Writes generation `n`: "cert-n" and "key-n".
    fn write(d: &Dir, n: u32, checkpoint: &mut dyn FnMut(&str)) {
        let (c, k) = (format!("cert-{n}"), format!("key-{n}"));
        let files = [
            PairFile { path: &d.cert, contents: c.as_bytes(), mode: MODE_PUBLIC },
            PairFile { path: &d.key, contents: k.as_bytes(), mode: MODE_PRIVATE },
        ];
        write_pair(&files, checkpoint).unwrap();
    }

    /// The generation the two paths show; panics when they show different ones.
    fn shown(d: &Dir) -> String {
        let c = fs::read_to_string(&d.cert).unwrap();
        let k = fs::read_to_string(&d.key).unwrap();
        let (cn, kn) = (c.trim_start_matches("cert-"), k.trim_start_matches("key-"));
        assert_eq!(cn, kn, "the paths show a mismatched pair: {c} and {k}");
        cn.to_string()
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_pair_is_read_through_relative_links_with_its_modes_and_replaced_whole() {
        let d = dir();
        write(&d, 1, &mut |_| {});
        assert_eq!(shown(&d), "1");
        assert_eq!(fs::read_link(&d.cert).unwrap(), Path::new("pairs/server/live/server.crt"));
        assert_eq!(fs::read_link(&d.key).unwrap(), Path::new("pairs/server/live/server.key"));
        assert_eq!((mode(&d.cert), mode(&d.key)), (0o644, 0o600));
        write(&d, 2, &mut |_| {});
        assert_eq!(shown(&d), "2");
        let generations = fs::read_dir(d.cert.parent().unwrap().join("pairs/server"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("g-"))
            .count();
        assert_eq!(generations, 1, "older generations are removed");
    }

    /// A replaced key keeps its owner (the etcd user's key stays readable by etcd) from
    /// the moment the new pair is visible. Changing the owner needs root, as in use.
    #[test]
    fn a_new_pair_keeps_the_owner_of_the_files_it_replaces() {
        use std::os::unix::fs::MetadataExt;
        let d = dir();
        write(&d, 1, &mut |_| {});
        // As root (etcdadm, the test suite's machines) another owner; else only this user.
        let (me, root) = (nix::unistd::Uid::effective(), nix::unistd::Uid::effective().is_root());
        let (uid, gid) =
            if root { (4321, 4322) } else { (me.as_raw(), fs::metadata(&d.key).unwrap().gid()) };
        std::os::unix::fs::chown(&d.key, Some(uid), Some(gid)).unwrap();
        let mut seen = Vec::new();
        write(&d, 2, &mut |step| {
            let m = fs::metadata(&d.key).unwrap();
            seen.push(format!("{step}: {}:{}", m.uid(), m.gid()));
        });
        assert_eq!(shown(&d), "2");
        let m = fs::metadata(&d.key).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "owner of the new key");
        assert!(seen.iter().all(|s| s.ends_with(&format!(" {uid}:{gid}"))), "{seen:?}");
        assert_eq!(fs::metadata(&d.cert).unwrap().uid(), me.as_raw(), "the certificate's owner");
    }

    #[test]
    fn every_step_of_a_replacement_leaves_a_matched_pair() {
        let d = dir();
        write(&d, 1, &mut |_| {});
        let mut seen = Vec::new();
        write(&d, 2, &mut |step| seen.push((step.to_string(), shown(&d))));
        assert_eq!(seen, [("live switched to the new generation".to_string(), "2".to_string())]);
    }

    #[test]
    fn plain_files_of_an_earlier_version_keep_their_pair_while_they_become_links() {
        let d = dir();
        fs::write(&d.cert, "cert-0").unwrap();
        fs::write(&d.key, "key-0").unwrap();
        fs::set_permissions(&d.key, fs::Permissions::from_mode(0o600)).unwrap();
        let mut seen = Vec::new();
        write(&d, 1, &mut |step| seen.push((step.to_string(), shown(&d))));
        let shown_at: Vec<&str> = seen.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(shown_at, ["0", "0", "0", "1"], "{seen:?}");
        assert_eq!(seen[0].0, "earlier pair moved into a generation");
        assert_eq!(shown(&d), "1");
        assert!(fs::symlink_metadata(&d.cert).unwrap().file_type().is_symlink());
    }

    #[test]
    fn remove_pair_removes_links_and_generations() {
        let d = dir();
        write(&d, 1, &mut |_| {});
        remove_pair(&d.cert, &d.key).unwrap();
        let parent = d.cert.parent().unwrap();
        assert_eq!(fs::read_dir(parent).unwrap().count(), 0, "nothing left in {parent:?}");
        remove_pair(&d.cert, &d.key).unwrap();
    }
}
