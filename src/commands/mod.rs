//! One module per verb; each is a thin sequence of phases.

mod config_view;
mod download;
mod existing;
mod info;
mod init;
mod join;
mod reset;

use crate::cli::{flags_layer, Cli, Command, ConfigCommand};
use crate::config::{self, Config, ConfigSources, DEFAULT_CONFIG_FILE};
use anyhow::Result;
use serde::Serialize;

pub async fn run(cli: Cli) -> Result<()> {
    let file = cli.config.clone();
    let load = |flags: &dyn erased::Layer| -> Result<Config> {
        let sources = ConfigSources {
            file_explicit: file.is_some(),
            file: file.clone().unwrap_or_else(|| DEFAULT_CONFIG_FILE.into()),
            flags: flags.layer(),
        };
        Ok(config::load(&sources)?)
    };
    match cli.command {
        Command::Init(a) => init::run(load(&a.flags)?, a.snapshot.as_deref(), a.skip_hash_check).await,
        Command::Join(a) => join::run(load(&a.flags)?, &a.endpoints).await,
        Command::Reset(a) => reset::run(load(&a.state)?, &a).await,
        Command::Download(a) => download::run(load(&a.release)?).await,
        Command::Info(a) => info::run(load(&a.state)?, a.output).await,
        Command::Config(ConfigCommand::View(f)) => config_view::run(&load(&f)?),
        Command::Version => {
            println!("etcdadm {} (installs etcd {} by default)", env!("CARGO_PKG_VERSION"), config::DEFAULT_ETCD_VERSION);
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
            super::flags_layer(self)
        }
    }
}
