//! Parsing of the small value languages shared by `PP_*` variables, container labels and
//! command-line flags: booleans and durations. Pure; every error names the accepted form.
//!
//! Every duration pullpilot accepts is at most [`MAX_DURATION`] (ten years), whichever way it
//! arrives, so adding one to the clock can never overflow.

use std::time::Duration;

/// The longest duration any setting, label or flag accepts: ten years (`10y`, as humantime
/// counts a year: 365.25 days). Longer is an invalid value, not "forever".
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 31_557_600);

/// Accepted spellings, for messages.
pub const BOOL_FORM: &str = "true or false (also yes/no, on/off, 1/0)";
pub const DURATION_FORM: &str = "a duration such as 90s, 10m, 24h, 1h30m or 2d, or a whole number \
     of seconds, up to 10 years";
/// For durations that must not be zero (timeouts).
pub const NONZERO_DURATION_FORM: &str =
    "a duration of at least 1s and at most 10 years, such as 90s or 5m";

/// `true/false/yes/no/on/off/1/0/y/n`, case-insensitive, surrounding space ignored.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Some(true),
        "0" | "false" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
}

/// A non-negative duration of at most [`MAX_DURATION`]: humantime syntax (`90s`, `1h30m`, `2d`)
/// or bare seconds (`300`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('-') {
        return None;
    }
    let parsed = if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>().ok().map(Duration::from_secs)
    } else {
        humantime::parse_duration(text).ok()
    };
    parsed.filter(|d| *d <= MAX_DURATION)
}

/// A duration for people, in its two largest units: `1d`, `23h 59m`, `1m 30s`, `45s`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let Some(first) = units.iter().position(|(size, _)| secs >= *size) else {
        return "0s".to_string();
    };
    let mut rest = secs;
    let mut parts = Vec::new();
    for (size, unit) in &units[first..(first + 2).min(units.len())] {
        let n = rest / size;
        rest %= size;
        if n > 0 {
            parts.push(format!("{n}{unit}"));
        }
    }
    parts.join(" ")
}

/// A duration for log lines, to the millisecond: `612ms`, `1s 500ms`, `20s`.
pub fn format_millis(d: Duration) -> String {
    let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    humantime::format_duration(Duration::from_millis(millis)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools() {
        for t in ["true", " TRUE ", "yes", "on", "1", "y"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "No", "off", "0", "n"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "enabled", "tru", "2"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations() {
        let cases = [
            ("0", 0),
            ("90", 90),
            ("90s", 90),
            ("10m", 600),
            ("1h30m", 5400),
            ("24h", 86400),
            ("2d", 172_800),
            (" 5s ", 5),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse_duration(text),
                Some(Duration::from_secs(secs)),
                "{text}"
            );
        }
        for bad in ["", "-5", "-5s", "soon", "5x", "1.5"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_stop_at_ten_years() {
        assert_eq!(parse_duration("10y"), Some(MAX_DURATION));
        assert_eq!(
            parse_duration("3652d"),
            Some(Duration::from_secs(3652 * 86_400))
        );
        assert_eq!(parse_duration("315576000"), Some(MAX_DURATION));
        for too_long in [
            "315576001",
            "10y 1s",
            "11y",
            "3653d",
            "18446744073709551615",
            "18446744073709551616",
            "300000000000y",
            "99999999999999999999999h",
        ] {
            assert_eq!(parse_duration(too_long), None, "{too_long}");
        }
        // The bound is far enough from the clock's limits that adding it cannot overflow.
        let now = std::time::SystemTime::now();
        assert!(now.checked_add(MAX_DURATION).is_some());
        assert!(
            std::time::Instant::now()
                .checked_add(MAX_DURATION)
                .is_some()
        );
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(format_duration(Duration::from_secs(0)), "0s");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        assert_eq!(format_duration(Duration::from_secs(86_399)), "23h 59m");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(format_duration(Duration::from_secs(90_000)), "1d 1h");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m 30s");
        assert_eq!(format_millis(Duration::from_micros(612_345)), "612ms");
        assert_eq!(format_millis(Duration::from_millis(1500)), "1s 500ms");
        assert_eq!(format_millis(Duration::from_secs(20)), "20s");
    }
}
