//! etcdadm: creates, grows, shrinks and restores TLS etcd clusters under systemd.
//!
//! Where things are: `commands/` holds one module per verb (init, join, reset, ...),
//! `phases` the steps they share, `cluster` the etcd API, `release` the etcd download,
//! `pki` the certificates, `service` the systemd files, `config` the settings.

pub mod aws_api;
pub mod aws_credentials;
pub mod bootstrap;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod digest;
pub mod discovery;
pub mod dns;
pub mod error_chain;
pub mod fsutil;
pub mod member;
pub mod metadata;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod phases;
pub mod pki;
pub mod release;
pub mod retry;
pub mod s3;
pub mod service;
pub mod snapshot;
pub mod state;
