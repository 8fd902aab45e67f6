//! What the runs of `etcdadm backup`, `etcdadm defrag` and `etcdadm certs renew` (their
//! timers', and by hand) tell node_exporter's textfile collector, for alerting (the example
//! rules: packaging/prometheus/etcdadm-alerts.yml). One file per writer in
//! `metrics-textfile-dir`, beside the bootstrap's `etcdadm.prom`, so no run overwrites
//! another's series and no series appears in two files (node_exporter fails the scrape of a
//! series it reads twice):
//!
//! - `etcdadm-backup.prom`: the last run (time, success) and the last *successful* backup
//!   (time, size of the snapshot on disk);
//! - `etcdadm-defrag.prom`: the last run and the last successful one (time, bytes
//!   reclaimed, members defragmented);
//! - `etcdadm-db.prom`: this member's database size, size in use and quota, as measured by
//!   the newest backup or defragmentation run;
//! - `etcdadm-certs.prom`: the expiry of each certificate of the member (CA included), as on
//!   disk after the last renewal run, and that run's outcome.
//!
//! A failed run never moves a "last success" series: it writes the run's own time and
//! `..._last_run_success 0`, and carries the last-success series over from the file it
//! replaces (the only thing ever read back). So "no backup for 25 h" keeps firing while
//! backups keep failing. Each file is replaced atomically (mode 0644); a failure to write is
//! logged, never fails the run.

use super::{family, sample, write_file, MetricsError};
use crate::member::PkiPaths;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub const BACKUP_FILE: &str = "etcdadm-backup.prom";
pub const DEFRAG_FILE: &str = "etcdadm-defrag.prom";
pub const DB_FILE: &str = "etcdadm-db.prom";
pub const CERTS_FILE: &str = "etcdadm-certs.prom";

/// Writes one run's metrics with `write` into `dir` (nothing when `dir` is empty, i.e.
/// `metrics-textfile-dir: ""`); logs the outcome, never fails: metrics must not turn a
/// good run into a failed one, nor hide a failed run's own error.
pub fn record(dir: &Path, what: &str, write: impl FnOnce(&Path) -> Result<PathBuf, MetricsError>) {
    if dir.as_os_str().is_empty() {
        return;
    }
    match write(dir) {
        Ok(path) => tracing::info!(path = %path.display(), "wrote {what} metrics"),
        Err(e) => tracing::warn!(
            "{e}; node_exporter will not see this {what} run: create the directory (the timers' sandbox does not create it), fix its permissions, or set metrics-textfile-dir to \"\" to disable"
        ),
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// The unlabelled samples of the file a run replaces (`name value` lines), by name: what a
/// failed run carries over. A missing or unreadable file carries nothing.
fn previous(dir: &Path, name: &str) -> HashMap<String, f64> {
    let Ok(text) = std::fs::read_to_string(dir.join(name)) else {
        return HashMap::new();
    };
    parse_unlabelled(&text)
}

fn parse_unlabelled(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.contains('{'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (name, value) = (parts.next()?, parts.next()?.parse::<f64>().ok()?);
            Some((name.to_string(), value))
        })
        .collect()
}

/// One gauge: HELP, TYPE and its unlabelled sample.
fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    family(out, name, help);
    sample(out, name, &[], value);
}

/// The run's time and outcome, then the "last success" gauges: this run's values when it
/// succeeded, else those carried over from `prev` (none when no run ever succeeded).
fn run_and_success(
    out: &mut String,
    prefix: &str,
    command: &str,
    finished: SystemTime,
    success: Option<&[(&str, &str, f64)]>,
    prev: &HashMap<String, f64>,
    carried: &[(&str, &str)],
) {
    gauge(
        out,
        &format!("{prefix}_last_run_timestamp_seconds"),
        &format!("Unix time the last `{command}` run ended, successful or not."),
        unix_seconds(finished),
    );
    gauge(
        out,
        &format!("{prefix}_last_run_success"),
        &format!("Whether the last `{command}` run succeeded (1) or failed (0)."),
        if success.is_some() { 1.0 } else { 0.0 },
    );
    match success {
        Some(values) => {
            for (name, help, v) in values {
                gauge(out, &format!("{prefix}_{name}"), help, *v);
            }
        }
        None => {
            for (name, help) in carried {
                let full = format!("{prefix}_{name}");
                if let Some(v) = prev.get(&full) {
                    gauge(out, &full, help, *v);
                }
            }
        }
    }
}

const BACKUP_SUCCESS_HELP: &str = "Unix time of the last successful `etcdadm backup` (snapshot saved and checked, and uploaded when an S3 upload is set); failed runs keep it.";
const BACKUP_SIZE_HELP: &str =
    "Size in bytes on disk of the snapshot the last successful `etcdadm backup` saved.";

