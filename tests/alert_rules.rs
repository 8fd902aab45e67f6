//! The example Prometheus alert rules (packaging/prometheus/etcdadm-alerts.yml) and the
//! textfile metrics the timers' runs write, checked by Prometheus' own tools: promtool
//! (`check rules`, `test rules` on tests/prometheus/etcdadm-alerts.test.yml, `check metrics`)
//! and node_exporter's textfile collector, both from scripts/install-deps.sh (a missing
//! tool fails these tests, never skips them). The metrics files come from the real writers
//! (`etcdadm::metrics::timers`) over real files; their values are checked against what is
//! on disk, read independently (file sizes, `openssl x509 -enddate`).

#[allow(dead_code)]
#[path = "discovery/support.rs"]
mod support;

use etcdadm::member::PkiPaths;
use etcdadm::metrics::timers::{self, DbUsage, DefragDone};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{free_port, tool, wait_for_tcp, ChildGuard};

const RULES: &str = "packaging/prometheus/etcdadm-alerts.yml";
const RULE_TESTS: &str = "tests/prometheus/etcdadm-alerts.test.yml";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn promtool() -> PathBuf {
    tool(
        "promtool (Debian's prometheus package, extracted)",
        "ETCDADM_TEST_PROMTOOL",
        &["/opt/etcdadm-test/prometheus/usr/bin/promtool"],
    )
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{cmd:?}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    out
}

#[test]
fn promtool_checks_the_shipped_rules() {
    let out = run(Command::new(promtool()).args(["check", "rules"]).arg(repo(RULES)));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SUCCESS: 7 rules found"), "{stdout}");
}

/// Every alert fires on the series it is about, and not on healthy ones (backup 26 h old
/// fires, 1 h old does not; certificate in 10 days fires, in 30 does not; database at 85 %
/// of its quota fires, at 50 % does not; ...), each with its exact annotations.
#[test]
fn promtool_unit_tests_of_the_rules_pass() {
    let out = run(Command::new(promtool()).args(["test", "rules"]).arg(repo(RULE_TESTS)));
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));
}

/// Each alert is exercised by the unit tests, says what to do (an etcdadm command), and
/// has a severity.
#[test]
fn every_alert_is_tested_and_says_what_to_do() {
    let rules: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(repo(RULES)).unwrap()).unwrap();
    let tests = std::fs::read_to_string(repo(RULE_TESTS)).unwrap();
    let mut alerts = Vec::new();
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().expect("only alerting rules").to_string();
            let description = rule["annotations"]["description"].as_str().unwrap_or("");
            assert!(description.contains("`etcdadm "), "{name}: no etcdadm command: {description}");
            assert!(rule["annotations"]["summary"].as_str().is_some(), "{name}: no summary");
            assert!(rule["labels"]["severity"].as_str().is_some(), "{name}: no severity");
            assert!(
                tests.contains(&format!("alertname: {name}\n")),
                "{name} is not in {RULE_TESTS}"
            );
            alerts.push(name);
        }
    }
    for required in ["EtcdadmBackupMissing", "EtcdadmCertificateExpiresSoon", "EtcdadmDbNearQuota"]
    {
        assert!(alerts.iter().any(|a| a == required), "{required} missing: {alerts:?}");
    }
}

/// `promtool check metrics` (format and Prometheus' naming rules) on `file`.
fn promtool_check_metrics(file: &Path) {
    let out = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics {}: {}\n{}{}\n--- file:\n{}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(file).unwrap()
    );
}

/// The samples of a textfile, by metric name and labels (`name{k="v",...}`).
fn samples(file: &Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(file).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .unwrap_or_else(|e| panic!("{}: {e}\n{text}", file.display()));
    scrape
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<String> =
                s.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            labels.sort();
            let key = if labels.is_empty() {
                s.metric
            } else {
                format!("{}{{{}}}", s.metric, labels.join(","))
            };
            let v = match s.value {
                prometheus_parse::Value::Gauge(v) => v,
                other => panic!("{key} is not a gauge: {other:?}"),
            };
            (key, v)
        })
        .collect()
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn backup_metrics_report_the_snapshot_on_disk_and_survive_failed_runs() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("textfile");
    let snap = d.path().join("m1-20261205T084000.000Z.db");
    std::fs::write(&snap, vec![0x5a; 123_457]).unwrap();
    let t1 = UNIX_EPOCH + Duration::from_millis(1_795_000_000_250);
    let path = timers::write_backup(&dir, t1, Some(&snap)).unwrap();
    assert_eq!(path, dir.join("etcdadm-backup.prom"));
    promtool_check_metrics(&path);
    let on_disk = std::fs::metadata(&snap).unwrap().len() as f64;
    let ok = samples(&path);
    assert_eq!(ok["etcdadm_backup_last_size_bytes"], on_disk);
    assert_eq!(ok["etcdadm_backup_last_success_timestamp_seconds"], seconds(t1));
    assert_eq!(ok["etcdadm_backup_last_run_success"], 1.0);
    // a later failed run: its own time and outcome, the last success unchanged
    let t2 = t1 + Duration::from_secs(86_400);
    timers::write_backup(&dir, t2, None).unwrap();
    promtool_check_metrics(&path);
    let failed = samples(&path);
    assert_eq!(failed["etcdadm_backup_last_run_success"], 0.0);
    assert_eq!(failed["etcdadm_backup_last_run_timestamp_seconds"], seconds(t2));
    assert_eq!(failed["etcdadm_backup_last_success_timestamp_seconds"], seconds(t1));
    assert_eq!(failed["etcdadm_backup_last_size_bytes"], on_disk);
}

