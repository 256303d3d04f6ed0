//! `pullpilot listen`.

use anyhow::Result;

use crate::cli::ListenArgs;
use crate::commands::Invocation;
use crate::error::Outcome;

pub fn run(_inv: &Invocation, _args: &ListenArgs) -> Result<Outcome> {
    anyhow::bail!("listen is not built yet")
}
