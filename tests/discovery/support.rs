//! Finding the external tools, free ports, and child processes that die with the test.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

/// The first existing path among `$env_override` and `candidates`; panics with the way to
/// install it otherwise (a missing tool is a broken test machine, not a reason to skip).
pub fn tool(what: &str, env_override: &str, candidates: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os(env_override) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "{env_override}={} does not exist; unset it to use the {what} that scripts/install-deps.sh installs",
            p.display()
        );
        return p;
    }
    for c in candidates {
        if std::path::Path::new(c).is_file() {
            return PathBuf::from(c);
        }
    }
    panic!(
        "{what} is not installed (looked for {}; override with {env_override}). \
         Run scripts/install-deps.sh as root to install it.",
        candidates.join(", ")
    );
}

/// A port free for both UDP and TCP on `ip` right now.
pub fn free_port(ip: IpAddr) -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((ip, 0)).expect("bind a UDP socket on loopback");
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on {ip}");
}

/// Waits until something accepts TCP connections at `addr`.
#[allow(dead_code)] // not every test binary that includes this module calls it
pub fn wait_for_tcp(addr: SocketAddr, timeout: Duration, child: &mut Child, what: &str) {
    if let Err(status) = listening(addr, timeout, child, what) {
        panic!("{what} exited before listening on {addr}: {status}");
    }
}

/// Waits until something accepts TCP connections at `addr`; the child's exit status when it
/// ended first.
pub fn listening(
    addr: SocketAddr,
    timeout: Duration,
    child: &mut Child,
    what: &str,
) -> Result<(), std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(status);
        }
        assert!(start.elapsed() < timeout, "{what} did not listen on {addr} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills and reaps the child when dropped, also when the test panics.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// reqwest is built without a default crypto provider (see main.rs).
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `etcdadm discover --output json` (the built binary) with a configuration whose
/// `bootstrap:` section holds `deadline-seconds: deadline` and then `bootstrap` (YAML lines,
/// indented by two); `env` is set (a value) or removed (None) for the run, and the test fails
/// when `secret` appears in what it prints on stderr. Returns (exit success, the JSON report
/// or Null, stderr).
pub async fn discover_json(
    deadline: u32,
    bootstrap: &str,
    env: &[(&str, Option<&str>)],
    secret: &str,
) -> (bool, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "state-file: {state}\nadvertise-address: 127.0.0.1\nbootstrap:\n  deadline-seconds: {deadline}\n{bootstrap}",
            state = dir.path().join("state.json").display(),
        ),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_etcdadm"));
    cmd.args(["discover", "--output", "json", "--config"]).arg(&config).kill_on_drop(true);
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().await.expect("run etcdadm discover");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains(secret), "{secret:?} was printed: {stderr}");
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.success(), report, stderr)
}

/// The peers of a `discover --output json` report as (name, peer URL).
pub fn report_peers(report: &serde_json::Value) -> std::collections::BTreeSet<(String, String)> {
    report["peers"]
        .as_array()
        .unwrap_or_else(|| panic!("no peers in {report}"))
        .iter()
        .map(|p| (p["name"].as_str().unwrap().into(), p["peer-url"].as_str().unwrap().into()))
        .collect()
}
