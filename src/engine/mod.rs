//! One pass, as a library: heal what an earlier run left in flight, discover, check, decide,
//! announce, and update in order. `apply`, `listen` and `rollback` all come through here.
//!
//! - [`session`]: what a pass works with ([`Session`]: settings, runtime, registry, notifier,
//!   clock), and [`Tools`], the real ones;
//! - `pass`: the pass itself ([`pass()`] → [`PassReport`]) and the read-only [`plan()`];
//! - [`scope`] and [`discover`]: which containers a pass looks at, with their labels;
//! - [`check`]: registry checks and decisions; [`order`]: the update order;
//! - [`update`]: one container's journaled update; [`heal`]: finishing or undoing one;
//! - [`announce`]: the notifications; [`report`]: the text and JSON a pass prints;
//! - [`rollback`]: `pullpilot rollback`'s partial pass.
//!
//! Must not: parse the command line, decide exit codes' numbers, or talk to containers except
//! through [`crate::runtime::Runtime`] ([`Tools`] only connects).

pub mod announce;
pub mod changes;
pub mod check;
pub mod discover;
pub mod heal;
pub mod order;
mod pass;
pub mod prefetch;
pub mod report;
pub mod rollback;
pub mod scope;
pub mod session;
pub mod update;
pub mod versions;

#[cfg(test)]
mod pass_tests;
#[cfg(test)]
mod tests;

pub use pass::{PassReport, PassRequest, PlanReport, Summary, pass, plan};
pub use session::{Invocation, Session, Tools};

use anyhow::Result;

use crate::error::Outcome as RunOutcome;

/// `apply` as the command line and `listen` run it: a dry run shows the plan; otherwise one
/// pass over `request.services`, printed as a table (or JSON).
pub fn apply(inv: &Invocation, request: &PassRequest, json: bool) -> Result<RunOutcome> {
    if inv.settings.dry_run {
        log::info!("Dry run: showing the plan; nothing is pulled, recreated or recorded.");
        return show_plan(inv, &request.services, json);
    }
    let tools = Tools::open(inv, true)?;
    let report = pass(&tools.session(inv), request)?;
    report::print_pass(&report, json)?;
    if let Some(e) = report.save_error {
        return Err(e);
    }
    Ok(if report.summary.failed > 0 {
        RunOutcome::SomeFailed
    } else {
        RunOutcome::Ok
    })
}

/// `plan`: what `apply` would do now, printed.
pub fn show_plan(inv: &Invocation, services: &[String], json: bool) -> Result<RunOutcome> {
    let tools = Tools::open(inv, false)?;
    let plan = plan(&tools.session(inv), services)?;
    report::print_plan(&plan, json)?;
    Ok(if plan.evaluated.iter().any(|e| e.decision.is_failure()) {
        RunOutcome::SomeFailed
    } else {
        RunOutcome::Ok
    })
}
