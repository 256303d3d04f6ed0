//! `pullpilot relay`: the relay protocol v1 as a self-hostable server.

use anyhow::Result;

use crate::cli::RelayArgs;
use crate::error::Outcome;

pub fn run(_args: &RelayArgs) -> Result<Outcome> {
    anyhow::bail!("relay is not built yet")
}
