//! The Google Compute Engine providers, one module each, and what they share: the Compute
//! API client (`compute.googleapis.com/compute/v1`, JSON), the access token and project id
//! from the metadata server, the process's rate limiter and caches ([`GceDiscovery`]).
//!
//! `gce-mig` (`mig`): the instances of a managed instance group, zonal or regional.
//! `gce-labels` (`labels`): the provisioning, staging and running instances that carry one
//! label key/value, in a list of zones.
//!
//! The access token is the default service account's, from the metadata server
//! (`instance/service-accounts/default/token`, `Metadata-Flavor: Google`), kept until a
//! minute before its `expires_in`; a 401 from the Compute API fetches a fresh one once (the
//! token expired or was revoked). Every call waits for its slot in the process's limiter
//! (`max-requests-per-second`). One attempt does not retry: a 429, a 5xx or a failed
//! connection is a retryable error, and the caller retries with backoff within its deadline;
//! a 403 or 404 is not (the service account lacks a permission, or a name is wrong).
//!
//! Answers are checked, not trusted: every answer is read within [`MAX_BODY`] and the
//! request's timeout, names and addresses are validated, and no answer chooses a URL: an
//! instance's zone and name are taken out of the `instance` URL of a managed instance and
//! checked before they become path segments of a URL this client builds, and a
//! `nextPageToken` only ever goes into the query string (encoded).

pub(super) mod labels;
pub(super) mod mig;

use super::bearer::BearerToken;
use super::DiscoveryError;
use crate::error_chain::{error_chain, snippet};
use reqwest::Method;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The public Compute API root; `endpoint` replaces it.
pub(super) const DEFAULT_ENDPOINT: &str = "https://compute.googleapis.com";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Larger answers are no page of 100 instances (nor a token).
const MAX_BODY: u64 = 8 << 20;
/// Items per page (`maxResults`; the API takes up to 500).
pub(super) const PAGE_SIZE: usize = 100;
/// Pages of one list before giving up on an endpoint that never stops paging.
pub(super) const MAX_PAGES: usize = 50;
/// A token is used until this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// Instance statuses of instances that can be members (not STOPPING, SUSPENDED,
/// TERMINATED, ...).
pub(super) const MEMBER_STATUSES: &[&str] = &["PROVISIONING", "STAGING", "RUNNING"];
/// What the Compute API needs from the service account, by call (`roles/compute.viewer`
/// holds them all).
pub(super) const PERMISSIONS: &str = "gce-mig: compute.instanceGroupManagers.get (instanceGroupManagers.get and .listManagedInstances) and compute.instances.get (instances.get); gce-labels: compute.instances.list (instances.list)";

/// What the GCE providers keep for the life of a process, and what they need to know about
/// the machine: created once by the caller (filled from the instance metadata) and passed to
/// every attempt in the `DiscoveryContext`; clones share the caches.
#[derive(Debug, Clone, Default)]
pub struct GceDiscovery {
    /// This instance's zone (`europe-west1-b`): the default `zone` (`gce-mig`) and `zones`
    /// (`gce-labels`).
    pub zone: Option<String>,
    /// The metadata server (the `gce` metadata source's `base-url`), for the access token and
    /// the project id, unless the provider's `metadata-url` is set. Default
    /// `http://169.254.169.254`.
    pub metadata_url: Option<String>,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    /// All Compute API calls of the process together at most `max-requests-per-second`: the
    /// earliest instant the next one may start.
    next_call: Mutex<Option<Instant>>,
    /// The access token and when to stop using it, by metadata server.
    token: Mutex<BTreeMap<String, BearerToken>>,
    /// The project id read from the metadata server, by metadata server.
    project: Mutex<BTreeMap<String, String>>,
    /// Primary internal IPv4 addresses learned, by (endpoint, project, zone, name, instance
    /// id): an instance keeps its address for its life, and a recreated instance has a new id.
    address: Mutex<BTreeMap<AddressKey, Ipv4Addr>>,
}

