//! An HTTP/1.1 server on loopback that answers as Azure does, for `azure-vmss` discovery and
//! the `azure` metadata source: IMDS (`/metadata/instance`, the managed-identity token at
//! `/metadata/identity/oauth2/token`, both only with `Metadata: true` and never with
//! `X-Forwarded-For`) and Azure Resource Manager (GET a scale set, list its VMs and its
//! network interfaces, paginated with `nextLink`, a bearer token required). The test picks
//! how it misbehaves: throttling with `Retry-After`, 5xx, a token that expires early, a
//! `nextLink` that points elsewhere. One request per connection (`Connection: close`).
//!
//! IMDS describes the caller: a request from a VM's private address is answered with that
//! VM's name, id and address (and no tags), so machines on a bridge
//! (examples/cloud_api_server.rs, the fleet scenarios) each see their own; any other caller
//! (loopback) gets `etcd_0` at 10.0.0.4 tagged `etcdadm-cluster-size=7`. What the server
//! holds can change while it runs ([`AzureServer::update`]).
// Parts of it serve only the unit tests, the integration tests or examples/cloud_api_server.rs.
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub const SUBSCRIPTION: &str = "8d10da13-8125-4ba9-a717-bf7490507b3d";
pub const GROUP: &str = "etcd-rg";
pub const SCALE_SET: &str = "etcd";

/// One VM of the scale set: (index, provisioningState, private IPv4 or none).
#[derive(Debug, Clone)]
pub struct Vm {
    pub index: u32,
    pub state: &'static str,
    pub ip: Option<&'static str>,
}

/// What the server holds and how it misbehaves.
#[derive(Debug, Clone)]
pub struct Behaviour {
    pub vms: Vec<Vm>,
    pub capacity: u64,
    /// Items per page of both listings.
    pub page_size: usize,
    /// The first this many ARM requests are answered 429 with `Retry-After: 1`.
    pub throttle_first: usize,
    /// The first this many ARM requests are answered 503.
    pub fail_first: usize,
    /// Tokens issued before this count are refused with 401 (they "expired").
    pub tokens_valid_from: usize,
    /// The first page of the VM list points here instead of the next page.
    pub hostile_next_link: Option<String>,
    /// Every ARM request is answered 403 AuthorizationFailed.
    pub forbid: bool,
    /// The `Retry-After` of the throttled answers (seconds).
    pub retry_after: &'static str,
    /// Every page of the VM list has a `nextLink` to one more page.
    pub endless: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            vms: Vec::new(),
            capacity: 0,
            page_size: 100,
            throttle_first: 0,
            fail_first: 0,
            tokens_valid_from: 1,
            hostile_next_link: None,
            forbid: false,
            retry_after: "1",
            endless: false,
        }
    }
}

/// One request the server saw: path (without query), query, status answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub query: String,
    pub status: u16,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    tokens_issued: usize,
    arm_requests: usize,
}

pub struct AzureServer {
    pub url: String,
    state: Arc<Mutex<State>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl AzureServer {
    /// On loopback, at a free port.
    pub async fn start(b: Behaviour) -> AzureServer {
        AzureServer::start_on("127.0.0.1:0", b).await.unwrap()
    }

    /// On `addr` (`IP:PORT`).
    pub async fn start_on(addr: &str, b: Behaviour) -> std::io::Result<AzureServer> {
        let listener = TcpListener::bind(addr).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State::default()));
        let behaviour = Arc::new(Mutex::new(b));
        let (st, base, bh) = (state.clone(), url.clone(), behaviour.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, peer)) = listener.accept().await {
                let (st, base) = (st.clone(), base.clone());
                let b = bh.lock().unwrap().clone();
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 8192];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&req).into_owned();
                    let (status, headers, body) = answer(&text, peer.ip(), &st, &base, &b);
                    let mut resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        resp.push_str(&format!("{k}: {v}\r\n"));
                    }
                    resp.push_str("\r\n");
                    resp.push_str(&body);
                    let _ = conn.write_all(resp.as_bytes()).await;
                });
            }
        });
        Ok(AzureServer { url, state, behaviour })
    }

    /// Changes what the server holds and does, for the requests from now on.
    pub fn update(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.behaviour.lock().unwrap())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Requests whose path ends with `suffix`.
    pub fn count(&self, suffix: &str) -> usize {
        self.seen().iter().filter(|s| s.path.ends_with(suffix)).count()
    }
}

