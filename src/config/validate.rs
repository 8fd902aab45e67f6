//! Semantic checks of a merged configuration; each error names the key and what to do.

use super::Config;

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

/// etcd's recommended maximum space quota.
pub const MAX_QUOTA_BACKEND_BYTES: u64 = 8 * 1024 * 1024 * 1024;

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::Key { origin: "configuration".into(), key: key.into(), message }
}

/// Checks that involve several settings, or a value its type leaves open (each setting's own
/// format is checked by its type when it is loaded, see `cli::values`, and `load::typed`).
pub fn validate(c: &Config) -> Result<(), ConfigError> {
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
    if c.cert_validity_days == 0 || c.ca_validity_days < c.cert_validity_days {
        return Err(invalid(
            "cert-validity-days",
            "must be at least 1 and not longer than ca-validity-days".into(),
        ));
    }
    if c.backup_keep == 0 {
        return Err(invalid("backup-keep", "must keep at least 1 snapshot".into()));
    }
    if c.backup_s3_keep == Some(0) {
        return Err(invalid("backup-s3-keep", "must keep at least 1 snapshot".into()));
    }
    if !(1024 * 1024..=MAX_QUOTA_BACKEND_BYTES).contains(&c.quota_backend_bytes) {
        return Err(invalid(
            "quota-backend-bytes",
            format!(
                "{} is outside 1 MiB to 8 GiB ({MAX_QUOTA_BACKEND_BYTES}), etcd's recommended maximum",
                c.quota_backend_bytes
            ),
        ));
    }
    if c.auto_compaction_mode == crate::config::CompactionMode::Revision
        && !c.auto_compaction_retention.is_count()
    {
        return Err(invalid(
            "auto-compaction-retention",
            format!(
                "{} is a duration, but auto-compaction-mode is revision: give a number of revisions",
                c.auto_compaction_retention
            ),
        ));
    }
    if c.defrag_min_free_percent > 100 {
        return Err(invalid("defrag-min-free-percent", "must be 0 to 100".into()));
    }
    if c.timeout_seconds == 0 {
        return Err(invalid("timeout-seconds", "must be at least 1".into()));
    }
    Ok(())
}
