//! `pullpilot apply`: one full pass ([`crate::engine::pass`]), printed. A dry run shows the
//! plan instead.

use anyhow::Result;

use crate::cli::ApplyArgs;
use crate::commands::Invocation;
use crate::engine::{self, PassRequest};
use crate::error::Outcome;

pub(super) fn run(inv: &Invocation, args: &ApplyArgs) -> Result<Outcome> {
    let request = PassRequest {
        services: args.services.clone(),
    };
    engine::apply(inv, &request, args.json)
}
