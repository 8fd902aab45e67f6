//! Semantic checks of a merged configuration; each error names the key and what to do.

use super::Config;
use crate::net;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {cause}")]
    Read { path: String, cause: std::io::Error },
    #[error("config file {path}: invalid YAML: {message}; fix the syntax there")]
    Syntax { path: String, message: String },
    #[error("config file {path} must be a mapping of keys to values (found {found})")]
    NotAMapping { path: String, found: &'static str },
    #[error("{origin}: key `{key}`: {message}")]
    Key { origin: String, key: String, message: String },
}

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::Key { origin: "configuration".into(), key: key.into(), message }
}

const ARCHES: &[&str] = &["amd64", "arm64", "ppc64le", "s390x"];

/// Checks values serde cannot: formats, ranges, absolute paths.
pub fn validate(c: &Config) -> Result<(), ConfigError> {
    if let Some(name) = &c.name {
        if name.is_empty()
            || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        {
            return Err(invalid(
                "name",
                format!("{name:?} is not a valid member name (letters, digits, '-', '_', '.')"),
            ));
        }
    }
    if !is_version(&c.version) {
        return Err(invalid(
            "version",
            format!("{:?} is not an etcd version like 3.5.30 (no leading v)", c.version),
        ));
    }
    match url::Url::parse(&c.release_url) {
        Ok(u) if ["http", "https", "file"].contains(&u.scheme()) => {}
        Ok(u) => {
            return Err(invalid(
                "release-url",
                format!(
                    "scheme {:?} is not supported; use https://, http:// or file://",
                    u.scheme()
                ),
            ))
        }
        Err(e) => {
            return Err(invalid("release-url", format!("{:?} is not a URL: {e}", c.release_url)))
        }
    }
    if let Some(d) = &c.release_sha256 {
        if crate::digest::parse_hex(d).is_none() {
            return Err(invalid("release-sha256", "must be 64 hex digits".into()));
        }
    }
    if let Some(a) = &c.arch {
        if !ARCHES.contains(&a.as_str()) {
            return Err(invalid("arch", format!("{a:?} is not one of {}", ARCHES.join(", "))));
        }
    }
    for (key, p) in [
        ("install-dir", &c.install_dir),
        ("certs-dir", &c.certs_dir),
        ("data-dir", &c.data_dir),
        ("env-file", &c.env_file),
        ("unit-file", &c.unit_file),
        ("cache-dir", &c.cache_dir),
        ("state-file", &c.state_file),
        ("etcdctl-env-file", &c.etcdctl_env_file),
        ("kubelet-pod-manifest-path", &c.kubelet_pod_manifest_path),
        ("backup-dir", &c.backup_dir),
    ] {
        check_abs(key, p)?;
    }
    if let Some(a) = &c.advertise_address {
        net::Host::parse(a).map_err(|e| invalid("advertise-address", e))?;
    }
    for s in &c.server_cert_extra_sans {
        net::Host::parse(s).map_err(|e| invalid("server-cert-extra-sans", e))?;
    }
    let ports = [c.client_port, c.peer_port, c.metrics_port];
    if ports.contains(&0) || ports[0] == ports[1] || ports[0] == ports[2] || ports[1] == ports[2] {
        return Err(invalid(
            "client-port",
            format!(
                "client-port {}, peer-port {} and metrics-port {} must be non-zero and different",
                c.client_port, c.peer_port, c.metrics_port
            ),
        ));
    }
    if c.image_repository.is_empty() || c.image_repository.contains(char::is_whitespace) {
        return Err(invalid(
            "image-repository",
            "must be an image name such as quay.io/coreos/etcd".into(),
        ));
    }
    if c.cert_validity_days == 0 || c.ca_validity_days < c.cert_validity_days {
        return Err(invalid(
            "cert-validity-days",
            "must be at least 1 and not longer than ca-validity-days".into(),
        ));
    }
    if c.backup_keep == 0 {
        return Err(invalid("backup-keep", "must keep at least 1 snapshot".into()));
    }
    if c.backup_on_calendar.is_empty()
        || !c
            .backup_on_calendar
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || " *-:,./~".contains(ch))
    {
        return Err(invalid(
            "backup-on-calendar",
            format!(
                "{:?} is not a systemd calendar expression such as daily or *-*-* 02:00",
                c.backup_on_calendar
            ),
        ));
    }
    if !c.metrics_textfile_dir.as_os_str().is_empty() {
        check_abs("metrics-textfile-dir", &c.metrics_textfile_dir).map_err(|_| {
            invalid(
                "metrics-textfile-dir",
                format!(
                    "{} must be an absolute path, or \"\" to write no metrics",
                    c.metrics_textfile_dir.display()
                ),
            )
        })?;
    }
    if let Some(u) = &c.backup_s3_url {
        crate::s3::S3Url::parse(u).map_err(|e| invalid("backup-s3-url", e.to_string()))?;
    }
    if let Some(e) = &c.backup_s3_endpoint {
        crate::s3::check_endpoint(e).map_err(|e| invalid("backup-s3-endpoint", e))?;
    }
    if let Some(r) = &c.backup_s3_region {
        if r.is_empty() || !r.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') {
            return Err(invalid(
                "backup-s3-region",
                format!("{r:?} is not a region name such as eu-west-1"),
            ));
        }
    }
    if c.backup_s3_keep == Some(0) {
        return Err(invalid("backup-s3-keep", "must keep at least 1 snapshot".into()));
    }
    for d in &c.disk_priorities {
        check_priority(d)?;
    }
    if c.timeout_seconds == 0 {
        return Err(invalid("timeout-seconds", "must be at least 1".into()));
    }
    Ok(())
}

/// A `Key=value` scheduling directive for the unit; nothing else may reach the unit file.
fn check_priority(d: &str) -> Result<(), ConfigError> {
    const KEYS: &[&str] = &[
        "Nice",
        "IOSchedulingClass",
        "IOSchedulingPriority",
        "CPUSchedulingPolicy",
        "CPUSchedulingPriority",
    ];
    let ok = d.split_once('=').is_some_and(|(k, v)| {
        KEYS.contains(&k)
            && !v.is_empty()
            && v.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
    });
    if ok {
        Ok(())
    } else {
        Err(invalid("disk-priorities", format!("{d:?} is not one of {}=<value>", KEYS.join("=, "))))
    }
}

fn check_abs(key: &str, p: &Path) -> Result<(), ConfigError> {
    if p.is_absolute() {
        Ok(())
    } else {
        Err(invalid(key, format!("{} must be an absolute path", p.display())))
    }
}

fn is_version(v: &str) -> bool {
    let parts: Vec<_> = v.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}
