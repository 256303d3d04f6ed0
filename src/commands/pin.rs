//! `pullpilot pin SERVICE [DIGEST] [--compose]` and `unpin SERVICE [--compose]`: hold a
//! service at a digest in state, and optionally in its compose file (or the `.env` variable
//! its image line uses). The file is edited first, so a refused edit changes nothing.

use std::fs;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::cli::{PinArgs, UnpinArgs};
use crate::commands::Invocation;
use crate::compose_edit::{self, Spot};
use crate::engine::discover::{self, Discovered};
use crate::engine::update::Refresh;
use crate::engine::{Session, Tools};
use crate::error::{Failure, Outcome};
use crate::output;
use crate::reference::Digest;
use crate::state::{Store, record};

pub(super) fn pin(inv: &Invocation, args: &PinArgs) -> Result<Outcome> {
    let settings = &inv.settings;
    let tools = Tools::open(inv, false)?;
    let session = tools.session(inv);
    let (store, mut state) = Store::open(&settings.data_dir, settings.wait)?;
    let c = discover::select_one(session.discover()?.1, &args.service)?;
    let digest = match &args.digest {
        Some(text) => Digest::parse(text).map_err(|e| Failure::usage(format!("{e}")))?,
        None => c.observed.local_digests.first().cloned().ok_or_else(|| {
            Failure::usage(format!(
                "{} runs an image with no registry digest (built or loaded locally?), so there \
                 is nothing to pin; name one: pullpilot pin {} sha256:…",
                c.name, args.service
            ))
        })?,
    };
    if !c.observed.local_digests.contains(&digest) {
        log::warn!(
            "{} does not run {} now; the pin holds it where it is. Use `pullpilot rollback {} --to {digest}` to move it there.",
            c.name,
            digest.short(),
            args.service
        );
    }
    let edited = if args.compose {
        Some(edit_compose(&c, Some(&digest))?)
    } else {
        None
    };
    record::pin(
        &mut state,
        &c.observed.key,
        &digest,
        "pinned by `pullpilot pin`",
        SystemTime::now(),
    );
    store.save(&state)?;
    let mut said = Said::new(args.json);
    said.line(format!(
        "Pinned {} at {}; `pullpilot unpin {}` resumes updates.",
        c.display_name(),
        digest.short(),
        args.service
    ));
    if let Some(file) = &edited {
        said.line(format!("Wrote the digest into {}.", file.display()));
    }
    let refreshed = match &edited {
        Some(_) => Some(refresh(&session, &store, &c, &mut said)?),
        None => None,
    };
    said.finish(serde_json::json!({
        "container": c.name,
        "service": c.service,
        "pinned": digest,
        "compose_file": edited,
        "recreated": refreshed,
    }))?;
    Ok(Outcome::Ok)
}

pub(super) fn unpin(inv: &Invocation, args: &UnpinArgs) -> Result<Outcome> {
    let settings = &inv.settings;
    let tools = Tools::open(inv, false)?;
    let session = tools.session(inv);
    let (store, mut state) = Store::open(&settings.data_dir, settings.wait)?;
    let c = discover::select_one(session.discover()?.1, &args.service)?;
    let edited = if args.compose {
        Some(edit_compose(&c, None)?)
    } else {
        None
    };
    let was = record::unpin(&mut state, &c.observed.key);
    store.save(&state)?;
    let mut said = Said::new(args.json);
    match &was {
        Some(pin) => said.line(format!(
            "Unpinned {} (was held at {}); updates resume.",
            c.display_name(),
            pin.digest.short()
        )),
        None => said.line(format!("{} was not pinned.", c.display_name())),
    }
    if let Some(file) = &edited {
        said.line(format!("Removed the digest from {}.", file.display()));
    }
    let refreshed = match &edited {
        Some(_) => Some(refresh(&session, &store, &c, &mut said)?),
        None => None,
    };
    said.finish(serde_json::json!({
        "container": c.name,
        "service": c.service,
        "was_pinned": was.map(|pin| pin.digest),
        "compose_file": edited,
        "recreated": refreshed,
    }))?;
    Ok(Outcome::Ok)
}

/// What a command says: text lines as they come, or with `--json` one document at the end
/// whose `message` holds the same sentences.
pub(super) struct Said {
    json: bool,
    lines: Vec<String>,
}

impl Said {
    pub(super) fn new(json: bool) -> Self {
        Said {
            json,
            lines: Vec::new(),
        }
    }

    pub(super) fn line(&mut self, line: String) {
        if !self.json {
            output::text(&format!("{line}\n"));
        }
        self.lines.push(line);
    }

    /// With `--json`, prints `fields` with `message` and `schema_version` added.
    pub(super) fn finish(self, fields: serde_json::Value) -> Result<()> {
        if !self.json {
            return Ok(());
        }
        let mut doc = output::document(fields);
        doc["message"] = self.lines.join(" ").into();
        output::json(&doc)
    }
}

/// The image line changed, so compose's model of the service did: compose recreates it now
/// (same image, gated) instead of at the operator's next `docker compose up -d`. Whether it
/// did.
fn refresh(session: &Session<'_>, store: &Store, c: &Discovered, said: &mut Said) -> Result<bool> {
    match session.executor(store, false).refresh_after_edit(c) {
        Ok(Refresh::Recreated) => {
            said.line(format!(
                "Compose recreated {} on the same image, so `docker compose up -d` has nothing \
                 left to do.",
                c.display_name()
            ));
            Ok(true)
        }
        Ok(Refresh::Left(why)) => {
            said.line(format!(
                "The next `docker compose up -d` will recreate {} on the same image (a restart), \
                 because its compose file changed; pullpilot did not do it now: {why}.",
                c.display_name()
            ));
            Ok(false)
        }
        Err(e) => Err(e.context(format!(
            "the file was edited, but recreating {} with compose failed",
            c.display_name()
        ))),
    }
}

/// Sets (or with `None` removes) the digest on `c`'s image in its compose files or `.env`.
/// Returns the file written.
fn edit_compose(c: &Discovered, digest: Option<&Digest>) -> Result<PathBuf> {
    let refuse = |why: String| Failure::usage(format!("{}: {why}", c.name));
    let at = compose_edit::locate(&c.labels, false).map_err(refuse)?;
    let text =
        fs::read_to_string(&at.file).with_context(|| format!("reading {}", at.file.display()))?;
    let new = match &at.spot {
        Spot::Line(index) => compose_edit::set_image_line(&text, *index, digest),
        Spot::Variable(var) => compose_edit::set_dotenv_var(&text, var, digest)
            .map_err(|e| Failure::usage(format!("cannot edit {}: {e}", at.file.display())))?,
    };
    compose_edit::write_in_place(&at.file, &new).map_err(|e| {
        Failure::usage(format!(
            "{e:#}; the pin was not written and nothing was changed (or pin without --compose)"
        ))
    })?;
    Ok(at.file)
}
