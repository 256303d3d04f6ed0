//! Cron schedules (five fields) evaluated in an IANA time zone: the `listen` floor.
//!
//! A schedule is `minute hour day-of-month month day-of-week`, or a descriptor such as `@daily`.
//! Fields take `*`, numbers, lists `a,b`, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n`, month
//! names `JAN`–`DEC` and day names `SUN`–`SAT`. Day-of-week 0 and 7 are both Sunday.
//!
//! As in Vixie cron, when both day fields are restricted (neither starts with `*`), a day matches
//! if either field matches; otherwise both must match.
//!
//! Times are local to the zone. A local time that a spring-forward change skips does not exist,
//! so it does not fire that day. A local time that a fall-back change repeats fires once, at its
//! first occurrence.
//!
//! `croner` parses the fields and walks the local calendar; this module checks the text first, so
//! a mistake is reported as a sentence naming the field, and applies the DST rule above.

use std::fmt;
use std::time::SystemTime;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

/// How far [`Schedule::next_after`] looks: the longest gap between two February 29ths
/// (2096 to 2104) is eight years.
const SEARCH_YEARS: i16 = 8;

/// What the parse errors suggest.
const FORM: &str = "five fields (minute hour day-of-month month day-of-week), e.g. \"0 3 * * *\"";

/// A parsed five-field cron expression (minute hour day-of-month month day-of-week) or descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

/// One field's name, bounds and names.
struct Field {
    name: &'static str,
    lo: u8,
    hi: u8,
    /// What `*` covers at the top (day-of-week 7 repeats 0).
    star_hi: u8,
    /// Three-letter names for `lo`, `lo + 1`, …
    names: &'static [&'static str],
    accepted: &'static str,
}

const MINUTE: Field = Field {
    name: "minute",
    lo: 0,
    hi: 59,
    star_hi: 59,
    names: &[],
    accepted: "a number 0-59",
};
const HOUR: Field = Field {
    name: "hour",
    lo: 0,
    hi: 23,
    star_hi: 23,
    names: &[],
    accepted: "a number 0-23",
};
const DAY: Field = Field {
    name: "day-of-month",
    lo: 1,
    hi: 31,
    star_hi: 31,
    names: &[],
    accepted: "a number 1-31",
};
const MONTH: Field = Field {
    name: "month",
    lo: 1,
    hi: 12,
    star_hi: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    accepted: "a number 1-12 or a name JAN-DEC",
};
const WEEKDAY: Field = Field {
    name: "day-of-week",
    lo: 0,
    hi: 7,
    star_hi: 6,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    accepted: "a number 0-7 or a name SUN-SAT",
};

const FIELDS: [&Field; 5] = [&MINUTE, &HOUR, &DAY, &MONTH, &WEEKDAY];

const DESCRIPTORS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

