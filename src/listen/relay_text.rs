//! Text from the relay on its way to the log: cut, escaped and throttled, so a hostile relay
//! can neither flood the log nor forge lines in it.

use std::time::{Duration, Instant};

/// The longest string from the relay a log line shows.
pub(super) const MAX_LOGGED_CHARS: usize = 256;
/// Log lines of one kind (pokes, unexpected frames) shown per [`LOG_WINDOW`]; the rest are
/// counted and the count is reported with the next line shown.
const LOG_BURST: u32 = 10;
const LOG_WINDOW: Duration = Duration::from_secs(60);

/// At most [`LOG_BURST`] lines per [`LOG_WINDOW`].
#[derive(Debug)]
pub(super) struct Throttle {
    start: Instant,
    shown: u32,
    hidden: u64,
}

impl Throttle {
    pub(super) fn new(now: Instant) -> Throttle {
        Throttle {
            start: now,
            shown: 0,
            hidden: 0,
        }
    }

    /// Whether a line may be logged at `now`; if so, how many were held back before it.
    pub(super) fn allow(&mut self, now: Instant) -> Option<u64> {
        if now.saturating_duration_since(self.start) >= LOG_WINDOW {
            self.start = now;
            self.shown = 0;
        }
        if self.shown >= LOG_BURST {
            self.hidden = self.hidden.saturating_add(1);
            return None;
        }
        self.shown += 1;
        Some(std::mem::take(&mut self.hidden))
    }
}

/// " (N more not logged)" after a throttled stretch, else nothing.
pub(super) fn held_back(hidden: u64, what: &str) -> String {
    if hidden == 0 {
        String::new()
    } else {
        format!("; {hidden} more {what} were not logged")
    }
}

/// `text` from the relay made safe for one log line: at most [`MAX_LOGGED_CHARS`] characters,
/// control and line-breaking characters escaped (`\n`, `\u{1b}`), cut ones marked with `…`.
pub(super) fn clean(text: &str) -> String {
    clean_to(text, MAX_LOGGED_CHARS)
}

pub(super) fn clean_to(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut len = 0;
    for c in text.chars() {
        let unsafe_char = c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        let piece: String = if unsafe_char {
            c.escape_default().collect()
        } else {
            c.to_string()
        };
        let n = piece.chars().count();
        if len + n > max.saturating_sub(1) {
            out.push('…');
            return out;
        }
        out.push_str(&piece);
        len += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_text_is_cut_and_escaped() {
        let forged = "ci\n2026-01-01T00:00:00Z ERROR forged line\r\u{1b}[31m\u{2028}";
        let shown = clean(forged);
        assert!(
            !shown.contains(['\n', '\r', '\u{1b}', '\u{2028}']),
            "{shown}"
        );
        assert!(
            shown.contains("\\n") && shown.contains("\\u{1b}"),
            "{shown}"
        );
        let long = clean(&"\n".repeat(100_000));
        assert!(long.chars().count() <= MAX_LOGGED_CHARS, "{}", long.len());
        assert!(long.ends_with('…'));
        let exact = "x".repeat(MAX_LOGGED_CHARS - 1);
        assert_eq!(clean(&exact), exact);
        assert_eq!(clean("plain reason"), "plain reason");
    }

    #[test]
    fn log_lines_are_throttled_per_window() {
        let t0 = Instant::now();
        let mut t = Throttle::new(t0);
        let shown = (0..1000).filter(|_| t.allow(t0).is_some()).count();
        assert_eq!(shown, LOG_BURST as usize);
        assert_eq!(t.allow(t0 + LOG_WINDOW), Some(1000 - u64::from(LOG_BURST)));
        assert_eq!(t.allow(t0 + LOG_WINDOW), Some(0));
    }
}
