//! The shipped integration files stay consistent with the packaged unit and parse.

use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn cloud_init_examples_embed_the_packaged_unit() {
    let unit = read("packaging/etcdadm-bootstrap.service");
    for example in [
        "cloud-init/static-3-members.yaml",
        "cloud-init/asg.yaml",
        "cloud-init/gce-mig.yaml",
        "cloud-init/azure-vmss.yaml",
    ] {
        let text = read(example);
        assert!(text.starts_with("#cloud-config\n"), "{example}");
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let files = doc["write_files"].as_sequence().unwrap();
        let embedded = files
            .iter()
            .find(|f| f["path"] == "/etc/systemd/system/etcdadm-bootstrap.service")
            .and_then(|f| f["content"].as_str())
            .unwrap_or_else(|| panic!("{example} does not carry the unit"));
        assert_eq!(embedded, unit, "{example}: unit differs from packaging/");
        let key = files.iter().find(|f| f["path"] == "/etc/etcd/pki/ca.key").unwrap();
        assert_eq!(key["permissions"], "0600", "{example}: CA key mode");
    }
}

/// The etcdadm configuration an example writes (its /etc/etcdadm/config.yaml).
fn example_config(example: &str) -> String {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read(example)).unwrap();
    doc["write_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/etc/etcdadm/config.yaml")
        .and_then(|f| f["content"].as_str())
        .unwrap_or_else(|| panic!("{example} writes no /etc/etcdadm/config.yaml"))
        .to_string()
}

#[test]
fn cloud_init_gce_mig_example_config_passes_etcdadm_config_view_as_gce_mig_with_gce_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, example_config("cloud-init/gce-mig.yaml")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etcdadm"))
        .args(["config", "view", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("provider: gce-mig") && stdout.contains("group: etcd"), "{stdout}");
    assert!(stdout.contains("provider: gce"), "{stdout}");
}

/// The Azure example's configuration is one etcdadm accepts: azure metadata, azure-vmss
/// discovery with every name taken from the VM.
#[test]
fn azure_vmss_cloud_init_example_config_loads_with_azure_metadata_and_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, example_config("cloud-init/azure-vmss.yaml")).unwrap();
    let sources =
        etcdadm::config::ConfigSources { file: path, file_explicit: true, ..Default::default() };
    let config = etcdadm::config::load(&sources).unwrap_or_else(|e| panic!("azure-vmss.yaml: {e}"));
    let discovery = serde_json::to_value(&config.bootstrap.discovery).unwrap();
    assert_eq!(discovery["provider"], "azure-vmss", "{discovery}");
    let metadata = serde_json::to_value(&config.bootstrap.metadata).unwrap();
    assert_eq!(metadata["provider"], "azure", "{metadata}");
}

/// The bytes an Ignition `contents` object (`source` a `data:` URL, optional `compression`)
/// stands for: URL-escaped or base64, gzipped or not, as render.py or Butane write them.
fn data_url(contents: &serde_json::Value) -> Vec<u8> {
    let url = contents["source"].as_str().unwrap_or_else(|| panic!("no source in {contents}"));
    let (meta, data) = url
        .strip_prefix("data:")
        .and_then(|r| r.split_once(','))
        .unwrap_or_else(|| panic!("not a data URL: {url}"));
    let raw = if meta.ends_with(";base64") { base64(data) } else { unescape(data) };
    match contents["compression"].as_str().unwrap_or("") {
        "" => raw,
        "gzip" => {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out)
                .unwrap();
            out
        }
        other => panic!("compression {other:?}"),
    }
}

