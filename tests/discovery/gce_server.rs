//! A loopback HTTP server that answers as Google's Compute Engine API (v1) and metadata
//! server do, for the `gce-mig` and `gce-labels` tests (the unit tests beside the providers
//! include this file too). What it follows, from Google's documentation:
//!
//! - Metadata server: `GET /computeMetadata/v1/...` only with `Metadata-Flavor: Google`
//!   (else 403), answers carry `Metadata-Flavor: Google`; `project/project-id` is text,
//!   `instance/service-accounts/default/token` is JSON `{"access_token", "expires_in",
//!   "token_type": "Bearer"}`.
//! - Compute API: `Authorization: Bearer <token>`, else 401 (`UNAUTHENTICATED`, reason
//!   `authError`), also for a token that expired or was revoked ([`GceServer::expire_token`]).
//!   `instanceGroupManagers.get` (`targetSize`), `instanceGroupManagers.listManagedInstances`
//!   (POST; `managedInstances[]` with `instance` URL, `id`, `instanceStatus`,
//!   `currentAction`; paged only when the group's `listManagedInstancesResults` is
//!   `PAGINATED`, else all in one answer), their `regionInstanceGroupManagers` twins, `instances.get`,
//!   `instances.list` with `filter=labels.KEY = "VALUE"`. Lists page by `maxResults` (at most
//!   500) and an opaque `pageToken`/`nextPageToken` (here with `/+&=` in it, so that only a
//!   client that encodes it gets the next page), absent on the last page; `items` is absent
//!   from an empty page. Errors are `{"error": {"code", "message", "errors": [{"reason"}],
//!   "status"}}`: 404 `notFound`, 429 `rateLimitExceeded` (`RESOURCE_EXHAUSTED`), 500/503
//!   `backendError`.
//!
//! Faults are queued: each of the next Compute API calls (not metadata calls) answers with the
//! next queued status instead (0: answered as usual).
//!
//! The metadata server describes the caller: a request from an instance's address
//! (`networkIP`) is answered with that instance's id, name (`instance/hostname`), zone and
//! address, so machines on a bridge (examples/cloud_api_server.rs, the fleet scenarios) each
//! see their own; any other caller (loopback) gets the fixed id and [`OWN_ZONE`].
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const PROJECT: &str = "etcd-test-project";
/// The zone of the machine the metadata server describes.
pub const OWN_ZONE: &str = "europe-west1-b";
pub const SELF_LINK: &str = "https://www.googleapis.com/compute/v1";

#[derive(Debug, Clone)]
pub struct Inst {
    pub name: String,
    pub id: u64,
    pub zone: String,
    pub status: String,
    pub ip: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Mig {
    /// `zones/<zone>` or `regions/<region>`.
    pub scope: String,
    pub name: String,
    pub target_size: u32,
    /// `listManagedInstancesResults`: `PAGINATED` (true) pages `listManagedInstances`;
    /// `PAGELESS`, the API's default, ignores `maxResults` and `pageToken` and answers all.
    pub paginated: bool,
    /// (zone, instance name, currentAction).
    pub members: Vec<(String, String, String)>,
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub status: u16,
}

impl Call {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    pub fn is_token(&self) -> bool {
        self.path.ends_with("/service-accounts/default/token")
    }
    pub fn is_compute(&self) -> bool {
        self.path.starts_with("/compute/v1/")
    }
}

#[derive(Debug, Default)]
pub struct World {
    pub instances: Vec<Inst>,
    pub migs: Vec<Mig>,
    pub tokens_issued: usize,
    /// The tokens accepted: every one issued since the last [`GceServer::expire_token`]
    /// (several machines may each hold one).
    pub valid_tokens: Vec<String>,
    /// The `expires_in` of the tokens issued (default 3599, as GCE's).
    pub token_lifetime: Option<u64>,
    pub faults: VecDeque<u16>,
    pub calls: Vec<Call>,
}

pub struct GceServer {
    /// `http://ADDRESS:PORT` (both the Compute endpoint and the metadata URL).
    pub url: String,
    pub world: Arc<Mutex<World>>,
}

impl GceServer {
    /// On loopback, at a free port.
    pub async fn start() -> GceServer {
        GceServer::start_on("127.0.0.1:0").await.unwrap()
    }

