use crate::config::Config;
use crate::out;
use anyhow::Result;

pub fn run(c: &Config) -> Result<()> {
    out!("{}", serde_yaml_ng::to_string(c)?)?;
    Ok(())
}
