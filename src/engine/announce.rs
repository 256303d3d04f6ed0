//! Which notifications a pass sends, and the sentence each one says.
//!
//! Once-only rules: "entered soak" and "update available" (monitor-only or self) are sent once
//! per container and digest, remembered in state; "rolled back" is sent once per rollback (it is
//! an outcome, so it happens once); "updated", "failed" and "action needed" are sent each time
//! they happen.

use std::time::SystemTime;

use super::discover::Discovered;
use crate::decide::Decision;
use crate::engine::check::Evaluated;
use crate::engine::heal::Healed;
use crate::engine::update::UpdateOutcome;
use crate::labels::Changes;
use crate::notify::{Event, EventKind, Notifier};
use crate::reference::Digest;
use crate::state::{State, record};

/// Where announcements go: the configured [`Notifier`], or a recorder in tests.
pub trait Notify {
    fn send(&self, event: &Event);
}

impl Notify for Notifier {
    fn send(&self, event: &Event) {
        Notifier::send(self, event);
    }
}

/// Sends "entered soak" and "update available" for digests not announced before. Returns
/// whether state changed (the caller saves).
pub fn decisions(
    notifier: &dyn Notify,
    state: &mut State,
    evaluated: &[Evaluated],
    now: SystemTime,
) -> bool {
    let mut changed = false;
    for e in evaluated {
        let c = &e.container;
        changed |= held_back(notifier, state, e, now);
        changed |= approval_request(notifier, state, e, now);
        let to_tag = e.decision.to_tag();
        let (kind, digest, rollout_at, message) = match &e.decision {
            Decision::Soaking {
                digest,
                rollout_at,
                tag: Some(tag),
                ..
            } => (
                EventKind::SoakEntered,
                digest,
                Some(*rollout_at),
                format!(
                    "Version {tag} of {} was published; it rolls out after its soak window unless \
                     a newer version or image appears.",
                    c.display_name()
                ),
            ),
            Decision::Soaking {
                digest, rollout_at, ..
            } => (
                EventKind::SoakEntered,
                digest,
                Some(*rollout_at),
                format!(
                    "A new image for {} was published; it rolls out after its soak window unless \
                     the tag changes again.",
                    c.display_name()
                ),
            ),
            Decision::MonitorOnly { digest, tag } => (
                EventKind::UpdateAvailable,
                digest,
                None,
                format!(
                    "{} for {} is available; it is not applied because the container is \
                     monitor-only.",
                    tag.as_ref()
                        .map_or_else(|| "A new image".to_string(), |t| format!("Version {t}")),
                    c.display_name()
                ),
            ),
            Decision::CannotEdit {
                digest,
                tag,
                reason,
            } => (
                EventKind::UpdateAvailable,
                digest,
                None,
                format!(
                    "Version {tag} of {} is available, but pullpilot cannot edit its compose file \
                     ({reason}), so it is not applied; move the tag by hand.",
                    c.display_name()
                ),
            ),
            Decision::SelfUpdateAvailable { digest } => (
                EventKind::UpdateAvailable,
                digest,
                None,
                "A new image of pullpilot itself is available; pullpilot never replaces itself, \
                 so update it by hand."
                    .to_string(),
            ),
            _ => continue,
        };
        if !record::first_announcement(state, &c.observed.key, digest) {
            continue;
        }
        let mut sent = event(
            now,
            kind,
            c,
            c.observed.local_digests.first(),
            Some(digest),
            with_changes(message, e.changes.as_ref()),
            rollout_at,
        );
        set_tags(
            &mut sent,
            e.reference.as_ref().and_then(|r| r.tag()),
            to_tag,
        );
        notifier.send(&sent);
        changed = true;
    }
    changed
}

/// "A newer version exists that the track level keeps out", once per container and tag.
fn held_back(notifier: &dyn Notify, state: &mut State, e: &Evaluated, now: SystemTime) -> bool {
    let Some(held) = e.version.as_ref().and_then(|v| v.held_back.as_ref()) else {
        return false;
    };
    let c = &e.container;
    if !record::first_version_announcement(state, &c.observed.key, &held.tag) {
        return false;
    }
    let mut sent = event(
        now,
        EventKind::UpdateAvailable,
        c,
        c.observed.local_digests.first(),
        None,
        format!(
            "Version {} of {} is available; track={} keeps {}, so it is not applied (change \
             io.pullpilot.track to move there).",
            held.tag,
            c.display_name(),
            held.track,
            held.keeps
        ),
        None,
    );
    set_tags(
        &mut sent,
        e.reference.as_ref().and_then(|r| r.tag()),
        Some(&held.tag),
    );
    notifier.send(&sent);
    true
}

