//! `pullpilot pin SERVICE [DIGEST] [--compose]` and `unpin SERVICE [--compose]`: hold a
//! service at a digest in state, and optionally in its compose file (or the `.env` variable
//! its image line uses). The file is edited first, so a refused edit changes nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::cli::{PinArgs, UnpinArgs};
use crate::commands::Invocation;
use crate::compose_edit::{self, ImageValue};
use crate::engine::discover::{self, Discovered};
use crate::engine::update::Refresh;
use crate::engine::{Session, Tools};
use crate::error::{Failure, Outcome};
use crate::files;
use crate::labels;
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
    output::text(&format!(
        "Pinned {} at {}; `pullpilot unpin {}` resumes updates.\n",
        c.display_name(),
        digest.short(),
        args.service
    ));
    if let Some(file) = edited {
        output::text(&format!("Wrote the digest into {}.\n", file.display()));
        return refresh(&session, &store, &c);
    }
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
    match was {
        Some(pin) => output::text(&format!(
            "Unpinned {} (was held at {}); updates resume.\n",
            c.display_name(),
            pin.digest.short()
        )),
        None => output::text(&format!("{} was not pinned.\n", c.display_name())),
    }
    if let Some(file) = edited {
        output::text(&format!("Removed the digest from {}.\n", file.display()));
        return refresh(&session, &store, &c);
    }
    Ok(Outcome::Ok)
}

/// The image line changed, so compose's model of the service did: compose recreates it now
/// (same image, gated) instead of at the operator's next `docker compose up -d`.
fn refresh(session: &Session<'_>, store: &Store, c: &Discovered) -> Result<Outcome> {
    match session.executor(store, false).refresh_after_edit(c) {
        Ok(Refresh::Recreated) => {
            output::text(&format!(
                "Compose recreated {} on the same image, so `docker compose up -d` has nothing \
                 left to do.\n",
                c.display_name()
            ));
            Ok(Outcome::Ok)
        }
        Ok(Refresh::Left(why)) => {
            output::text(&format!(
                "The next `docker compose up -d` will recreate {} on the same image (a restart), \
                 because its compose file changed; pullpilot did not do it now: {why}.\n",
                c.display_name()
            ));
            Ok(Outcome::Ok)
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
    let labels = &c.labels;
    let (Some(service), Some(files)) = (
        c.service.as_deref(),
        labels.get(labels::COMPOSE_CONFIG_FILES),
    ) else {
        return Err(Failure::usage(format!(
            "{} is not part of a compose project, so --compose has no file to edit",
            c.name
        )));
    };
    // The last file that sets the image wins, as in compose's merge.
    for file in files
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .rev()
    {
        let path = PathBuf::from(file);
        let text = fs::read_to_string(&path)
            .with_context(|| format!("reading the compose file {}", path.display()))?;
        let found = match compose_edit::find_image(&text, service) {
            Ok(found) => found,
            Err(compose_edit::EditError::FlowStyle(_) | compose_edit::EditError::NoServices)
                if files.contains(',') =>
            {
                continue;
            }
            Err(compose_edit::EditError::NoService(_) | compose_edit::EditError::NoImage(_)) => {
                continue;
            }
            Err(e) => {
                return Err(Failure::usage(format!(
                    "cannot edit {}: {e}",
                    path.display()
                )));
            }
        };
        return match found {
            ImageValue::Line { index, .. } => {
                write_in_place(&path, &compose_edit::set_image_line(&text, index, digest))?;
                Ok(path)
            }
            ImageValue::Variable(var) => {
                let dir = labels.get(labels::COMPOSE_WORKING_DIR).map_or_else(
                    || path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                    PathBuf::from,
                );
                let dotenv = dir.join(".env");
                let env_text = fs::read_to_string(&dotenv).unwrap_or_default();
                let new = compose_edit::set_dotenv_var(&env_text, &var, digest).map_err(|e| {
                    Failure::usage(format!("cannot edit {}: {e}", dotenv.display()))
                })?;
                write_in_place(&dotenv, &new)?;
                Ok(dotenv)
            }
        };
    }
    Err(Failure::usage(format!(
        "no `image:` line for service {service:?} in {files}; edit it by hand"
    )))
}

/// Replaces a compose or `.env` file atomically (same owner and mode, see
/// [`files::replace_file`]), refusing read-only files.
fn write_in_place(path: &Path, text: &str) -> Result<()> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.permissions().readonly() {
        return Err(Failure::usage(format!(
            "{} is read-only, so the pin was not written to it and nothing was changed; make it \
             writable, or pin without --compose",
            path.display()
        )));
    }
    files::replace_file(path, text.as_bytes())
}
