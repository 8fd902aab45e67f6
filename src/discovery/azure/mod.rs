//! The `azure-vmss` provider: the VMs of an Azure virtual machine scale set (uniform
//! orchestration) that are not being deleted, by the primary private IPv4 address of their
//! primary network interface, through the Azure Resource Manager (ARM) REST API with a
//! managed-identity token from the Instance Metadata Service (IMDS).
//!
//! Calls of one attempt (and the permission each needs; the built-in role Reader on the
//! scale set grants all three):
//! 1. `GET …/virtualMachineScaleSets/{vmss}` (`Microsoft.Compute/virtualMachineScaleSets/read`):
//!    `sku.capacity`, the intended size;
//! 2. `GET …/virtualMachineScaleSets/{vmss}/virtualMachines`, every page
//!    (`Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read`): the VMs, their names
//!    and `provisioningState`;
//! 3. `GET …/virtualMachineScaleSets/{vmss}/networkInterfaces`, every page
//!    (`Microsoft.Network/networkInterfaces/read`): their private addresses.
//!
//! That is at most 1 + 2 × [`MAX_PAGES`] ARM calls an attempt (3 for a scale set of up to a
//! page of VMs), all paced by one limiter at `max-requests-per-second` for the process, plus
//! the IMDS token: once, then again shortly before it expires, or once more when ARM answers
//! 401 (a token that expired early or was revoked). A 429 whose `Retry-After` is at most
//! [`MAX_RETRY_AFTER`] is waited out and the call repeated (at most [`MAX_THROTTLE_WAITS`]
//! times a call) unless it would end past the deadline of discovery; other throttling, 5xx
//! and timeouts end the attempt with a retryable error that the caller retries with backoff
//! within its deadline. 403 and 404 are final, and say
//! which setting or permission to fix.
//!
//! The answers are checked, not trusted: every body is read within a size cap and a time
//! bound, a `nextLink` is followed only when its scheme, host, port and path are those of
//! the request it answers (an answer never chooses where the token goes next), a VM counts
//! only when its network interface belongs to it, and VM names become member names only
//! when they are valid ones (`refuse_bad_names`).
//!
//! The set is complete when it has `sku.capacity` VMs, and authoritative like `aws-asg`'s:
//! the scale set's membership is the truth, so departed members are removed unless
//! `remove-departed-members: false`.

use super::bearer::BearerToken;
use super::{DiscoveryContext, DiscoveryError, Peer, PeerSet};
use crate::bounded::{self, BodyError};
use crate::error_chain::snippet;
use crate::metadata::AzureIdentity;
use crate::net::Host;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use url::Url;

/// The public ARM endpoint, and the resource the managed-identity token is asked for.
pub(in crate::discovery) const DEFAULT_ENDPOINT: &str = "https://management.azure.com";
const TOKEN_RESOURCE: &str = "https://management.azure.com/";
const TOKEN_API_VERSION: &str = "2018-02-01";
/// `Microsoft.Compute` (scale set, its VMs) and `Microsoft.Network` (its NICs) API versions.
const COMPUTE_API_VERSION: &str = "2024-07-01";
const NETWORK_API_VERSION: &str = "2018-10-01";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// A page of 1000 VMs (a uniform scale set's largest size) with their models is a few MiB.
const MAX_BODY: u64 = 8 << 20;
const MAX_TOKEN_BODY: u64 = 64 << 10;
/// Pages of one listing before giving up on an endpoint that never stops paging.
pub(in crate::discovery) const MAX_PAGES: usize = 50;
/// The longest `Retry-After` waited out inside an attempt, and how often per call.
pub(in crate::discovery) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
pub(in crate::discovery) const MAX_THROTTLE_WAITS: usize = 3;
/// A token is used until this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);
/// A uniform scale set holds at most 1000 VMs.
const MAX_CAPACITY: u64 = 1000;

const READER_HINT: &str = "give this VM's managed identity the role Reader on the scale set (or its resource group), or a role with the actions Microsoft.Compute/virtualMachineScaleSets/read (GET the scale set), Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read (list its VMs) and Microsoft.Network/networkInterfaces/read (list its network interfaces)";

pub(in crate::discovery) struct Settings<'a> {
    pub subscription_id: Option<&'a str>,
    pub resource_group: Option<&'a str>,
    pub scale_set: Option<&'a str>,
    pub endpoint: Option<&'a str>,
    pub max_requests_per_second: f64,
}

