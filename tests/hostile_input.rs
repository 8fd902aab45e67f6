//! Values that would be read as syntax by a unit file, an environment file or `sh` (newlines,
//! control characters, shell metacharacters), given to the binary from a flag, a
//! configuration file and an instance tag: one error naming the key and where it came from,
//! and nothing written. Tags outside the allow-list are ignored with one warning each.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn etcdadm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_etcdadm"));
    c.env_remove("NOTIFY_SOCKET").env("RUST_LOG", "info");
    c
}

/// Characters that mean something to systemd, an environment file or sh. NUL cannot be
/// passed in argv; the file and tag cases carry it.
const BAD: &[&str] = &[
    "\n", "\r", "\t", "\x1b", "\x7f", " ", "$", "`", ";", "&", "|", "<", ">", "%", "\"", "'", "\\",
    "~", "*", "#", "(",
];

/// Characters a setting holds legitimately although they are in `BAD`: URLs may hold `~`
/// and percent-escapes, a calendar `*-*-* 02:00` or `Mon..Fri ~01`. None of these settings
/// is written where they would be interpreted.
fn legitimate(key: &str, bad: &str) -> bool {
    match key {
        "release-url" | "backup-s3-endpoint" | "backup-s3-url" => ["~", "%"].contains(&bad),
        "backup-on-calendar" => [" ", "*", "~"].contains(&bad),
        _ => false,
    }
}

/// The path settings, each with its flag.
const PATH_KEYS: &[&str] = &[
    "install-dir",
    "certs-dir",
    "data-dir",
    "env-file",
    "unit-file",
    "etcdctl-env-file",
    "state-file",
    "cache-dir",
    "kubelet-pod-manifest-path",
];

/// Every path init would touch, under `root`, as flags; except `skip`'s.
fn paths_under(root: &Path, skip: &str) -> Vec<String> {
    PATH_KEYS
        .iter()
        .filter(|k| **k != skip)
        .flat_map(|k| [format!("--{k}"), root.join(k).display().to_string()])
        .collect()
}

/// An advertise address, unless `key` is the one under test (a flag would override the file).
fn advertise(key: &str) -> Vec<&'static str> {
    if key == "advertise-address" {
        vec![]
    } else {
        vec!["--advertise-address", "192.0.2.7"]
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_nothing_written(root: &Path, case: &str) {
    let written: Vec<PathBuf> = match std::fs::read_dir(root) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    assert!(written.is_empty(), "{case}: wrote {written:?}");
}

fn assert_one_error(out: &Output, case: &str, needles: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "{case}: accepted; stderr: {err}");
    assert_eq!(err.matches("error:").count(), 1, "{case}: not one error: {err}");
    for n in needles {
        assert!(err.contains(n), "{case}: the error does not name {n:?}: {err}");
    }
}

#[test]
fn a_flag_with_a_character_files_or_sh_would_interpret_is_one_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let mut cases: Vec<(String, String)> = Vec::new();
    for bad in BAD {
        for key in PATH_KEYS {
            cases.push((key.to_string(), format!("{}/x{bad}y", root.join(key).display())));
        }
        for key in ["name", "initial-cluster-token", "image-repository", "advertise-address"] {
            cases.push((key.to_string(), format!("m1{bad}x")));
        }
        cases.push(("release-url".into(), format!("http://mirror.example/etcd{bad}x")));
        cases.push(("server-cert-extra-sans".into(), format!("etcd.example{bad}x")));
    }
    for (key, value) in cases {
        if BAD.iter().any(|b| value.contains(b) && legitimate(&key, b)) {
            continue;
        }
        let case = format!("--{key} {value:?}");
        let out = etcdadm()
            .args(["init", "--config", "/dev/null"])
            .args(advertise(&key))
            .args(paths_under(&root, &key))
            .args([format!("--{key}"), value.clone()])
            .output()
            .unwrap();
        assert_one_error(&out, &case, &[&format!("--{key}")]);
        assert_nothing_written(&root, &case);
    }
}

/// `s` as a YAML double-quoted string (every character escaped that YAML would not keep).
fn yaml_quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap().replace('\x7f', "\\x7f")
}

#[test]
fn a_file_setting_with_a_character_files_or_sh_would_interpret_is_one_error_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let config = dir.path().join("config.yaml");
    let mut cases: Vec<(&str, String, &str)> = Vec::new();
    for bad in BAD.iter().copied().chain(["\0"]) {
        for key in PATH_KEYS.iter().copied().chain(["backup-dir", "metrics-textfile-dir"]) {
            cases.push((key, yaml_quoted(&format!("{}/x{bad}y", root.join(key).display())), bad));
        }
        for key in ["name", "initial-cluster-token", "image-repository", "advertise-address"] {
            cases.push((key, yaml_quoted(&format!("m1{bad}x")), bad));
        }
        cases.push(("backup-on-calendar", yaml_quoted(&format!("daily{bad}x")), bad));
        cases.push(("release-url", yaml_quoted(&format!("http://mirror.example/etcd{bad}x")), bad));
        cases.push(("backup-s3-endpoint", yaml_quoted(&format!("http://s3.example{bad}x")), bad));
        cases.push(("backup-s3-url", yaml_quoted(&format!("s3://bucket/p{bad}x/")), bad));
        cases.push((
            "server-cert-extra-sans",
            format!("[{}]", yaml_quoted(&format!("etcd.example{bad}x"))),
            bad,
        ));
        cases.push((
            "disk-priorities",
            format!("[{}]", yaml_quoted(&format!("Nice=-10{bad}x"))),
            bad,
        ));
    }
    for (key, value, bad) in cases {
        if legitimate(key, bad) {
            continue;
        }
        let case = format!("{key}: {value}");
        std::fs::write(&config, format!("{key}: {value}\n")).unwrap();
        let out = etcdadm()
            .args(["init", "--config", config.to_str().unwrap()])
            .args(advertise(key))
            .args(paths_under(&root, key))
            .output()
            .unwrap();
        let shown_key = format!("key `{key}");
        assert_one_error(&out, &case, &[&config.display().to_string(), &shown_key]);
        let err = stderr(&out);
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{case}: the error shows the value raw: {err}"
        );
        assert_nothing_written(&root, &case);
    }
}

