//! Time zones: `PP_TIMEZONE` read through `jiff` from the system zone database
//! (`/usr/share/zoneinfo`, or `$TZDIR`), and times formatted in a zone the three ways messages
//! show them. No I/O beyond the zone database lookup in [`parse`].

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// What the errors suggest.
const FORM: &str = "an IANA zone name such as Europe/Berlin";

/// A time as shown to people and as machines want it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Formatted {
    /// `2025-03-30 14:05:09 CEST`
    pub(crate) human: String,
    /// `2025-03-30T14:05:09+02:00`
    pub(crate) rfc3339: String,
    /// `Sun, 30 Mar 2025 14:05:09 +0200` (for e-mail `Date:`)
    pub(crate) rfc5322: String,
}

/// `UTC` always works; other names are looked up, case-insensitively, in the system zone
/// database. The error says why the name cannot be used.
pub fn parse(name: &str) -> Result<TimeZone, String> {
    let name = name.trim();
    let zone = TimeZone::get(name).map_err(|e| format!("{name:?} is not {FORM}: {e}"))?;
    if zone.is_unknown() {
        return Err(format!("{name:?} is not {FORM}"));
    }
    Ok(zone)
}

/// The zone's IANA name, for logs.
pub fn name(zone: &TimeZone) -> &str {
    zone.iana_name().unwrap_or("(unnamed zone)")
}

