//! `pullpilot plan`: what `apply` would do now, and why. Read-only: no pull, no container
//! change, no state write, no soak clock started.

use anyhow::Result;

use crate::cli::PlanArgs;
use crate::commands::{Invocation, SettingsFile};
use crate::engine;
use crate::error::Outcome;
use crate::output;

pub(super) fn run(inv: &Invocation, args: &PlanArgs, file: &SettingsFile) -> Result<Outcome> {
    let outcome = engine::show_plan(inv, &args.services, args.json)?;
    if !args.json {
        // Last, so the table stays where scripts and eyes look for it; an operator comparing
        // `sudo pullpilot plan` with the timer's run sees where the settings came from.
        output::text(&format!("{}\n", file.describe()));
    }
    Ok(outcome)
}
