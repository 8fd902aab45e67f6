//! The outcome of `etcdadm bootstrap` for node_exporter's textfile collector: a file
//! `etcdadm.prom` in `metrics-textfile-dir`, in the Prometheus text exposition format,
//! replaced atomically (temporary file in the same directory, then rename) as node_exporter
//! requires, so a scrape never sees half a file. Nothing is kept in memory across runs: each
//! run overwrites the file with its own outcome.
//!
//! The timers' runs (backup, defragmentation, certificate renewal) write their own files
//! beside it: see `timers`.

pub mod timers;

use crate::fsutil::{write_atomic, MODE_PUBLIC};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// File name inside the textfile directory (node_exporter reads `*.prom` only, so the
/// temporary file of an atomic write is never read).
pub const TEXTFILE_NAME: &str = "etcdadm.prom";

/// What one bootstrap run did, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapReport {
    pub success: bool,
    /// `form`, `join`, `member` (set up on an earlier boot), or `none` (failed before deciding).
    pub decision: &'static str,
    /// When the run ended.
    pub finished: SystemTime,
    pub duration: Duration,
    /// Time per stage, in order: `discover` (metadata, discovery and probing until the
    /// decision), then the decision's own work (`form`, `join` or `member`).
    pub stages: Vec<(&'static str, Duration)>,
}

/// Times one bootstrap run (the caller owns it for the run); `finish` writes its report.
#[derive(Debug)]
pub struct BootstrapRun {
    started: Instant,
    /// The decision the run took and when.
    decided: Option<(&'static str, Instant)>,
}

impl BootstrapRun {
    pub fn start() -> Self {
        BootstrapRun { started: Instant::now(), decided: None }
    }

    /// Records the decision the run took (`form`, `join`, `member`); the time until now
    /// counts as discovery, the time after it as that decision's work.
    pub fn decided(&mut self, decision: &'static str) {
        self.decided = Some((decision, Instant::now()));
    }

    /// The report of the run so far, ended now with `success`.
    pub fn report(&self, success: bool) -> BootstrapReport {
        let now = Instant::now();
        let decided = self.decided;
        let stages = match decided {
            Some((decision, at)) => vec![
                ("discover", at.duration_since(self.started)),
                (decision, now.duration_since(at)),
            ],
            None => vec![("discover", now.duration_since(self.started))],
        };
        BootstrapReport {
            success,
            decision: decided.map_or("none", |(d, _)| d),
            finished: SystemTime::now(),
            duration: now.duration_since(self.started),
            stages,
        }
    }

