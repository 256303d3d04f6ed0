//! `pullpilot pause [SERVICE…] [--for D | --until T]`, `resume [SERVICE…]` and
//! `approve SERVICE [DIGEST|TAG] [--now]`: the operator's hold on updates, recorded in state
//! and read by the decision (see `decide::ready`).

use std::time::SystemTime;

use anyhow::Result;

use crate::cli::{ApproveArgs, PauseArgs, ResumeArgs};
use crate::commands::Invocation;
use crate::docker::Docker;
use crate::engine::{self, PassRequest, discover};
use crate::error::{Failure, Outcome};
use crate::output;
use crate::reference::Digest;
use crate::state::{Store, record};
use crate::time::zone;
use crate::values::{DURATION_FORM, parse_duration};

pub(super) fn pause(inv: &Invocation, args: &PauseArgs) -> Result<Outcome> {
    let settings = &inv.settings;
    let now = SystemTime::now();
    let until = match (&args.duration, &args.until) {
        (Some(d), _) => {
            let d = parse_duration(d).filter(|d| !d.is_zero()).ok_or_else(|| {
                Failure::usage(format!(
                    "--for {d:?} is not valid: expected {DURATION_FORM}, more than 0"
                ))
            })?;
            Some(
                now.checked_add(d)
                    .ok_or_else(|| Failure::usage("--for is too long"))?,
            )
        }
        (None, Some(t)) => Some(parse_until(t, &settings.timezone, now)?),
        (None, None) => None,
    };
    let keys = keys_of(inv, &args.services)?;
    let (store, mut state) = Store::open(&settings.data_dir, settings.wait)?;
    let until_text = until.map_or_else(
        || "until `pullpilot resume`".to_string(),
        |u| format!("until {}", zone::format(&settings.timezone, u).human),
    );
    if keys.is_empty() {
        record::pause(&mut state, None, until, now);
        store.save(&state)?;
        output::text(&format!(
            "Paused every update {until_text}; passes still check, soak and notify.\n"
        ));
        return Ok(Outcome::Ok);
    }
    for (key, name) in &keys {
        record::pause(&mut state, Some(key), until, now);
        output::text(&format!("Paused {name} {until_text}.\n"));
    }
    store.save(&state)?;
    Ok(Outcome::Ok)
}

pub(super) fn resume(inv: &Invocation, args: &ResumeArgs) -> Result<Outcome> {
    let settings = &inv.settings;
    let keys = keys_of(inv, &args.services)?;
    let (store, mut state) = Store::open(&settings.data_dir, settings.wait)?;
    if keys.is_empty() {
        let was = record::resume(&mut state, None);
        store.save(&state)?;
        output::text(if was.is_some() {
            "Resumed: updates may start again.\n"
        } else {
            "Updates were not paused as a whole.\n"
        });
        let still: Vec<&str> = state
            .containers
            .iter()
            .filter(|(_, s)| s.pause.as_ref().is_some_and(|p| p.holds(SystemTime::now())))
            .map(|(k, _)| k.as_str())
            .collect();
        if !still.is_empty() {
            output::text(&format!(
                "Still paused on their own: {}; `pullpilot resume SERVICE` lifts those.\n",
                still.join(", ")
            ));
        }
        return Ok(Outcome::Ok);
    }
    for (key, name) in &keys {
        match record::resume(&mut state, Some(key)) {
            Some(_) => output::text(&format!("Resumed {name}.\n")),
            None => output::text(&format!("{name} was not paused.\n")),
        }
    }
    store.save(&state)?;
    if state
        .pause_all
        .as_ref()
        .is_some_and(|p| p.holds(SystemTime::now()))
    {
        output::text(
            "Every update is still paused; `pullpilot resume` without a service lifts that.\n",
        );
    }
    Ok(Outcome::Ok)
}

pub(super) fn approve(inv: &Invocation, args: &ApproveArgs) -> Result<Outcome> {
    let settings = &inv.settings;
    let docker = Docker::connect(settings.docker_host.as_deref())?;
    let c = discover::select_one(inv.discover(&docker)?.1, &args.service)?;
    let (store, mut state) = Store::open(&settings.data_dir, settings.wait)?;
    let candidate = state
        .containers
        .get(&c.observed.key)
        .and_then(|s| s.candidate.clone());
    let digest = match (&args.what, &candidate) {
        (Some(text), _) if text.starts_with("sha256:") => {
            Digest::parse(text).map_err(|e| Failure::usage(e.to_string()))?
        }
        (Some(tag), Some(cand)) if cand.tag.as_deref() == Some(tag) => cand.digest.clone(),
        (Some(tag), _) => {
            return Err(Failure::usage(format!(
                "{} has no candidate with the tag {tag}; `pullpilot plan {}` shows what waits",
                c.display_name(),
                args.service
            )));
        }
        (None, Some(cand)) => cand.digest.clone(),
        (None, None) => {
            return Err(Failure::usage(format!(
                "nothing waits for approval for {}; `pullpilot plan {}` shows its decision",
                c.display_name(),
                args.service
            )));
        }
    };
    record::approve(&mut state, &c.observed.key, &digest, SystemTime::now());
    store.save(&state)?;
    drop(store);
    output::text(&format!(
        "Approved {} for {}; {}\n",
        digest.short(),
        c.display_name(),
        if args.now {
            "rolling it out now (soak, pause and window still apply)."
        } else {
            "the next pass rolls it out (soak, pause and window still apply)."
        }
    ));
    if args.now {
        return engine::apply(
            inv,
            &PassRequest {
                services: vec![args.service.clone()],
            },
            false,
        );
    }
    Ok(Outcome::Ok)
}

/// State keys and display names of the named services (none: empty).
fn keys_of(inv: &Invocation, services: &[String]) -> Result<Vec<(String, String)>> {
    if services.is_empty() {
        return Ok(Vec::new());
    }
    let docker = Docker::connect(inv.settings.docker_host.as_deref())?;
    let all = inv.discover(&docker)?.1;
    Ok(discover::select(all, services)?
        .into_iter()
        .map(|c| (c.observed.key.clone(), c.display_name().to_string()))
        .collect())
}

/// `--until`: RFC 3339, or `YYYY-MM-DD HH:MM[:SS]` on the wall clock of `zone`; in the future.
fn parse_until(text: &str, zone: &jiff::tz::TimeZone, now: SystemTime) -> Result<SystemTime> {
    let bad = || {
        Failure::usage(format!(
            "--until {text:?} is not a time: give RFC 3339 (2026-12-24T06:00:00Z) or \
             \"YYYY-MM-DD HH:MM\" in PP_TIMEZONE ({})",
            zone::name(zone)
        ))
    };
    let at = if let Ok(ts) = text.trim().parse::<jiff::Timestamp>() {
        ts
    } else {
        let civil: jiff::civil::DateTime =
            text.trim().replace(' ', "T").parse().map_err(|_| bad())?;
        zone.to_ambiguous_zoned(civil)
            .compatible()
            .map_err(|_| bad())?
            .timestamp()
    };
    let at = SystemTime::from(at);
    if at <= now {
        return Err(Failure::usage(format!("--until {text:?} is in the past")));
    }
    Ok(at)
}
