//! Reading and merging configuration layers.
//!
//! Order, later wins: built-in defaults, instance metadata (bootstrap only), the main file (`--config`, default
//! `/etc/etcdadm/config.yaml`), the drop-ins `config.d/*.yaml` beside it in name order, then
//! flags given on the command line. Mappings merge key by key (recursively); any other value,
//! lists included, replaces the earlier one. Every file is checked on its own first, so an
//! unknown key or a wrong type is reported with the file and the key that hold it.

use super::validate::{validate, ConfigError};
use super::{Config, DEFAULT_CONFIG_FILE};
use serde_yaml_ng::{Mapping, Value};
use std::path::{Path, PathBuf};

/// Where configuration comes from.
#[derive(Debug, Clone)]
pub struct ConfigSources {
    /// The main file; a missing file is an error only when it was named explicitly.
    pub file: PathBuf,
    pub file_explicit: bool,
    /// Settings from command-line flags, as a mapping with the config's keys.
    pub flags: Mapping,
    /// Settings below the files: what cloud metadata says (bootstrap only).
    pub metadata: Mapping,
}

impl Default for ConfigSources {
    fn default() -> Self {
        ConfigSources {
            file: DEFAULT_CONFIG_FILE.into(),
            file_explicit: false,
            flags: Mapping::new(),
            metadata: Mapping::new(),
        }
    }
}

impl ConfigSources {
    /// The drop-in directory: `config.d` beside the main file.
    pub fn dropin_dir(&self) -> PathBuf {
        self.file.parent().unwrap_or(Path::new("/")).join("config.d")
    }

    /// The files that exist, in merge order.
    pub fn files(&self) -> Result<Vec<PathBuf>, ConfigError> {
        let mut files = Vec::new();
        if self.file.exists() || self.file_explicit {
            files.push(self.file.clone());
        }
        let dir = self.dropin_dir();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                let mut dropins: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.extension().is_some_and(|x| x == "yaml" || x == "yml") && p.is_file()
                    })
                    .collect();
                dropins.sort();
                files.extend(dropins);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ConfigError::Read { path: dir.display().to_string(), cause: source })
            }
        }
        Ok(files)
    }
}

/// Loads, merges and validates the configuration.
pub fn load(sources: &ConfigSources) -> Result<Config, ConfigError> {
    check_layer(&sources.metadata, "instance metadata")?;
    let mut merged = sources.metadata.clone();
    for path in sources.files()? {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ConfigError::Read { path: shown.clone(), cause: source })?;
        let layer = parse_layer(&text, &shown)?;
        merge(&mut merged, layer);
    }
    check_layer(&sources.flags, "command line")?;
    merge(&mut merged, sources.flags.clone());
    let config = typed(&merged, "merged configuration")?;
    validate(&config)?;
    Ok(config)
}

/// Parses one YAML document into a mapping and checks its keys and types.
pub fn parse_layer(text: &str, origin: &str) -> Result<Mapping, ConfigError> {
    let value: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| ConfigError::Syntax { path: origin.into(), message: e.to_string() })?;
    let mapping = match value {
        Value::Null => Mapping::new(),
        Value::Mapping(m) => m,
        other => return Err(ConfigError::NotAMapping { path: origin.into(), found: kind(&other) }),
    };
    check_layer(&mapping, origin)?;
    Ok(mapping)
}

/// Checks the keys and types of one layer on its own; errors name `origin`.
pub fn check_layer(layer: &Mapping, origin: &str) -> Result<(), ConfigError> {
    typed(layer, origin).map(|_| ())
}

fn typed(layer: &Mapping, origin: &str) -> Result<Config, ConfigError> {
    let config = deserialize(layer, origin)?;
    let key_error =
        |key: String, message: String| ConfigError::Key { origin: origin.into(), key, message };
    // The one path setting that may be empty (no metrics): its type is a plain path.
    if !config.metrics_textfile_dir.as_os_str().is_empty() {
        super::check_path(&config.metrics_textfile_dir).map_err(|e| {
            key_error("metrics-textfile-dir".into(), format!("{e}, or \"\" to write no metrics"))
        })?;
    }
    for (i, k) in config.bootstrap.metadata.allowed_keys().iter().enumerate() {
        check_metadata_key(k).map_err(|message| {
            key_error(format!("bootstrap.metadata.allowed-keys[{i}]"), message)
        })?;
    }
    Ok(config)
}

