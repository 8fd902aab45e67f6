//! Value types of settings. Each parses and checks itself once, at the edge: serde uses it
//! when a file, drop-in or metadata layer is loaded, clap uses the same `FromStr` when a flag
//! is given. Callers receive the checked value and never parse it again.
//!
//! Here too are the forms several settings share and the rest of the crate reuses: a host
//! ([`Host`]), an `s3://` place ([`S3Url`]) and an S3 endpoint.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A string checked by `$check`, which returns why it is not acceptable. Serializes and
/// deserializes as the plain string, so YAML and the state file keep their form.
macro_rules! checked_string {
    ($(#[doc = $doc:literal])* $name:ident, $check:expr) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(s)?;
                Ok($name(s.to_string()))
            }
        }
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                s.parse()
            }
        }
        /// For literals in the code (defaults, tests): an invalid one is a programming error.
        /// Only for `&'static str`, so that clap, which prefers `From<&str>` for any
        /// lifetime, parses flags with the checking `FromStr` instead.
        impl From<&'static str> for $name {
            fn from(s: &'static str) -> $name {
                s.parse().expect("a literal setting in the code is valid")
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub use super::safe_chars::{check_chars, unsafe_char, MEMBER_NAME_EXTRA, PATH_CHARS, URL_CHARS};

/// A path that may be written into a unit file, an environment file or a shell script.
pub fn check_path(p: &Path) -> Result<(), String> {
    let Some(s) = p.to_str() else {
        return Err(format!("{:?} is not valid UTF-8", p.as_os_str()));
    };
    if !p.is_absolute() {
        return Err(format!("{s:?} must be an absolute path"));
    }
    check_chars(s, PATH_CHARS, "a path")
}

checked_string!(
    /// A member name: letters, digits, `-`, `_`, `.`.
    MemberName,
    |s| {
        if super::safe_chars::is_member_name(s) {
            Ok(())
        } else {
            Err(format!("{s:?} is not a valid member name (letters, digits, '-', '_', '.')"))
        }
    }
);

checked_string!(
    /// An etcd version such as `3.5.30` (no leading `v`).
    EtcdVersion,
    |s| {
        let parts: Vec<_> = s.split('.').collect();
        if parts.len() == 3
            && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        {
            Ok(())
        } else {
            Err(format!("{s:?} is not an etcd version like 3.5.30 (no leading v)"))
        }
    }
);

/// Release architectures etcd publishes.
pub const ARCHES: &[&str] = &["amd64", "arm64", "ppc64le", "s390x"];

checked_string!(
    /// A release architecture (`amd64`, `arm64`, `ppc64le`, `s390x`).
    Arch,
    |s| {
        if ARCHES.contains(&s) {
            Ok(())
        } else {
            Err(format!("{s:?} is not one of {}", ARCHES.join(", ")))
        }
    }
);

checked_string!(
    /// A SHA-256 digest in hex (64 digits).
    Sha256Hex,
    |s| match sha256_of_hex(s) {
        Some(_) if s.trim().len() == 64 => Ok(()),
        _ => Err("must be 64 hex digits".into()),
    }
);

fn sha256_of_hex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).ok()?;
    Some(out)
}

impl Sha256Hex {
    /// The digest's 32 bytes.
    pub fn digest(&self) -> [u8; 32] {
        sha256_of_hex(&self.0).expect("checked when parsed")
    }
}

checked_string!(
    /// Base URL of a release mirror: `https://`, `http://` or `file://`.
    ReleaseUrl,
    |s| match check_chars(s, URL_CHARS, "a URL").and_then(|()| url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))) {
        Ok(u) if ["http", "https", "file"].contains(&u.scheme()) => Ok(()),
        Ok(u) => Err(format!(
            "scheme {:?} is not supported; use https://, http:// or file://",
            u.scheme()
        )),
        Err(e) => Err(e),
    }
);

checked_string!(
    /// An `s3://BUCKET/PREFIX/` location.
    S3Location,
    |s| {
        check_chars(s, URL_CHARS, "an S3 location")?;
        S3Url::parse(s).map(|_| ())
    }
);

impl S3Location {
    pub fn parsed(&self) -> S3Url {
        S3Url::parse(&self.0).expect("checked when parsed")
    }
}

