use crate::config::Config;
use anyhow::Result;

pub fn run(c: &Config) -> Result<()> {
    print!("{}", serde_yaml_ng::to_string(c)?);
    Ok(())
}
