//! The pre- and post-update hooks, both run by the updater: the pre-update hook may refuse an
//! update (nothing is touched then); the post-update hook is told the outcome and cannot
//! change it.

use anyhow::Result;

use super::{Executor, UpdateOutcome};
use crate::engine::discover::Discovered;
use crate::hooks::{self, HookFacts};
use crate::reference::Digest;

impl Executor<'_> {
    /// Runs the container's `io.pullpilot.pre-update` hook (or `PP_PRE_UPDATE_HOOK`); an error
    /// is the hook's refusal.
    pub(super) fn pre_update_hook(
        &self,
        c: &Discovered,
        previous: Option<&Digest>,
        digest: &Digest,
    ) -> Result<()> {
        let Some(command) = c
            .observed
            .labels
            .policy
            .pre_update
            .clone()
            .or_else(|| self.knobs.pre_update_hook.clone())
        else {
            return Ok(());
        };
        let facts = hook_facts(c, previous, digest, None);
        hooks::run("pre-update", &command, &facts, self.knobs.hook_timeout)
            .map_err(|why| anyhow::anyhow!("the pre-update hook refused the update: {why}"))
    }

    /// Runs `PP_POST_UPDATE_HOOK` with the outcome; its failure is logged, nothing more.
    pub fn post_update_hook(&self, c: &Discovered, digest: &Digest, outcome: &UpdateOutcome) {
        let Some(command) = &self.knobs.post_update_hook else {
            return;
        };
        let facts = hook_facts(
            c,
            c.observed.local_digests.first(),
            digest,
            Some(outcome.kebab()),
        );
        if let Err(why) = hooks::run("post-update", command, &facts, self.knobs.hook_timeout) {
            log::warn!("The post-update hook for {} failed: {why}.", c.name);
        }
    }
}

/// The facts a hook is given about `c`'s update.
pub fn hook_facts<'a>(
    c: &'a Discovered,
    old: Option<&'a Digest>,
    new: &'a Digest,
    outcome: Option<&'a str>,
) -> HookFacts<'a> {
    HookFacts {
        service: c.service.as_deref().unwrap_or(&c.name),
        project: c.project.as_deref().unwrap_or_default(),
        container: &c.name,
        image: &c.observed.config_image,
        old_digest: old.map_or("", Digest::as_str),
        new_digest: new.as_str(),
        outcome,
    }
}