checked_string!(
    /// Base URL of an S3-compatible store: `http(s)://host[:port]`.
    S3Endpoint,
    |s| {
        check_chars(s, URL_CHARS, "a URL")?;
        check_endpoint(s)
    }
);

checked_string!(
    /// An AWS region name such as `eu-west-1`.
    Region,
    |s| {
        if !s.is_empty() && s.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') {
            Ok(())
        } else {
            Err(format!("{s:?} is not a region name such as eu-west-1"))
        }
    }
);

checked_string!(
    /// A container image name such as `quay.io/coreos/etcd`.
    ImageRepository,
    |s| {
        if s.is_empty() || s.starts_with(['-', '.', '/', ':']) {
            return Err(format!("{s:?} must be an image name such as quay.io/coreos/etcd"));
        }
        check_chars(s, "._-/:", "an image repository")
    }
);

checked_string!(
    /// An etcd cluster token (`initial-cluster-token`): written into the environment file.
    ClusterToken,
    |s| {
        if s.is_empty() {
            return Err("the cluster token is empty".into());
        }
        check_chars(s, "._-+@:,=/", "a cluster token")
    }
);

checked_string!(
    /// A systemd `OnCalendar=` expression such as `daily` or `*-*-* 02:00`.
    Calendar,
    |s| {
        if !s.is_empty() && s.chars().all(|ch| ch.is_ascii_alphanumeric() || " *-:,./~".contains(ch))
        {
            Ok(())
        } else {
            Err(format!("{s:?} is not a systemd calendar expression such as daily or *-*-* 02:00"))
        }
    }
);

checked_string!(
    /// How much history etcd's auto-compaction keeps: a duration such as `1h` or `30m` in
    /// periodic mode, a number of revisions in revision mode; `0` turns it off.
    CompactionRetention,
    |s| {
        let unit = |ch: char| "hms".contains(ch);
        if s.starts_with(|ch: char| ch.is_ascii_digit())
            && s.chars().all(|ch| ch.is_ascii_digit() || unit(ch))
        {
            Ok(())
        } else {
            Err(format!("{s:?} is not a retention such as 1h, 30m or 10000"))
        }
    }
);

impl CompactionRetention {
    /// A plain number (revisions, or hours in periodic mode), without a unit.
    pub fn is_count(&self) -> bool {
        self.as_str().chars().all(|ch| ch.is_ascii_digit())
    }
}

/// Scheduling directives allowed in the etcd unit.
const PRIORITY_KEYS: &[&str] = &[
    "Nice",
    "IOSchedulingClass",
    "IOSchedulingPriority",
    "CPUSchedulingPolicy",
    "CPUSchedulingPriority",
];

checked_string!(
    /// A `Key=value` scheduling directive for the unit; nothing else may reach the unit file.
    DiskPriority,
    |s| {
        let ok = s.split_once('=').is_some_and(|(k, v)| {
            PRIORITY_KEYS.contains(&k)
                && !v.is_empty()
                && v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        });
        if ok {
            Ok(())
        } else {
            Err(format!("{s:?} is not one of {}=<value>", PRIORITY_KEYS.join("=, ")))
        }
    }
);

checked_string!(
    /// Where a restore reads its snapshot: `s3://BUCKET/PREFIX/` (the newest genuine snapshot
    /// under it), `s3://BUCKET/KEY` (that object), an absolute path to a snapshot file, or an
    /// absolute path to a directory (the newest `*.db` file in it).
    SnapshotSource,
    |s| {
        if s.starts_with("s3://") {
            S3Url::parse(s).map(|_| ())
        } else {
            check_path(Path::new(s)).map_err(|e| {
                format!("{e}; give an s3://BUCKET/PREFIX/ URL or an absolute path to a snapshot file or directory")
            })
        }
    }
);

/// An absolute path that is safe to write into unit files, environment files and scripts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbsPath(PathBuf);

impl AbsPath {
    /// An absolute path of [`PATH_CHARS`] only (see there why).
    pub fn new(p: impl Into<PathBuf>) -> Result<AbsPath, String> {
        let p = p.into();
        check_path(&p)?;
        Ok(AbsPath(p))
    }

