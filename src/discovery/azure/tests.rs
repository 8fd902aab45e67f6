//! Unit tests of `azure-vmss`: settings, the peer set from the ARM answers, the nextLink
//! rule, token lifetimes.

use super::*;

fn settings<'a>() -> Settings<'a> {
    Settings {
        subscription_id: Some("8d10da13-8125-4ba9-a717-bf7490507b3d"),
        resource_group: Some("etcd-rg"),
        scale_set: Some("etcd"),
        endpoint: None,
        max_requests_per_second: 5.0,
    }
}

const VMSS: &str =
    "/subscriptions/s/resourceGroups/etcd-rg/providers/Microsoft.Compute/virtualMachineScaleSets/etcd";

fn vm(n: u32, state: &str) -> Vm {
    serde_json::from_value(serde_json::json!({
        "name": format!("etcd_{n}"),
        "instanceId": n.to_string(),
        "id": format!("{VMSS}/virtualMachines/{n}"),
        "properties": {"provisioningState": state, "vmId": format!("vm-id-{n}")}
    }))
    .unwrap()
}

fn nic(n: u32, primary: bool, ip: &str) -> Nic {
    serde_json::from_value(serde_json::json!({
        "name": "nic",
        "properties": {
            "primary": primary,
            "virtualMachine": {"id": format!("{VMSS}/VirtualMachines/{n}")},
            "ipConfigurations": [
                {"properties": {"primary": false, "privateIPAddress": "10.9.9.9"}},
                {"properties": {"primary": true, "privateIPAddress": ip, "privateIPAddressVersion": "IPv4"}}
            ]
        }
    }))
    .unwrap()
}

#[test]
fn peers_are_the_vms_not_deleting_or_failed_with_the_primary_ipv4_of_their_primary_nic() {
    let mut vms = vec![
        vm(0, "Succeeded"),
        vm(1, "Creating"),
        vm(2, "Deleting"),
        vm(3, "Failed"),
        vm(4, "Updating"),
        vm(5, "Succeeded"),
    ];
    let mut nics = vec![
        nic(0, true, "10.0.0.4"),
        nic(0, false, "10.0.1.4"),
        nic(1, true, "10.0.0.5"),
        nic(2, true, "10.0.0.6"),
        nic(3, true, "10.0.0.7"),
        nic(4, true, "fd00::8"),
        // vm 5 has no NIC listed yet: left out, a later round sees it.
        nic(9, true, "10.0.0.99"),
    ];
    // A VM without an id cannot be matched to a NIC (nor can a NIC without one).
    vms.push(serde_json::from_value(serde_json::json!({"name": "etcd_7"})).unwrap());
    nics.push(serde_json::from_value(serde_json::json!({"properties": {"virtualMachine": {"id": ""}, "ipConfigurations": [{"properties": {"privateIPAddress": "10.0.0.77"}}]}})).unwrap());
    let set = PeerSet::new(peers(&vms, &nics), Some(6), true);
    let shown: Vec<String> = set
        .peers
        .iter()
        .map(|p| format!("{p} {}", p.instance_id.as_deref().unwrap_or("-")))
        .collect();
    assert_eq!(shown, ["etcd_0=10.0.0.4 vm-id-0", "etcd_1=10.0.0.5 vm-id-1"]);
    assert!(!set.is_complete());
}

#[test]
fn a_next_link_is_followed_only_to_the_same_scheme_host_port_and_path() {
    let req =
        Url::parse("https://management.azure.com/subscriptions/s/x/virtualMachines?api-version=1")
            .unwrap();
    let ok = |s: &str| same_resource(&req, &Url::parse(s).unwrap());
    assert!(ok("https://management.azure.com/subscriptions/s/x/virtualMachines?api-version=1&$skiptoken=abc"));
    assert!(ok("https://management.azure.com:443/subscriptions/s/x/virtualMachines?$skiptoken=1"));
    for bad in [
        "http://management.azure.com/subscriptions/s/x/virtualMachines?$skiptoken=1",
        "https://evil.example/subscriptions/s/x/virtualMachines?$skiptoken=1",
        "https://management.azure.com:8443/subscriptions/s/x/virtualMachines",
        "https://management.azure.com/subscriptions/s/y/virtualMachines",
        "https://management.azure.com.evil.example/subscriptions/s/x/virtualMachines",
        "https://user@management.azure.com/subscriptions/s/x/virtualMachines",
    ] {
        assert!(!ok(bad), "{bad}");
    }
}

