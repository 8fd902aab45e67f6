//! `etcdadm alarm list|disarm`: the edge of `maintenance::on_member`.

use crate::cli::Output;
use crate::config::Config;
use crate::maintenance::{alarm, on_member};
use crate::outln;
use anyhow::Result;

pub async fn list(requested: Config, output: Output) -> Result<()> {
    let alarms = on_member::alarms(&super::member_state(&requested)?).await?;
    print(&alarms, output, "no alarm")
}

pub async fn disarm(requested: Config, output: Output) -> Result<()> {
    let disarmed = on_member::disarm(&super::member_state(&requested)?).await?;
    print(&disarmed, output, "no alarm to disarm")
}

fn print(alarms: &[alarm::Alarm], output: Output, none: &str) -> Result<()> {
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(alarms)?)?,
        Output::Table if alarms.is_empty() => outln!("{none}")?,
        Output::Table => {
            for a in alarms {
                outln!("{} on member {} ({})", a.alarm, a.name, a.member)?;
            }
        }
    }
    Ok(())
}
