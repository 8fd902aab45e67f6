//! Backups in an S3 prefix: upload of a checked snapshot with its SHA-256 and MAC recorded
//! (`x-amz-meta-sha256`, `x-amz-meta-etcdadm-mac`), retention among this member's objects,
//! and download of one snapshot (or the newest genuine one under a prefix) verified against
//! the MAC and the recorded hash.

use super::{BackupKey, Client, ObjectMeta, S3Error, S3Url, MAC_META};
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

/// How far ahead of this machine's clock a snapshot's name may be stamped (clock skew
/// between members); later stamps are refused.
pub const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// Uploads `file` (already checked) under `prefix` with its name, its SHA-256 and its MAC
/// (`key`) recorded as object metadata; returns where it went.
pub async fn upload_snapshot(
    client: &Client,
    prefix: &S3Url,
    file: &Path,
    key: &BackupKey,
) -> Result<S3Url, S3Error> {
    let io = |source| S3Error::Io { path: file.into(), source };
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| S3Error::Invalid(format!("{} has no file name", file.display())))?;
    let len = std::fs::metadata(file).map_err(io)?.len();
    let sha = sha256_file(file).map_err(io)?;
    let mac = key.sign(name, &to_hex(&sha));
    let dest = prefix.as_prefix();
    let dest = dest.with_key(&format!("{}{name}", dest.key));
    client.put_file(&dest.key, file, len, &sha, &mac).await?;
    tracing::info!(object = %dest, bytes = len, sha256 = %to_hex(&sha), "snapshot uploaded");
    Ok(dest)
}

/// Deletes all but the newest `keep` snapshots of `member` directly under `prefix`; objects
/// that `etcdadm backup` did not name, and other members' (`m1` never touches `m1-a`'s),
/// are left alone. Returns what was deleted.
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

/// A downloaded snapshot whose MAC and SHA-256 matched; the file is removed on drop.
pub struct Downloaded {
    pub file: tempfile::NamedTempFile,
    pub source: S3Url,
    pub sha256: String,
    pub bytes: u64,
    /// Newer objects under the prefix that were passed over, and why.
    pub skipped: Vec<Skipped>,
}

/// An object restore of a prefix passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub object: S3Url,
    pub reason: String,
}