    pub fn to_path_buf(&self) -> PathBuf {
        self.0.clone()
    }
}

/// For paths written in the code (defaults, tests): a relative one is a programming error.
/// Only for `&'static str`, so that clap parses flags with the checking `FromStr` instead.
impl From<&'static str> for AbsPath {
    fn from(s: &'static str) -> AbsPath {
        AbsPath::from(PathBuf::from(s))
    }
}

impl From<PathBuf> for AbsPath {
    fn from(p: PathBuf) -> AbsPath {
        AbsPath::new(p).expect("a path in the code is absolute")
    }
}

impl From<AbsPath> for PathBuf {
    fn from(p: AbsPath) -> PathBuf {
        p.0
    }
}

impl FromStr for AbsPath {
    type Err = String;
    fn from_str(s: &str) -> Result<AbsPath, String> {
        AbsPath::new(s)
    }
}

impl std::ops::Deref for AbsPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for AbsPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl PartialEq<Path> for AbsPath {
    fn eq(&self, other: &Path) -> bool {
        self.0 == other
    }
}

impl PartialEq<&Path> for AbsPath {
    fn eq(&self, other: &&Path) -> bool {
        self.0 == *other
    }
}

impl serde::Serialize for AbsPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for AbsPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        AbsPath::new(PathBuf::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl FromStr for Host {
    type Err = String;
    fn from_str(s: &str) -> Result<Host, String> {
        Host::parse(s)
    }
}

/// For literals in the code (tests): an invalid one is a programming error. Only for
/// `&'static str`, so that clap parses flags with the checking `FromStr` instead.
impl From<&'static str> for Host {
    fn from(s: &'static str) -> Host {
        Host::parse(s).expect("a literal host in the code is valid")
    }
}

impl serde::Serialize for Host {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Host {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Host::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `10s`, `1m`, `1m30s`, `90` (seconds) -> whole seconds, rounded up: the seed tool's
/// spelling of `--download-connect-timeout`.
pub fn parse_duration_seconds(s: &str) -> Result<u64, String> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let bad = || format!("{s:?} is not a duration like 10s, 1m or 1m30s");
    let (mut total_ms, mut rest) = (0u64, s);
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        total_ms += n * factor;
        rest = &rest[unit_len..];
    }
    Ok(total_ms.div_ceil(1000))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum InitSystem {
    Systemd,
    Kubelet,
}

/// etcd's `--auto-compaction-mode`: keep history for a time, or a number of revisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CompactionMode {
    Periodic,
    Revision,
}

impl CompactionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CompactionMode::Periodic => "periodic",
            CompactionMode::Revision => "revision",
        }
    }
}