fn deserialize(layer: &Mapping, origin: &str) -> Result<Config, ConfigError> {
    serde_path_to_error::deserialize(Value::Mapping(layer.clone())).map_err(|e| {
        let key = e.path().to_string();
        let message = e.into_inner().to_string();
        let Some((field, expected)) = unknown_field(&message) else {
            return ConfigError::Key { origin: origin.into(), key, message };
        };
        // For an unknown key serde reports the parent path; name the key itself.
        let key = if key == "." {
            field.to_string()
        } else if key == field || key.ends_with(&format!(".{field}")) {
            // serde_path_to_error ends the path with the field for plain structs (not for
            // internally tagged enums)
            key
        } else {
            format!("{key}.{field}")
        };
        let message = match closest(field, &expected) {
            Some(near) => format!("unknown field; did you mean `{near}`?"),
            None => "unknown field; `etcdadm config view` shows the valid keys".into(),
        };
        ConfigError::Key { origin: origin.into(), key, message }
    })
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a` or `b`", or
/// "there are no fields"): the field and the valid names.
fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((field, expected))
}

/// The valid name nearest to `field` by edit distance, if it is near enough to be a typo.
fn closest<'a>(field: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|v| (strsim::damerau_levenshtein(field, v), *v))
        .min()
        .filter(|(d, _)| *d <= 2.max(field.len() / 3))
        .map(|(_, v)| v)
}

/// Turns set flags into a configuration layer keyed like the YAML file (unset flags
/// serialize to nothing).
pub fn flags_layer(flags: &impl serde::Serialize) -> Mapping {
    match serde_yaml_ng::to_value(flags) {
        Ok(Value::Mapping(m)) => m,
        _ => Mapping::new(),
    }
}

/// Merges `top` into `base`: mappings key by key, anything else replaced.
pub fn merge(base: &mut Mapping, top: Mapping) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(Value::Mapping(b)), Value::Mapping(t)) => merge(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Whether `key` names a setting instance metadata could set at all: every top-level key
/// but `bootstrap` (which holds the allow-list itself), and `cluster-size`
/// (`bootstrap.cluster-size`).
fn is_metadata_key(key: &str) -> bool {
    key == "cluster-size"
        || (key != "bootstrap"
            && super::FLAG_KEYS.iter().chain(super::FILE_KEYS).any(|k| k.replace('_', "-") == key))
}

/// Checks an entry of `bootstrap.metadata.allowed-keys`.
fn check_metadata_key(s: &str) -> Result<(), String> {
    if s == "bootstrap" || s.starts_with("bootstrap.") || s == "allowed-keys" {
        Err(format!("{s:?}: the bootstrap settings, the allow-list among them, can never be set from instance metadata; they come from the configuration files only"))
    } else if is_metadata_key(s) {
        Ok(())
    } else {
        Err(format!("{s:?} is not a setting; use a top-level key as `etcdadm config view` shows it, or cluster-size"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn sources(dir: &Path) -> ConfigSources {
        ConfigSources { file: dir.join("config.yaml"), ..Default::default() }
    }

    #[test]
    fn defaults_follow_the_seed_tool() {
        let dir = tempfile::tempdir().unwrap();
        let c = load(&sources(dir.path())).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.install_dir, Path::new("/opt/bin"));
        assert_eq!(c.certs_dir, Path::new("/etc/etcd/pki"));
        assert_eq!(c.data_dir, Path::new("/var/lib/etcd"));
        assert_eq!(c.env_file, Path::new("/etc/etcd/etcd.env"));
        assert_eq!(c.unit_file, Path::new("/etc/systemd/system/etcd.service"));
        assert_eq!(c.cache_dir, Path::new("/var/cache/etcdadm"));
        assert_eq!((c.client_port, c.peer_port), (2379, 2380));
        assert!(c.version.starts_with("3.5."));
        assert_eq!(c.metrics_textfile_dir, Path::new("/var/lib/node_exporter/textfile_collector"));
    }

    #[test]
    fn an_empty_metrics_textfile_dir_disables_metrics() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.yaml"), "metrics-textfile-dir: \"\"\n").unwrap();
        assert_eq!(load(&sources(dir.path())).unwrap().metrics_textfile_dir, Path::new(""));
    }

    #[test]
    fn dropins_merge_in_name_order_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("config.yaml"), "data-dir: /a\nclient-port: 3000\nname: base\n").unwrap();
        fs::create_dir(d.join("config.d")).unwrap();
        fs::write(d.join("config.d/20-b.yaml"), "data-dir: /c\n").unwrap();
        fs::write(d.join("config.d/10-a.yaml"), "data-dir: /b\npeer-port: 3001\n").unwrap();
        fs::write(d.join("config.d/README"), "not yaml: [").unwrap();
        let mut s = sources(d);
        let c = load(&s).unwrap();
        assert_eq!((c.data_dir.to_str(), c.client_port, c.peer_port), (Some("/c"), 3000, 3001));
        s.flags.insert("name".into(), "flag".into());
        assert_eq!(load(&s).unwrap().name.as_deref(), Some("flag"));
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("config.d")).unwrap();
        let f = dir.path().join("config.d/50-x.yaml");
        fs::write(&f, "data-dir: /x\ndata-dri: /y\n").unwrap();
        let err = load(&sources(dir.path())).unwrap_err().to_string();
        assert!(err.contains("50-x.yaml"), "{err}");
        assert!(err.contains("`data-dri`"), "{err}");
        assert!(err.ends_with("unknown field; did you mean `data-dir`?"), "{err}");
    }

    #[test]
    fn unknown_key_suggests_the_closest_valid_key_and_lists_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.yaml");
        fs::write(&f, "nmae: m1\n").unwrap();
        let err = load(&sources(dir.path())).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{}: key `nmae`: unknown field; did you mean `name`?", f.display())
        );
        fs::write(&f, "bootstrap:\n  deadline-secs: 3\n").unwrap();
        let err = load(&sources(dir.path())).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "key `bootstrap.deadline-secs`: unknown field; did you mean `deadline-seconds`?"
            ),
            "{err}"
        );
        fs::write(&f, "zzzzzzzzzzzz: 1\n").unwrap();
        let err = load(&sources(dir.path())).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "key `zzzzzzzzzzzz`: unknown field; `etcdadm config view` shows the valid keys"
            ),
            "{err}"
        );
        assert!(!err.contains("data-dir"), "{err}");
    }

    #[test]
    fn unknown_key_in_metadata_names_the_origin_and_suggests() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sources(dir.path());
        s.metadata.insert("advertise-adress".into(), "10.0.0.1".into());
        let err = load(&s).unwrap_err().to_string();
        assert_eq!(
            err,
            "instance metadata: key `advertise-adress`: unknown field; did you mean `advertise-address`?"
        );
    }

    #[test]
    fn wrong_type_names_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.yaml"), "client-port: lots\n").unwrap();
        let err = load(&sources(dir.path())).unwrap_err().to_string();
        assert!(err.contains("config.yaml") && err.contains("`client-port`"), "{err}");
    }

    #[test]
    fn syntax_error_and_non_mapping_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("config.yaml"), "name: [unclosed\n").unwrap();
        assert!(matches!(load(&sources(dir.path())), Err(ConfigError::Syntax { .. })));
        fs::write(dir.path().join("config.yaml"), "- a\n- b\n").unwrap();
        assert!(matches!(load(&sources(dir.path())), Err(ConfigError::NotAMapping { .. })));
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sources(dir.path());
        s.file_explicit = true;
        assert!(matches!(load(&s), Err(ConfigError::Read { .. })));
    }

    #[test]
    fn semantic_errors_name_the_key() {
        for (yaml, key) in [
            ("version: v3.5.1\n", "version"),
            ("release-url: ftp://x/\n", "release-url"),
            ("data-dir: relative\n", "data-dir"),
            ("advertise-address: 'bad host!'\n", "advertise-address"),
            ("peer-port: 2379\n", "client-port"),
            ("bind-address: 10.0.0.300\n", "bind-address"),
            ("release-sha256: abc\n", "release-sha256"),
            ("disk-priorities: [\"ExecStartPre=/bin/evil\"]\n", "disk-priorities[0]"),
            ("disk-priorities: [Nice=1, \"Nice=-10\\nUser=x\"]\n", "disk-priorities[1]"),
            ("metrics-textfile-dir: textfile\n", "metrics-textfile-dir"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join("config.yaml"), yaml).unwrap();
            let err = load(&sources(dir.path())).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{yaml}: {err}");
        }
    }

    #[test]
    fn merge_is_recursive_for_mappings_only() {
        let mut base = parse_layer_raw("a: {x: 1, y: 2}\nl: [1, 2]\n");
        merge(&mut base, parse_layer_raw("a: {y: 3}\nl: [9]\n"));
        assert_eq!(base, parse_layer_raw("a: {x: 1, y: 3}\nl: [9]\n"));
    }

    fn parse_layer_raw(s: &str) -> Mapping {
        serde_yaml_ng::from_str(s).unwrap()
    }
}
