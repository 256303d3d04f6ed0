//! Parsing of the small value languages shared by `PP_*` variables and container labels:
//! booleans and durations. Pure; every error names the accepted form.

use std::time::Duration;

/// Accepted spellings, for messages.
pub const BOOL_FORM: &str = "true or false (also yes/no, on/off, 1/0)";
pub const DURATION_FORM: &str =
    "a duration such as 90s, 10m, 24h, 1h30m or 2d, or a whole number of seconds";

/// `true/false/yes/no/on/off/1/0/y/n`, case-insensitive, surrounding space ignored.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Some(true),
        "0" | "false" | "no" | "off" | "n" => Some(false),
        _ => None,
    }
}

/// A non-negative duration: humantime syntax (`90s`, `1h30m`, `2d`) or bare seconds (`300`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('-') {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<u64>().ok().map(Duration::from_secs);
    }
    humantime::parse_duration(text).ok()
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
