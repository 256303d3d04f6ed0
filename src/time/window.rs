//! Maintenance windows (`PP_WINDOW`, `io.pullpilot.window`): weekly wall-clock ranges in
//! `PP_TIMEZONE`, such as `Sat 02:00-05:00, Sun 02:00-05:00` or `Mon-Fri 01:00-03:00`. A range
//! whose end is not after its start crosses midnight (`Fri 23:00-02:00` ends Saturday 02:00).
//! Wall-clock time: a window is open while the local clock reads a time inside it, so on the
//! days the clocks change it is an hour shorter or longer, never shifted.

use std::fmt;
use std::time::SystemTime;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;

/// UTC, for contexts that need a `&'static TimeZone` (tests, defaults).
pub static UTC: TimeZone = TimeZone::UTC;

/// The accepted form, for error messages.
pub const WINDOW_FORM: &str = "weekly windows such as \"Sat 02:00-05:00, Sun 02:00-05:00\", \
     \"Mon-Fri 01:00-03:00\" or \"daily 01:00-04:00\" (times in PP_TIMEZONE; an end not after the \
     start crosses midnight)";

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One weekly range.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Range {
    /// The days it starts on, Monday first.
    days: [bool; 7],
    /// Minutes after midnight.
    start: u16,
    /// Minutes after midnight, 1 to 1440; not after `start` means the next day.
    end: u16,
}

/// A set of weekly windows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Windows {
    ranges: Vec<Range>,
    text: String,
}

impl fmt::Display for Windows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Windows {
    /// Parses a comma-separated list of `DAYS HH:MM-HH:MM`.
    pub fn parse(text: &str) -> Result<Windows, String> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(format!("an empty window in {text:?}"));
            }
            ranges.push(parse_range(part).map_err(|e| format!("{part:?}: {e}"))?);
        }
        Ok(Windows {
            ranges,
            text: text.trim().to_string(),
        })
    }

    /// Whether `now` falls inside a window, on the wall clock of `zone`.
    pub fn is_open(&self, now: SystemTime, zone: &TimeZone) -> bool {
        let Ok(ts) = Timestamp::try_from(now) else {
            return false;
        };
        let local = zone.to_datetime(ts);
        let minute =
            u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0);
        let today = day_index(local.weekday());
        let yesterday = (today + 6) % 7;
        self.ranges.iter().any(|r| {
            if r.end > r.start {
                r.days[today] && minute >= r.start && minute < r.end
            } else {
                (r.days[today] && minute >= r.start) || (r.days[yesterday] && minute < r.end)
            }
        })
    }

    /// When the next window opens after `now` (`now` itself when one is open), on the wall
    /// clock of `zone`. A start that does not exist that day (the clocks jump over it) opens
    /// at the first moment after the gap.
    pub fn next_open(&self, now: SystemTime, zone: &TimeZone) -> Option<SystemTime> {
        if self.is_open(now, zone) {
            return Some(now);
        }
        let ts = Timestamp::try_from(now).ok()?;
        let today = zone.to_datetime(ts).date();
        let mut best: Option<Timestamp> = None;
        for offset in 0..8 {
            let Some(date) = add_days(today, offset) else {
                continue;
            };
            let index = day_index(date.weekday());
            for r in &self.ranges {
                if !r.days[index] {
                    continue;
                }
                let at: DateTime = date.at(
                    i8::try_from(r.start / 60).unwrap_or(0),
                    i8::try_from(r.start % 60).unwrap_or(0),
                    0,
                    0,
                );
                let Ok(zoned) = zone.to_ambiguous_zoned(at).compatible() else {
                    continue;
                };
                let when = zoned.timestamp();
                if when > ts && best.is_none_or(|b| when < b) {
                    best = Some(when);
                }
            }
        }
        best.map(SystemTime::from)
    }
}

fn add_days(date: Date, days: i64) -> Option<Date> {
    date.checked_add(jiff::Span::new().days(days)).ok()
}

fn day_index(day: Weekday) -> usize {
    usize::try_from(day.to_monday_zero_offset()).unwrap_or(0)
}

fn parse_range(part: &str) -> Result<Range, String> {
    let (days, times) = part
        .split_once(char::is_whitespace)
        .ok_or("expected days and a time range, e.g. Sat 02:00-05:00")?;
    let days = parse_days(days.trim())?;
    let (start, end) = times
        .trim()
        .split_once('-')
        .ok_or("expected a time range HH:MM-HH:MM")?;
    let start = parse_time(start.trim(), false)?;
    let end = parse_time(end.trim(), true)?;
    if start == end % 1440 && end != 1440 {
        return Err("the window is empty (start and end are the same)".into());
    }
    Ok(Range { days, start, end })
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let lower = text.to_ascii_lowercase();
    if lower == "daily" || lower == "*" {
        return Ok([true; 7]);
    }
    let index = |d: &str| {
        let d = d.get(..3).unwrap_or(d);
        DAYS.iter()
            .position(|x| *x == d)
            .ok_or_else(|| format!("{d:?} is not a day (Mon, Tue, … Sun, or daily)"))
    };
    let mut days = [false; 7];
    for item in lower.split('+') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (index(a)?, index(b)?);
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[index(item)?] = true,
        }
    }
    Ok(days)
}