/// What `azure-vmss` keeps for the life of a process: where IMDS is and what it said about
/// this VM (the settings' defaults), the pace of ARM calls, and the managed-identity token.
/// The process creates one (bootstrap's `discovery_context`) and passes it to every attempt;
/// clones share it.
#[derive(Debug, Clone, Default)]
pub struct AzureDiscoveryState(Arc<StateInner>);

#[derive(Debug)]
struct StateInner {
    imds_url: String,
    imds_timeout: Duration,
    /// From this VM's `azure` instance metadata; `None` when the metadata is not Azure's.
    identity: Option<AzureIdentity>,
    /// When discovery must have ended (bootstrap's deadline): a `Retry-After` that would
    /// end later is not waited out.
    deadline: Option<Instant>,
    limiter: super::aws::RateLimiter,
    token: Mutex<Option<BearerToken>>,
}

impl Default for StateInner {
    fn default() -> Self {
        StateInner {
            imds_url: crate::metadata::DEFAULT_METADATA_URL.into(),
            imds_timeout: Duration::from_secs(crate::metadata::DEFAULT_TIMEOUT_SECONDS),
            identity: None,
            deadline: None,
            limiter: Default::default(),
            token: Mutex::new(None),
        }
    }
}

impl AzureDiscoveryState {
    /// `imds_url`: the IMDS base URL (the `azure` metadata source's `base-url`); `identity`:
    /// what that source said about this VM, `None` when the metadata is not Azure's;
    /// `deadline`: when discovery must have ended (no `Retry-After` is waited out past it).
    pub fn new(
        imds_url: &str,
        imds_timeout_seconds: u64,
        identity: Option<AzureIdentity>,
        deadline: Option<Instant>,
    ) -> AzureDiscoveryState {
        AzureDiscoveryState(Arc::new(StateInner {
            imds_url: imds_url.to_string(),
            imds_timeout: Duration::from_secs(imds_timeout_seconds.max(1)),
            identity,
            deadline,
            ..Default::default()
        }))
    }
}

/// The checks that need no network.
pub(in crate::discovery) fn validate(s: &Settings<'_>) -> Result<(), DiscoveryError> {
    super::check_rate("azure-vmss", s.max_requests_per_second)?;
    if let Some(e) = s.endpoint {
        endpoint(Some(e))?;
    }
    for (key, value) in [
        ("subscription-id", s.subscription_id),
        ("resource-group", s.resource_group),
        ("scale-set", s.scale_set),
    ] {
        if let Some(v) = value {
            check_name(key, v, "the setting")?;
        }
    }
    Ok(())
}

fn config(message: String) -> DiscoveryError {
    DiscoveryError::Config(format!("azure-vmss {message}"))
}

fn endpoint(configured: Option<&str>) -> Result<Url, DiscoveryError> {
    let e = configured.unwrap_or(DEFAULT_ENDPOINT);
    match Url::parse(e) {
        Ok(u)
            if matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.query().is_none()
                && u.fragment().is_none() =>
        {
            Ok(u)
        }
        _ => Err(config(format!(
            "endpoint {e:?} is not an http(s) URL without query such as {DEFAULT_ENDPOINT}; fix endpoint"
        ))),
    }
}

/// Azure's naming rules, which also keep the names plain path segments: a subscription id
/// is a GUID; a resource group 1 to 90 letters, digits, `_ - . ( )`, not ending in `.`; a
/// scale set 1 to 64 letters, digits, `_ - .`.
fn check_name(key: &str, v: &str, source: &str) -> Result<(), DiscoveryError> {
    let (ok, rule) = match key {
        "subscription-id" => (
            v.len() == 36
                && v.char_indices().all(|(i, c)| {
                    if [8, 13, 18, 23].contains(&i) {
                        c == '-'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                }),
            "a GUID such as 8d10da13-8125-4ba9-a717-bf7490507b3d",
        ),
        "resource-group" => (
            (1..=90).contains(&v.len())
                && !v.ends_with('.')
                && v.chars().all(|c| c.is_ascii_alphanumeric() || "_-.()".contains(c)),
            "1 to 90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'",
        ),
        _ => (
            (1..=64).contains(&v.len())
                && v.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)),
            "1 to 64 letters, digits, '_', '-' or '.'",
        ),
    };
    if ok {
        Ok(())
    } else {
        let shown: String = v.chars().take(100).collect();
        Err(config(format!(
            "{key} {shown:?} (from {source}) is not a valid Azure name ({rule}); set {key} in the azure-vmss settings"
        )))
    }
}

