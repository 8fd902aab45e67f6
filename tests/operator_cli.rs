//! What an operator sees in the first minutes, from the binary itself: the seed's
//! `init phase post-init-instructions`, output piped into a reader that went away, and
//! etcd releases with known data inconsistency bugs refused.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn etcdadm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_etcdadm"))
}

/// Every path init would touch, under `dir`, so a test can tell nothing was written.
fn paths_under(dir: &Path) -> Vec<String> {
    let p = |rel: &str| dir.join(rel).display().to_string();
    [
        ("--install-dir", p("bin")),
        ("--certs-dir", p("pki")),
        ("--data-dir", p("data")),
        ("--env-file", p("etcd.env")),
        ("--unit-file", p("etcd.service")),
        ("--etcdctl-env-file", p("etcdctl.env")),
        ("--state-file", p("state.json")),
        ("--cache-dir", p("cache")),
    ]
    .into_iter()
    .flat_map(|(flag, path)| [flag.to_string(), path])
    .collect()
}

#[test]
fn init_phase_post_init_instructions_prints_the_ca_files_and_the_join_command_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out: Output = etcdadm()
        .args(["init", "phase", "post-init-instructions", "--advertise-address", "192.0.2.7"])
        .args(["--config", "/dev/null"])
        .args(paths_under(dir.path()))
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let pki = dir.path().join("pki");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "To add a member, copy {0}/ca.crt and {0}/ca.key to the same paths on the new machine, then run there:\n\n  etcdadm join https://192.0.2.7:2379\n",
            pki.display()
        )
    );
    let written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(written.is_empty(), "wrote {written:?}");
}

/// Runs etcdadm with stdout a pipe whose read end is already closed, as in `etcdadm info |
/// head -1` once head has exited: every write fails with EPIPE (SIGPIPE stays ignored).
fn with_closed_stdout(args: &[&str]) -> Output {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    etcdadm().args(args).stdout(Stdio::from(write)).stderr(Stdio::piped()).output().unwrap()
}

#[test]
fn a_closed_stdout_ends_etcdadm_quietly_with_status_141() {
    // `info` of a member whose cluster is unreachable (no certificates): it prints its
    // table all the same, so `etcdadm info | head -1` is the case here.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(
        &state,
        serde_json::json!({
            "origin": "init",
            "phase": "member",
            "advertise-address": "127.0.0.1",
            "config": {
                "name": "m1",
                "advertise-address": "127.0.0.1",
                "client-port": 1,
                "certs-dir": dir.path().join("pki"),
                "state-file": state,
            },
        })
        .to_string(),
    )
    .unwrap();
    let info = ["info", "--config", "/dev/null", "--state-file", state.to_str().unwrap()];
    let shown = etcdadm().args(info).output().unwrap();
    assert!(
        String::from_utf8_lossy(&shown.stdout).starts_with("member m1 "),
        "info prints nothing to cut short: {shown:?}"
    );
    for args in [&info[..], &["version"], &["generate", "completions", "bash"]] {
        let out = with_closed_stdout(args);
        assert_eq!(out.status.code(), Some(141), "etcdadm {args:?}: {}", out.status);
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "etcdadm {args:?} stderr");
    }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default()
}

#[test]
fn init_join_and_upgrade_refuse_etcd_3_5_0_to_3_5_2_naming_the_bug_and_the_override_and_write_nothing(
) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for (verb, version) in [("init", "3.5.0"), ("join", "3.5.1"), ("init", "3.5.2")] {
        let mut cmd = etcdadm();
        cmd.args([verb, "--config", "/dev/null", "--version", version]);
        cmd.args(["--advertise-address", "192.0.2.7"]).args(paths_under(&root));
        if verb == "join" {
            cmd.arg("https://192.0.2.8:2379");
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{verb} {version} accepted: {err}");
        for needle in [
            format!("etcd {version} (version)"),
            "etcd-io/etcd#13766".into(),
            "fixed in 3.5.3".into(),
            "--allow-known-bad-release".into(),
            "nothing was changed".into(),
        ] {
            assert!(err.contains(&needle), "{verb} {version}: no {needle:?} in: {err}");
        }
        assert_eq!(files_under(&root), Vec::<std::path::PathBuf>::new(), "{verb} {version} wrote");
    }
    let state = root.join("state.json").display().to_string();
    let out = etcdadm()
        .args(["upgrade", "--version", "3.5.1", "--yes", "--state-file", &state])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("etcd 3.5.1 (--version)"), "{err}");
}

#[test]
fn allow_known_bad_release_lets_init_past_the_refusal_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    // The mirror does not exist: init gets past the version check and fails at the download.
    let out = etcdadm()
        .args(["init", "--config", "/dev/null", "--version", "3.5.1", "--allow-known-bad-release"])
        .args(["--advertise-address", "192.0.2.7", "--release-url"])
        .arg(format!("file://{}/no-mirror", dir.path().display()))
        .args(paths_under(&root))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("installing a known-bad etcd release"), "{err}");
    assert!(!err.contains("nothing was changed") && err.contains("no-mirror"), "{err}");
}

#[test]
fn recover_without_a_member_set_up_here_says_so_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let out = etcdadm()
        .args(["recover", "--yes", "--config", "/dev/null", "--state-file"])
        .arg(&state)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "no member set up by etcdadm on this machine ({} does not exist)",
            state.display()
        )),
        "{stderr}"
    );
    assert!(files_under(dir.path()).is_empty(), "{:?}", files_under(dir.path()));
}
