//! The shipped integration files stay consistent with the packaged unit and parse.

use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn cloud_init_examples_embed_the_packaged_unit() {
    let unit = read("packaging/etcdadm-bootstrap.service");
    for example in ["cloud-init/static-3-members.yaml"] {
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