impl std::fmt::Debug for State {
    /// Never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl GceDiscovery {
    /// A fresh process's view: nothing cached yet.
    pub fn new(zone: Option<String>, metadata_url: Option<String>) -> GceDiscovery {
        GceDiscovery { zone, metadata_url, state: Arc::default() }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a GCE call failed: what was called, where, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum GceError {
    /// The Compute API answered with an error (`error.code`, `error.errors[].reason`).
    #[error("Compute API {call} at {url} failed: HTTP {status}, {reason}: {message}; {}", api_hint(*.status, reason))]
    Api { call: &'static str, url: String, status: u16, reason: String, message: String },
    /// The Compute API or the metadata server could not be reached or did not answer in time.
    #[error("{call} at {url} failed: {detail}; {}", if *.retryable { "check the network path (firewall, proxy, Private Google Access) (temporary?)" } else { "not worth retrying" })]
    Http { call: &'static str, url: String, detail: String, retryable: bool },
    /// An answer this client does not understand or refuses.
    #[error("{call} at {url}: unexpected answer: {detail}; check that the endpoint is the Compute API (or the metadata-url the GCE metadata server)")]
    BadResponse { call: &'static str, url: String, detail: String },
    /// The metadata server refused the token or the project id.
    #[error("metadata server {url} refused {what}: HTTP {status}: {message}; {}", if *.status == 404 { "the instance has no service account: attach one with roles/compute.viewer (and the compute.readonly or cloud-platform scope)" } else { "temporary?" })]
    Metadata { what: &'static str, url: String, status: u16, message: String },
}

impl GceError {
    pub fn is_retryable(&self) -> bool {
        match self {
            GceError::Api { status, reason, .. } => api_retryable(*status, reason),
            GceError::Http { retryable, .. } => *retryable,
            GceError::BadResponse { .. } => false,
            GceError::Metadata { status, .. } => *status == 429 || *status >= 500,
        }
    }
}

fn api_retryable(status: u16, reason: &str) -> bool {
    status == 429
        || (500..600).contains(&status)
        || matches!(reason, "rateLimitExceeded" | "userRateLimitExceeded" | "backendError")
}

fn api_hint(status: u16, reason: &str) -> String {
    match status {
        401 => "the metadata server's access token was refused twice; check the instance's service account and its access scopes (compute.readonly or cloud-platform)".into(),
        403 if !api_retryable(status, reason) => format!(
            "grant the instance's service account roles/compute.viewer, or the permissions {PERMISSIONS}; its access scopes must include compute.readonly or cloud-platform"
        ),
        404 => "check project, zone or region and group (gce-mig), or project and zones (gce-labels), in the discovery settings".into(),
        _ if api_retryable(status, reason) => "the Compute API is throttling or failing for now (temporary)".into(),
        _ => "see the reason above".into(),
    }
}

fn config(msg: String) -> DiscoveryError {
    DiscoveryError::Config(msg)
}

/// The checks of the settings every GCE provider takes; `provider` names it in the errors.
pub(super) fn validate(
    provider: &str,
    project: Option<&str>,
    endpoint: Option<&str>,
    metadata_url: Option<&str>,
    max_requests_per_second: f64,
) -> Result<(), DiscoveryError> {
    super::check_rate(provider, max_requests_per_second)?;
    for (key, value, example) in [
        ("endpoint", endpoint, DEFAULT_ENDPOINT),
        ("metadata-url", metadata_url, crate::metadata::DEFAULT_METADATA_URL),
    ] {
        if let Some(e) = value {
            let ok = url::Url::parse(e).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none()
            });
            if !ok {
                return Err(config(format!(
                    "{provider} {key} {e:?} is not an http(s) URL such as {example}; fix or remove {key}"
                )));
            }
        }
    }
    if let Some(p) = project {
        check_project(provider, p, "the setting project")?;
    }
    Ok(())
}

/// A project id: 6 to 30 lower-case letters, digits and '-' (older ones may carry a
/// `domain.com:` prefix).
fn check_project(provider: &str, p: &str, source: &str) -> Result<(), DiscoveryError> {
    let id = p.rsplit_once(':').map_or(p, |(_, id)| id);
    let ok = !id.is_empty()
        && p.len() <= 100
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.:".contains(c));
    if ok {
        Ok(())
    } else {
        Err(config(format!(
            "{provider} project {p:?} (from {source}) is not a Google Cloud project id such as \
             my-project-123; set project in the {provider} settings"
        )))
    }
}

/// A resource name as GCE allows it (instances, groups): a lower-case letter, then up to 62
/// lower-case letters, digits or '-', not ending with '-'.
pub(super) fn is_resource_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A zone (`europe-west1-b`) or region (`europe-west1`) name: lower-case letters, digits and
/// '-', with a digit, at most 63.
pub(super) fn is_location(s: &str) -> bool {
    is_resource_name(s) && s.contains(|c: char| c.is_ascii_digit())
}

/// `zone` checked: the setting, else this instance's (from the metadata).
pub(super) fn zone_or_own(
    provider: &str,
    key: &str,
    setting: Option<&str>,
    own: Option<&str>,
) -> Result<String, DiscoveryError> {
    let (zone, source) = match (setting, own) {
        (Some(z), _) => (z, format!("the setting {key}")),
        (None, Some(z)) => (z, "the instance metadata".to_string()),
        (None, None) => {
            return Err(config(format!(
                "{provider} needs a zone: set {key}, or run on GCE with bootstrap.metadata provider: gce, which gives this instance's zone"
            )))
        }
    };
    if !is_location(zone) {
        return Err(config(format!(
            "{provider} {key} {zone:?} (from {source}) is not a zone name such as europe-west1-b; set {key} in the {provider} settings"
        )));
    }
    Ok(zone.to_string())
}

/// The client of one attempt: the Compute API and the metadata server, paced and cached by
/// the process's [`GceDiscovery`].
pub(super) struct Client<'a> {
    http: reqwest::Client,
    gce: &'a GceDiscovery,
    endpoint: url::Url,
    metadata_url: url::Url,
    min_interval: Duration,
}

impl<'a> Client<'a> {
    pub(super) fn new(
        gce: &'a GceDiscovery,
        endpoint: Option<&str>,
        metadata_url: Option<&str>,
        max_requests_per_second: f64,
    ) -> Result<Client<'a>, DiscoveryError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("etcdadm/", env!("CARGO_PKG_VERSION")))
            // A redirect would let an answer choose the next URL.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| config(format!("cannot set up the HTTP client for GCE: {e}")))?;
        let parse = |s: &str| {
            url::Url::parse(s).map_err(|e| config(format!("GCE URL {s:?} is not a URL: {e}")))
        };
        let metadata = metadata_url
            .or(gce.metadata_url.as_deref())
            .unwrap_or(crate::metadata::DEFAULT_METADATA_URL);
        Ok(Client {
            http,
            gce,
            endpoint: parse(endpoint.unwrap_or(DEFAULT_ENDPOINT))?,
            metadata_url: parse(metadata)?,
            min_interval: Duration::from_secs_f64(1.0 / max_requests_per_second),
        })
    }

    /// `<base>/<segments...>` with each segment percent-encoded, and `query` encoded.
    fn url(base: &url::Url, segments: &[&str], query: &[(&str, &str)]) -> url::Url {
        let mut u = base.clone();
        u.set_query(None);
        u.set_fragment(None);
        if let Ok(mut path) = u.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            u.query_pairs_mut().extend_pairs(query);
        }
        u
    }

    /// `compute/v1/projects/<project>/<rest...>` at the endpoint.
    pub(super) fn compute_url(
        &self,
        project: &str,
        rest: &[&str],
        query: &[(&str, &str)],
    ) -> url::Url {
        let mut segments = vec!["compute", "v1", "projects", project];
        segments.extend_from_slice(rest);
        Self::url(&self.endpoint, &segments, query)
    }

    /// The endpoint as configured, for cache keys and messages.
    pub(super) fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    async fn pace(&self) {
        let wait = {
            let mut next = lock(&self.gce.state.next_call);
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.min_interval);
            slot - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// One request; (status, body) within the bounds.
    async fn send(
        &self,
        call: &'static str,
        req: reqwest::RequestBuilder,
        url: &url::Url,
    ) -> Result<(u16, String), GceError> {
        let http_err = |detail: String, retryable: bool| GceError::Http {
            call,
            url: url.to_string(),
            detail,
            retryable,
        };
        let resp = req.send().await.map_err(|e| http_err(error_chain(&e.without_url()), true))?;
        let status = resp.status().as_u16();
        match crate::bounded::read_text(resp, "a GCE answer", MAX_BODY, REQUEST_TIMEOUT).await {
            Ok(text) => Ok((status, text)),
            Err(crate::bounded::BodyError::Transport(e)) => {
                Err(http_err(format!("reading the answer: {e}"), true))
            }
            Err(e) => {
                Err(GceError::BadResponse { call, url: url.to_string(), detail: e.to_string() })
            }
        }
    }

    /// GET `computeMetadata/v1/<path>` with `Metadata-Flavor: Google`; the body of a 200 that
    /// carries the header back.
    async fn metadata(&self, what: &'static str, path: &[&str]) -> Result<String, GceError> {
        let mut segments = vec!["computeMetadata", "v1"];
        segments.extend_from_slice(path);
        let url = Self::url(&self.metadata_url, &segments, &[]);
        let req = self.http.get(url.clone()).header("metadata-flavor", "Google");
        let resp = req.send().await.map_err(|e| GceError::Http {
            call: what,
            url: url.to_string(),
            detail: error_chain(&e.without_url()),
            retryable: true,
        })?;
        let status = resp.status().as_u16();
        let flavored =
            resp.headers().get("metadata-flavor").is_some_and(|v| v.as_bytes() == b"Google");
        let text = crate::bounded::read_text(resp, "a metadata answer", 64 << 10, REQUEST_TIMEOUT)
            .await
            .map_err(|e| GceError::Http {
                call: what,
                url: url.to_string(),
                detail: e.to_string(),
                retryable: e.is_transient(),
            })?;
        if status != 200 {
            return Err(GceError::Metadata {
                what,
                url: url.to_string(),
                status,
                message: snippet(&text),
            });
        }
        if !flavored {
            return Err(GceError::BadResponse {
                call: what,
                url: url.to_string(),
                detail: "no Metadata-Flavor: Google header: not the GCE metadata server".into(),
            });
        }
        Ok(text)
    }

    /// The project: the setting, else the metadata server's `project/project-id` (cached).
    pub(super) async fn project(
        &self,
        provider: &str,
        setting: Option<&str>,
    ) -> Result<String, DiscoveryError> {
        if let Some(p) = setting {
            check_project(provider, p, "the setting project")?;
            return Ok(p.to_string());
        }
        let key = self.metadata_url.to_string();
        if let Some(p) = lock(&self.gce.state.project).get(&key) {
            return Ok(p.clone());
        }
        let p =
            self.metadata("the project id", &["project", "project-id"]).await?.trim().to_string();
        check_project(provider, &p, "the metadata server")?;
        lock(&self.gce.state.project).insert(key, p.clone());
        Ok(p)
    }

    /// The access token: the cached one while it is valid for another minute and `fresh` is
    /// false, else a new one from the metadata server.
    async fn token(&self, fresh: bool) -> Result<String, GceError> {
        const WHAT: &str = "the access token";
        let key = self.metadata_url.to_string();
        if !fresh {
            if let Some(t) = lock(&self.gce.state.token).get(&key).and_then(BearerToken::current) {
                return Ok(t.to_string());
            }
        }
        #[derive(serde::Deserialize)]
        struct Token {
            access_token: String,
            expires_in: u64,
        }
        let text =
            self.metadata(WHAT, &["instance", "service-accounts", "default", "token"]).await?;
        let bad = |detail: String| GceError::BadResponse {
            call: WHAT,
            url: self.metadata_url.to_string(),
            detail,
        };
        let t: Token = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a token (access_token, expires_in): {e}")))?;
        let lifetime = Duration::from_secs(t.expires_in.min(86_400)).saturating_sub(TOKEN_MARGIN);
        let value = t.access_token.clone();
        let token = BearerToken::new(t.access_token, lifetime).map_err(|e| bad(e.into()))?;
        lock(&self.gce.state.token).insert(key, token);
        Ok(value)
    }

    /// One Compute API call (GET, or POST with an empty JSON body), its answer decoded. A
    /// 401 fetches a fresh token and tries once more.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        call: &'static str,
        method: Method,
        url: &url::Url,
    ) -> Result<T, GceError> {
        let mut fresh = false;
        loop {
            let token = self.token(fresh).await?;
            self.pace().await;
            let mut req = self.http.request(method.clone(), url.clone()).bearer_auth(&token);
            if method == Method::POST {
                req = req.header("content-type", "application/json").body("{}");
            }
            let (status, text) = self.send(call, req, url).await?;
            if status == 401 && !fresh {
                fresh = true;
                continue;
            }
            if (200..300).contains(&status) {
                return serde_json::from_str(&text).map_err(|e| GceError::BadResponse {
                    call,
                    url: url.to_string(),
                    detail: format!("{e}"),
                });
            }
            let (reason, message) =
                error_document(&text).unwrap_or_else(|| (format!("HTTP {status}"), snippet(&text)));
            return Err(GceError::Api {
                call,
                url: url.to_string(),
                status,
                reason,
                message: snippet(&message),
            });
        }
    }

    /// Every page of a list: `pageToken` followed until the answer has none or repeats the
    /// last one, at most [`MAX_PAGES`] pages of [`PAGE_SIZE`].
    pub(super) async fn pages<T: DeserializeOwned + Page>(
        &self,
        call: &'static str,
        method: Method,
        project: &str,
        rest: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Vec<T::Item>, GceError> {
        let size = PAGE_SIZE.to_string();
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for page_number in 1.. {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("maxResults", &size));
            if let Some(t) = &token {
                q.push(("pageToken", t));
            }
            let url = self.compute_url(project, rest, &q);
            if page_number > MAX_PAGES {
                return Err(GceError::BadResponse {
                    call,
                    url: url.to_string(),
                    detail: format!("more than {MAX_PAGES} pages"),
                });
            }
            let page: T = self.call(call, method.clone(), &url).await?;
            let (page_items, next) = page.into_parts();
            items.extend(page_items);
            match next.filter(|t| !t.is_empty()) {
                Some(t) if Some(&t) != token.as_ref() => {
                    if t.len() > 4096 {
                        return Err(GceError::BadResponse {
                            call,
                            url: url.to_string(),
                            detail: "a nextPageToken longer than 4096 bytes".into(),
                        });
                    }
                    token = Some(t)
                }
                _ => break,
            }
        }
        Ok(items)
    }

    /// A primary internal IPv4 learned earlier in this process.
    pub(super) fn cached_address(&self, key: &AddressKey) -> Option<Ipv4Addr> {
        lock(&self.gce.state.address).get(key).copied()
    }

    pub(super) fn cache_address(&self, key: AddressKey, ip: Ipv4Addr) {
        lock(&self.gce.state.address).insert(key, ip);
    }
}

/// (endpoint, project, zone, instance name, instance id).
pub(super) type AddressKey = (String, String, String, String, String);

/// A page of a list answer: its items and `nextPageToken`.
pub(super) trait Page {
    type Item;
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

/// Google's error document: `{"error": {"code", "message", "errors": [{"reason", ...}],
/// "status"}}`; (the first reason, else the status, and the message).
fn error_document(text: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let e = v.get("error")?;
    let message = e.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_string();
    let reason = e
        .get("errors")
        .and_then(|l| l.get(0))
        .and_then(|f| f.get("reason"))
        .and_then(|r| r.as_str())
        .or_else(|| e.get("status").and_then(|s| s.as_str()))?;
    let reason: String =
        reason.chars().take(64).filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    Some((reason, message))
}

/// An instance as `instances.get` and `instances.list` answer it (the fields used).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct Instance {
    pub name: String,
    /// uint64, as a JSON string.
    pub id: Option<String>,
    pub status: String,
    /// `https://www.googleapis.com/compute/v1/projects/P/zones/Z`.
    pub zone: String,
    pub network_interfaces: Vec<NetworkInterface>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub(super) struct NetworkInterface {
    #[serde(rename = "networkIP")]
    pub network_ip: Option<String>,
}

impl Instance {
    /// The primary internal IPv4 (`networkInterfaces[0].networkIP`), when it is one.
    pub(super) fn internal_ipv4(&self) -> Option<Ipv4Addr> {
        self.network_interfaces.first()?.network_ip.as_deref()?.parse().ok()
    }