    /// On `addr` (`IP:PORT`).
    pub async fn start_on(addr: &str) -> std::io::Result<GceServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let world = Arc::new(Mutex::new(World::default()));
        let w = world.clone();
        tokio::spawn(async move {
            while let Ok((conn, peer)) = listener.accept().await {
                let w = w.clone();
                tokio::spawn(async move { serve(conn, peer.ip(), w).await });
            }
        });
        Ok(GceServer { url, world })
    }

    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.world.lock().unwrap())
    }

    pub fn add_instance(
        &self,
        zone: &str,
        name: &str,
        status: &str,
        ip: &str,
        labels: &[(&str, &str)],
    ) {
        self.with(|w| {
            let id = 5_000_000_000_000_000_000 + w.instances.len() as u64;
            w.instances.push(Inst {
                name: name.into(),
                id,
                zone: zone.into(),
                status: status.into(),
                ip: ip.into(),
                labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            })
        })
    }

    pub fn add_mig(
        &self,
        scope: &str,
        name: &str,
        target_size: u32,
        members: &[(&str, &str, &str)],
    ) {
        self.with(|w| {
            w.migs.push(Mig {
                scope: scope.into(),
                name: name.into(),
                target_size,
                paginated: true,
                members: members
                    .iter()
                    .map(|(z, n, a)| (z.to_string(), n.to_string(), a.to_string()))
                    .collect(),
            })
        })
    }

    /// The group's `listManagedInstancesResults` becomes `PAGELESS`.
    pub fn set_pageless(&self, name: &str) {
        self.with(|w| {
            w.migs.iter_mut().filter(|m| m.name == name).for_each(|m| m.paginated = false)
        })
    }

    /// The next Compute API calls answer with these statuses, in order.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.with(|w| w.faults.extend(statuses))
    }

    /// The tokens issued so far stop being accepted (they expired, or were revoked).
    pub fn expire_token(&self) {
        self.with(|w| w.valid_tokens.clear())
    }

    /// Tokens issued from now on expire after `seconds`.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.with(|w| w.token_lifetime = Some(seconds))
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|w| w.calls.clone())
    }

    pub fn tokens_issued(&self) -> usize {
        self.with(|w| w.tokens_issued)
    }
}

async fn serve(mut conn: tokio::net::TcpStream, peer: IpAddr, world: Arc<Mutex<World>>) {
    let mut req = Vec::new();
    let mut buf = [0u8; 8192];
    let (head, body_len) = loop {
        let Ok(got) = conn.read(&mut buf).await else { return };
        if got == 0 {
            return;
        }
        req.extend_from_slice(&buf[..got]);
        if let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&req[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if req.len() >= end + 4 + len {
                break (head, len);
            }
        }
    };
    let _ = body_len;
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let (status, extra, body) = {
        let mut w = world.lock().unwrap();
        let answer = answer(&mut w, peer, &method, path, &query, &headers);
        w.calls.push(Call {
            method: method.clone(),
            path: path.to_string(),
            query: query.clone(),
            authorization: headers.get("authorization").cloned(),
            status: answer.0,
        });
        answer
    };
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(resp.as_bytes()).await;
    let _ = conn.shutdown().await;
}

const JSON: &str = "content-type: application/json; charset=UTF-8\r\n";
const FLAVOR: &str = "metadata-flavor: Google\r\ncontent-type: application/text\r\n";