/// `YYYYMMDDTHHMMSS.mmmZ` of `t`, comparable with `snapshot_name_stamp`'s stamps: the stamp
/// in the name of every snapshot `etcdadm backup` takes.
pub fn stamp_of(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Why the object `name` with metadata `meta` is not a genuine snapshot of this cluster (or
/// its name is stamped later than `latest`), if it is not.
fn refusal(name: &str, meta: &ObjectMeta, key: &BackupKey, latest: &str) -> Option<String> {
    future(name, latest).or_else(|| unsigned(name, meta, key))
}

/// Why `name` is stamped too late, if it is.
fn future(name: &str, latest: &str) -> Option<String> {
    let (_, stamp) = snapshot_name_stamp(name)?;
    (stamp.as_str() > latest).then(|| {
        format!(
            "its name is stamped {stamp}, in the future (this machine's clock, with {} minutes of skew allowed, is at most {latest})",
            CLOCK_SKEW.whole_minutes()
        )
    })
}

/// Why `meta` does not authenticate `name`, if it does not.
fn unsigned(name: &str, meta: &ObjectMeta, key: &BackupKey) -> Option<String> {
    let Some(sha) = &meta.sha256 else {
        return Some(
            "it has no recorded SHA-256 (x-amz-meta-sha256): it was not uploaded by etcdadm backup"
                .into(),
        );
    };
    let Some(mac) = &meta.mac else {
        return Some(format!(
            "it is unsigned (no {MAC_META}): it was not uploaded by etcdadm backup of this version, or its metadata was stripped"
        ));
    };
    if !key.verify(name, sha, mac) {
        return Some(format!(
            "its signature ({MAC_META}) does not match: it was not made with this cluster's CA key, or its name or hash was changed"
        ));
    }
    None
}

/// The object's last path segment: what its MAC covers.
fn object_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// Downloads `url` (an object, or the newest genuine snapshot under a prefix) into a
/// private temporary file in `dir`, after checking that it is signed with `key` and not
/// stamped in the future, and checks the bytes against the SHA-256 recorded at upload. A
/// named object that fails a check is refused; under a prefix it is skipped (and reported)
/// in favour of the next newest. A refused download leaves nothing in `dir`.
pub async fn download_snapshot(
    client: &Client,
    url: &S3Url,
    dir: &Path,
    key: &BackupKey,
) -> Result<Downloaded, S3Error> {
    let latest = stamp_of(time::OffsetDateTime::now_utc() + CLOCK_SKEW);
    if !url.is_prefix() {
        let name = object_name(&url.key);
        if let Some(reason) = refusal(name, &client.head(&url.key).await?, key, &latest) {
            return Err(S3Error::Authenticity { target: url.to_string(), detail: reason });
        }
        return download_checked(client, url, dir, key, &latest, Vec::new()).await;
    }
    let mut candidates: Vec<(String, String)> = client
        .list(&url.key)
        .await?
        .into_iter()
        .filter_map(|o| {
            let (_, stamp) = snapshot_name_stamp(o.key.strip_prefix(&url.key)?)?;
            Some((stamp, o.key))
        })
        .collect();
    if candidates.is_empty() {
        return Err(S3Error::Invalid(format!(
            "no snapshot made by etcdadm backup (MEMBER-YYYYMMDDTHHMMSS.mmmZ.db) under {url} at {}; check the bucket and prefix",
            client.endpoint()
        )));
    }
    candidates.sort();
    let mut skipped: Vec<Skipped> = Vec::new();
    for (_, object_key) in candidates.into_iter().rev() {
        let object = url.with_key(&object_key);
        let name = object_name(&object_key);
        // The name's stamp first: a future one is refused without a request.
        let checked = match future(name, &latest) {
            Some(r) => Err(r),
            None => match unsigned(name, &client.head(&object_key).await?, key) {
                Some(r) => Err(r),
                None => Ok(()),
            },
        };
        let result = match checked {
            Ok(()) => download_checked(client, &object, dir, key, &latest, skipped.clone()).await,
            Err(reason) => {
                Err(S3Error::Authenticity { target: object.to_string(), detail: reason })
            }
        };
        match result {
            Ok(d) => {
                for s in &d.skipped {
                    tracing::warn!(object = %s.object, reason = %s.reason, "skipped a newer object");
                }
                return Ok(d);
            }
            Err(S3Error::Authenticity { detail, .. } | S3Error::Integrity { detail, .. }) => {
                skipped.push(Skipped { object, reason: detail })
            }
            Err(e) => return Err(e),
        }
    }
    Err(S3Error::NoneGenuine {
        prefix: url.to_string(),
        endpoint: client.endpoint(),
        skipped: skipped
            .iter()
            .map(|s| format!("{}: {}", s.object, s.reason))
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// GETs `source` into a temporary file in `dir` and checks its metadata again (the object
/// may have been replaced since it was inspected) and its bytes against the recorded hash.
async fn download_checked(
    client: &Client,
    source: &S3Url,
    dir: &Path,
    key: &BackupKey,
    latest: &str,
    skipped: Vec<Skipped>,
) -> Result<Downloaded, S3Error> {
    let io = |source| S3Error::Io { path: dir.into(), source };
    let file = tempfile::Builder::new()
        .prefix(".etcdadm-snapshot-")
        .suffix(".db")
        .permissions(std::fs::Permissions::from_mode(crate::fsutil::MODE_PRIVATE))
        .tempfile_in(dir)
        .map_err(io)?;
    let path = file.path().to_path_buf();
    let got = client.get_to_file(&source.key, file.as_file(), &path).await?;
    if let Some(reason) = refusal(object_name(&source.key), &got.meta, key, latest) {
        return Err(S3Error::Authenticity { target: source.to_string(), detail: reason });
    }
    let actual = to_hex(&got.sha256);
    let recorded = got.meta.sha256.unwrap_or_default();
    if parse_hex(&recorded) != Some(got.sha256) {
        return Err(S3Error::Integrity {
            target: source.to_string(),
            detail: format!(
                "the downloaded object's SHA-256 is {actual} but {recorded:?} was recorded when it was uploaded: it was altered or damaged; refusing it"
            ),
        });
    }
    tracing::info!(object = %source, bytes = got.bytes, sha256 = %actual, "snapshot downloaded and verified");
    Ok(Downloaded { file, source: source.clone(), sha256: actual, bytes: got.bytes, skipped })
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
