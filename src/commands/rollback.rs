//! `pullpilot rollback SERVICE [--to DIGEST]`: [`crate::engine::rollback`], printed.

use anyhow::Result;

use crate::cli::RollbackArgs;
use crate::commands::Invocation;
use crate::engine::Tools;
use crate::engine::rollback::rollback;
use crate::error::Outcome as RunOutcome;
use crate::output;

pub(super) fn run(inv: &Invocation, args: &RollbackArgs) -> Result<RunOutcome> {
    let tools = Tools::open(inv, false)?;
    let report = rollback(&tools.session(inv), &args.service, args.to.as_deref())?;
    let c = &report.container;
    let outcome = &report.outcome;
    let ok = report.pinned;
    if args.json {
        output::json(&output::document(serde_json::json!({
            "container": c.name,
            "service": c.service,
            "to": report.to,
            "from": report.from,
            "result": outcome,
            "pinned": ok,
        })))?;
    } else if ok {
        output::text(&format!(
            "{} runs {} again and is pinned there{}; `pullpilot unpin {}` resumes updates.\n",
            c.display_name(),
            report.to.short(),
            report
                .from
                .map(|d| format!(" ({} is blocked)", d.short()))
                .unwrap_or_default(),
            args.service
        ));
    } else {
        output::text(&format!(
            "Rolling {} back failed ({}): {}.\n",
            c.display_name(),
            outcome.word(),
            outcome.describe()
        ));
    }
    Ok(if ok {
        RunOutcome::Ok
    } else {
        RunOutcome::SomeFailed
    })
}
