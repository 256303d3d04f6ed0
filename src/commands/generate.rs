//! `pullpilot generate man|completions DIR` (hidden; for packaging). Placeholder.

use anyhow::Result;

use crate::cli::GenerateArgs;
use crate::error::Outcome;

pub(super) fn run(_args: &GenerateArgs) -> Result<Outcome> {
    anyhow::bail!("`pullpilot generate` is not available yet")
}
