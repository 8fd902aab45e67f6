use crate::config::Config;
use crate::release::Release;
use anyhow::Result;

pub async fn run(c: Config) -> Result<()> {
    let path = Release::from_config(&c).ensure_cached().await?;
    println!("{}", path.display());
    Ok(())
}
