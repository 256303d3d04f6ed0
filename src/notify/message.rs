//! What every service says about an [`Event`]: a title, a plain-text body and the event's times
//! in the configured zone. Pure.

use jiff::tz::TimeZone;

use super::{Event, EventKind};
use crate::time::zone::{self, Formatted};

/// How loud a service should be, for priorities and colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Severity {
    Info,
    Warning,
    Error,
}

/// An event rendered once per `send`, shared by every target.
#[derive(Debug)]
pub(crate) struct Rendered<'a> {
    pub(crate) event: &'a Event,
    pub(crate) title: String,
    pub(crate) body: String,
    pub(crate) time: Formatted,
    pub(crate) rollout_at: Option<Formatted>,
    pub(crate) severity: Severity,
}

impl EventKind {
    /// The stable machine name used in webhook bodies and e-mail headers.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SoakEntered => "soak_entered",
            EventKind::UpdateAvailable => "update_available",
            EventKind::Updated => "updated",
            EventKind::RolledBack => "rolled_back",
            EventKind::Failed => "failed",
            EventKind::ActionNeeded => "action_needed",
            EventKind::Test => "test",
        }
    }

    pub(crate) fn severity(self) -> Severity {
        match self {
            EventKind::SoakEntered
            | EventKind::UpdateAvailable
            | EventKind::Updated
            | EventKind::Test => Severity::Info,
            EventKind::RolledBack | EventKind::ActionNeeded => Severity::Warning,
            EventKind::Failed => Severity::Error,
        }
    }
}

/// `project/service` for compose containers, else the container name.
fn subject(event: &Event) -> String {
    match (&event.project, &event.service) {
        (Some(project), Some(service)) => format!("{project}/{service}"),
        (None, Some(service)) => service.clone(),
        _ => event.container.clone(),
    }
}

/// The first 12 hex digits of a digest, without its algorithm.
pub(crate) fn short_digest(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.get(..12).unwrap_or(hex)
}

pub(crate) fn render<'a>(event: &'a Event, tz: &TimeZone) -> Rendered<'a> {
    let who = subject(event);
    let title = match event.kind {
        EventKind::SoakEntered => format!("pullpilot: new image for {who} is soaking"),
        EventKind::UpdateAvailable => format!("pullpilot: update available for {who}"),
        EventKind::Updated => format!("pullpilot: updated {who}"),
        EventKind::RolledBack => format!("pullpilot: rolled back {who}"),
        EventKind::Failed => format!("pullpilot: update failed for {who}"),
        EventKind::ActionNeeded => format!("pullpilot: action needed for {who}"),
        EventKind::Test => format!("pullpilot: test message from {who}"),
    };
    let time = zone::format(tz, event.at);
    let rollout_at = event.rollout_at.map(|t| zone::format(tz, t));

    let mut lines = vec![event.message.trim().to_string(), String::new()];
    // A test message is about no container: `container` names the host it was sent from.
    if event.kind != EventKind::Test {
        if who == event.container {
            lines.push(format!("Container: {}", event.container));
        } else {
            lines.push(format!("Container: {} ({who})", event.container));
        }
        lines.push(format!("Image: {}", event.image));
    }
    if let (Some(from), Some(to)) = (&event.from_tag, &event.to_tag) {
        lines.push(format!("Version: {from} → {to}"));
    }
    match (&event.from_digest, &event.to_digest) {
        (Some(from), Some(to)) => lines.push(format!(
            "Digest: {} → {}",
            short_digest(from),
            short_digest(to)
        )),
        (Some(from), None) => lines.push(format!("Digest: {}", short_digest(from))),
        (None, Some(to)) => lines.push(format!("New digest: {}", short_digest(to))),
        (None, None) => {}
    }
    if let Some(rollout) = &rollout_at {
        lines.push(format!("Rollout after: {}", rollout.human));
    }
    lines.push(format!("Time: {}", time.human));
    let body = lines.join("\n");

    Rendered {
        event,
        title,
        body,
        time,
        rollout_at,
        severity: event.kind.severity(),
    }
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::notify::tests::sample_event as event;

    #[test]
    fn titles_name_the_compose_service() {
        let cases = [
            (
                EventKind::SoakEntered,
                "pullpilot: new image for shop/web is soaking",
            ),
            (
                EventKind::UpdateAvailable,
                "pullpilot: update available for shop/web",
            ),
            (EventKind::Updated, "pullpilot: updated shop/web"),
            (EventKind::RolledBack, "pullpilot: rolled back shop/web"),
            (EventKind::Failed, "pullpilot: update failed for shop/web"),
            (
                EventKind::ActionNeeded,
                "pullpilot: action needed for shop/web",
            ),
        ];
        for (kind, want) in cases {
            assert_eq!(render(&event(kind), &TimeZone::UTC).title, want);
        }
        let mut plain = event(EventKind::Updated);
        plain.project = None;
        plain.service = None;
        assert_eq!(
            render(&plain, &TimeZone::UTC).title,
            "pullpilot: updated shop-web-1"
        );
    }

    #[test]
    fn body_has_message_image_short_digests_and_times() {
        let mut e = event(EventKind::SoakEntered);
        e.rollout_at = Some(e.at + Duration::from_secs(86_400));
        let r = render(&e, &TimeZone::UTC);
        assert_eq!(
            r.body,
            "Updated to the new image; healthy after 12s.\n\n\
             Container: shop-web-1 (shop/web)\n\
             Image: ghcr.io/acme/web:1.4\n\
             Digest: 0123456789ab → fedcba987654\n\
             Rollout after: 2025-01-02 00:00:00 UTC\n\
             Time: 2025-01-01 00:00:00 UTC"
        );
        assert_eq!(r.time.rfc3339, "2025-01-01T00:00:00Z");
        assert_eq!(r.severity, Severity::Info);
    }

    #[test]
    fn a_test_message_names_the_host_and_no_container() {
        let mut e = event(EventKind::Test);
        e.container = "host1".into();
        e.service = None;
        e.project = None;
        e.from_digest = None;
        e.to_digest = None;
        e.message = "This is a test message.".into();
        let r = render(&e, &TimeZone::UTC);
        assert_eq!(r.title, "pullpilot: test message from host1");
        assert_eq!(
            r.body,
            "This is a test message.\n\nTime: 2025-01-01 00:00:00 UTC"
        );
        assert_eq!(EventKind::Test.as_str(), "test");
        assert_eq!(r.severity, Severity::Info);
    }

    #[test]
    fn short_digest_and_truncate() {
        assert_eq!(short_digest("sha256:abc"), "abc");
        assert_eq!(short_digest("0123456789abcdef"), "0123456789ab");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
