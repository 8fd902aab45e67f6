use crate::config::Config;
use crate::outln;
use crate::release::Release;
use anyhow::Result;

pub async fn run(c: Config) -> Result<()> {
    let (path, _) = Release::from_config(&c).ensure_cached().await?;
    outln!("{}", path.display())?;
    Ok(())
}