/// The backup file's text: `snapshot_bytes` is the saved snapshot's size when the run
/// succeeded, None when it failed.
pub fn render_backup(
    finished: SystemTime,
    snapshot_bytes: Option<u64>,
    prev: &HashMap<String, f64>,
) -> String {
    let mut out = String::new();
    let values;
    let success = match snapshot_bytes {
        Some(bytes) => {
            values = [
                ("last_success_timestamp_seconds", BACKUP_SUCCESS_HELP, unix_seconds(finished)),
                ("last_size_bytes", BACKUP_SIZE_HELP, bytes as f64),
            ];
            Some(&values[..])
        }
        None => None,
    };
    run_and_success(
        &mut out,
        "etcdadm_backup",
        "etcdadm backup",
        finished,
        success,
        prev,
        &[
            ("last_success_timestamp_seconds", BACKUP_SUCCESS_HELP),
            ("last_size_bytes", BACKUP_SIZE_HELP),
        ],
    );
    out
}

/// Writes `dir/etcdadm-backup.prom` for a run that ended at `finished`: with `snapshot`
/// (the file it saved, whose size on disk is reported) when it succeeded, None when it
/// failed.
pub fn write_backup(
    dir: &Path,
    finished: SystemTime,
    snapshot: Option<&Path>,
) -> Result<PathBuf, MetricsError> {
    let bytes = match snapshot {
        Some(p) => Some(
            std::fs::metadata(p)
                .map_err(|source| MetricsError::Read { path: p.display().to_string(), source })?
                .len(),
        ),
        None => None,
    };
    let text = render_backup(finished, bytes, &previous(dir, BACKUP_FILE));
    write_file(dir, BACKUP_FILE, &text)
}

/// What a successful defragmentation run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DefragDone {
    /// Sum over the members it defragmented of their database size before minus after.
    pub reclaimed_bytes: u64,
    /// How many members it defragmented (0: none was worth it).
    pub members_defragmented: u64,
}

const DEFRAG_SUCCESS_HELP: &str = "Unix time the last successful `etcdadm defrag` run ended (members not worth defragmenting count as done); failed runs keep it.";
const DEFRAG_RECLAIMED_HELP: &str = "Bytes the last successful `etcdadm defrag` run reclaimed: database size before minus after, summed over the members it defragmented.";
const DEFRAG_MEMBERS_HELP: &str = "Members the last successful `etcdadm defrag` run defragmented (0: none was worth it; the timer's run only does this machine's member).";

pub fn render_defrag(
    finished: SystemTime,
    done: Option<DefragDone>,
    prev: &HashMap<String, f64>,
) -> String {
    let mut out = String::new();
    let values;
    let success = match done {
        Some(d) => {
            values = [
                ("last_success_timestamp_seconds", DEFRAG_SUCCESS_HELP, unix_seconds(finished)),
                ("last_reclaimed_bytes", DEFRAG_RECLAIMED_HELP, d.reclaimed_bytes as f64),
                ("last_defragmented_members", DEFRAG_MEMBERS_HELP, d.members_defragmented as f64),
            ];
            Some(&values[..])
        }
        None => None,
    };
    run_and_success(
        &mut out,
        "etcdadm_defrag",
        "etcdadm defrag",
        finished,
        success,
        prev,
        &[
            ("last_success_timestamp_seconds", DEFRAG_SUCCESS_HELP),
            ("last_reclaimed_bytes", DEFRAG_RECLAIMED_HELP),
            ("last_defragmented_members", DEFRAG_MEMBERS_HELP),
        ],
    );
    out
}

/// Writes `dir/etcdadm-defrag.prom` for a run that ended at `finished` (`done`: None when
/// it failed).
pub fn write_defrag(
    dir: &Path,
    finished: SystemTime,
    done: Option<DefragDone>,
) -> Result<PathBuf, MetricsError> {
    let text = render_defrag(finished, done, &previous(dir, DEFRAG_FILE));
    write_file(dir, DEFRAG_FILE, &text)
}

/// This member's database as etcd reported it, and its quota.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DbUsage {
    pub size_bytes: i64,
    pub in_use_bytes: i64,
    /// quota-backend-bytes etcd runs with.
    pub quota_bytes: u64,
}

pub fn render_db(measured: SystemTime, db: DbUsage) -> String {
    let mut out = String::new();
    gauge(
        &mut out,
        "etcdadm_db_size_bytes",
        "Size in bytes of this member's database file (what counts against the quota), as of etcdadm_db_measured_timestamp_seconds.",
        db.size_bytes.max(0) as f64,
    );
    gauge(
        &mut out,
        "etcdadm_db_size_in_use_bytes",
        "Bytes of this member's database in use (the rest is free space a defragmentation returns).",
        db.in_use_bytes.max(0) as f64,
    );
    gauge(
        &mut out,
        "etcdadm_db_quota_bytes",
        "This member's space quota in bytes (quota-backend-bytes); above it etcd raises the NOSPACE alarm and refuses writes.",
        db.quota_bytes as f64,
    );
    gauge(
        &mut out,
        "etcdadm_db_measured_timestamp_seconds",
        "Unix time the database was measured (by the newest `etcdadm backup` or `etcdadm defrag` run).",
        unix_seconds(measured),
    );
    out
}