fn google_error(
    code: u16,
    reason: &str,
    status: &str,
    message: &str,
) -> (u16, &'static str, String) {
    let doc = json!({"error": {"code": code, "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}], "status": status}});
    (code, JSON, doc.to_string())
}

fn answer(
    w: &mut World,
    peer: IpAddr,
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &BTreeMap<String, String>,
) -> (u16, &'static str, String) {
    if let Some(key) = path.strip_prefix("/computeMetadata/v1/") {
        if headers.get("metadata-flavor").map(String::as_str) != Some("Google") {
            return (
                403,
                "content-type: text/html\r\n",
                "Missing Metadata-Flavor:Google header.".into(),
            );
        }
        // The caller, when it is at an instance's address.
        let me = w.instances.iter().find(|i| i.ip.parse::<IpAddr>().ok() == Some(peer));
        return match (key, me) {
            ("project/project-id", _) => (200, FLAVOR, PROJECT.into()),
            // What the `gce` metadata source reads of this machine (the rest is absent).
            ("instance/id", Some(i)) => (200, FLAVOR, i.id.to_string()),
            ("instance/id", None) => (200, FLAVOR, "4520031799277581759".into()),
            ("instance/zone", Some(i)) => {
                (200, FLAVOR, format!("projects/123456789012/zones/{}", i.zone))
            }
            ("instance/zone", None) => {
                (200, FLAVOR, format!("projects/123456789012/zones/{OWN_ZONE}"))
            }
            ("instance/hostname", Some(i)) => {
                (200, FLAVOR, format!("{}.{}.c.{PROJECT}.internal", i.name, i.zone))
            }
            ("instance/network-interfaces/0/ip", Some(i)) => (200, FLAVOR, i.ip.clone()),
            ("instance/service-accounts/default/token", _) => {
                w.tokens_issued += 1;
                let token = format!("ya29.test-token-{}", w.tokens_issued);
                w.valid_tokens.push(token.clone());
                let doc = json!({"access_token": token, "expires_in": w.token_lifetime.unwrap_or(3599), "token_type": "Bearer"});
                (
                    200,
                    "metadata-flavor: Google\r\ncontent-type: application/json\r\n",
                    doc.to_string(),
                )
            }
            _ => (404, FLAVOR, "Not Found".into()),
        };
    }
    let Some(rest) = path.strip_prefix("/compute/v1/projects/") else {
        return google_error(404, "notFound", "NOT_FOUND", "no such path");
    };
    let bearer = headers.get("authorization").and_then(|a| a.strip_prefix("Bearer "));
    if !bearer.is_some_and(|b| w.valid_tokens.iter().any(|t| t == b)) {
        return google_error(
            401,
            "authError",
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        );
    }
    if let Some(fault) = w.faults.pop_front().filter(|f| *f != 0) {
        return match fault {
            429 => google_error(
                429,
                "rateLimitExceeded",
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Read requests' of service 'compute.googleapis.com'",
            ),
            403 => google_error(
                403,
                "forbidden",
                "PERMISSION_DENIED",
                "Required 'compute.instanceGroupManagers.get' permission",
            ),
            code => google_error(code, "backendError", "UNAVAILABLE", "Internal error. Please try again."),
        };
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.first() != Some(&PROJECT) {
        return google_error(
            404,
            "notFound",
            "NOT_FOUND",
            "The resource 'projects/x' was not found",
        );
    }
    let not_found = || {
        google_error(404, "notFound", "NOT_FOUND", &format!("The resource '{path}' was not found"))
    };
    match (method, &parts[1..]) {
        ("GET", [scope, loc, "instanceGroupManagers", name]) => {
            let s = format!("{scope}/{loc}");
            match w.migs.iter().find(|m| m.scope == s && m.name == *name) {
                Some(m) => (
                    200,
                    JSON,
                    json!({"kind": "compute#instanceGroupManager", "name": m.name,
                    "targetSize": m.target_size, "baseInstanceName": m.name})
                    .to_string(),
                ),
                None => not_found(),
            }
        }
        ("POST", [scope, loc, "instanceGroupManagers", name, "listManagedInstances"]) => {
            let s = format!("{scope}/{loc}");
            let Some(m) = w.migs.iter().find(|m| m.scope == s && m.name == *name) else {
                return not_found();
            };
            let all: Vec<Value> = m
                .members
                .iter()
                .map(|(zone, n, action)| {
                    let inst = w.instances.iter().find(|i| &i.zone == zone && &i.name == n);
                    let mut v = json!({"instance": format!("{SELF_LINK}/projects/{PROJECT}/zones/{zone}/instances/{n}"),
                        "currentAction": action});
                    if let Some(i) = inst {
                        v["id"] = json!(i.id.to_string());
                        v["instanceStatus"] = json!(i.status);
                    }
                    v
                })
                .collect();
            if m.paginated {
                page(query, all, "managedInstances")
            } else {
                let doc = json!({"managedInstances": all});
                (200, JSON, doc.to_string())
            }
        }
        ("GET", ["zones", zone, "instances", name]) => {
            match w.instances.iter().find(|i| i.zone == *zone && i.name == *name) {
                Some(i) => (200, JSON, instance_json(i).to_string()),
                None => not_found(),
            }
        }
        ("GET", ["zones", zone, "instances"]) => {
            let filter = query.iter().find(|(k, _)| k == "filter").map(|(_, v)| v.as_str());
            let label = match filter {
                None => None,
                Some(f) => match parse_label_filter(f) {
                    Some(kv) => Some(kv),
                    None => {
                        return google_error(
                            400,
                            "invalid",
                            "INVALID_ARGUMENT",
                            "Invalid value for field 'filter'",
                        )
                    }
                },
            };
            let all: Vec<Value> = w
                .instances
                .iter()
                .filter(|i| i.zone == *zone)
                .filter(|i| label.as_ref().is_none_or(|(k, v)| i.labels.get(k) == Some(v)))
                .map(instance_json)
                .collect();
            page(query, all, "items")
        }
        _ => not_found(),
    }
}

/// `labels.KEY = "VALUE"` (or `labels.KEY=VALUE`).
fn parse_label_filter(f: &str) -> Option<(String, String)> {
    let (k, v) = f.strip_prefix("labels.")?.split_once('=')?;
    Some((k.trim().to_string(), v.trim().trim_matches('"').to_string()))
}

fn instance_json(i: &Inst) -> Value {
    json!({
        "kind": "compute#instance",
        "id": i.id.to_string(),
        "name": i.name,
        "zone": format!("{SELF_LINK}/projects/{PROJECT}/zones/{}", i.zone),
        "status": i.status,
        "networkInterfaces": [{"name": "nic0", "networkIP": i.ip,
            "network": format!("{SELF_LINK}/projects/{PROJECT}/global/networks/default")}],
        "labels": i.labels,
    })
}

/// One page of `all` by `maxResults` (default and at most 500) and `pageToken`.
fn page(query: &[(String, String)], all: Vec<Value>, field: &str) -> (u16, &'static str, String) {
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let size = get("maxResults").and_then(|v| v.parse::<usize>().ok()).unwrap_or(500).clamp(1, 500);
    let start = match get("pageToken") {
        None => 0,
        Some(t) => match t
            .strip_prefix("opaque/")
            .and_then(|t| t.strip_suffix("+&="))
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return google_error(400, "invalid", "INVALID_ARGUMENT", "Invalid page token"),
        },
    };
    let items: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
    let mut doc = json!({"kind": "compute#list", "id": "list"});
    if !items.is_empty() {
        doc[field] = Value::Array(items);
    }
    if start + size < all.len() {
        doc["nextPageToken"] = json!(format!("opaque/{}+&=", start + size));
    }
    (200, JSON, doc.to_string())
}
