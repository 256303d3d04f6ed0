//! `pullpilot status`: what pullpilot knows, from its state and Docker only — no registry is
//! asked, so it works when every registry is down.

use std::time::SystemTime;

use anyhow::Result;
use serde::Serialize;

use crate::cli::StatusArgs;
use crate::commands::Invocation;
use crate::docker::Docker;
use crate::engine::discover::{self, Discovered};
use crate::error::Outcome;
use crate::output;
use crate::reference::{Digest, ImageRef};
use crate::state::{
    self, Approval, Blocked, Candidate, HistoryEntry, JournalEntry, Pause, Pin, State,
};
use crate::values::format_duration;

#[derive(Debug, Serialize)]
struct StatusRow<'a> {
    container: &'a str,
    service: Option<&'a str>,
    project: Option<&'a str>,
    image: &'a str,
    running: bool,
    current_digest: Option<&'a Digest>,
    soak: Option<Soak<'a>>,
    pin: Option<&'a Pin>,
    /// `pullpilot pause`, of this container or of all, while it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    paused: Option<&'a Pause>,
    /// `pullpilot approve`: the approved digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<&'a Approval>,
    /// What the candidate changes, from the OCI labels a pass read.
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<crate::labels::Changes>,
    blocked: Vec<BlockedDigest<'a>>,
    last_update: Option<&'a HistoryEntry>,
    history: &'a [HistoryEntry],
    in_flight: Option<&'a JournalEntry>,
}

#[derive(Debug, Serialize)]
struct Soak<'a> {
    #[serde(flatten)]
    candidate: &'a Candidate,
    #[serde(serialize_with = "rfc3339")]
    rollout_at: SystemTime,
}

#[derive(Debug, Serialize)]
struct BlockedDigest<'a> {
    digest: &'a Digest,
    #[serde(flatten)]
    why: &'a Blocked,
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string())
}

pub(super) fn run(inv: &Invocation, args: &StatusArgs) -> Result<Outcome> {
    let settings = &inv.settings;
    let docker = Docker::connect(settings.docker_host.as_deref())?;
    let (scope, all) = inv.discover(&docker)?;
    let containers = discover::select(all, &args.services)?;
    let state = state::load_read_only(&settings.data_dir)?.state;
    let rows: Vec<StatusRow<'_>> = containers
        .iter()
        .map(|c| row(c, &state, settings.soak))
        .collect();
    let interrupted = !state.journal.is_empty();
    if args.json {
        output::json(&output::document(serde_json::json!({
            "scope": scope.label(),
            "containers": rows,
            "journal": state.journal,
        })))?;
    } else {
        output::text(&render(&scope.label(), &rows, &state.journal));
    }
    Ok(if interrupted {
        Outcome::SomeFailed
    } else {
        Outcome::Ok
    })
}

fn row<'a>(
    c: &'a Discovered,
    state: &'a State,
    default_soak: std::time::Duration,
) -> StatusRow<'a> {
    let saved = state.containers.get(&c.observed.key);
    let repository = ImageRef::parse(&c.observed.config_image)
        .ok()
        .map(|r| r.name());
    let blocked = repository
        .and_then(|r| state.blocked.get(&r))
        .map(|digests| {
            digests
                .iter()
                .map(|(digest, why)| BlockedDigest { digest, why })
                .collect()
        })
        .unwrap_or_default();
    let soak_window = c.observed.labels.policy.soak.unwrap_or(default_soak);
    let history = saved.map_or(&[][..], |s| s.history.as_slice());
    StatusRow {
        container: &c.name,
        service: c.service.as_deref(),
        project: c.project.as_deref(),
        image: &c.observed.config_image,
        running: c.running,
        current_digest: c.observed.local_digests.first(),
        soak: saved
            .and_then(|s| s.candidate.as_ref())
            .map(|candidate| Soak {
                candidate,
                rollout_at: crate::decide::rollout_at(candidate.first_seen, soak_window),
            }),
        pin: saved.and_then(|s| s.pin.as_ref()),
        paused: saved
            .and_then(|s| s.pause.as_ref())
            .or(state.pause_all.as_ref())
            .filter(|p| p.holds(SystemTime::now())),
        approval: saved.and_then(|s| s.approval.as_ref()),
        changes: saved
            .and_then(|s| s.candidate.as_ref())
            .and_then(|cand| state.image_labels.get(&cand.digest))
            .and_then(|new| crate::labels::what_changed(&c.oci, new)),
        blocked,
        last_update: history.iter().rev().find(|h| h.outcome != "rolled-back"),
        history,
        in_flight: state.journal.iter().find(|j| j.name == c.name),
    }
}

