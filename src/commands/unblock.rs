//! `pullpilot unblock SERVICE|DIGEST`: forget "failed the health gate" marks, so the digest
//! may be rolled out again.

use anyhow::Result;

use crate::cli::UnblockArgs;
use crate::commands::Invocation;
use crate::commands::pin::Said;
use crate::docker::Docker;
use crate::engine::discover;
use crate::error::{Failure, Outcome};
use crate::reference::{Digest, ImageRef};
use crate::state::{Store, record};

pub(super) fn run(inv: &Invocation, args: &UnblockArgs) -> Result<Outcome> {
    let settings = &inv.settings;
    let (store, mut state) = Store::open(&settings.data_dir, settings.wait)?;
    let removed: Vec<(String, Digest)> = if let Ok(digest) = Digest::parse(&args.target) {
        let removed: Vec<(String, Digest)> = record::unblock_digest(&mut state, &digest)
            .into_iter()
            .map(|repository| (repository, digest.clone()))
            .collect();
        if removed.is_empty() {
            return Err(Failure::usage(format!(
                "{digest} is not blocked for any repository; `pullpilot status` lists blocked digests"
            )));
        }
        removed
    } else {
        let docker = Docker::connect(settings.docker_host.as_deref())?;
        let container = discover::select_one(inv.discover(&docker)?.1, &args.target)?;
        let repository = ImageRef::parse(&container.observed.config_image)
            .map_err(|e| Failure::usage(format!("{}: {e}", container.name)))?
            .name();
        record::unblock_repository(&mut state, &repository)
            .into_iter()
            .map(|d| (repository.clone(), d))
            .collect()
    };
    store.save(&state)?;
    let mut said = Said::new(args.json);
    if removed.is_empty() {
        said.line(format!("Nothing was blocked for {}.", args.target));
    }
    for (repository, digest) in &removed {
        said.line(format!(
            "Unblocked {} for {repository}; the next apply may roll it out.",
            digest.short()
        ));
    }
    said.finish(document(&removed))?;
    Ok(Outcome::Ok)
}

/// The fields of `unblock --json`: each repository and digest unblocked.
fn document(removed: &[(String, Digest)]) -> serde_json::Value {
    let unblocked: Vec<_> = removed
        .iter()
        .map(|(repository, digest)| serde_json::json!({"repository": repository, "digest": digest}))
        .collect();
    serde_json::json!({ "unblocked": unblocked })
}