/// "Soaked, waiting for your approval: run …", once per container and digest.
fn approval_request(
    notifier: &dyn Notify,
    state: &mut State,
    e: &Evaluated,
    now: SystemTime,
) -> bool {
    let Decision::AwaitingApproval {
        digest,
        tag,
        command,
    } = &e.decision
    else {
        return false;
    };
    let c = &e.container;
    if !record::first_approval_request(state, &c.observed.key, digest) {
        return false;
    }
    let what = tag
        .as_ref()
        .map_or_else(|| "A new image".to_string(), |t| format!("Version {t}"));
    let mut sent = event(
        now,
        EventKind::UpdateAvailable,
        c,
        c.observed.local_digests.first(),
        Some(digest),
        with_changes(
            format!(
                "{what} for {} has soaked and waits for your approval. To roll it out, run: \
                 {command}",
                c.display_name()
            ),
            e.changes.as_ref(),
        ),
        None,
    );
    set_tags(
        &mut sent,
        e.reference.as_ref().and_then(|r| r.tag()),
        tag.as_deref(),
    );
    notifier.send(&sent);
    true
}

/// `message` with a line saying what changed, when the images said.
fn with_changes(message: String, changes: Option<&Changes>) -> String {
    match changes {
        Some(c) => format!("{message}\nWhat changed: {c}."),
        None => message,
    }
}

/// Marks an event as a version move from `from` to `to` (both needed).
fn set_tags(event: &mut Event, from: Option<&str>, to: Option<&str>) {
    if let (Some(from), Some(to)) = (from, to) {
        event.from_tag = Some(from.to_string());
        event.to_tag = Some(to.to_string());
    }
}

/// Announces what happened to one container's update; `tags` (from, to) for a version move.
pub fn outcome(
    notifier: &dyn Notify,
    c: &Discovered,
    outcome: &UpdateOutcome,
    tags: Option<(&str, &str)>,
    changes: Option<&Changes>,
    now: SystemTime,
) {
    let name = c.display_name();
    let from = c.observed.local_digests.first();
    let (kind, to, message) = match outcome {
        UpdateOutcome::Unchanged { .. } => return,
        UpdateOutcome::Updated { to, .. } => (
            EventKind::Updated,
            Some(to),
            if c.running {
                format!("{name} was updated and passed its health check.")
            } else {
                format!("{name} was updated; it was stopped, so it was left stopped.")
            },
        ),
        UpdateOutcome::RolledBack { digest, reason } => (
            EventKind::RolledBack,
            Some(digest),
            format!(
                "{name} failed its health check on the new image ({reason}) and runs the previous \
                 image again; the new digest will not be tried again."
            ),
        ),
        UpdateOutcome::Failed { reason } => (
            EventKind::Failed,
            None,
            format!("Updating {name} failed: {reason}."),
        ),
        UpdateOutcome::ActionNeeded { reason } => (
            EventKind::ActionNeeded,
            None,
            format!("{name} may be down and needs a person: {reason}."),
        ),
    };
    let message = match outcome {
        UpdateOutcome::Updated { .. } | UpdateOutcome::RolledBack { .. } => {
            with_changes(message, changes)
        }
        _ => message,
    };
    let mut sent = event(now, kind, c, from, to, message, None);
    set_tags(&mut sent, tags.map(|t| t.0), tags.map(|t| t.1));
    notifier.send(&sent);
}

/// Announces what heal did, where it matters to a person.
pub fn healed(notifier: &dyn Notify, h: &Healed, now: SystemTime) {
    let (kind, message) = match &h.outcome {
        UpdateOutcome::ActionNeeded { reason } => (
            EventKind::ActionNeeded,
            format!("{} may be down and needs a person: {reason}.", h.container),
        ),
        UpdateOutcome::RolledBack { reason, .. } => (
            EventKind::RolledBack,
            format!(
                "An interrupted update of {} failed its health check ({reason}); the previous \
                 image runs again.",
                h.container
            ),
        ),
        _ => return,
    };
    notifier.send(&Event {
        kind,
        container: h.container.clone(),
        service: None,
        project: None,
        image: String::new(),
        from_digest: None,
        to_digest: None,
        from_tag: None,
        to_tag: None,
        message,
        at: now,
        rollout_at: None,
    });
}

fn event(
    now: SystemTime,
    kind: EventKind,
    c: &Discovered,
    from: Option<&Digest>,
    to: Option<&Digest>,
    message: String,
    rollout_at: Option<SystemTime>,
) -> Event {
    Event {
        kind,
        container: c.name.clone(),
        service: c.service.clone(),
        project: c.project.clone(),
        image: c.observed.config_image.clone(),
        from_digest: from.map(ToString::to_string),
        to_digest: to.map(ToString::to_string),
        from_tag: None,
        to_tag: None,
        message,
        at: now,
        rollout_at,
    }
}
