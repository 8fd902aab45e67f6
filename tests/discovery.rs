//! Peer discovery against real servers on loopback: dnsmasq for the `dns` provider, the moto
//! AWS emulator (run as a server) for `aws-asg`. Both come from scripts/install-deps.sh; when
//! one is missing the tests fail and say so, they do not skip.
//!
//! `gce-mig` and `gce-labels` run against discovery/gce_server.rs, a loopback server of these
//! tests that answers as the Compute API and the GCE metadata server do.
//! `azure-vmss` runs against discovery/azure_server.rs (ARM and IMDS). Both servers also run
//! standalone on a fleet bridge (examples/cloud_api_server.rs, fleet scenarios 81-83).
//!
//! Every test name contains "discovery", so `cargo test discovery` runs these with the unit
//! tests of `src/discovery/`.

#[path = "discovery/asg_fleet_discovery.rs"]
mod asg_fleet_discovery;
#[path = "discovery/aws_asg_discovery.rs"]
mod aws_asg_discovery;
#[path = "discovery/aws_tags_discovery.rs"]
mod aws_tags_discovery;
#[path = "discovery/azure_server.rs"]
mod azure_server;
#[path = "discovery/azure_vmss_discovery.rs"]
mod azure_vmss_discovery;
#[path = "discovery/dns_discovery.rs"]
mod dns_discovery;
#[path = "discovery/gce_discovery.rs"]
mod gce_discovery;
#[path = "discovery/gce_server.rs"]
mod gce_server;
#[path = "support/moto.rs"]
mod moto;
#[path = "discovery/sigv4_verify.rs"]
mod sigv4_verify;
#[path = "discovery/support.rs"]
mod support;
#[path = "discovery/throttle_proxy.rs"]
mod throttle_proxy;