/// A fake EC2 metadata service (IMDSv2) for 127.0.0.1 with `tags`.
fn imds(tags: &[(&str, &str)]) -> mockito::ServerGuard {
    let mut server = mockito::Server::new();
    let always = |m: mockito::Mock| m.expect_at_most(usize::MAX).create();
    always(server.mock("PUT", "/latest/api/token").with_body("tok"));
    let meta = |server: &mut mockito::ServerGuard, key: &str, body: &str| {
        always(
            server
                .mock("GET", format!("/latest/meta-data/{key}").as_str())
                .match_header("x-aws-ec2-metadata-token", "tok")
                .with_body(body),
        )
    };
    meta(&mut server, "instance-id", "i-0123456789abcdef0");
    meta(&mut server, "local-ipv4", "127.0.0.1");
    let names: Vec<&str> = tags.iter().map(|(k, _)| *k).collect();
    meta(&mut server, "tags/instance", &names.join("\n"));
    for (k, v) in tags {
        meta(&mut server, &format!("tags/instance/{k}"), v);
    }
    always(server.mock("GET", mockito::Matcher::Any).with_status(404));
    server
}

/// A configuration reading `server`'s metadata, discovering only this machine, with every
/// path under `root` and the allow-list `allowed`.
fn tag_config(server: &mockito::ServerGuard, root: &Path, allowed: &str) -> String {
    let paths: String = PATH_KEYS
        .iter()
        .chain(&["backup-dir"])
        .map(|k| format!("{k}: {}\n", root.join(k).display()))
        .collect();
    format!(
        "{paths}metrics-textfile-dir: \"\"\nrelease-url: http://127.0.0.1:9/\nbootstrap:\n  deadline-seconds: 20\n  metadata:\n    provider: ec2\n    base-url: {}\n    timeout-seconds: 2\n    allowed-keys: {allowed}\n  discovery:\n    provider: static\n    peers: [127.0.0.1]\n",
        server.url()
    )
}

#[test]
fn an_allowed_tag_with_a_character_files_or_sh_would_interpret_is_one_error_naming_tag_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let config = dir.path().join("config.yaml");
    for bad in ["\n", "\r", "\0", "\x1b", " ", "$", "`", ";", "|", "%", "\"", "\\"] {
        for key in
            ["install-dir", "data-dir", "unit-file", "env-file", "name", "initial-cluster-token"]
        {
            let value = match key {
                "name" | "initial-cluster-token" => format!("m1{bad}x"),
                _ => format!("{}/x{bad}y", root.join(key).display()),
            };
            let tag = format!("etcdadm-{key}");
            let server = imds(&[(&tag, &value)]);
            let case = format!("{tag}={value:?}");
            std::fs::write(&config, tag_config(&server, &root, &format!("[version, {key}]")))
                .unwrap();
            let out = etcdadm()
                .args(["bootstrap", "--config", config.to_str().unwrap()])
                .output()
                .unwrap();
            assert_one_error(&out, &case, &[&format!("instance metadata, tag {tag}: key `{key}`")]);
            assert_nothing_written(&root, &case);
        }
    }
}

#[test]
fn tags_outside_the_allow_list_are_ignored_with_one_warning_each() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let config = dir.path().join("config.yaml");
    let hostile = [
        ("etcdadm-release-url", "http://evil.example/etcd"),
        (
            "etcdadm-release-sha256",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ),
        ("etcdadm-install-dir", "/tmp/evil-bin"),
        ("etcdadm-unit-file", "/etc/systemd/system/evil.service"),
        ("etcdadm-env-file", "/etc/evil.env"),
        ("etcdadm-backup-s3-endpoint", "http://evil.example:9000"),
        ("etcdadm-backup-s3-url", "s3://evil/etcd/"),
        ("etcdadm-name", "m1\nExecStartPre=/bin/touch /pwned"),
        ("etcdadm-allowed-keys", "[release-url]"),
    ];
    let mut tags = hostile.to_vec();
    tags.push(("etcdadm-cluster-size", "3"));
    let server = imds(&tags);
    std::fs::write(
        &config,
        tag_config(&server, &root, "[version, cluster-size, backup-on-calendar]"),
    )
    .unwrap();
    let out = etcdadm()
        .args(["discover", "--once", "--output", "json", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    for (tag, _) in hostile {
        assert_eq!(
            err.matches(&format!("ignoring instance tag \"{tag}\"")).count(),
            1,
            "warnings naming {tag}: {err}"
        );
    }
    assert!(!err.contains("evil") && !err.contains("pwned"), "a hostile value was shown: {err}");
    assert!(!err.contains("etcdadm-cluster-size"), "the allowed tag was warned about: {err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["expected"], 3, "the allowed tag cluster-size did not apply: {report}");
    assert_nothing_written(&root, "discover");
}
