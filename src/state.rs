//! What etcdadm remembers about the member it set up (`state-file`, default
//! /etc/etcdadm/state.json): the settings it was created with, so later commands (`reset`,
//! `info`, re-runs) act on the real member rather than on defaults.

use crate::config::Config;
use crate::fsutil::{write_atomic, MODE_PRIVATE};
use crate::member::LocalMember;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why the state file could not be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {}", .0.display())]
    Read(PathBuf, #[source] std::io::Error),
    #[error(
        "{} is not a valid etcdadm state file; move it away only if no member is installed here",
        .0.display()
    )]
    Invalid(PathBuf, #[source] serde_json::Error),
    #[error("cannot write {}", .0.display())]
    Write(PathBuf, #[source] std::io::Error),
    #[error("{} does not describe a usable member: {}", .0.display(), .1)]
    Unusable(PathBuf, String),
}

type Result<T> = std::result::Result<T, StateError>;

/// How far setting up the member got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Progress {
    /// Files are being installed; etcd has not been started by etcdadm yet.
    Installing,
    /// Added to the cluster as a learner (join only); etcd may or may not be running.
    Learner,
    /// A started, healthy voting member.
    Member,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    Init,
    Join,
}

impl Progress {
    pub fn as_str(self) -> &'static str {
        match self {
            Progress::Installing => "installing",
            Progress::Learner => "learner",
            Progress::Member => "member",
        }
    }
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Init => "init",
            Origin::Join => "join",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct State {
    pub origin: Origin,
    /// Stored under the key `phase` (state files of every version load).
    #[serde(rename = "phase")]
    pub progress: Progress,
    /// The effective configuration, with the member name resolved.
    pub config: Config,
    pub advertise_address: crate::net::Host,
    /// Hex member id, once known.
    pub member_id: Option<String>,
    pub cluster_id: Option<String>,
}

impl State {
    pub fn new(origin: Origin, c: &Config, m: &LocalMember) -> State {
        State {
            origin,
            progress: Progress::Installing,
            config: c.clone(),
            advertise_address: m.advertise.clone(),
            member_id: None,
            cluster_id: None,
        }
    }

    /// The member as it was set up.
    pub fn member(&self) -> Result<LocalMember> {
        let c = Config {
            advertise_address: Some(self.advertise_address.clone()),
            ..self.config.clone()
        };
        LocalMember::resolve(
            &c,
            || Err("no member name recorded".into()),
            || Err("no advertise address recorded".into()),
        )
        .map_err(|e| StateError::Unusable(self.config.state_file.to_path_buf(), e))
    }

    pub fn load(path: &Path) -> Result<Option<State>> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| StateError::Invalid(path.to_path_buf(), e))
                .map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateError::Read(path.to_path_buf(), e)),
        }
    }

    pub fn save(&self) -> Result<()> {
        let path = &self.config.state_file;
        let mut text = serde_json::to_string_pretty(self).expect("the state serializes");
        text.push('\n');
        write_atomic(path, text.as_bytes(), MODE_PRIVATE)
            .map_err(|e| StateError::Write(path.to_path_buf(), e))
    }
}

/// Settings of an existing member that differ from the requested ones, as
/// `(key, old, new)`. Only keys that define the member count; download and timing knobs
/// may change freely between runs.
pub fn drift(old: &Config, new: &Config) -> Vec<(String, String, String)> {
    const FREE: &[&str] = &[
        "release-url",
        "release-sha256",
        "cache-dir",
        "timeout-seconds",
        "download-connect-timeout-seconds",
        "bootstrap",
        "cert-validity-days",
        "cert-renew-within-days",
        "metrics-textfile-dir",
    ];
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, va) in &a {
        let vb = b.get(k).cloned().unwrap_or(serde_json::Value::Null);
        if !FREE.contains(&k.as_str()) && *va != vb {
            out.push((k.clone(), va.to_string(), vb.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_roundtrips_with_private_mode() {
        let d = tempfile::tempdir().unwrap();
        let config = Config {
            state_file: d.path().join("state.json").into(),
            name: Some("m1".into()),
            ..Default::default()
        };
        let s = State {
            origin: Origin::Join,
            progress: Progress::Learner,
            config,
            advertise_address: "10.0.0.1".into(),
            member_id: Some("8e9e05c52164694d".into()),
            cluster_id: None,
        };
        s.save().unwrap();
        assert_eq!(State::load(&s.config.state_file).unwrap(), Some(s.clone()));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&s.config.state_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(State::load(&d.path().join("none.json")).unwrap(), None);
    }

    #[test]
    fn state_file_written_with_the_phase_key_loads_and_is_saved_with_it() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("state.json");
        // As etcdadm has always written it: the progress is stored under `phase`.
        let old = format!(
            r#"{{
  "origin": "join",
  "phase": "learner",
  "config": {{ "name": "m1", "state-file": {:?} }},
  "advertise-address": "10.0.0.1",
  "member-id": "8e9e05c52164694d",
  "cluster-id": null
}}
"#,
            path.display().to_string()
        );
        std::fs::write(&path, old).unwrap();
        let s = State::load(&path).unwrap().unwrap();
        assert_eq!(s.progress, Progress::Learner);
        assert_eq!(s.origin, Origin::Join);
        assert_eq!(s.member_id.as_deref(), Some("8e9e05c52164694d"));
        s.save().unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.contains("\"phase\": \"learner\""), "{written}");
        assert!(!written.contains("progress"), "{written}");
    }

    #[test]
    fn drift_lists_member_defining_keys_only() {
        let old = Config::default();
        let new = Config {
            data_dir: "/srv/etcd".into(),
            version: "3.5.16".into(),
            release_url: "file:///mirror".into(),
            timeout_seconds: 5,
            ..Default::default()
        };
        let d = drift(&old, &new);
        let keys: Vec<&str> = d.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(keys, ["data-dir", "version"]);
        assert_eq!(d[0], ("data-dir".into(), "\"/var/lib/etcd\"".into(), "\"/srv/etcd\"".into()));
        assert!(drift(&old, &old).is_empty());
    }
}