/// A setting, else the value this VM's Azure metadata gives; a configuration error naming
/// the key when neither is there.
fn setting(
    key: &str,
    configured: Option<&str>,
    state: &StateInner,
    pick: fn(&AzureIdentity) -> Option<&String>,
    what: &str,
) -> Result<String, DiscoveryError> {
    if let Some(v) = configured {
        check_name(key, v, "the setting")?;
        return Ok(v.to_string());
    }
    match &state.identity {
        Some(id) => match pick(id) {
            Some(v) => {
                check_name(key, v, "the instance metadata")?;
                Ok(v.clone())
            }
            None => Err(config(format!(
                "{key} is not set and this VM's instance metadata names no {what} (is it in a scale set?); set {key} in the azure-vmss settings"
            ))),
        },
        None => Err(config(format!(
            "{key} is not set, and the instance metadata is not Azure's (set bootstrap.metadata.provider: azure to take it from this VM); set {key} in the azure-vmss settings"
        ))),
    }
}

pub(in crate::discovery) async fn discover(
    s: &Settings<'_>,
    ctx: &DiscoveryContext,
) -> Result<PeerSet, DiscoveryError> {
    validate(s)?;
    let state = &ctx.azure.0;
    let subscription = setting(
        "subscription-id",
        s.subscription_id,
        state,
        |i| i.subscription_id.as_ref(),
        "subscription",
    )?;
    let group = setting(
        "resource-group",
        s.resource_group,
        state,
        |i| i.resource_group.as_ref(),
        "resource group",
    )?;
    let scale_set = setting(
        "scale-set",
        s.scale_set,
        state,
        |i| i.scale_set.as_ref(),
        "scale set (vmScaleSetName)",
    )?;
    let arm = Arm::new(state, endpoint(s.endpoint)?, s.max_requests_per_second)?;
    let base = [
        "subscriptions",
        subscription.as_str(),
        "resourceGroups",
        group.as_str(),
        "providers",
        "Microsoft.Compute",
        "virtualMachineScaleSets",
        scale_set.as_str(),
    ];

    let url = arm.url(&base, &[], COMPUTE_API_VERSION);
    let vmss: ScaleSet = arm.get("GET scale set", &url).await?;
    let capacity = vmss.sku.capacity.ok_or_else(|| {
        arm.bad("GET scale set", &url, "the scale set has no sku.capacity".into())
    })?;
    if capacity > MAX_CAPACITY {
        return Err(arm.bad(
            "GET scale set",
            &url,
            format!("sku.capacity {capacity} is more than a scale set's {MAX_CAPACITY} VMs"),
        ));
    }

    let url = arm.url(&base, &["virtualMachines"], COMPUTE_API_VERSION);
    let vms: Vec<Vm> = arm.list("list scale set VMs", &url).await?;
    let url = arm.url(&base, &["networkInterfaces"], NETWORK_API_VERSION);
    let nics: Vec<Nic> = arm.list("list scale set network interfaces", &url).await?;
    Ok(PeerSet::new(peers(&vms, &nics), Some(capacity as usize), true))
}

/// VM states of scale set VMs that are not members: on their way out or broken.
const NOT_MEMBER_STATES: &[&str] = &["Deleting", "Failed"];

