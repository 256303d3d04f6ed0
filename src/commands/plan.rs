//! `pullpilot plan`: what `apply` would do now, and why. Read-only: no pull, no container
//! change, no state write, no soak clock started.

use anyhow::Result;

use crate::cli::PlanArgs;
use crate::commands::Invocation;
use crate::engine;
use crate::error::Outcome;

pub(super) fn run(inv: &Invocation, args: &PlanArgs) -> Result<Outcome> {
    engine::show_plan(inv, &args.services, args.json)
}