/// Writes `dir/etcdadm-db.prom` (the newest measurement replaces the previous one,
/// whichever command made it).
pub fn write_db(dir: &Path, measured: SystemTime, db: DbUsage) -> Result<PathBuf, MetricsError> {
    write_file(dir, DB_FILE, &render_db(measured, db))
}

/// The certificates of a member by the name the metrics give them (label `certificate`):
/// the CA, the server, peer and etcdctl client certificates, and kube-apiserver's client
/// certificate (which exists only with apiserver-client-cert).
pub fn member_certificates(p: &PkiPaths) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("ca", p.ca_cert.clone()),
        ("server", p.server_cert.clone()),
        ("peer", p.peer_cert.clone()),
        ("client", p.client_cert.clone()),
        ("apiserver-client", p.apiserver_cert.clone()),
    ]
}

/// The certificates file's text: `expiries` as (name, file, Unix time of notAfter).
pub fn render_certs(
    finished: SystemTime,
    renew_success: bool,
    expiries: &[(&str, &Path, i64)],
) -> String {
    let mut out = String::new();
    gauge(
        &mut out,
        "etcdadm_certs_renew_last_run_timestamp_seconds",
        "Unix time the last `etcdadm certs renew` run ended, successful or not.",
        unix_seconds(finished),
    );
    gauge(
        &mut out,
        "etcdadm_certs_renew_last_run_success",
        "Whether the last `etcdadm certs renew` run succeeded (1) or failed (0).",
        if renew_success { 1.0 } else { 0.0 },
    );
    if !expiries.is_empty() {
        let name = "etcdadm_certificate_expiry_timestamp_seconds";
        family(
            &mut out,
            name,
            "Unix time (notAfter) each certificate of this member expires, as on disk after the last `etcdadm certs renew` run; certificate: ca, server, peer, client (etcdctl) or apiserver-client.",
        );
        for (cert, file, not_after) in expiries {
            let file = file.display().to_string();
            sample(&mut out, name, &[("certificate", cert), ("file", &file)], *not_after as f64);
        }
    }
    out
}