fn unescape(data: &str) -> Vec<u8> {
    let b = data.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn base64(data: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in data.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap_or_else(|| panic!("bad base64 {c:?}"));
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn ignition() -> serde_json::Value {
    serde_json::from_str(&read("ignition/etcdadm.ign")).expect("ignition/etcdadm.ign is not JSON")
}

fn ign_file<'a>(ign: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    ign["storage"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("etcdadm.ign does not write {path}"))
}

#[test]
fn ignition_config_embeds_the_packaged_unit_and_the_cluster_files() {
    let ign = ignition();
    assert_eq!(
        ign["ignition"]["version"], "3.3.0",
        "Debian's ignition 2.14 accepts at most spec 3.3.0"
    );

    let units = ign["systemd"]["units"].as_array().unwrap();
    assert_eq!(units.len(), 1);
    assert_eq!(units[0]["name"], "etcdadm-bootstrap.service");
    assert_eq!(units[0]["enabled"], true);
    assert_eq!(
        units[0]["contents"].as_str(),
        Some(read("packaging/etcdadm-bootstrap.service").as_str()),
        "unit differs from packaging/"
    );

    let bin = ign_file(&ign, "/opt/bin/etcdadm");
    assert_eq!(bin["mode"], 0o755);
    assert!(
        bin["contents"]["source"].as_str().unwrap().starts_with("https://"),
        "the binary comes from a release URL"
    );
    let hash = bin["contents"]["verification"]["hash"].as_str().expect("the binary is verified");
    let hex = hash.strip_prefix("sha256-").or_else(|| hash.strip_prefix("sha512-")).unwrap();
    assert!(hex.len() >= 64 && hex.bytes().all(|c| c.is_ascii_hexdigit()), "{hash}");

    assert_eq!(ign_file(&ign, "/etc/etcd/pki/ca.key")["mode"], 0o600); // 384
    assert_eq!(ign_file(&ign, "/etc/etcd/pki/ca.crt")["mode"], 0o644);
    for pem in ["ca.crt", "ca.key"] {
        let text = data_url(&ign_file(&ign, &format!("/etc/etcd/pki/{pem}"))["contents"]);
        assert!(text.starts_with(b"-----BEGIN "), "{pem}");
    }

    // The configuration is one etcdadm itself accepts, with static discovery of three peers.
    let conf = ign_file(&ign, "/etc/etcdadm/config.yaml");
    assert_eq!(conf["mode"], 0o644);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, data_url(&conf["contents"])).unwrap();
    let sources =
        etcdadm::config::ConfigSources { file: path, file_explicit: true, ..Default::default() };
    let config = etcdadm::config::load(&sources)
        .unwrap_or_else(|e| panic!("config.yaml in etcdadm.ign: {e}"));
    let discovery = serde_json::to_value(&config.bootstrap.discovery).unwrap();
    assert_eq!(discovery["provider"], "static", "{discovery}");
    assert_eq!(discovery["peers"].as_array().map(Vec::len), Some(3), "{discovery}");
}

/// The committed .ign is the .bu compiled (ignition/render.py): same files in the same order
/// with the same modes and contents, same units. Catches an edit to one without the other.
#[test]
fn ignition_config_is_the_butane_config_compiled() {
    let bu: serde_yaml_ng::Value = serde_yaml_ng::from_str(&read("ignition/etcdadm.bu")).unwrap();
    let ign = ignition();
    assert_eq!(
        (bu["variant"].as_str(), bu["version"].as_str()),
        (Some("flatcar"), Some("1.0.0")),
        "flatcar 1.0.0 is Ignition 3.3.0"
    );
    let stale = "ignition/etcdadm.ign is stale: run python3 ignition/render.py";

    let (bu_files, ign_files) = (
        bu["storage"]["files"].as_sequence().unwrap(),
        ign["storage"]["files"].as_array().unwrap(),
    );
    assert_eq!(bu_files.len(), ign_files.len(), "{stale}");
    for (b, i) in bu_files.iter().zip(ign_files) {
        let path = b["path"].as_str().unwrap();
        assert_eq!(i["path"], path, "{stale}");
        // `mode: 0644` is octal to Butane (YAML 1.1); read the digits as octal whatever the parser made of them.
        let digits = match &b["mode"] {
            serde_yaml_ng::Value::Number(n) => n.to_string(),
            serde_yaml_ng::Value::String(s) => s.clone(),
            other => panic!("{path}: mode {other:?}"),
        };
        assert_eq!(
            i["mode"],
            u32::from_str_radix(&digits, 8).unwrap_or_else(|_| panic!("{path}: mode {digits}")),
            "{path}: {stale}"
        );
        let (bc, ic) = (&b["contents"], &i["contents"]);
        if let Some(inline) = bc["inline"].as_str() {
            assert_eq!(data_url(ic), inline.as_bytes(), "{path}: {stale}");
        } else {
            assert_eq!(ic["source"].as_str(), bc["source"].as_str(), "{path}: {stale}");
        }
        assert_eq!(
            ic["verification"]["hash"].as_str(),
            bc["verification"]["hash"].as_str(),
            "{path}: {stale}"
        );
    }

    let (bu_units, ign_units) = (
        bu["systemd"]["units"].as_sequence().unwrap(),
        ign["systemd"]["units"].as_array().unwrap(),
    );
    assert_eq!(bu_units.len(), ign_units.len(), "{stale}");
    for (b, i) in bu_units.iter().zip(ign_units) {
        assert_eq!(i["name"].as_str(), b["name"].as_str(), "{stale}");
        assert_eq!(i["enabled"].as_bool(), b["enabled"].as_bool(), "{stale}");
        assert_eq!(i["contents"].as_str(), b["contents"].as_str(), "{stale}");
    }
}