impl Schedule {
    /// Parses `PP_SCHEDULE`. Err is a sentence naming the bad field and the accepted form, e.g.
    /// "the hour field \"25\" is out of range 0-23".
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if let Some(first) = fields.first()
            && first.starts_with('@')
        {
            let name = first.to_ascii_lowercase();
            let Some(&(_, expansion)) = DESCRIPTORS.iter().find(|(d, _)| *d == name) else {
                return Err(format!(
                    "{first:?} is not a supported descriptor; use {FORM} or one of @yearly, \
                     @annually, @monthly, @weekly, @daily, @midnight, @hourly"
                ));
            };
            if fields.len() > 1 {
                return Err(format!(
                    "the descriptor {first} stands alone, without further fields; use it or {FORM}"
                ));
            }
            let mut schedule = Schedule::parse(expansion)?;
            schedule.text = name;
            return Ok(schedule);
        }
        match fields.len() {
            0 => return Err(format!("the schedule is empty; use {FORM}")),
            5 => {}
            n @ (6 | 7) => {
                return Err(format!(
                    "the schedule {:?} has {n} fields, but pullpilot uses {FORM}, \
                     without seconds or years",
                    spec.trim()
                ));
            }
            n => {
                return Err(format!(
                    "the schedule {:?} has {n} fields; pullpilot uses {FORM}",
                    spec.trim()
                ));
            }
        }
        for (field, text) in FIELDS.into_iter().zip(&fields) {
            check_field(field, text)?;
        }
        let text = fields.join(" ");
        // Vixie's rule: a day field starting with `*` leaves the other one in charge; croner
        // only treats a bare `*` so, hence "both must match" whenever either starts with `*`.
        let either_day = !fields[2].starts_with('*') && !fields[4].starts_with('*');
        // croner runs a day-of-week `a/n` up to 7 (Sunday again); `*` and ranges stop at 6.
        let weekdays: Vec<String> = fields[4]
            .split(',')
            .map(|item| match item.split_once('/') {
                Some((start, step)) if start != "*" && !start.contains('-') => {
                    format!("{start}-6/{step}")
                }
                _ => item.to_string(),
            })
            .collect();
        let croner_text = format!("{} {}", fields[..4].join(" "), weekdays.join(","));
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .dom_and_dow(!either_day)
            // `a/n` means a, a+n, … up to the field's top, as in Vixie cron.
            .sloppy_ranges(true)
            .build()
            .parse(&croner_text)
            .map_err(|e| format!("the schedule {text:?} cannot be used ({e}); use {FORM}"))?;
        Ok(Schedule { text, cron })
    }

    /// The first minute strictly after `after` at which the schedule fires, in `zone`
    /// (None only if it never fires, e.g. "0 0 30 2 *"). Looks eight years ahead.
    pub fn next_after(&self, zone: &TimeZone, after: SystemTime) -> Option<SystemTime> {
        if !ever_fires(&self.cron) {
            return None;
        }
        // A clock beyond the year 9999 has no next minute, rather than an overflow.
        let after = Timestamp::try_from(after).ok()?;
        let mut local = zone.to_datetime(after);
        let last_year = local.year().saturating_add(SEARCH_YEARS);
        loop {
            // The next matching local minute (croner walks the calendar, not the zone).
            let candidate: DateTime = self.cron.find_next_occurrence(&local, false).ok()?;
            if candidate.year() > last_year {
                return None;
            }
            let offset = match zone.to_ambiguous_timestamp(candidate).offset() {
                AmbiguousOffset::Unambiguous { offset } => Some(offset),
                // Repeated by a fall-back change: only the first occurrence fires.
                AmbiguousOffset::Fold { before, .. } => Some(before),
                // Skipped by a spring-forward change: it does not exist, so it does not fire.
                AmbiguousOffset::Gap { .. } => None,
            };
            // A first occurrence already past (`after` is in the repeated hour) does not fire.
            if let Some(fire) = offset.and_then(|o| o.to_timestamp(candidate).ok())
                && fire > after
            {
                return Some(fire.into());
            }
            local = candidate;
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Whether some month of the schedule has one of its days (February counting the 29th). If none
/// has, the schedule never fires, and croner would search up to the year 5000 to find that out.
fn ever_fires(cron: &Cron) -> bool {
    const LONGEST: [u16; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let p = &cron.pattern;
    // Either day field may match and the day of the week is restricted: every month has it.
    if !p.matches_dom_and_dow() && !p.is_dow_wildcard() {
        return true;
    }
    let days = p.days.values();
    p.months
        .values()
        .iter()
        .any(|&m| days.iter().any(|&d| d <= LONGEST[usize::from(m - 1)]))
}

/// Checks one field, so a mistake is reported naming the field and the accepted form.
fn check_field(field: &Field, text: &str) -> Result<(), String> {
    let err = |part: &str, what: &str| {
        if part == text {
            format!("the {} field {text:?} {what}", field.name)
        } else {
            format!("the {} field {text:?}: {part:?} {what}", field.name)
        }
    };
    for item in text.split(',') {
        if item.is_empty() {
            return Err(err(
                text,
                "has an empty list item; write lists as a,b without spaces",
            ));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step = step.parse::<u8>().ok().filter(|&s| s > 0).ok_or_else(|| {
                    err(
                        item,
                        "has a bad step; write */n or a-b/n with n of 1 or more",
                    )
                })?;
                (range, Some(step))
            }
            None => (item, None),
        };
        let value = |part: &str| {
            value(field, part).ok_or_else(|| {
                err(
                    if part.is_empty() { item } else { part },
                    &format!(
                        "is not {}; use numbers, ranges a-b, lists a,b or steps */n",
                        field.accepted
                    ),
                )
            })
        };
        let (lo, hi) = if range == "*" {
            (field.lo, field.star_hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let a = value(range)?;
            (a, if step.is_some() { field.star_hi } else { a })
        };
        for v in [lo, hi] {
            if !(field.lo..=field.hi).contains(&v) {
                let what = format!("is out of range {}-{}", field.lo, field.hi);
                return Err(if item == text {
                    err(item, &what)
                } else {
                    err(&v.to_string(), &what)
                });
            }
        }
        if lo > hi {
            return Err(err(
                item,
                "runs backwards; write ranges low to high, e.g. 1-5",
            ));
        }
    }
    Ok(())
}

/// A number or a (case-insensitive) name; numbers too large for a `u8` read as 255 so the
/// range check reports them.
fn value(field: &Field, part: &str) -> Option<u8> {
    if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
        return Some(part.parse().unwrap_or(u8::MAX));
    }
    let i = field
        .names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(part))?;
    Some(field.lo + i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::zone;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    fn berlin() -> TimeZone {
        zone::parse("Europe/Berlin").unwrap()
    }

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    fn err(spec: &str) -> String {
        Schedule::parse(spec).unwrap_err()
    }

    fn parse(spec: &str) -> Schedule {
        Schedule::parse(spec).unwrap()
    }

    /// The next fire after `after`, as RFC 3339 in `zone`.
    fn next(spec: &str, tz: &TimeZone, after: SystemTime) -> Option<String> {
        parse(spec)
            .next_after(tz, after)
            .map(|t| zone::format(tz, t).rfc3339)
    }

    /// The first `n` fires after `after`, as RFC 3339 in `zone`.
    fn fires(spec: &str, tz: &TimeZone, after: SystemTime, n: usize) -> Vec<String> {
        let s = parse(spec);
        let mut t = after;
        (0..n)
            .map(|_| {
                t = s.next_after(tz, t).unwrap();
                zone::format(tz, t).rfc3339
            })
            .collect()
    }

    /// The values a field of `spec` matches, as croner parsed them.
    fn values(spec: &str, field: fn(&croner::CronPattern) -> &croner::CronComponent) -> Vec<u16> {
        field(&parse(spec).cron.pattern).values()
    }

    fn minutes(spec: &str) -> Vec<u16> {
        values(spec, |p| &p.minutes)
    }

    fn weekdays(spec: &str) -> Vec<u16> {
        values(spec, |p| &p.days_of_week)
    }

    /// Both day fields are restricted, so either one matching is enough.
    fn either_day(spec: &str) -> bool {
        !parse(spec).cron.pattern.matches_dom_and_dow()
    }

    const JAN_1_2025: u64 = 1_735_689_600; // Wednesday 2025-01-01 00:00 UTC

    #[test]
    fn errors_name_the_field_and_the_form() {
        assert_eq!(
            err("0 25 * * *"),
            "the hour field \"25\" is out of range 0-23"
        );
        assert_eq!(
            err("60 * * * *"),
            "the minute field \"60\" is out of range 0-59"
        );
        assert_eq!(
            err("0 0 0 * *"),
            "the day-of-month field \"0\" is out of range 1-31"
        );
        assert_eq!(
            err("0 0 1-32 * *"),
            "the day-of-month field \"1-32\" is out of range 1-31"
        );
        assert_eq!(
            err("0 0 * 13 *"),
            "the month field \"13\" is out of range 1-12"
        );
        assert_eq!(
            err("0 0 * * 8"),
            "the day-of-week field \"8\" is out of range 0-7"
        );
        assert_eq!(
            err("0 1,25 * * *"),
            "the hour field \"1,25\": \"25\" is out of range 0-23"
        );
        assert_eq!(
            err("0 999 * * *"),
            "the hour field \"999\" is out of range 0-23"
        );
        assert_eq!(
            err("0 0 * FOO *"),
            "the month field \"FOO\" is not a number 1-12 or a name JAN-DEC; \
             use numbers, ranges a-b, lists a,b or steps */n"
        );
        assert_eq!(
            err("0 0 * * MON-FUN"),
            "the day-of-week field \"MON-FUN\": \"FUN\" is not a number 0-7 or a name SUN-SAT; \
             use numbers, ranges a-b, lists a,b or steps */n"
        );
        assert_eq!(
            err("x * * * *"),
            "the minute field \"x\" is not a number 0-59; \
             use numbers, ranges a-b, lists a,b or steps */n"
        );
        // Names belong to their own field only.
        assert!(err("0 0 * MON *").starts_with("the month field \"MON\" is not"));
        assert!(err("0 0 JAN * *").starts_with("the day-of-month field \"JAN\" is not"));
        assert_eq!(
            err("*/0 * * * *"),
            "the minute field \"*/0\" has a bad step; write */n or a-b/n with n of 1 or more"
        );
        assert!(err("*/x * * * *").contains("has a bad step"));
        assert_eq!(
            err("0 5-1 * * *"),
            "the hour field \"5-1\" runs backwards; write ranges low to high, e.g. 1-5"
        );
        assert_eq!(
            err("0 1,,2 * * *"),
            "the hour field \"1,,2\" has an empty list item; write lists as a,b without spaces"
        );
        assert!(err("0 -1 * * *").starts_with("the hour field \"-1\" is not a number 0-23"));
        assert!(err("0 1,-1 * * *").starts_with("the hour field \"1,-1\": \"-1\" is not a number"));
    }

    #[test]
    fn wrong_field_counts_and_descriptors_are_errors() {
        let six = err("0 0 3 * * *");
        assert!(six.contains("has 6 fields"), "{six}");
        assert!(six.contains("pullpilot uses five fields"), "{six}");
        assert!(six.contains("without seconds or years"), "{six}");
        assert!(err("0 0 3 * * * 2025").contains("has 7 fields"));
        let four = err(" 0 3 * * ");
        assert_eq!(
            four,
            "the schedule \"0 3 * *\" has 4 fields; pullpilot uses five fields \
             (minute hour day-of-month month day-of-week), e.g. \"0 3 * * *\""
        );
        assert!(err("   ").starts_with("the schedule is empty; use five fields"));
        let reboot = err("@reboot");
        assert!(
            reboot.starts_with("\"@reboot\" is not a supported descriptor"),
            "{reboot}"
        );
        assert!(reboot.contains("@hourly"), "{reboot}");
        assert!(err("@daily 0").contains("stands alone"));
    }

    #[test]
    fn text_is_trimmed_and_normalised() {
        let s = parse(" \t0  3 *\t* *\n");
        assert_eq!(s.to_string(), "0 3 * * *");
        assert_eq!(s, parse("0 3 * * *"));
        assert_eq!(parse("@Daily").to_string(), "@daily");
    }

    #[test]
    fn descriptors_expand_to_their_fields() {
        for (descriptor, fields) in [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@hourly", "0 * * * *"),
        ] {
            let d = parse(descriptor);
            let f = parse(fields);
            assert_eq!(d.to_string(), descriptor);
            assert_eq!(
                Schedule {
                    text: f.text.clone(),
                    ..d
                },
                f,
                "{descriptor}"
            );
        }
        let utc = utc();
        let after = at(JAN_1_2025 + 90); // 00:01:30
        assert_eq!(
            next("@yearly", &utc, after).unwrap(),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", &utc, after).unwrap(),
            "2025-02-01T00:00:00Z"
        );
        assert_eq!(
            next("@weekly", &utc, after).unwrap(),
            "2025-01-05T00:00:00Z"
        );
        assert_eq!(next("@daily", &utc, after).unwrap(), "2025-01-02T00:00:00Z");
        assert_eq!(
            next("@hourly", &utc, after).unwrap(),
            "2025-01-01T01:00:00Z"
        );
    }

    #[test]
    fn names_lists_ranges_and_steps() {
        let months = |spec| values(spec, |p| &p.months);
        assert_eq!(months("0 0 * jan-Mar,DEC mon-FRI"), [1, 2, 3, 12]);
        assert_eq!(weekdays("0 0 * jan-Mar,DEC mon-FRI"), [1, 2, 3, 4, 5]);
        assert_eq!(minutes("*/15 * * * *"), [0, 15, 30, 45]);
        assert_eq!(minutes("10-20/5 * * * *"), [10, 15, 20]);
        assert_eq!(minutes("5/20 * * * *"), [5, 25, 45]);
        assert_eq!(minutes("1,2,30-31 * * * *"), [1, 2, 30, 31]);
        assert_eq!(values("0 */7 * * *", |p| &p.hours), [0, 7, 14, 21]);
        assert_eq!(values("0 0 */10 * *", |p| &p.days), [1, 11, 21, 31]);
        assert_eq!(months("0 0 * */4 *"), [1, 5, 9]);
        assert_eq!(weekdays("0 0 * * */2"), [0, 2, 4, 6]);
        assert_eq!(minutes("* * * * *"), (0..60).collect::<Vec<u16>>());
        assert_eq!(months("0 0 * FEB/3 *"), [2, 5, 8, 11]);
        // `a/n` on the day of the week stops at Saturday, as `*/n` does.
        assert_eq!(weekdays("0 0 * * MON/2"), [1, 3, 5]);
        assert_eq!(weekdays("0 0 * * 1,0/3"), [0, 1, 3, 6]);
        assert_eq!(
            fires("*/20 9-10 * * *", &utc(), at(JAN_1_2025), 7),
            [
                "2025-01-01T09:00:00Z",
                "2025-01-01T09:20:00Z",
                "2025-01-01T09:40:00Z",
                "2025-01-01T10:00:00Z",
                "2025-01-01T10:20:00Z",
                "2025-01-01T10:40:00Z",
                "2025-01-02T09:00:00Z",
            ]
        );
    }

    #[test]
    fn seven_and_zero_are_sunday() {
        let sunday = weekdays("0 0 * * 0");
        for spec in ["0 0 * * 7", "0 0 * * SUN", "0 0 * * sun", "0 0 * * 0,7"] {
            assert_eq!(weekdays(spec), sunday, "{spec}");
        }
        assert_eq!(weekdays("0 0 * * 5-7"), [0, 5, 6]);
        assert_eq!(weekdays("0 0 * * 0-7"), [0, 1, 2, 3, 4, 5, 6]);
        // 2025-01-01 is a Wednesday.
        assert_eq!(
            next("0 0 * * 7", &utc(), at(JAN_1_2025)).unwrap(),
            "2025-01-05T00:00:00Z"
        );
    }

    #[test]
    fn restricted_day_fields_match_either() {
        let utc = utc();
        // The 13th or any Friday: Fri 3rd, Fri 10th, Mon 13th, Fri 17th.
        assert_eq!(
            fires("0 0 13 * 5", &utc, at(JAN_1_2025), 4),
            [
                "2025-01-03T00:00:00Z",
                "2025-01-10T00:00:00Z",
                "2025-01-13T00:00:00Z",
                "2025-01-17T00:00:00Z",
            ]
        );
        assert!(either_day("0 0 13 * FRI"));
        // A day field starting with `*` leaves the other one in charge (Vixie's rule).
        assert!(!either_day("0 0 * * 5"));
        assert!(!either_day("0 0 13 * *"));
        assert!(!either_day("0 0 */2 * 1"));
        // Odd days that are Mondays: 13 and 27 January 2025.
        assert_eq!(
            fires("0 0 */2 * MON", &utc, at(JAN_1_2025), 2),
            ["2025-01-13T00:00:00Z", "2025-01-27T00:00:00Z"]
        );
    }

    #[test]
    fn three_in_the_morning_in_utc_and_berlin() {
        let summer = at(1_749_956_400); // 2025-06-15 03:00 UTC, 05:00 in Berlin
        assert_eq!(
            next("0 3 * * *", &utc(), summer).unwrap(),
            "2025-06-16T03:00:00Z",
            "a fire at exactly `after` is not strictly after it"
        );
        assert_eq!(
            next("0 3 * * *", &utc(), at(1_749_956_400 - 1)).unwrap(),
            "2025-06-15T03:00:00Z"
        );
        assert_eq!(
            next("0 3 * * *", &berlin(), summer).unwrap(),
            "2025-06-16T03:00:00+02:00"
        );
        assert_eq!(
            next("0 3 * * *", &berlin(), at(JAN_1_2025)).unwrap(),
            "2025-01-01T03:00:00+01:00"
        );
        let t = parse("0 3 * * *")
            .next_after(&berlin(), at(JAN_1_2025))
            .unwrap();
        assert_eq!(t, at(JAN_1_2025 + 2 * 3600));
        // Part of a second past the minute still counts as that minute.
        let t = at(JAN_1_2025 + 2 * 3600) + Duration::from_millis(1);
        assert_eq!(
            next("0 3 * * *", &berlin(), t).unwrap(),
            "2025-01-02T03:00:00+01:00"
        );
    }

    #[test]
    fn a_time_skipped_by_spring_forward_does_not_fire_that_day() {
        let z = berlin();
        // On 2025-03-30 Berlin goes from 02:00 CET straight to 03:00 CEST.
        let saturday_noon = at(1_743_249_600);
        assert_eq!(
            fires("30 2 * * *", &z, saturday_noon, 2),
            ["2025-03-31T02:30:00+02:00", "2025-04-01T02:30:00+02:00"]
        );
        assert_eq!(
            fires("*/30 * * * *", &z, at(1_743_294_600), 3), // after 01:30 CET
            [
                "2025-03-30T03:00:00+02:00",
                "2025-03-30T03:30:00+02:00",
                "2025-03-30T04:00:00+02:00",
            ]
        );
        assert_eq!(
            next("0 3 * * *", &z, saturday_noon).unwrap(),
            "2025-03-30T03:00:00+02:00"
        );
    }

    #[test]
    fn a_time_repeated_by_fall_back_fires_once() {
        let z = berlin();
        // On 2025-10-26 Berlin goes from 03:00 CEST back to 02:00 CET: 02:00-02:59 happen twice.
        assert_eq!(
            fires("30 2 * * *", &z, at(1_761_393_600), 2),
            ["2025-10-26T02:30:00+02:00", "2025-10-27T02:30:00+01:00"]
        );
        assert_eq!(
            fires("*/30 * * * *", &z, at(1_761_436_800), 4), // after 02:00 CEST
            [
                "2025-10-26T02:30:00+02:00",
                "2025-10-26T03:00:00+01:00",
                "2025-10-26T03:30:00+01:00",
                "2025-10-26T04:00:00+01:00",
            ]
        );
        // Between the two occurrences, the second does not fire either.
        let between = at(1_761_436_800 + 3600 + 600); // 02:10 CET
        assert_eq!(
            next("30 2 * * *", &z, between).unwrap(),
            "2025-10-27T02:30:00+01:00"
        );
    }

    #[test]
    fn february_29_waits_for_a_leap_year() {
        let utc = utc();
        assert_eq!(
            next("0 0 29 2 *", &utc, at(1_740_787_200)).unwrap(), // 2025-03-01
            "2028-02-29T00:00:00Z"
        );
        // 2100 is not a leap year: the longest gap there is.
        assert_eq!(
            next("0 0 29 2 *", &utc, at(4_012_934_400)).unwrap(), // 2097-03-01
            "2104-02-29T00:00:00Z"
        );
        assert_eq!(
            next("0 12 29 FEB *", &berlin(), at(1_740_787_200)).unwrap(),
            "2028-02-29T12:00:00+01:00"
        );
    }

    #[test]
    fn never_fires_is_none_and_quick() {
        let started = std::time::Instant::now();
        for spec in [
            "0 0 30 2 *",
            "0 0 31 4,6,9,11 *",
            "* * 30-31 FEB *",
            "0 0 30 2 */2",
        ] {
            assert_eq!(next(spec, &utc(), at(JAN_1_2025)), None, "{spec}");
            assert_eq!(next(spec, &berlin(), at(JAN_1_2025)), None, "{spec}");
        }
        // Generous for unoptimised builds; a search is typically a few hundred steps.
        assert!(started.elapsed() < Duration::from_secs(1));
        // With a day of the week, the Vixie rule makes it fire after all: Mondays in February.
        assert_eq!(
            next("0 0 30 2 MON", &utc(), at(JAN_1_2025)).unwrap(),
            "2025-02-03T00:00:00Z"
        );
    }

    #[test]
    fn the_end_of_time_has_no_next_minute() {
        // Checked arithmetic: a clock at the last second of i64 is "never", not a panic.
        let end = UNIX_EPOCH
            .checked_add(Duration::from_secs(i64::MAX as u64))
            .unwrap();
        assert_eq!(parse("* * * * *").next_after(&utc(), end), None);
    }

    #[test]
    fn month_year_and_day_boundaries() {
        let utc = utc();
        let new_years_eve = at(1_767_225_540); // 2025-12-31 23:59 UTC
        assert_eq!(
            next("59 23 31 12 *", &utc, new_years_eve).unwrap(),
            "2026-12-31T23:59:00Z"
        );
        assert_eq!(
            next("* * * * *", &utc, new_years_eve + Duration::from_secs(30)).unwrap(),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            next("0 0 1 * *", &utc, at(1_738_324_800)).unwrap(), // 2025-01-31 12:00
            "2025-02-01T00:00:00Z"
        );
        assert_eq!(
            fires("0 0 31 * *", &utc, at(1_738_281_600), 3), // 2025-01-31 00:00
            [
                "2025-03-31T00:00:00Z",
                "2025-05-31T00:00:00Z",
                "2025-07-31T00:00:00Z",
            ]
        );
        assert_eq!(
            next("0 0 28 * *", &utc, at(1_738_281_600)).unwrap(),
            "2025-02-28T00:00:00Z"
        );
        // Midnight in Berlin is the evening before in UTC.
        assert_eq!(
            parse("0 0 1 1 *")
                .next_after(&berlin(), at(JAN_1_2025))
                .map(|t| zone::format(&utc, t).rfc3339),
            Some("2025-12-31T23:00:00Z".into())
        );
    }

    #[test]
    fn a_yearly_search_takes_few_steps() {
        let s = parse("@yearly");
        let z = berlin();
        let started = std::time::Instant::now();
        let mut t = at(JAN_1_2025);
        for _ in 0..100 {
            t = s.next_after(&z, t).unwrap();
        }
        assert_eq!(zone::format(&z, t).rfc3339, "2125-01-01T00:00:00+01:00");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