/// `HH:MM` as minutes; `24:00` only as an end.
fn parse_time(text: &str, end: bool) -> Result<u16, String> {
    let bad = || format!("{text:?} is not a time HH:MM");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m >= 60 || h > 24 || (h == 24 && (m != 0 || !end)) || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    /// `2026-…` local wall time in `tz` as a `SystemTime`.
    fn at(tz: &TimeZone, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> SystemTime {
        let dt = jiff::civil::date(y, mo, d).at(h, mi, 0, 0);
        SystemTime::from(tz.to_ambiguous_zoned(dt).compatible().unwrap().timestamp())
    }

    fn local(tz: &TimeZone, t: SystemTime) -> String {
        tz.to_datetime(Timestamp::try_from(t).unwrap())
            .strftime("%a %Y-%m-%d %H:%M")
            .to_string()
    }

    #[test]
    fn weekday_ranges_and_lists() {
        let utc = TimeZone::UTC;
        let w = Windows::parse("Mon-Fri 01:00-03:00").unwrap();
        // 2026-12-07 is a Monday.
        assert!(w.is_open(at(&utc, 2026, 12, 7, 1, 0), &utc));
        assert!(w.is_open(at(&utc, 2026, 12, 11, 2, 59), &utc));
        assert!(
            !w.is_open(at(&utc, 2026, 12, 11, 3, 0), &utc),
            "the end is excluded"
        );
        assert!(!w.is_open(at(&utc, 2026, 12, 12, 1, 30), &utc), "Saturday");
        let weekend = Windows::parse("Sat 02:00-05:00, Sun 02:00-05:00").unwrap();
        assert!(weekend.is_open(at(&utc, 2026, 12, 13, 4, 0), &utc));
        assert!(!weekend.is_open(at(&utc, 2026, 12, 14, 4, 0), &utc));
        let next = weekend
            .next_open(at(&utc, 2026, 12, 9, 12, 0), &utc)
            .unwrap();
        assert_eq!(local(&utc, next), "Sat 2026-12-12 02:00");
        let wrap = Windows::parse("Fri-Mon 00:00-06:00").unwrap();
        assert!(wrap.is_open(at(&utc, 2026, 12, 13, 1, 0), &utc));
        assert!(
            !wrap.is_open(at(&utc, 2026, 12, 9, 1, 0), &utc),
            "Wednesday"
        );
        assert!(
            Windows::parse("daily 00:00-24:00")
                .unwrap()
                .is_open(at(&utc, 2026, 12, 9, 23, 59), &utc)
        );
    }

    #[test]
    fn windows_crossing_midnight_belong_to_their_start_day() {
        let utc = TimeZone::UTC;
        let w = Windows::parse("Fri 23:00-02:00").unwrap();
        assert!(
            w.is_open(at(&utc, 2026, 12, 11, 23, 30), &utc),
            "Friday night"
        );
        assert!(
            w.is_open(at(&utc, 2026, 12, 12, 1, 59), &utc),
            "Saturday early"
        );
        assert!(!w.is_open(at(&utc, 2026, 12, 12, 2, 0), &utc));
        assert!(
            !w.is_open(at(&utc, 2026, 12, 11, 1, 0), &utc),
            "Friday early is Thursday's"
        );
        let next = w.next_open(at(&utc, 2026, 12, 12, 3, 0), &utc).unwrap();
        assert_eq!(local(&utc, next), "Fri 2026-12-18 23:00");
    }

    #[test]
    fn both_dst_transitions_keep_wall_clock_time() {
        let berlin = zone("Europe/Berlin");
        let w = Windows::parse("Sun 01:30-03:30").unwrap();
        // Spring: 2026-03-29 02:00 CET jumps to 03:00 CEST; the window is an hour shorter.
        assert!(w.is_open(at(&berlin, 2026, 3, 29, 1, 45), &berlin));
        assert!(w.is_open(at(&berlin, 2026, 3, 29, 3, 15), &berlin));
        assert!(!w.is_open(at(&berlin, 2026, 3, 29, 3, 30), &berlin));
        // Autumn: 2026-10-25 03:00 CEST falls back to 02:00 CET; 02:15 happens twice, both inside.
        let first = at(&berlin, 2026, 10, 25, 2, 15);
        assert!(w.is_open(first, &berlin));
        assert!(w.is_open(first + std::time::Duration::from_secs(3600), &berlin));
        // A start in the spring gap opens right after the gap.
        let gap = Windows::parse("Sun 02:30-04:00").unwrap();
        let next = gap
            .next_open(at(&berlin, 2026, 3, 28, 12, 0), &berlin)
            .unwrap();
        assert_eq!(local(&berlin, next), "Sun 2026-03-29 03:30");
        // And it is open from there.
        assert!(gap.is_open(next, &berlin));
    }

    #[test]
    fn bad_windows_are_errors_naming_the_part() {
        for bad in [
            "",
            "Sat",
            "Sat 2-5",
            "Funday 01:00-02:00",
            "Sat 01:00-01:00",
            "Mon 25:00-26:00",
            "Mon 01:00-24:30",
            "Sat 02:00-05:00,",
        ] {
            assert!(Windows::parse(bad).is_err(), "{bad:?}");
        }
        let e = Windows::parse("Sat 02:00-05:00, Xyz 01:00-02:00").unwrap_err();
        assert!(e.contains("Xyz"), "{e}");
        assert_eq!(
            Windows::parse(" Sat 02:00-05:00 ").unwrap().to_string(),
            "Sat 02:00-05:00"
        );
    }
}