/// Formats `time` in `zone`, to the second. Times beyond the years -9999 to 9999 show as the
/// nearest end of that range.
pub(crate) fn format(zone: &TimeZone, time: SystemTime) -> Formatted {
    let ts = Timestamp::try_from(time).unwrap_or(if time >= UNIX_EPOCH {
        Timestamp::MAX
    } else {
        Timestamp::MIN
    });
    let info = zone.to_offset_info(ts);
    let offset = info.offset().seconds();
    let local = zone.to_datetime(ts);
    let sign = if offset < 0 { '-' } else { '+' };
    let (oh, om) = (offset.abs() / 3600, offset.abs() / 60 % 60);
    let abbrev = info.abbreviation();
    let abbrev = if !abbrev.is_empty() && abbrev.chars().all(|c| c.is_ascii_alphabetic()) {
        abbrev.to_string()
    } else if om == 0 {
        format!("UTC{sign}{oh:02}")
    } else {
        format!("UTC{sign}{oh:02}:{om:02}")
    };
    let rfc3339_offset = if offset == 0 {
        "Z".to_string()
    } else {
        format!("{sign}{oh:02}:{om:02}")
    };
    let date = local.strftime("%Y-%m-%d");
    let clock = local.strftime("%H:%M:%S");
    Formatted {
        human: format!("{date} {clock} {abbrev}"),
        rfc3339: format!("{date}T{clock}{rfc3339_offset}"),
        rfc5322: format!(
            "{} {clock} {sign}{oh:02}{om:02}",
            local.strftime("%a, %-d %b %Y")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// A minimal version 2 `TZif` image: one transition table and a footer rule.
    fn tzif(transitions: &[(i64, u8)], types: &[(i32, bool, &str)], footer: &str) -> Vec<u8> {
        let mut chars = Vec::new();
        let mut ttinfo = Vec::new();
        for (offset, dst, abbrev) in types {
            ttinfo.extend_from_slice(&offset.to_be_bytes());
            ttinfo.push(u8::from(*dst));
            ttinfo.push(u8::try_from(chars.len()).unwrap());
            chars.extend_from_slice(abbrev.as_bytes());
            chars.push(0);
        }
        let header = || {
            let mut h = b"TZif2".to_vec();
            h.extend_from_slice(&[0; 15]);
            for n in [0, 0, 0, transitions.len(), types.len(), chars.len()] {
                h.extend_from_slice(&u32::try_from(n).unwrap().to_be_bytes());
            }
            h
        };
        let mut out = header();
        for (t, _) in transitions {
            out.extend_from_slice(&i32::try_from(*t).unwrap_or(i32::MIN).to_be_bytes());
        }
        out.extend(transitions.iter().map(|(_, i)| *i));
        out.extend_from_slice(&ttinfo);
        out.extend_from_slice(&chars);
        out.extend(header());
        for (t, _) in transitions {
            out.extend_from_slice(&t.to_be_bytes());
        }
        out.extend(transitions.iter().map(|(_, i)| *i));
        out.extend_from_slice(&ttinfo);
        out.extend_from_slice(&chars);
        out.extend_from_slice(format!("\n{footer}\n").as_bytes());
        out
    }

    fn berlin() -> TimeZone {
        // LMT until January 1893, then CET; everything later comes from the footer rule (jiff
        // checks that the last transition agrees with it, so this one is in winter).
        let data = tzif(
            &[(-2_429_000_000, 1)],
            &[
                (3208, false, "LMT"),
                (3600, false, "CET"),
                (7200, true, "CEST"),
            ],
            "CET-1CEST,M3.5.0,M10.5.0/3",
        );
        TimeZone::tzif("Europe/Berlin", &data).unwrap()
    }

    /// The UTC date of the first change of offset in `year` under the POSIX rule `rule`.
    fn first_change(rule: &str, year: i16) -> String {
        let tz = TimeZone::posix(rule).unwrap();
        let jan1 = jiff::civil::date(year, 1, 1)
            .to_zoned(TimeZone::UTC)
            .unwrap();
        let change = tz.following(jan1.timestamp()).next().unwrap();
        change.timestamp().strftime("%Y-%m-%d").to_string()
    }

    #[test]
    fn utc_formats_all_three_ways() {
        let f = format(&TimeZone::UTC, at(1_735_689_600 + 3_723)); // 2025-01-01 01:02:03
        assert_eq!(f.human, "2025-01-01 01:02:03 UTC");
        assert_eq!(f.rfc3339, "2025-01-01T01:02:03Z");
        assert_eq!(f.rfc5322, "Wed, 1 Jan 2025 01:02:03 +0000");
    }

    #[test]
    fn footer_rule_switches_at_the_eu_dates() {
        let z = berlin();
        // 2025-03-30 00:59:59 UTC is still CET; 01:00:00 UTC is CEST.
        assert_eq!(
            format(&z, at(1_743_296_399)).human,
            "2025-03-30 01:59:59 CET"
        );
        assert_eq!(
            format(&z, at(1_743_296_400)).human,
            "2025-03-30 03:00:00 CEST"
        );
        // 2025-10-26 00:59:59 UTC is CEST; 01:00:00 UTC is CET again.
        assert_eq!(
            format(&z, at(1_761_440_399)).rfc3339,
            "2025-10-26T02:59:59+02:00"
        );
        assert_eq!(
            format(&z, at(1_761_440_400)).rfc3339,
            "2025-10-26T02:00:00+01:00"
        );
        assert_eq!(
            format(&z, at(1_761_440_400)).rfc5322,
            "Sun, 26 Oct 2025 02:00:00 +0100"
        );
    }

    #[test]
    fn southern_hemisphere_and_numeric_abbreviations() {
        let sydney = TimeZone::posix("AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        let abbrev = |secs: i64| {
            let ts = Timestamp::from_second(secs).unwrap();
            sydney.to_offset_info(ts).abbreviation().to_string()
        };
        assert_eq!(abbrev(1_736_000_000), "AEDT"); // January
        assert_eq!(abbrev(1_751_000_000), "AEST"); // June
        let data = tzif(&[], &[(-10_800, false, "-03")], "<-03>3");
        let z = TimeZone::tzif("America/Sao_Paulo", &data).unwrap();
        let f = format(&z, at(1_735_689_600));
        assert_eq!(f.human, "2024-12-31 21:00:00 UTC-03");
        assert_eq!(f.rfc3339, "2024-12-31T21:00:00-03:00");
        let kolkata = TimeZone::posix("IST-5:30").unwrap();
        assert_eq!(kolkata.to_offset(Timestamp::UNIX_EPOCH).seconds(), 19_800);
    }

    #[test]
    fn times_inside_the_table_use_it() {
        let z = berlin();
        assert_eq!(format(&z, at(0)).human, "1970-01-01 01:00:00 CET");
        let lmt = UNIX_EPOCH - Duration::from_secs(2_500_000_000);
        let f = format(&z, lmt);
        assert!(
            f.human.ends_with(" LMT") && f.rfc3339.ends_with("+00:53"),
            "{f:?}"
        );
    }

    #[test]
    fn rule_dates() {
        // Last Sunday of March 2025 is the 30th; first Sunday of November 2025 the 2nd.
        assert_eq!(first_change("AAA0BBB,M3.5.0/0,J365/0", 2025), "2025-03-30");
        assert_eq!(first_change("AAA0BBB,M11.1.0/0,J365/0", 2025), "2025-11-02");
        // Jn never counts February 29; n (zero-based) does.
        assert_eq!(first_change("AAA0BBB,J60/0,J365/0", 2024), "2024-03-01");
        assert_eq!(first_change("AAA0BBB,59/0,J365/0", 2024), "2024-02-29");
        assert!(TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").is_ok());
        assert!(TimeZone::posix("<+0330>-3:30").is_ok());
        assert!(TimeZone::posix("XX").is_err());
        assert!(TimeZone::posix("CET-1CEST,M13.5.0,M10.5.0").is_err());
    }

    #[test]
    fn bad_names_and_files_are_errors() {
        assert!(parse("../etc/passwd").is_err());
        assert!(parse("/etc/localtime").is_err());
        assert!(parse("Mars/Olympus").is_err());
        assert!(parse("Etc/Unknown").is_err());
        assert!(TimeZone::tzif("x", b"nope").is_err());
        assert!(TimeZone::tzif("x", b"TZif2").is_err());
        assert_eq!(name(&parse(" UTC ").unwrap()), "UTC");
        let err = parse("Mars/Olympus").unwrap_err();
        assert!(
            err.starts_with("\"Mars/Olympus\" is not an IANA zone name such as Europe/Berlin"),
            "{err}"
        );
    }

    #[test]
    fn system_zone_files_parse_when_present() {
        for zone_name in [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Sydney",
            "Asia/Kolkata",
        ] {
            if std::path::Path::new("/usr/share/zoneinfo")
                .join(zone_name)
                .is_file()
            {
                let z = parse(zone_name).unwrap();
                assert_eq!(name(&z), zone_name);
                // Summer 2025 and winter 2025 differ except in Kolkata.
                let july = format(&z, at(1_751_328_000)).rfc3339;
                let jan = format(&z, at(1_735_689_600)).rfc3339;
                assert_eq!(july.len(), 25, "{zone_name}: {july}");
                assert_eq!(
                    zone_name == "Asia/Kolkata",
                    july[19..] == jan[19..],
                    "{zone_name}"
                );
                let want = match zone_name {
                    "Europe/Berlin" => ("+02:00", "+01:00"),
                    "America/New_York" => ("-04:00", "-05:00"),
                    "Australia/Sydney" => ("+10:00", "+11:00"),
                    _ => ("+05:30", "+05:30"),
                };
                assert_eq!((&july[19..], &jan[19..]), want, "{zone_name}");
            }
        }
    }
}
