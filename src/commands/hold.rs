//! `pullpilot pause [SERVICE…] [--for D | --until T]`, `resume [SERVICE…]` and
//! `approve SERVICE [DIGEST|TAG] [--now]`: the operator's hold on updates, recorded in state
//! and read by the decision (see `decide::ready`).

use std::time::SystemTime;

use anyhow::Result;

use super::pin::Said;
use crate::cli::{ApproveArgs, PauseArgs, ResumeArgs};
use crate::commands::Invocation;
use crate::docker::Docker;
use crate::engine::{self, PassRequest, discover};
use crate::error::{Failure, Outcome};
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
    let mut said = Said::new(args.json);
    if keys.is_empty() {
        record::pause(&mut state, None, until, now);
        store.save(&state)?;
        said.line(format!(
            "Paused every update {until_text}; passes still check, soak and notify."
        ));
    } else {
        for (key, name) in &keys {
            record::pause(&mut state, Some(key), until, now);
            said.line(format!("Paused {name} {until_text}."));
        }
        store.save(&state)?;
    }
    let names: Vec<&str> = keys.iter().map(|(_, n)| n.as_str()).collect();
    said.finish(serde_json::json!({
        "paused": if keys.is_empty() { serde_json::json!("all") } else { serde_json::json!(names) },
        "until": until.map(|u| humantime::format_rfc3339_seconds(u).to_string()),
    }))?;
    Ok(Outcome::Ok)
}

pub(super) fn resume(inv: &Invocation, args: &ResumeArgs) -> Result<Outcome> {
    let settings = &inv.settings;
    let keys = keys_of(inv, &args.services)?;
    let (store, mut state) = Store::open(&settings.data_dir, settings.wait)?;
    let now = SystemTime::now();
    let mut said = Said::new(args.json);
    let mut resumed: Vec<String> = Vec::new();
    if keys.is_empty() {
        let was = record::resume(&mut state, None);
        store.save(&state)?;
        if was.is_some() {
            resumed.push("all".into());
            said.line("Resumed: updates may start again.".into());
        } else {
            said.line("Updates were not paused as a whole.".into());
        }
        let still: Vec<&str> = state
            .containers
            .iter()
            .filter(|(_, s)| s.pause.as_ref().is_some_and(|p| p.holds(now)))
            .map(|(k, _)| k.as_str())
            .collect();
        if !still.is_empty() {
            said.line(format!(
                "Still paused on their own: {}; `pullpilot resume SERVICE` lifts those.",
                still.join(", ")
            ));
        }
    } else {
        for (key, name) in &keys {
            if record::resume(&mut state, Some(key)).is_some() {
                resumed.push(name.clone());
                said.line(format!("Resumed {name}."));
            } else {
                said.line(format!("{name} was not paused."));
            }
        }
        store.save(&state)?;
        if state.pause_all.as_ref().is_some_and(|p| p.holds(now)) {
            said.line(
                "Every update is still paused; `pullpilot resume` without a service lifts that."
                    .into(),
            );
        }
    }
    said.finish(serde_json::json!({ "resumed": resumed }))?;
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
    let line = format!(
        "Approved {} for {}; {}",
        digest.short(),
        c.display_name(),
        if args.now {
            "rolling it out now (soak, pause and window still apply)."
        } else {
            "the next pass rolls it out (soak, pause and window still apply)."
        }
    );
    if args.now {
        // With --json the pass's document is the answer; the approval is logged.
        if args.json {
            log::info!("{line}");
        } else {
            output_line(&line);
        }
        return engine::apply(
            inv,
            &PassRequest {
                services: vec![args.service.clone()],
            },
            args.json,
        );
    }
    let mut said = Said::new(args.json);
    said.line(line);
    said.finish(serde_json::json!({
        "service": args.service,
        "approved": digest.to_string(),
    }))?;
    Ok(Outcome::Ok)
}

fn output_line(line: &str) {
    crate::output::text(&format!("{line}\n"));
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