#[test]
fn tokens_are_used_until_five_minutes_or_half_their_life_before_they_expire() {
    assert_eq!(token_life(Some(3599), None, 0), Some(Duration::from_secs(3299)));
    assert_eq!(token_life(None, Some(10_003_600), 10_000_000), Some(Duration::from_secs(3300)));
    assert_eq!(token_life(Some(60), None, 0), Some(Duration::from_secs(30)));
    assert_eq!(token_life(None, Some(5), 10), Some(Duration::ZERO));
    assert_eq!(token_life(None, None, 0), None);
    assert_eq!(seconds(&Some(serde_json::json!("3599"))), Some(3599));
    assert_eq!(seconds(&Some(serde_json::json!(86399))), Some(86399));
    assert_eq!(seconds(&Some(serde_json::json!("soon"))), None);
}

#[test]
fn settings_are_checked_against_azure_naming_rules_naming_the_key() {
    validate(&settings()).unwrap();
    let all_unset =
        Settings { subscription_id: None, resource_group: None, scale_set: None, ..settings() };
    validate(&all_unset).unwrap();
    for (s, says) in [
        (
            Settings { subscription_id: Some("not-a-guid"), ..settings() },
            "subscription-id \"not-a-guid\"",
        ),
        (Settings { resource_group: Some("rg/../../x"), ..settings() }, "resource-group"),
        (Settings { resource_group: Some("rg."), ..settings() }, "resource-group"),
        (Settings { scale_set: Some("etcd?api-version=1"), ..settings() }, "scale-set"),
        (Settings { scale_set: Some(""), ..settings() }, "scale-set"),
        (Settings { endpoint: Some("management.azure.com"), ..settings() }, "endpoint"),
        (Settings { endpoint: Some("https://x/?a=b"), ..settings() }, "endpoint"),
        (Settings { max_requests_per_second: 0.0, ..settings() }, "max-requests-per-second"),
    ] {
        let e = validate(&s).unwrap_err();
        let msg = e.to_string();
        assert!(!e.is_retryable() && msg.contains("azure-vmss") && msg.contains(says), "{msg}");
    }
}

#[tokio::test]
async fn a_missing_setting_without_azure_metadata_is_a_configuration_error_naming_the_key() {
    let ctx = DiscoveryContext::default();
    for (s, key) in [
        (Settings { subscription_id: None, ..settings() }, "subscription-id"),
        (Settings { resource_group: None, ..settings() }, "resource-group"),
        (Settings { scale_set: None, ..settings() }, "scale-set"),
    ] {
        let e = discover(&s, &ctx).await.unwrap_err();
        let msg = e.to_string();
        assert!(!e.is_retryable(), "{msg}");
        assert!(
            msg.contains(&format!("{key} is not set"))
                && msg.contains("not Azure's")
                && msg.contains(&format!("set {key} in the azure-vmss settings")),
            "{msg}"
        );
    }
    // Azure metadata of a VM outside any scale set.
    let identity = AzureIdentity {
        subscription_id: Some("8d10da13-8125-4ba9-a717-bf7490507b3d".into()),
        resource_group: Some("rg".into()),
        scale_set: None,
    };
    let ctx = DiscoveryContext {
        azure: AzureDiscoveryState::new("http://127.0.0.1:1", 1, Some(identity), None),
        ..Default::default()
    };
    let s = Settings { subscription_id: None, resource_group: None, scale_set: None, ..settings() };
    let e = discover(&s, &ctx).await.unwrap_err().to_string();
    assert!(e.contains("scale-set is not set") && e.contains("names no scale set"), "{e}");
}

#[test]
fn arm_error_documents_give_code_and_message() {
    assert_eq!(
        arm_error(r#"{"error":{"code":"AuthorizationFailed","message":"no access"}}"#),
        ("AuthorizationFailed".into(), "no access".into())
    );
    assert_eq!(
        arm_error("<html>bad gateway</html>"),
        (String::new(), "<html>bad gateway</html>".into())
    );
}
