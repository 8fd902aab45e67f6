//! The kubelet static pod manifest is a valid Kubernetes Pod, checked with
//! kubernetes-validate (PyPI; installed by scripts/install-deps.sh) against the bundled
//! OpenAPI schemas, strictly (no unknown fields).

use std::path::Path;
use std::process::Command;

const VALIDATOR: &str = "/opt/etcdadm-test/kubernetes-validate/bin/kubernetes-validate";

#[test]
fn golden_static_pod_is_a_valid_pod() {
    let validator =
        std::env::var("ETCDADM_TEST_KUBERNETES_VALIDATE").unwrap_or_else(|_| VALIDATOR.into());
    assert!(Path::new(&validator).exists(), "{validator} missing: run scripts/install-deps.sh");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/etcd-pod.yaml");
    for version in ["1.28.0", "1.31.0"] {
        let out = Command::new(&validator)
            .args(["--strict", "-k", version])
            .arg(&manifest)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "kubernetes {version}: {text}");
        assert!(text.contains("passed for resource pod/etcd"), "kubernetes {version}: {text}");
    }
    // The check has teeth: a misspelt field fails it.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let golden = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&bad, golden.replace("hostNetwork:", "hostNetwerk:")).unwrap();
    let out =
        Command::new(&validator).args(["--strict", "-k", "1.31.0"]).arg(&bad).output().unwrap();
    assert!(!out.status.success(), "a misspelt field passed the schema check");
}