fn render(scope: &str, rows: &[StatusRow<'_>], journal: &[JournalEntry]) -> String {
    use std::fmt::Write as _;
    let now = SystemTime::now();
    let mut out = format!("scope: {scope}\n");
    for r in rows {
        let _ = writeln!(
            out,
            "\n{} ({}){}",
            r.service.unwrap_or(r.container),
            r.image,
            if r.running { "" } else { " — stopped" }
        );
        let short =
            |d: Option<&Digest>| d.map_or_else(|| "-".to_string(), |d| d.short().to_string());
        let _ = writeln!(out, "  running    {}", short(r.current_digest));
        if let Some(soak) = &r.soak {
            let left = soak.rollout_at.duration_since(now).unwrap_or_default();
            let _ = writeln!(
                out,
                "  soaking    {}{} since {}, rollout at {} ({} left)",
                soak.candidate.digest.short(),
                soak.candidate
                    .tag
                    .as_ref()
                    .map_or_else(String::new, |t| format!(" (version {t})")),
                humantime::format_rfc3339_seconds(soak.candidate.first_seen),
                humantime::format_rfc3339_seconds(soak.rollout_at),
                format_duration(left)
            );
        }
        if let Some(pin) = r.pin {
            let _ = writeln!(
                out,
                "  pinned     {} since {} ({})",
                pin.digest.short(),
                humantime::format_rfc3339_seconds(pin.since),
                pin.reason
            );
        }
        if let Some(p) = r.paused {
            let _ = writeln!(
                out,
                "  paused     since {}{}; `pullpilot resume` lifts it",
                humantime::format_rfc3339_seconds(p.since),
                p.until.map_or_else(String::new, |u| format!(
                    " until {}",
                    humantime::format_rfc3339_seconds(u)
                ))
            );
        }
        if let Some(changes) = &r.changes {
            let _ = writeln!(out, "  changes    {changes}");
        }
        if let Some(a) = r.approval {
            let _ = writeln!(
                out,
                "  approved   {} at {}",
                a.digest.short(),
                humantime::format_rfc3339_seconds(a.at)
            );
        }
        for b in &r.blocked {
            let _ = writeln!(
                out,
                "  blocked    {} since {}: {}",
                b.digest.short(),
                humantime::format_rfc3339_seconds(b.why.at),
                b.why.reason
            );
        }
        for h in r.history.iter().rev().take(5) {
            let tags = match (&h.previous_tag, &h.tag) {
                (Some(from), Some(to)) => format!(", tag {from} → {to}"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {:<10} {} at {} (was {}{tags})",
                h.outcome,
                h.digest.short(),
                humantime::format_rfc3339_seconds(h.at),
                short(h.previous_digest.as_ref())
            );
        }
    }
    if rows.is_empty() {
        out.push_str("No containers in scope.\n");
    }
    for j in journal {
        let _ = writeln!(
            out,
            "\nINTERRUPTED: the update of {} to {} stopped at step {:?}; the next `pullpilot apply` finishes or undoes it.",
            j.name,
            j.digest.short(),
            j.phase
        );
    }
    out
}