#[test]
fn defrag_and_database_metrics_parse_with_their_values() {
    let d = tempfile::tempdir().unwrap();
    let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let done = DefragDone { reclaimed_bytes: 50 << 20, members_defragmented: 1 };
    let path = timers::write_defrag(d.path(), t, Some(done)).unwrap();
    promtool_check_metrics(&path);
    let s = samples(&path);
    assert_eq!(s["etcdadm_defrag_last_reclaimed_bytes"], 52_428_800.0);
    assert_eq!(s["etcdadm_defrag_last_defragmented_members"], 1.0);
    assert_eq!(s["etcdadm_defrag_last_success_timestamp_seconds"], 1_795_000_000.0);
    let db = DbUsage { size_bytes: 1_825_361_100, in_use_bytes: 1 << 30, quota_bytes: 2 << 30 };
    let path = timers::write_db(d.path(), t, db).unwrap();
    promtool_check_metrics(&path);
    let s = samples(&path);
    assert_eq!(s["etcdadm_db_size_bytes"], 1_825_361_100.0);
    assert_eq!(s["etcdadm_db_size_in_use_bytes"], 1_073_741_824.0);
    assert_eq!(s["etcdadm_db_quota_bytes"], 2_147_483_648.0);
}

/// A self-signed certificate valid `days` days, made by openssl.
fn openssl_cert(path: &Path, cn: &str, days: u32) {
    let key = path.with_extension("key");
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-subj", &format!("/CN={cn}"), "-days", &days.to_string()])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(path)
        .stderr(Stdio::null()));
}

/// notAfter of `cert` as Unix time, read by openssl and converted by date(1).
fn openssl_not_after(cert: &Path) -> f64 {
    let out = run(Command::new("openssl").args(["x509", "-noout", "-enddate", "-in"]).arg(cert));
    let line = String::from_utf8(out.stdout).unwrap();
    let date = line.trim().strip_prefix("notAfter=").unwrap_or_else(|| panic!("{line}"));
    let out = run(Command::new("date").args(["-u", "-d", date, "+%s"]));
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

#[test]
fn certificate_metrics_carry_each_certificates_not_after() {
    let d = tempfile::tempdir().unwrap();
    let pki = PkiPaths::new(d.path());
    openssl_cert(&pki.ca_cert, "etcd-ca", 3650);
    openssl_cert(&pki.server_cert, "m1", 10);
    openssl_cert(&pki.peer_cert, "m1", 30);
    openssl_cert(&pki.client_cert, "etcdctl", 365);
    // no apiserver client certificate: left out
    let dir = d.path().join("textfile");
    let path =
        timers::write_certs(&dir, SystemTime::now(), true, &timers::member_certificates(&pki))
            .unwrap();
    promtool_check_metrics(&path);
    let s = samples(&path);
    for (name, file) in [
        ("ca", &pki.ca_cert),
        ("server", &pki.server_cert),
        ("peer", &pki.peer_cert),
        ("client", &pki.client_cert),
    ] {
        let key = format!(
            "etcdadm_certificate_expiry_timestamp_seconds{{certificate=\"{name}\",file=\"{}\"}}",
            file.display()
        );
        assert_eq!(s.get(&key).copied(), Some(openssl_not_after(file)), "{key} in {s:?}");
    }
    assert_eq!(s.keys().filter(|k| k.contains("expiry")).count(), 4, "{s:?}");
    assert_eq!(s["etcdadm_certs_renew_last_run_success"], 1.0);
}

/// All the files together, as node_exporter's textfile collector reads them: no error
/// (a series in two files, or a malformed file, would be one), every series exported.
#[test]
fn node_exporter_reads_every_file_together() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("textfile");
    let t = SystemTime::now();
    let snap = d.path().join("s.db");
    std::fs::write(&snap, b"snapshot").unwrap();
    timers::write_backup(&dir, t, Some(&snap)).unwrap();
    timers::write_defrag(&dir, t, None).unwrap();
    let db = DbUsage { size_bytes: 10, in_use_bytes: 5, quota_bytes: 100 };
    timers::write_db(&dir, t, db).unwrap();
    let pki = PkiPaths::new(d.path());
    openssl_cert(&pki.server_cert, "m1", 10);
    timers::write_certs(&dir, t, false, &timers::member_certificates(&pki)).unwrap();
    let report = etcdadm::metrics::BootstrapRun::start().report(true);
    etcdadm::metrics::write_textfile(&dir, &report).unwrap();

    let bin = tool(
        "prometheus-node-exporter (Debian's package, extracted)",
        "ETCDADM_TEST_NODE_EXPORTER",
        &["/opt/etcdadm-test/node-exporter/usr/bin/prometheus-node-exporter"],
    );
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let addr = SocketAddr::new(ip, free_port(ip));
    let child = Command::new(bin)
        .arg(format!("--web.listen-address={addr}"))
        .args(["--collector.disable-defaults", "--collector.textfile"])
        .arg(format!("--collector.textfile.directory={}", dir.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node_exporter");
    let mut child = ChildGuard(child);
    wait_for_tcp(addr, Duration::from_secs(20), &mut child.0, "node_exporter");
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(conn, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut scrape = String::new();
    conn.read_to_string(&mut scrape).unwrap();
    assert!(scrape.contains("\nnode_textfile_scrape_error 0\n"), "{scrape}");
    for series in [
        "etcdadm_backup_last_size_bytes 8\n",
        "etcdadm_defrag_last_run_success 0\n",
        "etcdadm_db_quota_bytes 100\n",
        "etcdadm_certs_renew_last_run_success 0\n",
        "etcdadm_certificate_expiry_timestamp_seconds{certificate=\"server\"",
        "etcdadm_bootstrap_success{decision=\"none\"} 1\n",
    ] {
        assert!(scrape.contains(&format!("\n{series}")), "{series} missing:\n{scrape}");
    }
}