/// Writes `dir/etcdadm-certs.prom` after a renewal run: the expiry of each of `certs`
/// (name, file) that exists, read from the file; a certificate that cannot be read is left
/// out (and logged), the others are still reported.
pub fn write_certs(
    dir: &Path,
    finished: SystemTime,
    renew_success: bool,
    certs: &[(&str, PathBuf)],
) -> Result<PathBuf, MetricsError> {
    let mut expiries = Vec::new();
    for (name, file) in certs {
        if !file.exists() {
            continue;
        }
        match crate::pki::describe(file) {
            Ok((_, not_after)) => {
                expiries.push((*name, file.as_path(), not_after.unix_timestamp()))
            }
            Err(e) => tracing::warn!("{e}; its expiry is left out of {CERTS_FILE}"),
        }
    }
    write_file(dir, CERTS_FILE, &render_certs(finished, renew_success, &expiries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn samples(text: &str) -> Vec<(String, f64)> {
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .expect("exposition format");
        for s in &scrape.samples {
            assert!(scrape.docs.contains_key(&s.metric), "no HELP for {}", s.metric);
        }
        scrape
            .samples
            .into_iter()
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) => (s.metric, v),
                other => panic!("{} is not a gauge: {other:?}", s.metric),
            })
            .collect()
    }

    fn owned(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn a_failed_backup_keeps_the_last_success_and_size() {
        let d = tempfile::tempdir().unwrap();
        // the very first run fails: no success series at all (the alert's absent case)
        write_backup(d.path(), at(1_000), None).unwrap();
        let text = std::fs::read_to_string(d.path().join(BACKUP_FILE)).unwrap();
        assert_eq!(
            samples(&text),
            owned(&[
                ("etcdadm_backup_last_run_timestamp_seconds", 1_000.0),
                ("etcdadm_backup_last_run_success", 0.0),
            ])
        );
        let snap = d.path().join("m1.db");
        std::fs::write(&snap, vec![7u8; 4096]).unwrap();
        write_backup(d.path(), at(2_000), Some(&snap)).unwrap();
        write_backup(d.path(), at(3_000), None).unwrap();
        let text = std::fs::read_to_string(d.path().join(BACKUP_FILE)).unwrap();
        assert_eq!(
            samples(&text),
            owned(&[
                ("etcdadm_backup_last_run_timestamp_seconds", 3_000.0),
                ("etcdadm_backup_last_run_success", 0.0),
                ("etcdadm_backup_last_success_timestamp_seconds", 2_000.0),
                ("etcdadm_backup_last_size_bytes", 4096.0),
            ])
        );
        // and again: still carried
        write_backup(d.path(), at(4_000), None).unwrap();
        let again = std::fs::read_to_string(d.path().join(BACKUP_FILE)).unwrap();
        assert_eq!(again, text.replace(" 3000\n", " 4000\n"));
    }

    #[test]
    fn a_vanished_snapshot_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        let e = write_backup(d.path(), at(1), Some(&d.path().join("gone.db"))).unwrap_err();
        assert!(e.to_string().contains("gone.db"), "{e}");
    }

    #[test]
    fn defrag_reports_what_the_last_successful_run_reclaimed() {
        let d = tempfile::tempdir().unwrap();
        let done = DefragDone { reclaimed_bytes: 1 << 20, members_defragmented: 1 };
        write_defrag(d.path(), at(10), Some(done)).unwrap();
        write_defrag(d.path(), at(20), None).unwrap();
        let text = std::fs::read_to_string(d.path().join(DEFRAG_FILE)).unwrap();
        assert_eq!(
            samples(&text),
            owned(&[
                ("etcdadm_defrag_last_run_timestamp_seconds", 20.0),
                ("etcdadm_defrag_last_run_success", 0.0),
                ("etcdadm_defrag_last_success_timestamp_seconds", 10.0),
                ("etcdadm_defrag_last_reclaimed_bytes", 1_048_576.0),
                ("etcdadm_defrag_last_defragmented_members", 1.0),
            ])
        );
        let skipped = DefragDone { reclaimed_bytes: 0, members_defragmented: 0 };
        write_defrag(d.path(), at(30), Some(skipped)).unwrap();
        let text = std::fs::read_to_string(d.path().join(DEFRAG_FILE)).unwrap();
        assert!(text.contains("\netcdadm_defrag_last_reclaimed_bytes 0\n"), "{text}");
        assert!(text.contains("\netcdadm_defrag_last_success_timestamp_seconds 30\n"), "{text}");
    }

    #[test]
    fn db_usage_is_reported_with_its_quota() {
        let text = render_db(
            at(5),
            DbUsage { size_bytes: 3 << 20, in_use_bytes: 1 << 20, quota_bytes: 8 << 30 },
        );
        assert_eq!(
            samples(&text),
            owned(&[
                ("etcdadm_db_size_bytes", 3_145_728.0),
                ("etcdadm_db_size_in_use_bytes", 1_048_576.0),
                ("etcdadm_db_quota_bytes", 8_589_934_592.0),
                ("etcdadm_db_measured_timestamp_seconds", 5.0),
            ])
        );
    }

    #[test]
    fn certificates_are_labelled_by_name_and_file() {
        let text = render_certs(
            at(9),
            false,
            &[("server", Path::new("/etc/etcd/pki/server.crt"), 1_900_000_000)],
        );
        assert!(
            text.contains("\netcdadm_certificate_expiry_timestamp_seconds{certificate=\"server\",file=\"/etc/etcd/pki/server.crt\"} 1900000000\n"),
            "{text}"
        );
        assert!(text.contains("\netcdadm_certs_renew_last_run_success 0\n"), "{text}");
        // no certificate readable: no family without samples
        let none = render_certs(at(9), true, &[]);
        assert!(!none.contains("expiry"), "{none}");
        samples(&text);
    }

    #[test]
    fn missing_and_unreadable_certificates_are_left_out() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("bad.crt"), "not a certificate").unwrap();
        let certs = [("ca", d.path().join("ca.crt")), ("server", d.path().join("bad.crt"))];
        let path = write_certs(d.path(), at(1), true, &certs).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(!text.contains("expiry"), "{text}");
        assert!(text.contains("\netcdadm_certs_renew_last_run_success 1\n"), "{text}");
    }

    #[test]
    fn only_unlabelled_samples_are_carried() {
        let prev = parse_unlabelled(
            "# HELP a x\n# TYPE a gauge\na 1.5\nb{l=\"v\"} 2\nc notanumber\nd 3 1700000000\n",
        );
        assert_eq!(prev.len(), 2);
        assert_eq!((prev["a"], prev["d"]), (1.5, 3.0));
    }

    #[test]
    fn an_empty_directory_setting_writes_nothing() {
        let mut called = false;
        record(Path::new(""), "backup", |_| {
            called = true;
            Err(MetricsError::Read {
                path: String::new(),
                source: std::io::ErrorKind::Other.into(),
            })
        });
        assert!(!called);
    }
}
