//! etcdadm: creates, grows, shrinks and restores TLS etcd clusters under systemd.
//!
//! Module map, top-down: a module uses only modules of its own group or of the groups below
//! it (tests/architecture.rs fails on any import cycle).
//! - edges: `commands` one thin module per verb (parse, call one operation, print);
//!   `bootstrap` the first-boot agent that decides between forming, joining and waiting.
//! - operations: `membership` form, join, promote, remove, reset (init and join run as
//!   tables of phases); `maintenance` defragmentation and alarms of a formed cluster;
//!   `backup` checked snapshots, kept and uploaded; `upgrade` an in-place upgrade with
//!   rollback; `certificates` the CA ahead of init, certificate expiry and renewal;
//!   `overview` the member and its cluster as they are now (info, status); `phases` the
//!   steps init and join share; `snapshot` restoring a data directory; `state` the state
//!   file (the member's settings and progress); `leadership` hands leadership over before a
//!   planned stop.
//! - etcd on this machine: `cluster` the etcd v3 API; `pki` the CA and certificates
//!   (`pair_files` writes a certificate and its key as one unit);
//!   `service` the unit, environment files and systemctl; `release` the etcd download and
//!   install; `member` the local member's name, URLs and paths.
//! - settings and their sources: `config` the effective settings (defaults, files,
//!   drop-ins, flags, validation); `discovery` the intended
//!   peers (static list, DNS SRV, AWS Auto Scaling); `metadata` cloud instance metadata;
//!   `s3` snapshots in S3-compatible stores; `metrics` the bootstrap outcome for
//!   node_exporter.
//! - leaves: `retry` backoff with a
//!   deadline; `notify` sd_notify status and readiness; `net` addresses and URLs; `resolver`
//!   host names resolved without libc; `aws_credentials` the one AWS credential rule;
//!   `aws_api` SigV4 signing and AWS error documents; `bounded` HTTP answers within a
//!   time and size bound; `blocking` child processes run off the async workers; `digest` SHA-256;
//!   `fsutil` crash-safe writes; `error_chain` error text with every cause; `stdout` the
//!   commands' output (a closed stdout ends etcdadm quietly); `cli` the command line and
//!   the one declaration of every setting (`settings`), the checked value types
//!   (`values`: names, hosts, paths, URLs, `s3://` places) and what a value written into a
//!   unit, environment file or script may hold (`safe_chars`); it uses nothing else in
//!   the crate.

pub mod aws_api;
pub mod aws_credentials;
pub mod backup;
pub mod blocking;
pub mod bootstrap;
pub mod bounded;
pub mod certificates;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod digest;
pub mod discovery;
pub mod error_chain;
pub mod fsutil;
pub mod leadership;
pub mod maintenance;
pub mod member;
pub mod membership;
pub mod metadata;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod overview;
pub mod pair_files;
pub mod phases;
pub mod pki;
pub mod release;
pub mod resolver;
pub mod retry;
pub mod s3;
pub mod service;
pub mod snapshot;
pub mod state;
pub mod stdout;
pub mod upgrade;
