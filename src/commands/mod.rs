//! One module per verb, the edge of the crate: only the binary calls `run`. Each is thin:
//! it turns the parsed request into one operation of the layer below (`membership`,
//! `maintenance`, `backup`, `upgrade`, `certificates`, `overview`, `bootstrap`, `release`)
//! and prints its outcome (tests/architecture.rs fails when a verb reaches past them).

mod alarm;
mod backup;
mod certs;
mod config_view;
mod defrag;
mod discover;
mod download;
pub mod generate;
mod info;
mod init;
mod join;
mod recover;
mod reset;
mod status;
mod upgrade;

use crate::cli::{
    AlarmCommand, CaCommand, CertsCommand, Cli, Command, ConfigCommand, InitPhaseCommand,
    JoinPhaseCommand,
};
use crate::config::{self, Config, ConfigSources, DEFAULT_CONFIG_FILE};
use crate::outln;
use anyhow::Result;
use serde::Serialize;

pub async fn run(cli: Cli) -> Result<()> {
    let file = cli.config.clone();
    let sources = |flags: &dyn erased::Layer| ConfigSources {
        file_explicit: file.is_some(),
        file: file.clone().unwrap_or_else(|| DEFAULT_CONFIG_FILE.into()),
        flags: flags.layer(),
        metadata: Default::default(),
    };
    let load = |flags: &dyn erased::Layer| -> Result<Config> { Ok(config::load(&sources(flags))?) };
    match cli.command {
        Command::Init(a) => {
            let (opts, phase) = match a.phase {
                Some(InitPhaseCommand::Phase { phase, args }) => (args, Some(phase)),
                None => (a.args, None),
            };
            let req = crate::membership::form::Request {
                snapshot: opts.snapshot,
                skip_hash_check: opts.skip_hash_check,
                phase,
                defer_member: false,
                release: None,
                release_last: false,
            };
            init::run(load(&erased::Both { a: &opts.flags, b: &opts.s3 })?, req).await
        }
        Command::Join(a) => {
            let (endpoints, retry, flags, phase) = match a.phase {
                Some(JoinPhaseCommand::Phase { phase, endpoints, retry, flags }) => {
                    (endpoints, retry, flags, Some(phase))
                }
                None => (a.args.endpoints, a.args.retry, a.args.flags, None),
            };
            let c = load(&flags)?;
            let endpoints = match endpoints {
                Some(e) => join::parse_endpoints(&e, c.client_port)?,
                None => Vec::new(),
            };
            join::run(
                c,
                crate::membership::join::Request {
                    endpoints,
                    retry,
                    phase,
                    defer_member: false,
                    cluster_checked: false,
                    release: None,
                },
            )
            .await
        }
        Command::Bootstrap(a) => crate::bootstrap::run(sources(&a.flags)).await,
        Command::Discover(a) => {
            let req = crate::bootstrap::preview::Request {
                once: a.once,
                deadline_seconds: a.deadline_seconds,
            };
            discover::run(sources(&a.flags), req, a.output).await
        }
        Command::Reset(a) => reset::run(load(&a.state)?, &a).await,
        Command::Recover(a) => recover::run(load(&a)?, a.yes).await,
        Command::Download(a) => download::run(load(&a.release)?).await,
        Command::Upgrade(a) => {
            let req = crate::upgrade::Request {
                version: a.release.version.clone(),
                release_sha256: a.release.release_sha256.clone(),
            };
            upgrade::run(load(&a)?, req, a.yes).await
        }
        Command::Backup { dir, keep, flags } => backup::run(load(&flags)?, dir, keep).await,
        Command::Status(a) => status::run(load(&a.state)?, a.output).await,
        Command::Defrag(a) => defrag::run(load(&a.state)?, a.force, a.this_member, a.output).await,
        Command::Alarm(AlarmCommand::List(a)) => alarm::list(load(&a.state)?, a.output).await,
        Command::Alarm(AlarmCommand::Disarm(a)) => alarm::disarm(load(&a.state)?, a.output).await,
        Command::Info(a) => info::run(load(&a.state)?, a.output).await,
        Command::Config(ConfigCommand::View(f)) => config_view::run(&load(&f)?),
        Command::Certs(CertsCommand::Check { output, state }) => {
            certs::check(load(&state)?, output)
        }
        Command::Certs(CertsCommand::Renew { force, cert_validity_days, state }) => {
            certs::renew(load(&state)?, force, cert_validity_days).await
        }
        Command::Ca(CaCommand::Create(f)) => {
            let pki = crate::certificates::create_ca(&load(&f)?)?;
            outln!("{}\n{}", pki.ca_cert.display(), pki.ca_key.display())?;
            Ok(())
        }
        Command::Generate(g) => generate::run(g),
        Command::Version => {
            outln!(
                "etcdadm {} (installs etcd {} by default)",
                env!("CARGO_PKG_VERSION"),
                config::DEFAULT_ETCD_VERSION
            )?;
            Ok(())
        }
    }
}

mod erased {
    /// Any flag struct that can become a configuration layer.
    pub trait Layer {
        fn layer(&self) -> serde_yaml_ng::Mapping;
    }
    impl<T: super::Serialize> Layer for T {
        fn layer(&self) -> serde_yaml_ng::Mapping {
            crate::config::flags_layer(self)
        }
    }

    /// Two flag structs as one layer.
    #[derive(super::Serialize)]
    pub struct Both<'a, A: super::Serialize, B: super::Serialize> {
        #[serde(flatten)]
        pub a: &'a A,
        #[serde(flatten)]
        pub b: &'a B,
    }
}

/// The state of the member etcdadm set up on this machine, or an error saying there is none.
fn member_state(requested: &crate::config::Config) -> anyhow::Result<crate::state::State> {
    use anyhow::Context;
    crate::state::State::load(&requested.state_file)?.with_context(|| {
        format!(
            "no member set up by etcdadm on this machine ({} does not exist)",
            requested.state_file.display()
        )
    })
}

/// Asks whether to go ahead with `action` unless `--yes` was given; without a terminal to
/// ask on, refuses.
fn confirm(yes: bool, action: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("{action} needs confirmation and stdin is not a terminal: pass --yes; nothing was changed");
    }
    eprint!("{action}: proceed? [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        anyhow::bail!("{action} cancelled; nothing was changed")
    }
}