fn vmss_path() -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/Microsoft.Compute/virtualMachineScaleSets/{SCALE_SET}"
    )
}

fn answer(
    req: &str,
    peer: IpAddr,
    st: &Mutex<State>,
    base: &str,
    b: &Behaviour,
) -> (u16, Vec<(&'static str, String)>, String) {
    let mut lines = req.split("\r\n");
    let target = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("").to_string();
    let header = |name: &str| {
        req.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (path, query) = (path.to_string(), query.to_string());
    let authorization = header("authorization");
    let mut s = st.lock().unwrap();
    let (status, headers, body) =
        route(&path, &query, &header, authorization.as_deref(), peer, &mut s, base, b);
    s.seen.push(Seen { path, query, status, authorization });
    (status, headers, body)
}

// The request's parts, the server's state and what it holds: one call per request.
#[allow(clippy::too_many_arguments)]
fn route(
    path: &str,
    query: &str,
    header: &dyn Fn(&str) -> Option<String>,
    authorization: Option<&str>,
    peer: IpAddr,
    s: &mut State,
    base: &str,
    b: &Behaviour,
) -> (u16, Vec<(&'static str, String)>, String) {
    let json = |v: serde_json::Value| v.to_string();
    if path.starts_with("/metadata/") {
        // IMDS: the header is required, a forwarded request refused.
        if header("metadata").as_deref() != Some("true") || header("x-forwarded-for").is_some() {
            return (
                400,
                vec![],
                json(
                    serde_json::json!({"error": "Bad request. Required metadata header not specified"}),
                ),
            );
        }
        return match path {
            "/metadata/identity/oauth2/token" => {
                if !query.contains("resource=https%3A%2F%2Fmanagement.azure.com%2F") {
                    return (400, vec![], json(serde_json::json!({"error": "invalid_resource"})));
                }
                s.tokens_issued += 1;
                let body = serde_json::json!({
                    "access_token": format!("token-{}", s.tokens_issued),
                    "client_id": "c",
                    "expires_in": "3599",
                    "expires_on": "4102444800",
                    "ext_expires_in": "3599",
                    "not_before": "1700000000",
                    "resource": "https://management.azure.com/",
                    "token_type": "Bearer"
                });
                (200, vec![], json(body))
            }
            "/metadata/instance" => {
                let me = b.vms.iter().find(|v| v.ip.and_then(|ip| ip.parse().ok()) == Some(peer));
                if let Some(v) = me {
                    let body = serde_json::json!({
                        "compute": {
                            "location": "westeurope",
                            "name": format!("{SCALE_SET}_{}", v.index),
                            "resourceGroupName": GROUP,
                            "subscriptionId": SUBSCRIPTION,
                            "vmId": format!("vm-id-{}", v.index),
                            "vmScaleSetName": SCALE_SET,
                            "zone": "1",
                            "tagsList": []
                        },
                        "network": {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": v.ip}]}}]}
                    });
                    return (200, vec![], json(body));
                }
                let body = serde_json::json!({
                    "compute": {
                        "location": "westeurope",
                        "name": format!("{SCALE_SET}_0"),
                        "resourceGroupName": GROUP,
                        "subscriptionId": SUBSCRIPTION,
                        "vmId": "vm-id-0",
                        "vmScaleSetName": SCALE_SET,
                        "zone": "1",
                        "tagsList": [{"name": "etcdadm-cluster-size", "value": "7"}]
                    },
                    "network": {"interface": [{"ipv4": {"ipAddress": [{"privateIpAddress": "10.0.0.4"}]}}]}
                });
                (200, vec![], json(body))
            }
            _ => (404, vec![], String::new()),
        };
    }
    // Azure Resource Manager.
    s.arm_requests += 1;
    let n = s.arm_requests;
    let valid = authorization
        .and_then(|a| a.strip_prefix("Bearer token-"))
        .and_then(|t| t.parse::<usize>().ok())
        .is_some_and(|t| t >= b.tokens_valid_from && t <= s.tokens_issued);
    if !valid {
        return (
            401,
            vec![],
            json(
                serde_json::json!({"error": {"code": "ExpiredAuthenticationToken", "message": "The access token expiry UTC time is earlier than current UTC time."}}),
            ),
        );
    }
    if b.forbid {
        return (
            403,
            vec![],
            json(
                serde_json::json!({"error": {"code": "AuthorizationFailed", "message": "The client does not have authorization to perform action 'Microsoft.Compute/virtualMachineScaleSets/read'."}}),
            ),
        );
    }
    if n <= b.throttle_first {
        return (
            429,
            vec![
                ("retry-after", b.retry_after.into()),
                ("x-ms-ratelimit-remaining-resource", "Microsoft.Compute/HighCostGet3Min;0".into()),
            ],
            json(serde_json::json!({"error": {"code": "TooManyRequests", "message": "throttled"}})),
        );
    }
    if n <= b.throttle_first + b.fail_first {
        return (503, vec![], "<html>Service Unavailable</html>".into());
    }
    if !query.contains("api-version=") {
        return (
            400,
            vec![],
            json(
                serde_json::json!({"error": {"code": "MissingApiVersionParameter", "message": "The api-version query parameter (?api-version=) is required for all requests."}}),
            ),
        );
    }
    let vmss = vmss_path();
    let id = |i: u32| format!("{vmss}/virtualMachines/{i}");
    let skip: usize = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("%24skiptoken=").or_else(|| kv.strip_prefix("$skiptoken=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let page = |items: Vec<serde_json::Value>, p: &str, hostile: Option<&String>| {
        let end = (skip + b.page_size).min(items.len());
        let mut out = serde_json::json!({"value": items[skip.min(end)..end]});
        if b.endless && p.ends_with("/virtualMachines") {
            out["nextLink"] = format!("{base}{p}?api-version=x&%24skiptoken={}", skip + 1).into();
        } else if end < items.len() {
            let next = match hostile {
                Some(h) if skip == 0 => h.clone(),
                _ => format!("{base}{p}?api-version=x&%24skiptoken={end}"),
            };
            out["nextLink"] = next.into();
        }
        out.to_string()
    };
    if path == vmss {
        let body = serde_json::json!({
            "name": SCALE_SET,
            "location": "westeurope",
            "sku": {"name": "Standard_D2s_v5", "tier": "Standard", "capacity": b.capacity},
            "properties": {"orchestrationMode": "Uniform", "provisioningState": "Succeeded"}
        });
        (200, vec![], json(body))
    } else if path == format!("{vmss}/virtualMachines") {
        let items = b
            .vms
            .iter()
            .map(|v| {
                serde_json::json!({
                    "name": format!("{SCALE_SET}_{}", v.index),
                    "instanceId": v.index.to_string(),
                    "id": id(v.index),
                    "properties": {
                        "provisioningState": v.state,
                        "vmId": format!("vm-id-{}", v.index),
                        "osProfile": {"computerName": format!("{SCALE_SET}{:06}", v.index)}
                    }
                })
            })
            .collect();
        (200, vec![], page(items, path, b.hostile_next_link.as_ref()))
    } else if path == format!("{vmss}/networkInterfaces") {
        let items = b
            .vms
            .iter()
            .filter_map(|v| {
                Some(serde_json::json!({
                    "name": "etcd-nic",
                    "id": format!("{}/networkInterfaces/etcd-nic", id(v.index)),
                    "properties": {
                        "primary": true,
                        "virtualMachine": {"id": id(v.index)},
                        "ipConfigurations": [{"name": "ipconfig", "properties": {
                            "primary": true,
                            "privateIPAddress": v.ip?,
                            "privateIPAddressVersion": "IPv4"
                        }}]
                    }
                }))
            })
            .collect();
        (200, vec![], page(items, path, None))
    } else {
        (
            404,
            vec![],
            json(
                serde_json::json!({"error": {"code": "ResourceNotFound", "message": "not found"}}),
            ),
        )
    }
}
