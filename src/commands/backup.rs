//! `etcdadm backup`: the edge of `crate::backup`. Prints the local snapshot and, with an
//! upload, the object. Restore one with `etcdadm init --snapshot FILE` (or `s3://BUCKET/PREFIX/`).

use crate::config::Config;
use crate::outln;
use anyhow::Result;
use std::path::PathBuf;

pub async fn run(requested: Config, dir: Option<PathBuf>, keep: Option<usize>) -> Result<()> {
    let state = super::member_state(&requested)?;
    let done = crate::backup::run(&requested, &state, dir, keep).await?;
    outln!("{}", done.snapshot.display())?;
    if let Some(object) = done.object {
        outln!("{object}")?;
    }
    Ok(())
}
