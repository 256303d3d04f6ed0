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

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::notify::tz::{Civil, Zone};

/// How far [`Schedule::next_after`] looks: the longest gap between two February 29ths
/// (2096 to 2104) is eight years.
const SEARCH_YEARS: i64 = 8;

/// What the parse errors suggest.
const FORM: &str = "five fields (minute hour day-of-month month day-of-week), e.g. \"0 3 * * *\"";

/// A parsed five-field cron expression (minute hour day-of-month month day-of-week) or descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    /// Bits 0–59.
    minutes: u64,
    /// Bits 0–23.
    hours: u64,
    /// Bits 1–31.
    days: u64,
    /// Bits 1–12.
    months: u64,
    /// Bits 0–6, Sunday = 0.
    weekdays: u64,
    /// Both day fields are restricted, so either one matching is enough.
    either_day: bool,
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
        Ok(Schedule {
            text: fields.join(" "),
            minutes: parse_field(&MINUTE, fields[0])?,
            hours: parse_field(&HOUR, fields[1])?,
            days: parse_field(&DAY, fields[2])?,
            months: parse_field(&MONTH, fields[3])?,
            weekdays: parse_field(&WEEKDAY, fields[4])?,
            either_day: !fields[2].starts_with('*') && !fields[4].starts_with('*'),
        })
    }

    /// The first minute strictly after `after` at which the schedule fires, in `zone`
    /// (None only if it never fires, e.g. "0 0 30 2 *"). Looks eight years ahead.
    // `Zone` is crate-internal, so only this crate (`listen`) can call this; that is the intent.
    pub(crate) fn next_after(&self, zone: &Zone, after: SystemTime) -> Option<SystemTime> {
        // Checked: a clock at the end of time has no next minute, rather than an overflow.
        let mut t = unix_secs(after)
            .div_euclid(60)
            .checked_mul(60)?
            .checked_add(60)?;
        let mut c = zone.civil(t);
        let last_year = c.year + SEARCH_YEARS;
        while c.year <= last_year {
            let into_day =
                i64::from(c.hour) * 3600 + i64::from(c.minute) * 60 + i64::from(c.second);
            let into_hour = into_day % 3600;
            // Skip to the start of the next local month, day, hour or matching minute.
            let step = if self.months & (1 << c.month) == 0 {
                i64::from(c.month_len - c.day + 1) * 86_400 - into_day
            } else if !self.day_matches(&c) {
                86_400 - into_day
            } else if self.hours & (1 << c.hour) == 0 {
                3600 - into_hour
            } else {
                // A local minute that did not start at a whole UTC minute is already past.
                let from = c.minute + u8::from(c.second != 0);
                match next_bit(self.minutes, from) {
                    Some(m) if m == c.minute => {
                        if !repeated(zone, t, c.offset) {
                            return system_time(t);
                        }
                        60
                    }
                    Some(m) => i64::from(m - c.minute) * 60 - i64::from(c.second),
                    None => 3600 - into_hour,
                }
            };
            (t, c) = advance(zone, t, c.offset, step)?;
        }
        None
    }

    fn day_matches(&self, c: &Civil) -> bool {
        let dom = self.days & (1 << c.day) != 0;
        let dow = self.weekdays & (1 << c.weekday) != 0;
        if self.either_day {
            dom || dow
        } else {
            dom && dow
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The field as a bit set; day-of-week 7 is stored as 0.
fn parse_field(field: &Field, text: &str) -> Result<u64, String> {
    let err = |part: &str, what: &str| {
        if part == text {
            format!("the {} field {text:?} {what}", field.name)
        } else {
            format!("the {} field {text:?}: {part:?} {what}", field.name)
        }
    };
    let mut bits = 0u64;
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
        for v in (lo..=hi).step_by(usize::from(step.unwrap_or(1))) {
            let v = if field.hi == 7 { v % 7 } else { v };
            bits |= 1 << v;
        }
    }
    Ok(bits)
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

/// The lowest set bit at or above `from`.
fn next_bit(bits: u64, from: u8) -> Option<u8> {
    let rest = bits.checked_shr(u32::from(from)).unwrap_or(0);
    (rest != 0).then(|| from + rest.trailing_zeros() as u8)
}

/// `t + step`, unless the zone's offset changes on the way: then the first second of the new
/// offset, so local times right after the change are looked at too.
fn advance(zone: &Zone, t: i64, offset: i32, step: i64) -> Option<(i64, Civil)> {
    let next = t.checked_add(step)?;
    let c = zone.civil(next);
    if c.offset == offset {
        return Some((next, c));
    }
    let (mut lo, mut hi) = (t, next);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if zone.civil(mid).offset == offset {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some((hi, zone.civil(hi)))
}

/// Whether the local time at `t` already happened before a fall-back change (within a day).
fn repeated(zone: &Zone, t: i64, offset: i32) -> bool {
    let before = zone.civil(t - 86_400).offset;
    before > offset && zone.civil(t - i64::from(before - offset)).offset == before
}

/// Whole seconds since the epoch, rounded down.
fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => {
            let d = e.duration();
            -(d.as_secs() as i64) - i64::from(d.subsec_nanos() > 0)
        }
    }
}

fn system_time(unix: i64) -> Option<SystemTime> {
    let d = Duration::from_secs(unix.unsigned_abs());
    if unix >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix)
    }

    fn berlin() -> Zone {
        Zone::load("Europe/Berlin").unwrap()
    }

    fn err(spec: &str) -> String {
        Schedule::parse(spec).unwrap_err()
    }

    fn parse(spec: &str) -> Schedule {
        Schedule::parse(spec).unwrap()
    }

    /// The next fire after `after`, as RFC 3339 in `zone`.
    fn next(spec: &str, zone: &Zone, after: SystemTime) -> Option<String> {
        parse(spec)
            .next_after(zone, after)
            .map(|t| zone.format(t).rfc3339)
    }

    /// The first `n` fires after `after`, as RFC 3339 in `zone`.
    fn fires(spec: &str, zone: &Zone, after: SystemTime, n: usize) -> Vec<String> {
        let s = parse(spec);
        let mut t = after;
        (0..n)
            .map(|_| {
                t = s.next_after(zone, t).unwrap();
                zone.format(t).rfc3339
            })
            .collect()
    }

    fn bits(values: &[u8]) -> u64 {
        values.iter().fold(0, |b, v| b | 1 << v)
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
        let utc = Zone::utc();
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
        let s = parse("0 0 * jan-Mar,DEC mon-FRI");
        assert_eq!(s.months, bits(&[1, 2, 3, 12]));
        assert_eq!(s.weekdays, bits(&[1, 2, 3, 4, 5]));
        assert_eq!(parse("*/15 * * * *").minutes, bits(&[0, 15, 30, 45]));
        assert_eq!(parse("10-20/5 * * * *").minutes, bits(&[10, 15, 20]));
        assert_eq!(parse("5/20 * * * *").minutes, bits(&[5, 25, 45]));
        assert_eq!(parse("1,2,30-31 * * * *").minutes, bits(&[1, 2, 30, 31]));
        assert_eq!(parse("0 */7 * * *").hours, bits(&[0, 7, 14, 21]));
        assert_eq!(parse("0 0 */10 * *").days, bits(&[1, 11, 21, 31]));
        assert_eq!(parse("0 0 * */4 *").months, bits(&[1, 5, 9]));
        assert_eq!(parse("0 0 * * */2").weekdays, bits(&[0, 2, 4, 6]));
        assert_eq!(parse("* * * * *").minutes, (1 << 60) - 1);
        assert_eq!(parse("0 0 * FEB/3 *").months, bits(&[2, 5, 8, 11]));
        assert_eq!(
            fires("*/20 9-10 * * *", &Zone::utc(), at(JAN_1_2025), 7),
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
        let sunday = parse("0 0 * * 0");
        for spec in ["0 0 * * 7", "0 0 * * SUN", "0 0 * * sun", "0 0 * * 0,7"] {
            assert_eq!(parse(spec).weekdays, sunday.weekdays, "{spec}");
        }
        assert_eq!(parse("0 0 * * 5-7").weekdays, bits(&[0, 5, 6]));
        assert_eq!(parse("0 0 * * 0-7").weekdays, bits(&[0, 1, 2, 3, 4, 5, 6]));
        // 2025-01-01 is a Wednesday.
        assert_eq!(
            next("0 0 * * 7", &Zone::utc(), at(JAN_1_2025)).unwrap(),
            "2025-01-05T00:00:00Z"
        );
    }

    #[test]
    fn restricted_day_fields_match_either() {
        let utc = Zone::utc();
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
        assert!(parse("0 0 13 * FRI").either_day);
        // A day field starting with `*` leaves the other one in charge (Vixie's rule).
        assert!(!parse("0 0 * * 5").either_day);
        assert!(!parse("0 0 13 * *").either_day);
        assert!(!parse("0 0 */2 * 1").either_day);
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
            next("0 3 * * *", &Zone::utc(), summer).unwrap(),
            "2025-06-16T03:00:00Z",
            "a fire at exactly `after` is not strictly after it"
        );
        assert_eq!(
            next("0 3 * * *", &Zone::utc(), at(1_749_956_400 - 1)).unwrap(),
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
        let utc = Zone::utc();
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
        for spec in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "* * 30-31 FEB *"] {
            assert_eq!(next(spec, &Zone::utc(), at(JAN_1_2025)), None, "{spec}");
            assert_eq!(next(spec, &berlin(), at(JAN_1_2025)), None, "{spec}");
        }
        // Generous for unoptimised builds; a search is typically a few hundred steps.
        assert!(started.elapsed() < Duration::from_secs(1));
        // With a day of the week, the Vixie rule makes it fire after all: Mondays in February.
        assert_eq!(
            next("0 0 30 2 MON", &Zone::utc(), at(JAN_1_2025)).unwrap(),
            "2025-02-03T00:00:00Z"
        );
    }

    #[test]
    fn the_end_of_time_has_no_next_minute() {
        // Checked arithmetic: a clock at the last second of i64 is "never", not a panic.
        let end = UNIX_EPOCH
            .checked_add(Duration::from_secs(i64::MAX as u64))
            .unwrap();
        assert_eq!(parse("* * * * *").next_after(&Zone::utc(), end), None);
    }

    #[test]
    fn month_year_and_day_boundaries() {
        let utc = Zone::utc();
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
                .map(|t| Zone::utc().format(t).rfc3339),
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
        assert_eq!(z.format(t).rfc3339, "2125-01-01T00:00:00+01:00");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
