//! Backups in an S3 prefix: upload of a checked snapshot with its SHA-256 recorded
//! (`x-amz-meta-sha256`), retention among the objects `etcdadm backup` named, and download
//! of one snapshot (or the newest under a prefix) verified against the recorded hash.

use super::{Client, S3Error, S3Url};
use crate::digest::{parse_hex, sha256_file, to_hex};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// `<member>-<YYYYMMDD>T<HHMMSS>[.mmm]Z.db`, the names `etcdadm backup` gives snapshots:
/// the member and the time stamp, normalised to millisecond precision so that stamps
/// compare in time order. Anything else is not ours.
pub fn snapshot_name_stamp(name: &str) -> Option<(&str, String)> {
    let stem = name.strip_suffix(".db")?;
    let (member, stamp) = stem.rsplit_once('-')?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let body = stamp.strip_suffix('Z')?;
    let (secs, millis) = match body.split_once('.') {
        Some((s, m)) if digits(m, 3) => (s, m),
        Some(_) => return None,
        None => (body, "000"),
    };
    let (date, time) = secs.split_once('T')?;
    if member.is_empty() || !digits(date, 8) || !digits(time, 6) {
        return None;
    }
    Some((member, format!("{date}T{time}.{millis}Z")))
}

/// Uploads `file` (already checked) under `prefix` with its name; returns where it went.
pub async fn upload_snapshot(
    client: &Client,
    prefix: &S3Url,
    file: &Path,
) -> Result<S3Url, S3Error> {
    let io = |source| S3Error::Io { path: file.into(), source };
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| S3Error::Invalid(format!("{} has no file name", file.display())))?;
    let len = std::fs::metadata(file).map_err(io)?.len();
    let sha = sha256_file(file).map_err(io)?;
    let dest = prefix.as_prefix();
    let dest = dest.with_key(&format!("{}{name}", dest.key));
    client.put_file(&dest.key, file, len, &sha).await?;
    tracing::info!(object = %dest, bytes = len, sha256 = %to_hex(&sha), "snapshot uploaded");
    Ok(dest)
}

/// Deletes all but the newest `keep` snapshots of `member` directly under `prefix`; objects
/// that `etcdadm backup` did not name are left alone. Returns what was deleted.
pub async fn prune_remote(
    client: &Client,
    prefix: &S3Url,
    member: &str,
    keep: usize,
) -> Result<Vec<S3Url>, S3Error> {
    let prefix = prefix.as_prefix();
    let mut ours: Vec<(String, String)> = client
        .list(&prefix.key)
        .await?
        .into_iter()
        .filter_map(|o| {
            let name = o.key.strip_prefix(&prefix.key)?;
            let (m, stamp) = snapshot_name_stamp(name)?;
            (m == member).then(|| (stamp, o.key.clone()))
        })
        .collect();
    ours.sort();
    let excess = ours.len().saturating_sub(keep.max(1));
    let mut removed = Vec::new();
    for (_, key) in ours.into_iter().take(excess) {
        client.delete(&key).await?;
        let url = prefix.with_key(&key);
        tracing::info!(object = %url, "removed old snapshot");
        removed.push(url);
    }
    Ok(removed)
}

/// A downloaded snapshot whose SHA-256 matched the recorded one; the file is removed on drop.
pub struct Downloaded {
    pub file: tempfile::NamedTempFile,
    pub source: S3Url,
    pub sha256: String,
    pub bytes: u64,
}

/// The newest snapshot (any member's) directly under `prefix`.
async fn newest(client: &Client, prefix: &S3Url) -> Result<S3Url, S3Error> {
    client
        .list(&prefix.key)
        .await?
        .into_iter()
        .filter_map(|o| {
            let (_, stamp) = snapshot_name_stamp(o.key.strip_prefix(&prefix.key)?)?;
            Some((stamp, o.key))
        })
        .max()
        .map(|(_, key)| prefix.with_key(&key))
        .ok_or_else(|| {
            S3Error::Invalid(format!(
                "no snapshot made by etcdadm backup (MEMBER-YYYYMMDDTHHMMSS.mmmZ.db) under {prefix} at {}; check the bucket and prefix",
                client.endpoint()
            ))
        })
}

/// Downloads `url` (an object, or the newest snapshot under a prefix) into a private
/// temporary file in `dir`, and checks it against the SHA-256 recorded at upload. A
/// mismatch or a missing record is refused; the partial file is removed.
pub async fn download_snapshot(
    client: &Client,
    url: &S3Url,
    dir: &Path,
) -> Result<Downloaded, S3Error> {
    let source = if url.is_prefix() { newest(client, url).await? } else { url.clone() };
    let io = |source| S3Error::Io { path: dir.into(), source };
    let file = tempfile::Builder::new()
        .prefix(".etcdadm-snapshot-")
        .suffix(".db")
        .permissions(std::fs::Permissions::from_mode(crate::fsutil::MODE_PRIVATE))
        .tempfile_in(dir)
        .map_err(io)?;
    let path = file.path().to_path_buf();
    let got = client.get_to_file(&source.key, file.as_file(), &path).await?;
    let actual = to_hex(&got.sha256);
    let Some(recorded) = got.recorded_sha256 else {
        return Err(S3Error::Integrity {
            target: source.to_string(),
            detail: "the object has no recorded SHA-256 (x-amz-meta-sha256), so it cannot be verified; it was not uploaded by etcdadm backup. \
                     Download it yourself, check it, and give the file to init --snapshot"
                .into(),
        });
    };
    if parse_hex(&recorded) != Some(got.sha256) {
        return Err(S3Error::Integrity {
            target: source.to_string(),
            detail: format!(
                "the downloaded object's SHA-256 is {actual} but {recorded:?} was recorded when it was uploaded: it was altered or damaged; refusing it"
            ),
        });
    }
    tracing::info!(object = %source, bytes = got.bytes, sha256 = %actual, "snapshot downloaded and verified");
    Ok(Downloaded { file, source, sha256: actual, bytes: got.bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_names_only() {
        assert_eq!(
            snapshot_name_stamp("m1-20260102T030405.006Z.db"),
            Some(("m1", "20260102T030405.006Z".into()))
        );
        assert_eq!(
            snapshot_name_stamp("etcd-a-1-20260102T030405Z.db"),
            Some(("etcd-a-1", "20260102T030405.000Z".into()))
        );
        for other in [
            "m1-20260102T030405.006Z.db.sha256",
            "notes.txt",
            "m1-latest.db",
            "-20260102T030405Z.db",
            "m1-2026010T030405Z.db",
            "m1-20260102T030405.06Z.db",
            "m1-20260102T030405.006.db",
        ] {
            assert_eq!(snapshot_name_stamp(other), None, "{other}");
        }
        // Old stamps without milliseconds sort in time order with new ones.
        let (_, a) = snapshot_name_stamp("m-20260102T030405Z.db").unwrap();
        let (_, b) = snapshot_name_stamp("m-20260102T030405.001Z.db").unwrap();
        assert!(a < b);
    }
}