/// The VMs that are not being deleted or failed, with the primary private IPv4 of their
/// primary network interface (the NIC's `virtualMachine.id` must be the VM's id); a VM
/// without one yet is left out (a later round sees it). Named by VM name, with the vmId.
pub(in crate::discovery) fn peers(vms: &[Vm], nics: &[Nic]) -> Vec<Peer> {
    let mut address: BTreeMap<String, (bool, Ipv4Addr)> = BTreeMap::new();
    for nic in nics {
        let vm = nic.properties.virtual_machine.as_ref().map(|v| v.id.to_ascii_lowercase());
        let Some(vm) = vm.filter(|id| !id.is_empty()) else {
            continue;
        };
        let configs = &nic.properties.ip_configurations;
        let primary = configs
            .iter()
            .find(|c| c.properties.primary == Some(true))
            .or_else(|| (configs.len() == 1).then(|| &configs[0]));
        let Some(ip) = primary.and_then(|c| c.properties.private_ip_address.as_deref()) else {
            continue;
        };
        let Ok(ip) = ip.parse::<Ipv4Addr>() else { continue };
        let nic_primary = nic.properties.primary == Some(true);
        // The primary NIC wins over another one of the same VM.
        match address.get(&vm) {
            Some((true, _)) => {}
            _ => {
                address.insert(vm, (nic_primary, ip));
            }
        }
    }
    vms.iter()
        .filter(|vm| {
            !NOT_MEMBER_STATES.contains(&vm.properties.provisioning_state.as_deref().unwrap_or(""))
        })
        .filter(|vm| !vm.name.is_empty() && !vm.id.is_empty())
        .filter_map(|vm| {
            let (_, ip) = address.get(&vm.id.to_ascii_lowercase())?;
            Some(Peer {
                name: Some(vm.name.clone()),
                host: Host::Ip((*ip).into()),
                instance_id: vm.properties.vm_id.clone().filter(|v| !v.is_empty()),
            })
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct ScaleSet {
    #[serde(default)]
    sku: Sku,
}

#[derive(Debug, Default, Deserialize)]
struct Sku {
    #[serde(default)]
    capacity: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(default, rename = "nextLink")]
    next_link: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(in crate::discovery) struct Vm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub properties: VmProperties,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::discovery) struct VmProperties {
    #[serde(default)]
    pub provisioning_state: Option<String>,
    #[serde(default)]
    pub vm_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(in crate::discovery) struct Nic {
    #[serde(default)]
    pub properties: NicProperties,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::discovery) struct NicProperties {
    #[serde(default)]
    pub primary: Option<bool>,
    #[serde(default)]
    pub virtual_machine: Option<SubResource>,
    #[serde(default)]
    pub ip_configurations: Vec<IpConfiguration>,
}

#[derive(Debug, Deserialize)]
pub(in crate::discovery) struct SubResource {
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub(in crate::discovery) struct IpConfiguration {
    #[serde(default)]
    pub properties: IpConfigurationProperties,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::discovery) struct IpConfigurationProperties {
    #[serde(default)]
    pub primary: Option<bool>,
    #[serde(default, rename = "privateIPAddress")]
    pub private_ip_address: Option<String>,
}

/// The IMDS token document; `expires_in` and `expires_on` come as strings of seconds.
#[derive(Deserialize)]
struct TokenDocument {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
}

fn seconds(v: &Option<serde_json::Value>) -> Option<u64> {
    match v.as_ref()? {
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// How long a token of `doc` may be used from now: until [`TOKEN_MARGIN`] (at most half its
/// life) before it expires, by `expires_in`, else `expires_on` against the clock.
pub(in crate::discovery) fn token_life(
    expires_in: Option<u64>,
    expires_on: Option<u64>,
    now_unix: u64,
) -> Option<Duration> {
    let life = expires_in.or_else(|| expires_on.map(|on| on.saturating_sub(now_unix)))?;
    let life = Duration::from_secs(life);
    Some(life - TOKEN_MARGIN.min(life / 2))
}

/// Whether a `nextLink` may be followed from `request`: same scheme, host, port and path.
pub(in crate::discovery) fn same_resource(request: &Url, next: &Url) -> bool {
    request.scheme() == next.scheme()
        && request.host_str() == next.host_str()
        && request.port_or_known_default() == next.port_or_known_default()
        && request.path() == next.path()
        && next.username().is_empty()
        && next.password().is_none()
}

/// `Retry-After` in seconds (ARM sends seconds); an HTTP date is not used.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// ARM's error document `{"error": {"code", "message"}}`, else a snippet of the body.
fn arm_error(body: &str) -> (String, String) {
    #[derive(Deserialize)]
    struct Doc {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_str::<Doc>(body) {
        Ok(d) => (snippet(&d.error.code), snippet(&d.error.message)),
        Err(_) => (String::new(), snippet(body)),
    }
}

struct Arm<'a> {
    http: reqwest::Client,
    /// For IMDS: never through a proxy (IMDS refuses forwarded requests, and the token must
    /// not pass through one).
    imds: reqwest::Client,
    state: &'a StateInner,
    endpoint: Url,
    min_interval: Duration,
}

impl<'a> Arm<'a> {
    fn new(
        state: &'a StateInner,
        endpoint: Url,
        max_requests_per_second: f64,
    ) -> Result<Arm<'a>, DiscoveryError> {
        // reqwest is built without a default crypto provider; main installs ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(REQUEST_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("etcdadm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config(format!("cannot set up the HTTP client: {e}")))?;
        let imds = reqwest::Client::builder()
            .connect_timeout(state.imds_timeout)
            .timeout(state.imds_timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("etcdadm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| config(format!("cannot set up the HTTP client for IMDS: {e}")))?;
        Ok(Arm {
            http,
            imds,
            state,
            endpoint,
            min_interval: Duration::from_secs_f64(1.0 / max_requests_per_second),
        })
    }

    fn url(&self, base: &[&str], extra: &[&str], api_version: &str) -> Url {
        let mut url = self.endpoint.clone();
        {
            let mut segments = url.path_segments_mut().expect("http URL with a host");
            segments.pop_if_empty();
            segments.extend(base);
            segments.extend(extra);
        }
        url.query_pairs_mut().append_pair("api-version", api_version);
        url
    }

    fn err(
        &self,
        call: &'static str,
        url: &Url,
        detail: String,
        hint: &str,
        retryable: bool,
    ) -> DiscoveryError {
        DiscoveryError::Azure { call, url: shown(url), detail, hint: hint.to_string(), retryable }
    }

    fn bad(&self, call: &'static str, url: &Url, detail: String) -> DiscoveryError {
        self.err(
            call,
            url,
            format!("unexpected answer: {detail}"),
            "check that endpoint is Azure Resource Manager",
            false,
        )
    }

    /// The managed-identity token: the cached one while it is good, else a new one from IMDS.
    async fn token(&self, fresh: bool) -> Result<String, DiscoveryError> {
        {
            let mut cached = self.state.token.lock().unwrap_or_else(|p| p.into_inner());
            if fresh {
                *cached = None;
            }
            if let Some(t) = cached.as_ref().and_then(BearerToken::current) {
                return Ok(t.to_string());
            }
        }
        const CALL: &str = "managed identity token";
        let mut url = Url::parse(&self.state.imds_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                config(format!(
                    "the IMDS address {:?} is not an http URL; fix bootstrap.metadata.base-url",
                    self.state.imds_url
                ))
            })?;
        url.path_segments_mut()
            .expect("http URL with a host")
            .pop_if_empty()
            .extend(["metadata", "identity", "oauth2", "token"]);
        url.query_pairs_mut()
            .append_pair("api-version", TOKEN_API_VERSION)
            .append_pair("resource", TOKEN_RESOURCE);
        let idle = self.state.imds_timeout;
        let req = self.imds.get(url.clone()).header("metadata", "true");
        let (status, _, body) = self.send(CALL, &url, req, idle, MAX_TOKEN_BODY).await?;
        if !status.is_success() {
            let code = status.as_u16();
            // IMDS: 404 while the identity is being assigned, 429 and 5xx for now; 400 when
            // the VM has no managed identity.
            let retryable = matches!(code, 404 | 408 | 410 | 429 | 500..=599);
            let hint = if retryable {
                "IMDS or the identity is not ready (temporary)"
            } else {
                "assign a managed identity to the scale set (system-assigned, or one user-assigned identity)"
            };
            let detail = format!("HTTP {code}: {}", snippet(&body));
            return Err(self.err(CALL, &url, detail, hint, retryable));
        }
        let doc: TokenDocument = serde_json::from_str(&body).map_err(|e| {
            // The body holds the token: never quote it.
            self.err(
                CALL,
                &url,
                format!("the answer is not a token document ({:?})", e.classify()),
                "check bootstrap.metadata.base-url",
                false,
            )
        })?;
        let now_unix =
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let life = token_life(seconds(&doc.expires_in), seconds(&doc.expires_on), now_unix)
            .ok_or_else(|| {
                self.err(
                    CALL,
                    &url,
                    "the token has neither expires_in nor expires_on".into(),
                    "check bootstrap.metadata.base-url",
                    false,
                )
            })?;
        let value = doc.access_token.clone();
        let token = BearerToken::new(doc.access_token, life).map_err(|e| {
            self.err(CALL, &url, e.into(), "check bootstrap.metadata.base-url", false)
        })?;
        *self.state.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
        Ok(value)
    }

    /// Sends `req` and reads the answer within the bounds: (status, headers, body text).
    async fn send(
        &self,
        call: &'static str,
        url: &Url,
        req: reqwest::RequestBuilder,
        idle: Duration,
        max: u64,
    ) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, String), DiscoveryError> {
        let net = "check the network path to the endpoint (temporary while the network comes up)";
        let resp = bounded::send(req, idle).await.map_err(|e| {
            let retryable = matches!(e, BodyError::Transport(_) | BodyError::Stalled { .. });
            self.err(call, url, e.to_string(), net, retryable)
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = bounded::read_text(resp, "an Azure answer", max, idle).await.map_err(|e| {
            let retryable = matches!(e, BodyError::Transport(_));
            self.err(call, url, format!("reading the answer: {e}"), net, retryable)
        })?;
        Ok((status, headers, body))
    }

    /// One ARM GET: paced, with the token (a fresh one once on 401), a short `Retry-After`
    /// waited out when it ends before the deadline; the JSON of a 2xx answer.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        call: &'static str,
        url: &Url,
    ) -> Result<T, DiscoveryError> {
        let mut refreshed = false;
        let mut waits = 0;
        loop {
            let token = self.token(false).await?;
            self.state.limiter.pace(self.min_interval).await;
            let req = self.http.get(url.clone()).bearer_auth(&token);
            let (status, headers, body) =
                self.send(call, url, req, REQUEST_TIMEOUT, MAX_BODY).await?;
            if status.is_success() {
                return serde_json::from_str(&body)
                    .map_err(|e| self.bad(call, url, format!("not the expected JSON: {e}")));
            }
            let code = status.as_u16();
            if code == 401 && !refreshed {
                refreshed = true;
                self.token(true).await?;
                continue;
            }
            if code == 429 && waits < MAX_THROTTLE_WAITS {
                let before_deadline =
                    |w: &Duration| self.state.deadline.is_none_or(|d| Instant::now() + *w < d);
                if let Some(wait) =
                    retry_after(&headers).filter(|w| *w <= MAX_RETRY_AFTER).filter(before_deadline)
                {
                    waits += 1;
                    tracing::info!(
                        call,
                        wait_seconds = wait.as_secs(),
                        "Azure Resource Manager throttled; waiting as its Retry-After says"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            let (error_code, message) = arm_error(&body);
            let remaining: Vec<String> = headers
                .iter()
                .filter(|(k, _)| k.as_str().starts_with("x-ms-ratelimit-remaining"))
                .filter_map(|(k, v)| Some(format!("{k}={}", v.to_str().ok()?)))
                .collect();
            let past_deadline = match retry_after(&headers) {
                Some(w) if code == 429 && w <= MAX_RETRY_AFTER && waits < MAX_THROTTLE_WAITS => {
                    format!("; its Retry-After of {}s ends past the deadline", w.as_secs())
                }
                _ => String::new(),
            };
            let detail = format!(
                "HTTP {code}{}{}{}{past_deadline}",
                if error_code.is_empty() { String::new() } else { format!(", {error_code}") },
                if message.is_empty() { String::new() } else { format!(": {message}") },
                if remaining.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", remaining.join(", "))
                },
            );
            let (hint, retryable) = match code {
                401 => ("the managed identity's token was refused twice; check that the endpoint is Azure Resource Manager and the identity belongs to this tenant", false),
                403 => (READER_HINT, false),
                404 => ("check subscription-id, resource-group and scale-set (the scale set must exist and use uniform orchestration)", false),
                408 | 429 => ("Azure Resource Manager is throttling (temporary)", true),
                500..=599 => ("Azure Resource Manager is failing for now (temporary)", true),
                _ => ("see the error above", false),
            };
            return Err(self.err(call, url, detail, hint, retryable));
        }
    }

    /// Every page of a listing: `nextLink` followed while it points at the same resource,
    /// at most [`MAX_PAGES`] pages.
    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        call: &'static str,
        first: &Url,
    ) -> Result<Vec<T>, DiscoveryError> {
        let mut out = Vec::new();
        let mut url = first.clone();
        for _ in 0..MAX_PAGES {
            let page: Page<T> = self.get(call, &url).await?;
            out.extend(page.value);
            let Some(next) = page.next_link.filter(|n| !n.is_empty()) else {
                return Ok(out);
            };
            let next_url = Url::parse(&next).ok().filter(|n| same_resource(first, n));
            let Some(next_url) = next_url else {
                let shown_next: String = next.chars().take(200).collect();
                return Err(self.err(
                    call,
                    &url,
                    format!("refusing nextLink {shown_next:?}: it is not on {} (the configured endpoint and the same resource path)", shown(first)),
                    "the answer may not choose where the token is sent; check endpoint",
                    false,
                ));
            };
            if next_url == url {
                return Ok(out);
            }
            url = next_url;
        }
        Err(self.bad(call, first, format!("more than {MAX_PAGES} pages")))
    }
}

/// A URL as shown in messages: without its query (skip tokens).
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

#[cfg(test)]
mod tests;