    /// Writes the report into `dir` (nothing when `dir` is empty). A failure to write is
    /// logged, never returned: metrics must not turn a healthy bootstrap into a failed one.
    pub fn finish(&self, dir: &Path, success: bool) {
        if dir.as_os_str().is_empty() {
            return;
        }
        let report = self.report(success);
        match write_textfile(dir, &report) {
            Ok(path) => tracing::info!(path = %path.display(), success, decision = report.decision, "wrote bootstrap metrics"),
            Err(e) => tracing::warn!(
                "{e}; node_exporter will not see this run's outcome: fix the directory or set metrics-textfile-dir to \"\" to disable"
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot write metrics file {path} (metrics-textfile-dir): {source}")]
    Write { path: String, source: std::io::Error },
    #[error("cannot read {path} for the metrics: {source}")]
    Read { path: String, source: std::io::Error },
}

/// Writes `report` to `dir/etcdadm.prom` atomically (mode 0644, so node_exporter's user
/// can read it), creating `dir` if needed. Returns the file's path.
pub fn write_textfile(dir: &Path, report: &BootstrapReport) -> Result<PathBuf, MetricsError> {
    write_file(dir, TEXTFILE_NAME, &render(report))
}

/// Writes `text` to `dir/name` atomically, mode 0644, creating `dir` if needed.
fn write_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf, MetricsError> {
    let path = dir.join(name);
    write_atomic(&path, text.as_bytes(), MODE_PUBLIC)
        .map_err(|source| MetricsError::Write { path: path.display().to_string(), source })?;
    Ok(path)
}

/// The report in the Prometheus text exposition format (version 0.0.4), with HELP and TYPE
/// for every metric family.
pub fn render(r: &BootstrapReport) -> String {
    let mut out = String::new();
    let finished = r.finished.duration_since(UNIX_EPOCH).unwrap_or_default();
    family(&mut out, "etcdadm_build_info", "etcdadm's version (always 1).");
    sample(&mut out, "etcdadm_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    family(
        &mut out,
        "etcdadm_bootstrap_success",
        "Whether the last etcdadm bootstrap run ended with a healthy member (1) or failed (0); decision: form, join, member (set up on an earlier boot) or none.",
    );
    sample(
        &mut out,
        "etcdadm_bootstrap_success",
        &[("decision", r.decision)],
        if r.success { 1.0 } else { 0.0 },
    );
    family(
        &mut out,
        "etcdadm_bootstrap_last_run_timestamp_seconds",
        "Unix time the last etcdadm bootstrap run ended.",
    );
    sample(&mut out, "etcdadm_bootstrap_last_run_timestamp_seconds", &[], finished.as_secs_f64());
    family(
        &mut out,
        "etcdadm_bootstrap_duration_seconds",
        "Duration of the last etcdadm bootstrap run.",
    );
    sample(&mut out, "etcdadm_bootstrap_duration_seconds", &[], r.duration.as_secs_f64());
    family(
        &mut out,
        "etcdadm_bootstrap_stage_duration_seconds",
        "Duration of each stage of the last etcdadm bootstrap run: discover, then form, join or member.",
    );
    for (stage, d) in &r.stages {
        sample(
            &mut out,
            "etcdadm_bootstrap_stage_duration_seconds",
            &[("stage", stage)],
            d.as_secs_f64(),
        );
    }
    out
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", help.replace('\\', "\\\\").replace('\n', "\\n"));
    let _ = writeln!(out, "# TYPE {name} gauge");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        let pairs: Vec<String> =
            labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
        let _ = write!(out, "{{{}}}", pairs.join(","));
    }
    // Rust's `{}` for f64 never uses exponents and prints integers without a fraction.
    let _ = writeln!(out, " {value}");
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn report(success: bool) -> BootstrapReport {
        BootstrapReport {
            success,
            decision: "form",
            finished: UNIX_EPOCH + Duration::from_millis(1_764_150_000_250),
            duration: Duration::from_millis(12_500),
            stages: vec![
                ("discover", Duration::from_millis(3_000)),
                ("form", Duration::from_millis(9_500)),
            ],
        }
    }

    #[test]
    fn renders_every_family_with_help_and_type() {
        let text = render(&report(true));
        let expected = format!(
            "# HELP etcdadm_build_info etcdadm's version (always 1).\n\
             # TYPE etcdadm_build_info gauge\n\
             etcdadm_build_info{{version=\"{}\"}} 1\n\
             # HELP etcdadm_bootstrap_success Whether the last etcdadm bootstrap run ended with a healthy member (1) or failed (0); decision: form, join, member (set up on an earlier boot) or none.\n\
             # TYPE etcdadm_bootstrap_success gauge\n\
             etcdadm_bootstrap_success{{decision=\"form\"}} 1\n\
             # HELP etcdadm_bootstrap_last_run_timestamp_seconds Unix time the last etcdadm bootstrap run ended.\n\
             # TYPE etcdadm_bootstrap_last_run_timestamp_seconds gauge\n\
             etcdadm_bootstrap_last_run_timestamp_seconds 1764150000.25\n\
             # HELP etcdadm_bootstrap_duration_seconds Duration of the last etcdadm bootstrap run.\n\
             # TYPE etcdadm_bootstrap_duration_seconds gauge\n\
             etcdadm_bootstrap_duration_seconds 12.5\n\
             # HELP etcdadm_bootstrap_stage_duration_seconds Duration of each stage of the last etcdadm bootstrap run: discover, then form, join or member.\n\
             # TYPE etcdadm_bootstrap_stage_duration_seconds gauge\n\
             etcdadm_bootstrap_stage_duration_seconds{{stage=\"discover\"}} 3\n\
             etcdadm_bootstrap_stage_duration_seconds{{stage=\"form\"}} 9.5\n",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(text, expected);
    }

    /// An independent parser of the exposition format reads back every sample.
    #[test]
    fn a_prometheus_parser_reads_it_back() {
        let text = render(&BootstrapReport {
            success: false,
            decision: "none",
            stages: vec![("discover", Duration::from_secs(900))],
            ..report(false)
        });
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .expect("exposition format");
        let get = |name: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name)
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        let value = |name: &str| match get(name).value {
            prometheus_parse::Value::Gauge(v) => v,
            ref other => panic!("{name} is not a gauge: {other:?}"),
        };
        assert_eq!(value("etcdadm_bootstrap_success"), 0.0);
        assert_eq!(get("etcdadm_bootstrap_success").labels.get("decision"), Some("none"));
        assert_eq!(value("etcdadm_bootstrap_duration_seconds"), 12.5);
        assert_eq!(value("etcdadm_bootstrap_last_run_timestamp_seconds"), 1_764_150_000.25);
        assert_eq!(value("etcdadm_bootstrap_stage_duration_seconds"), 900.0);
        assert_eq!(scrape.samples.len(), 5);
        for family in [
            "etcdadm_build_info",
            "etcdadm_bootstrap_success",
            "etcdadm_bootstrap_duration_seconds",
            "etcdadm_bootstrap_stage_duration_seconds",
        ] {
            assert!(scrape.docs.contains_key(family), "no HELP for {family}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn file_is_replaced_atomically_and_readable_by_others() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("textfile_collector");
        let path = write_textfile(&dir, &report(false)).unwrap();
        assert_eq!(path, dir.join("etcdadm.prom"));
        let path = write_textfile(&dir, &report(true)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("etcdadm_bootstrap_success{decision=\"form\"} 1\n"), "{text}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        // nothing but the one file: no temporary file left behind
        let names: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("etcdadm.prom")]);
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_the_file_and_key() {
        let d = tempfile::tempdir().unwrap();
        let blocker = d.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let e = write_textfile(&blocker.join("sub"), &report(true)).unwrap_err().to_string();
        assert!(e.contains("etcdadm.prom") && e.contains("metrics-textfile-dir"), "{e}");
    }

    #[test]
    fn a_run_reports_its_decision_and_stages() {
        let mut run = BootstrapRun::start();
        assert_eq!(run.report(false).decision, "none");
        run.decided("join");
        let r = run.report(true);
        assert_eq!((r.success, r.decision), (true, "join"));
        assert_eq!(r.stages.iter().map(|p| p.0).collect::<Vec<_>>(), ["discover", "join"]);
        assert_eq!(r.stages.iter().map(|p| p.1).sum::<Duration>(), r.duration);
        let d = tempfile::tempdir().unwrap();
        run.finish(Path::new(""), true); // disabled: writes nothing, anywhere
        run.finish(d.path(), true);
        assert!(d.path().join("etcdadm.prom").exists());
    }
}