/// A host as it appears in a URL or certificate: an IP address or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl Host {
    /// Parses an IP (IPv6 with or without brackets) or a DNS name.
    pub fn parse(s: &str) -> Result<Host, String> {
        let bare = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(s);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let name = s.strip_suffix('.').unwrap_or(s);
        let all_numeric = name.split('.').all(|l| l.chars().all(|c| c.is_ascii_digit()));
        if name.len() <= 253 && name.split('.').all(valid_label) && !all_numeric {
            Ok(Host::Name(name.to_ascii_lowercase()))
        } else {
            Err(format!("{s:?} is neither an IP address nor a valid DNS name"))
        }
    }

    /// The host as it goes into a URL: IPv6 in brackets.
    pub fn url_host(&self) -> String {
        match self {
            Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// `s3://bucket/key`. A key that is empty or ends with `/` is a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub key: String,
}

impl S3Url {
    pub fn parse(s: &str) -> Result<S3Url, String> {
        let bad = |why: &str| format!("{s:?} is not an s3://BUCKET/KEY URL: {why}");
        let rest = s.strip_prefix("s3://").ok_or_else(|| bad("it does not start with s3://"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            return Err(bad(
                "the bucket name must be 3 to 63 lower-case letters, digits, dots or hyphens",
            ));
        }
        if key.starts_with('/')
            || key.contains("//")
            || key.chars().any(char::is_control)
            || key.len() > 900
        {
            return Err(bad("the key must not start with /, contain // or control characters"));
        }
        Ok(S3Url { bucket: bucket.into(), key: key.into() })
    }

    /// Whether the URL names a prefix (empty key or trailing `/`) rather than one object.
    pub fn is_prefix(&self) -> bool {
        self.key.is_empty() || self.key.ends_with('/')
    }

    /// The same place as a prefix: a `/` is added to a non-empty key without one.
    pub fn as_prefix(&self) -> S3Url {
        let key = if self.is_prefix() { self.key.clone() } else { format!("{}/", self.key) };
        S3Url { bucket: self.bucket.clone(), key }
    }

    pub fn with_key(&self, key: &str) -> S3Url {
        S3Url { bucket: self.bucket.clone(), key: key.into() }
    }
}

/// `backup-s3-endpoint` must be an `http(s)://host[:port]` URL without path, query or user info.
pub fn check_endpoint(e: &str) -> Result<(), String> {
    let u = url::Url::parse(e)
        .map_err(|err| format!("backup-s3-endpoint {e:?} is not a URL: {err}"))?;
    let ok = matches!(u.scheme(), "http" | "https")
        && u.host_str().is_some()
        && u.username().is_empty()
        && u.password().is_none()
        && u.query().is_none()
        && (u.path() == "/" || u.path().is_empty());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "backup-s3-endpoint {e:?} must be http(s)://HOST[:PORT] without a path or user info"
        ))
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_strings_refuse_bad_values_and_keep_good_ones_verbatim() {
        assert_eq!("m-1.a_b".parse::<MemberName>().unwrap(), "m-1.a_b");
        assert!("bad name".parse::<MemberName>().is_err());
        assert!("v3.5.1".parse::<EtcdVersion>().is_err());
        assert!("riscv".parse::<Arch>().is_err());
        assert!("ftp://x/".parse::<ReleaseUrl>().unwrap_err().contains("\"ftp\""));
        assert!("relative/dir".parse::<AbsPath>().is_err());
        assert!("Nice=-10\nUser=x".parse::<DiskPriority>().is_err());
        assert!("10.0.0.300".parse::<Host>().is_err());
    }

    #[test]
    fn values_that_reach_files_refuse_what_units_env_files_or_sh_would_interpret() {
        for bad in
            ["\n", "\r", "\0", "\x1b", " ", "$", "`", ";", "&", "|", "<", ">", "%", "\"", "'", "\\"]
        {
            assert!(format!("/var/lib/etcd{bad}x").parse::<AbsPath>().is_err(), "path {bad:?}");
            assert!(format!("m{bad}1").parse::<MemberName>().is_err(), "name {bad:?}");
            assert!(format!("t{bad}1").parse::<ClusterToken>().is_err(), "token {bad:?}");
            assert!(
                format!("quay.io/etcd{bad}x").parse::<ImageRepository>().is_err(),
                "image {bad:?}"
            );
            assert!(
                format!("daily{bad}x").parse::<Calendar>().is_err() || bad == " ",
                "calendar {bad:?}"
            );
            if bad != "%" {
                // url::Url would drop a newline or tab silently: the text itself is checked.
                assert!(
                    format!("http://m.example/e{bad}x").parse::<ReleaseUrl>().is_err(),
                    "url {bad:?}"
                );
                assert!(
                    format!("http://s3.example{bad}x").parse::<S3Endpoint>().is_err(),
                    "s3 {bad:?}"
                );
            }
        }
        assert!("/srv/etcd-data_1/a.b".parse::<AbsPath>().is_ok());
        assert!("etcd-3f2a91c0d1e2b3a4".parse::<ClusterToken>().is_ok());
        assert!("registry.example:5000/etcd/etcd".parse::<ImageRepository>().is_ok());
        let err = "/var/lib/etcd\nExecStartPre=/bin/sh".parse::<AbsPath>().unwrap_err();
        assert!(err.contains("contains a newline") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn durations_round_up_to_whole_seconds() {
        assert_eq!(parse_duration_seconds("1m30s"), Ok(90));
        assert_eq!(parse_duration_seconds("1500ms"), Ok(2));
        assert_eq!(parse_duration_seconds("10"), Ok(10));
        assert!(parse_duration_seconds("10 parsecs").is_err());
        assert!(parse_duration_seconds("s").is_err());
    }
}
