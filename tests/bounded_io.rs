//! A release mirror that misbehaves, against the binary itself (`etcdadm download`): one that
//! accepts the connection and then sends nothing fails within timeout-seconds naming the
//! URL; an endless SHA256SUMS is cut at its cap; and an endless archive streams through
//! bounded memory: the process's peak resident set (VmHWM) stays below 50 MB while far more
//! than that has been sent to it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the mirror does after reading a request.
#[derive(Clone, Copy)]
enum Mirror {
    /// Holds the connection open and sends nothing.
    Silent,
    /// A 200 answer without a length, then body bytes until the client goes away.
    Endless,
}

/// A mirror on 127.0.0.1; returns its base URL and the count of body bytes it sent.
fn mirror(kind: Mirror) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                let _ = conn.read(&mut buf);
                match kind {
                    Mirror::Silent => std::thread::sleep(Duration::from_secs(600)),
                    Mirror::Endless => {
                        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                        let chunk = vec![b'e'; 256 * 1024];
                        while conn.write_all(&chunk).is_ok() {
                            counter.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    (url, sent)
}

/// `etcdadm download` of etcd 3.5.30 from `url` with timeout-seconds 2, everything under `dir`.
fn download(url: &str, dir: &Path, extra: &[&str]) -> Command {
    let config = dir.join("config.yaml");
    std::fs::write(&config, "timeout-seconds: 2\n").unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcdadm"));
    c.args(["download", "--version", "3.5.30", "--release-url", url])
        .arg("--config")
        .arg(&config)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .args(extra)
        .stdin(Stdio::null());
    c
}

#[test]
fn a_mirror_that_accepts_and_sends_nothing_fails_naming_the_url_and_timeout_seconds() {
    let (url, _) = mirror(Mirror::Silent);
    let dir = tempfile::tempdir().unwrap();
    let out = download(&url, dir.path(), &[]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{url}/v3.5.30/SHA256SUMS")), "{err}");
    assert!(err.contains("no answer within 2s (timeout-seconds)"), "{err}");
}

#[test]
fn an_endless_sha256sums_is_cut_at_its_cap() {
    let (url, _) = mirror(Mirror::Endless);
    let dir = tempfile::tempdir().unwrap();
    let out = download(&url, dir.path(), &[]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{url}/v3.5.30/SHA256SUMS")), "{err}");
    assert!(err.contains("larger than 1048576 bytes (the cap for SHA256SUMS)"), "{err}");
    assert!(!dir.path().join("cache/SHA256SUMS").exists());
}

/// VmHWM (peak resident set) of `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn an_endless_archive_streams_through_bounded_memory() {
    const STREAMED: u64 = 160 << 20;
    const PEAK_LIMIT_KIB: u64 = 50 * 1000;
    let (url, sent) = mirror(Mirror::Endless);
    let dir = tempfile::tempdir().unwrap();
    // Pinned digest: no SHA256SUMS, straight to the archive.
    let mut child = download(&url, dir.path(), &["--release-sha256", &"ab".repeat(32)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    // Until far more than the limit went through (or the process ended: then it failed).
    while sent.load(Ordering::SeqCst) < STREAMED {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("download ended ({status}) after {} bytes: {err}", sent.load(Ordering::SeqCst));
        }
        peak = peak_rss_kib(pid);
        assert!(
            peak < PEAK_LIMIT_KIB,
            "peak RSS {peak} KiB after {} bytes",
            sent.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    peak = peak.max(peak_rss_kib(pid));
    let _ = child.kill();
    let _ = child.wait();
    eprintln!("peak RSS {peak} KiB after streaming {} MiB", sent.load(Ordering::SeqCst) >> 20);
    assert!(peak < PEAK_LIMIT_KIB, "peak RSS {peak} KiB");
}