    /// Whether it can be a member: a valid name, a member status, an IPv4.
    pub(super) fn is_member(&self) -> bool {
        is_resource_name(&self.name)
            && MEMBER_STATUSES.contains(&self.status.as_str())
            && self.internal_ipv4().is_some()
    }

    /// The instance id, when it is one (digits).
    pub(super) fn valid_id(&self) -> Option<String> {
        self.id.clone().filter(|i| valid_id(i))
    }

    pub(super) fn peer(&self) -> Option<super::Peer> {
        Some(super::Peer {
            name: Some(self.name.clone()),
            host: crate::net::Host::Ip(self.internal_ipv4()?.into()),
            instance_id: self.valid_id(),
        })
    }
}

pub(super) fn valid_id(i: &str) -> bool {
    !i.is_empty() && i.len() <= 20 && i.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
#[path = "../../../tests/discovery/gce_server.rs"]
pub(crate) mod gce_server;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gce_names_zones_and_projects_are_checked_before_they_become_url_segments() {
        for ok in ["etcd-a", "a", "etcd-1-abcd"] {
            assert!(is_resource_name(ok), "{ok}");
        }
        for bad in ["", "Etcd", "1etcd", "etcd-", "a/b", "a..b", "a b", &"a".repeat(64)] {
            assert!(!is_resource_name(bad), "{bad}");
        }
        assert!(is_location("europe-west1-b") && is_location("us-central1"));
        assert!(!is_location("europe") && !is_location("../x1"));
        check_project("gce-mig", "my-project-123", "x").unwrap();
        check_project("gce-mig", "example.com:my-project", "x").unwrap();
        for bad in ["", "My-Project", "p/q", "p?x=1", "1abc"] {
            let e = check_project("gce-mig", bad, "the metadata server").unwrap_err().to_string();
            assert!(e.contains("gce-mig project") && e.contains("set project"), "{e}");
        }
    }

    #[test]
    fn settings_that_cannot_work_name_the_key() {
        validate("gce-labels", None, None, None, 5.0).unwrap();
        validate(
            "gce-labels",
            Some("p-123456"),
            Some("http://127.0.0.1:1"),
            Some("http://127.0.0.1:2"),
            5.0,
        )
        .unwrap();
        for (args, says) in [
            ((None, None, None, 0.0), "gce-mig max-requests-per-second"),
            ((None, Some("compute.googleapis.com"), None, 5.0), "gce-mig endpoint"),
            ((None, None, Some("ftp://x"), 5.0), "gce-mig metadata-url"),
            ((Some("Bad"), None, None, 5.0), "gce-mig project"),
        ] {
            let e = validate("gce-mig", args.0, args.1, args.2, args.3).unwrap_err();
            assert!(!e.is_retryable() && e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn google_error_documents_give_the_reason_and_403_names_the_role_and_permissions() {
        let doc = r#"{"error":{"code":403,"message":"Required 'compute.instanceGroupManagers.get' permission","errors":[{"message":"m","domain":"global","reason":"forbidden"}]}}"#;
        let (reason, message) = error_document(doc).unwrap();
        assert_eq!(reason, "forbidden");
        assert!(message.contains("compute.instanceGroupManagers.get"));
        let e = GceError::Api {
            call: "instanceGroupManagers.get",
            url: "u".into(),
            status: 403,
            reason,
            message,
        };
        assert!(!e.is_retryable());
        let msg = e.to_string();
        assert!(
            msg.contains("roles/compute.viewer") && msg.contains("compute.instances.list"),
            "{msg}"
        );
        for (status, reason) in [
            (429, "rateLimitExceeded"),
            (503, "backendError"),
            (403, "rateLimitExceeded"),
            (500, "HTTP 500"),
        ] {
            let e = GceError::Api {
                call: "c",
                url: "u".into(),
                status,
                reason: reason.into(),
                message: String::new(),
            };
            assert!(e.is_retryable(), "{status} {reason}");
        }
        for status in [400, 401, 404] {
            let e = GceError::Api {
                call: "c",
                url: "u".into(),
                status,
                reason: "notFound".into(),
                message: String::new(),
            };
            assert!(!e.is_retryable(), "{status}");
        }
    }

    #[test]
    fn urls_built_from_answers_encode_their_parts() {
        let base = url::Url::parse("http://127.0.0.1:9/").unwrap();
        let u = Client::url(
            &base,
            &["compute", "v1", "projects", "p", "zones", "a/../b"],
            &[("pageToken", "x&y=z#")],
        );
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:9/compute/v1/projects/p/zones/a%2F..%2Fb?pageToken=x%26y%3Dz%23"
        );
    }
}

#[cfg(test)]
mod server_tests;
