//! The discovery tests' fake clouds, run standalone on an address of one's choosing: the
//! fleet scenarios (tests/fleet/scenarios/81-gce-mig.sh, 82-gce-labels.sh, 83-azure-vmss.sh)
//! start it on their bridge so that real machines discover each other through it. The
//! servers are the tests' own, included as they are (tests/discovery/gce_server.rs: Compute
//! API and metadata server; tests/discovery/azure_server.rs: ARM and IMDS); their metadata
//! answers describe the calling machine, found by its source address.
//!
//! ```text
//! cloud_api_server gce|azure IP:PORT FIXTURE
//! ```
//!
//! FIXTURE is a JSON file saying what the cloud holds, read again whenever its content
//! changes (checked every 100 ms; write a new file and rename it over the old one):
//!
//! - gce: `{"instances": [{"name", "zone", "status", "ip", "labels": {KEY: VALUE}}],
//!   "migs": [{"scope": "zones/ZONE", "name", "target-size", "members": [[ZONE, NAME,
//!   CURRENT_ACTION]]}]}`
//! - azure: `{"capacity": N, "vms": [{"index", "state", "ip"}]}` (the scale set `etcd` of
//!   resource group `etcd-rg`, VMs named `etcd_INDEX`; `ip` may be null: no network interface)
//!
//! Prints `listening on http://IP:PORT` once it answers; each fixture loaded or refused is
//! reported on stderr (a refused one leaves the last good one in place). A test tool: cargo
//! builds examples only when asked (`cargo build --example cloud_api_server`, or `cargo
//! test`), never into the release binary or the packages.

#[path = "../tests/discovery/azure_server.rs"]
mod azure_server;
#[path = "../tests/discovery/gce_server.rs"]
mod gce_server;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct GceFixture {
    #[serde(default)]
    instances: Vec<GceInstance>,
    #[serde(default)]
    migs: Vec<GceMig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GceInstance {
    name: String,
    zone: String,
    status: String,
    ip: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct GceMig {
    scope: String,
    name: String,
    target_size: u32,
    members: Vec<(String, String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AzureFixture {
    capacity: u64,
    vms: Vec<AzureVm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AzureVm {
    index: u32,
    state: String,
    ip: Option<String>,
}

enum Server {
    Gce(gce_server::GceServer),
    Azure(azure_server::AzureServer),
}

impl Server {
    fn url(&self) -> &str {
        match self {
            Server::Gce(s) => &s.url,
            Server::Azure(s) => &s.url,
        }
    }

    /// Replaces what the cloud holds with the fixture `text`, in one step.
    fn load(&self, text: &str) -> Result<(), serde_json::Error> {
        match self {
            Server::Gce(s) => {
                let f: GceFixture = serde_json::from_str(text)?;
                let mut w = s.world.lock().unwrap();
                // Ids as GceServer::add_instance gives them: stable while the order is.
                w.instances = (0u64..)
                    .zip(f.instances)
                    .map(|(n, i)| gce_server::Inst {
                        name: i.name,
                        id: 5_000_000_000_000_000_000 + n,
                        zone: i.zone,
                        status: i.status,
                        ip: i.ip,
                        labels: i.labels,
                    })
                    .collect();
                w.migs = f
                    .migs
                    .into_iter()
                    .map(|m| gce_server::Mig {
                        scope: m.scope,
                        name: m.name,
                        target_size: m.target_size,
                        paginated: true,
                        members: m.members,
                    })
                    .collect();
            }
            Server::Azure(s) => {
                let f: AzureFixture = serde_json::from_str(text)?;
                // The server's VMs hold `&'static str`: a few bytes per fixture change.
                let leak = |t: String| -> &'static str { Box::leak(t.into_boxed_str()) };
                let vms = f
                    .vms
                    .into_iter()
                    .map(|v| azure_server::Vm {
                        index: v.index,
                        state: leak(v.state),
                        ip: v.ip.map(leak),
                    })
                    .collect();
                s.update(|b| {
                    b.vms = vms;
                    b.capacity = f.capacity;
                });
            }
        }
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, kind, addr, fixture] = &args[..] else {
        eprintln!("usage: cloud_api_server gce|azure IP:PORT FIXTURE");
        std::process::exit(2);
    };
    let server = match kind.as_str() {
        "gce" => gce_server::GceServer::start_on(addr).await.map(Server::Gce),
        "azure" => azure_server::AzureServer::start_on(addr, azure_server::Behaviour::default())
            .await
            .map(Server::Azure),
        other => {
            eprintln!("cloud_api_server: unknown cloud {other:?} (gce or azure)");
            std::process::exit(2);
        }
    };
    let server = server.unwrap_or_else(|e| {
        eprintln!("cloud_api_server: cannot listen on {addr}: {e}");
        std::process::exit(1);
    });
    let mut last = String::new();
    let mut first = true;
    loop {
        match std::fs::read_to_string(fixture) {
            Ok(text) if text != last => {
                match server.load(&text) {
                    Ok(()) => eprintln!("cloud_api_server: loaded {fixture}"),
                    Err(e) if first => {
                        eprintln!("cloud_api_server: {fixture}: {e}");
                        std::process::exit(1);
                    }
                    Err(e) => {
                        eprintln!("cloud_api_server: {fixture} refused, keeping the last: {e}")
                    }
                }
                last = text;
            }
            Ok(_) => {}
            Err(e) if first => {
                eprintln!("cloud_api_server: {fixture}: {e}");
                std::process::exit(1);
            }
            Err(e) => eprintln!("cloud_api_server: {fixture}: {e}"),
        }
        if first {
            println!("listening on {}", server.url());
            first = false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
