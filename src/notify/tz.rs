//! Time zones for message times: a tiny reader of the system's `TZif` files
//! (`/usr/share/zoneinfo/<Area/City>`, RFC 8536, versions 1–4) including the POSIX TZ rule in the
//! footer that covers times after the last transition, plus the civil-date arithmetic needed to
//! format a time. No I/O beyond reading the one zone file in [`Zone::load`].

use std::time::{SystemTime, UNIX_EPOCH};

const ZONEINFO: &str = "/usr/share/zoneinfo";

/// A zone: UTC, or transitions plus the rule for later times.
#[derive(Clone, Debug)]
pub(crate) struct Zone {
    name: String,
    transitions: Vec<(i64, usize)>,
    types: Vec<LocalType>,
    rule: Option<Rule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct LocalType {
    offset: i32,
    abbrev: String,
}

/// A POSIX TZ string such as `CET-1CEST,M3.5.0,M10.5.0/3`.
#[derive(Clone, Debug)]
struct Rule {
    std: LocalType,
    dst: Option<(LocalType, RuleDate, i32, RuleDate, i32)>,
}

#[derive(Clone, Copy, Debug)]
enum RuleDate {
    /// `Jn`: day 1–365, February 29 never counted.
    Julian1(u16),
    /// `n`: day 0–365, February 29 counted.
    Julian0(u16),
    /// `Mm.w.d`: month, week 1–5 (5 = last), weekday 0–6 (Sunday = 0).
    Month(u8, u8, u8),
}

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

/// A local date and time in a zone, from [`Zone::civil`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    /// 1–12.
    pub(crate) month: u8,
    /// 1–31.
    pub(crate) day: u8,
    pub(crate) hour: u8,
    pub(crate) minute: u8,
    pub(crate) second: u8,
    /// 0 = Sunday … 6 = Saturday.
    pub(crate) weekday: u8,
    /// Days in this month (28–31).
    pub(crate) month_len: u8,
    /// Seconds east of UTC.
    pub(crate) offset: i32,
}

impl Zone {
    pub(crate) fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            transitions: Vec::new(),
            types: vec![LocalType {
                offset: 0,
                abbrev: "UTC".into(),
            }],
            rule: None,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `UTC` (and the empty string) always work; other names are read from the system zone
    /// database. The error says why a zone could not be used.
    pub(crate) fn load(name: &str) -> Result<Zone, String> {
        let name = name.trim();
        if name.is_empty() || matches!(name, "UTC" | "Etc/UTC" | "Z" | "Zulu" | "Etc/Zulu") {
            return Ok(Zone::utc());
        }
        if name.starts_with('/') || name.split('/').any(|p| p.is_empty() || p.starts_with('.')) {
            return Err(format!(
                "{name:?} is not an IANA zone name such as Europe/Berlin"
            ));
        }
        let path = std::path::Path::new(ZONEINFO).join(name);
        let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        Zone::from_tzif(name, &bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub(crate) fn from_tzif(name: &str, data: &[u8]) -> Result<Zone, String> {
        let mut zone = parse_tzif(data)?;
        zone.name = name.to_string();
        Ok(zone)
    }

    fn local_type_at(&self, t: i64) -> LocalType {
        let after_table = self.transitions.last().is_none_or(|&(last, _)| t >= last);
        if after_table && let Some(rule) = &self.rule {
            return rule.local_type_at(t);
        }
        let idx = self.transitions.partition_point(|&(at, _)| at <= t);
        // Times before the first transition use type 0 (RFC 8536 §3.2).
        let ty = match idx {
            0 => 0,
            i => self.transitions[i - 1].1,
        };
        self.types[ty].clone()
    }

    /// The local date and time at `unix` seconds.
    pub(crate) fn civil(&self, unix: i64) -> Civil {
        let offset = self.local_type_at(unix).offset;
        let local = unix + i64::from(offset);
        let days = local.div_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let secs = local.rem_euclid(86_400);
        let next_month = if month == 12 {
            days_from_civil(year + 1, 1, 1)
        } else {
            days_from_civil(year, month + 1, 1)
        };
        Civil {
            year,
            month: month as u8,
            day: day as u8,
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: (secs % 60) as u8,
            // 1970-01-01 was a Thursday (4).
            weekday: (days + 4).rem_euclid(7) as u8,
            month_len: (next_month - days_from_civil(year, month, 1)) as u8,
            offset,
        }
    }

    /// Formats `time` in this zone, to the second.
    pub(crate) fn format(&self, time: SystemTime) -> Formatted {
        let unix = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => after.as_secs() as i64,
            Err(before) => -(before.duration().as_secs() as i64),
        };
        let lt = self.local_type_at(unix);
        let local = unix + i64::from(lt.offset);
        let days = local.div_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let secs = local.rem_euclid(86_400);
        let clock = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
        let sign = if lt.offset < 0 { '-' } else { '+' };
        let (oh, om) = (lt.offset.abs() / 3600, lt.offset.abs() / 60 % 60);
        let abbrev = if !lt.abbrev.is_empty() && lt.abbrev.chars().all(|c| c.is_ascii_alphabetic())
        {
            lt.abbrev.clone()
        } else if om == 0 {
            format!("UTC{sign}{oh:02}")
        } else {
            format!("UTC{sign}{oh:02}:{om:02}")
        };
        // 1970-01-01 was a Thursday.
        let weekday =
            ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
        let month_name = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ][(month - 1) as usize];
        let rfc3339_offset = if lt.offset == 0 {
            "Z".to_string()
        } else {
            format!("{sign}{oh:02}:{om:02}")
        };
        let date = format!("{year:04}-{month:02}-{day:02}");
        Formatted {
            human: format!("{date} {clock} {abbrev}"),
            rfc3339: format!("{date}T{clock}{rfc3339_offset}"),
            rfc5322: format!(
                "{weekday}, {day} {month_name} {year:04} {clock} {sign}{oh:02}{om:02}"
            ),
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or("truncated TZif file")?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn be32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

fn read_header(r: &mut Reader<'_>) -> Result<Header, String> {
    if r.take(4)? != b"TZif" {
        return Err("not a TZif file".into());
    }
    let version = r.take(1)?[0];
    r.take(15)?;
    let mut counts = [0usize; 6];
    for c in &mut counts {
        *c = r.be32()? as usize;
    }
    Ok(Header {
        version,
        isutcnt: counts[0],
        isstdcnt: counts[1],
        leapcnt: counts[2],
        timecnt: counts[3],
        typecnt: counts[4],
        charcnt: counts[5],
    })
}

fn parse_tzif(data: &[u8]) -> Result<Zone, String> {
    let mut r = Reader { data, pos: 0 };
    let mut h = read_header(&mut r)?;
    let mut time_size = 4;
    if h.version >= b'2' {
        // Skip the version 1 block; the 64-bit block after it is authoritative.
        r.take(h.timecnt * 5 + h.typecnt * 6 + h.charcnt + h.leapcnt * 8 + h.isstdcnt + h.isutcnt)?;
        h = read_header(&mut r)?;
        time_size = 8;
    }
    if h.typecnt == 0 {
        return Err("TZif file without local time types".into());
    }
    let times = r.take(h.timecnt * time_size)?;
    let indices = r.take(h.timecnt)?;
    let raw_types = r.take(h.typecnt * 6)?;
    let chars = r.take(h.charcnt)?;
    r.take(h.leapcnt * (time_size + 4) + h.isstdcnt + h.isutcnt)?;

    let mut types = Vec::with_capacity(h.typecnt);
    for t in raw_types.chunks_exact(6) {
        let offset = i32::from_be_bytes([t[0], t[1], t[2], t[3]]);
        let start = usize::from(t[5]).min(chars.len());
        let len = chars[start..].iter().position(|&c| c == 0).unwrap_or(0);
        let abbrev = String::from_utf8_lossy(&chars[start..start + len]).into_owned();
        types.push(LocalType { offset, abbrev });
    }
    let mut transitions = Vec::with_capacity(h.timecnt);
    for (i, &idx) in indices.iter().enumerate() {
        let at = if time_size == 8 {
            let b: [u8; 8] = times[i * 8..i * 8 + 8].try_into().expect("8 bytes");
            i64::from_be_bytes(b)
        } else {
            let b: [u8; 4] = times[i * 4..i * 4 + 4].try_into().expect("4 bytes");
            i64::from(i32::from_be_bytes(b))
        };
        if usize::from(idx) >= types.len() {
            return Err("TZif transition names a missing type".into());
        }
        transitions.push((at, usize::from(idx)));
    }
    let rule = if time_size == 8 {
        let footer = &data[r.pos..];
        let footer = footer.strip_prefix(b"\n").unwrap_or(footer);
        let end = footer
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(footer.len());
        let text = String::from_utf8_lossy(&footer[..end]).into_owned();
        if text.is_empty() {
            None
        } else {
            Some(parse_rule(&text).ok_or_else(|| format!("unsupported TZ rule {text:?}"))?)
        }
    } else {
        None
    };
    Ok(Zone {
        name: String::new(),
        transitions,
        types,
        rule,
    })
}

fn parse_rule(text: &str) -> Option<Rule> {
    let mut p = RuleParser {
        s: text.as_bytes(),
        i: 0,
    };
    let std_name = p.name()?;
    let std_offset = -p.hms()?;
    let std = LocalType {
        offset: std_offset,
        abbrev: std_name,
    };
    if p.done() {
        return Some(Rule { std, dst: None });
    }
    let dst_name = p.name()?;
    let dst_offset = if p.peek() == Some(b',') || p.done() {
        std_offset + 3600
    } else {
        -p.hms()?
    };
    let dst = LocalType {
        offset: dst_offset,
        abbrev: dst_name,
    };
    // Without a rule part, POSIX leaves the dates to the implementation; the US rules are it.
    let (start, start_time, end, end_time) = if p.done() {
        (
            RuleDate::Month(3, 2, 0),
            7200,
            RuleDate::Month(11, 1, 0),
            7200,
        )
    } else {
        p.expect(b',')?;
        let (start, start_time) = p.date_time()?;
        p.expect(b',')?;
        let (end, end_time) = p.date_time()?;
        (start, start_time, end, end_time)
    };
    p.done().then_some(Rule {
        std,
        dst: Some((dst, start, start_time, end, end_time)),
    })
}

struct RuleParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl RuleParser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.peek() == Some(b)).then(|| self.i += 1)
    }

    fn name(&mut self) -> Option<String> {
        let start = self.i;
        let name = if self.peek() == Some(b'<') {
            let close = self.s[start..].iter().position(|&b| b == b'>')?;
            self.i = start + close + 1;
            &self.s[start + 1..start + close]
        } else {
            while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                self.i += 1;
            }
            &self.s[start..self.i]
        };
        (name.len() >= 3).then(|| String::from_utf8_lossy(name).into_owned())
    }

    fn number(&mut self) -> Option<i32> {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    /// `[+-]hh[:mm[:ss]]` in seconds.
    fn hms(&mut self) -> Option<i32> {
        let sign = match self.peek() {
            Some(b'-') => {
                self.i += 1;
                -1
            }
            Some(b'+') => {
                self.i += 1;
                1
            }
            _ => 1,
        };
        let mut secs = self.number()? * 3600;
        if self.expect(b':').is_some() {
            secs += self.number()? * 60;
            if self.expect(b':').is_some() {
                secs += self.number()?;
            }
        }
        Some(sign * secs)
    }

    fn date_time(&mut self) -> Option<(RuleDate, i32)> {
        let date = match self.peek()? {
            b'J' => {
                self.i += 1;
                RuleDate::Julian1(u16::try_from(self.number()?).ok()?)
            }
            b'M' => {
                self.i += 1;
                let m = self.number()?;
                self.expect(b'.')?;
                let w = self.number()?;
                self.expect(b'.')?;
                let d = self.number()?;
                if !(1..=12).contains(&m) || !(1..=5).contains(&w) || !(0..=6).contains(&d) {
                    return None;
                }
                RuleDate::Month(m as u8, w as u8, d as u8)
            }
            _ => RuleDate::Julian0(u16::try_from(self.number()?).ok()?),
        };
        let time = if self.expect(b'/').is_some() {
            self.hms()?
        } else {
            7200
        };
        Some((date, time))
    }
}

impl Rule {
    fn local_type_at(&self, t: i64) -> LocalType {
        let Some((dst, start, start_time, end, end_time)) = &self.dst else {
            return self.std.clone();
        };
        let year = civil_from_days((t + i64::from(self.std.offset)).div_euclid(86_400)).0;
        // DST starts at a local standard time and ends at a local daylight time.
        let on = |y: i64| {
            let s =
                days_of(*start, y) * 86_400 + i64::from(*start_time) - i64::from(self.std.offset);
            let e = days_of(*end, y) * 86_400 + i64::from(*end_time) - i64::from(dst.offset);
            if s < e {
                (s..e).contains(&t)
            } else {
                !(e..s).contains(&t)
            }
        };
        if on(year) {
            dst.clone()
        } else {
            self.std.clone()
        }
    }
}

/// Days since the epoch of a rule date in year `y`.
fn days_of(date: RuleDate, y: i64) -> i64 {
    let jan1 = days_from_civil(y, 1, 1);
    match date {
        RuleDate::Julian0(n) => jan1 + i64::from(n),
        RuleDate::Julian1(n) => {
            let n = i64::from(n);
            let leap_shift = i64::from(is_leap(y) && n >= 60);
            jan1 + n - 1 + leap_shift
        }
        RuleDate::Month(m, w, d) => {
            let first = days_from_civil(y, i64::from(m), 1);
            // 1970-01-01 was a Thursday (4).
            let first_wd = (first + 4).rem_euclid(7);
            let mut day = first + (i64::from(d) - first_wd).rem_euclid(7) + 7 * (i64::from(w) - 1);
            let next_month = if m == 12 {
                days_from_civil(y + 1, 1, 1)
            } else {
                days_from_civil(y, i64::from(m) + 1, 1)
            };
            while day >= next_month {
                day -= 7;
            }
            day
        }
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Howard Hinnant's `days_from_civil`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`: (year, month 1–12, day 1–31).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
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

    fn berlin() -> Zone {
        // LMT until 1893, then CET; everything later comes from the footer rule.
        let data = tzif(
            &[(-2_422_054_408, 1)],
            &[
                (3208, false, "LMT"),
                (3600, false, "CET"),
                (7200, true, "CEST"),
            ],
            "CET-1CEST,M3.5.0,M10.5.0/3",
        );
        Zone::from_tzif("Europe/Berlin", &data).unwrap()
    }

    #[test]
    fn utc_formats_all_three_ways() {
        let f = Zone::utc().format(at(1_735_689_600 + 3_723)); // 2025-01-01 01:02:03
        assert_eq!(f.human, "2025-01-01 01:02:03 UTC");
        assert_eq!(f.rfc3339, "2025-01-01T01:02:03Z");
        assert_eq!(f.rfc5322, "Wed, 1 Jan 2025 01:02:03 +0000");
    }

    #[test]
    fn footer_rule_switches_at_the_eu_dates() {
        let z = berlin();
        // 2025-03-30 00:59:59 UTC is still CET; 01:00:00 UTC is CEST.
        assert_eq!(z.format(at(1_743_296_399)).human, "2025-03-30 01:59:59 CET");
        assert_eq!(
            z.format(at(1_743_296_400)).human,
            "2025-03-30 03:00:00 CEST"
        );
        // 2025-10-26 00:59:59 UTC is CEST; 01:00:00 UTC is CET again.
        assert_eq!(
            z.format(at(1_761_440_399)).rfc3339,
            "2025-10-26T02:59:59+02:00"
        );
        assert_eq!(
            z.format(at(1_761_440_400)).rfc3339,
            "2025-10-26T02:00:00+01:00"
        );
        assert_eq!(
            z.format(at(1_761_440_400)).rfc5322,
            "Sun, 26 Oct 2025 02:00:00 +0100"
        );
    }

    #[test]
    fn southern_hemisphere_and_numeric_abbreviations() {
        let sydney = parse_rule("AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        assert_eq!(sydney.local_type_at(1_736_000_000).abbrev, "AEDT"); // January
        assert_eq!(sydney.local_type_at(1_751_000_000).abbrev, "AEST"); // June
        let data = tzif(&[], &[(-10_800, false, "-03")], "<-03>3");
        let z = Zone::from_tzif("America/Sao_Paulo", &data).unwrap();
        let f = z.format(at(1_735_689_600));
        assert_eq!(f.human, "2024-12-31 21:00:00 UTC-03");
        assert_eq!(f.rfc3339, "2024-12-31T21:00:00-03:00");
        let kolkata = parse_rule("IST-5:30").unwrap();
        assert_eq!(kolkata.std.offset, 19_800);
    }

    #[test]
    fn times_inside_the_table_use_it() {
        let z = berlin();
        assert_eq!(z.format(at(0)).human, "1970-01-01 01:00:00 CET");
        let lmt = UNIX_EPOCH - Duration::from_secs(2_500_000_000);
        let f = z.format(lmt);
        assert!(
            f.human.ends_with(" LMT") && f.rfc3339.ends_with("+00:53"),
            "{f:?}"
        );
    }

    #[test]
    fn rule_dates() {
        // Last Sunday of March 2025 is the 30th; first Sunday of November 2025 the 2nd.
        assert_eq!(
            days_of(RuleDate::Month(3, 5, 0), 2025),
            days_from_civil(2025, 3, 30)
        );
        assert_eq!(
            days_of(RuleDate::Month(11, 1, 0), 2025),
            days_from_civil(2025, 11, 2)
        );
        assert_eq!(
            days_of(RuleDate::Julian1(60), 2024),
            days_from_civil(2024, 3, 1)
        );
        assert_eq!(
            days_of(RuleDate::Julian0(59), 2024),
            days_from_civil(2024, 2, 29)
        );
        assert!(parse_rule("EST5EDT,M3.2.0,M11.1.0").is_some());
        assert!(parse_rule("<+0330>-3:30").is_some());
        assert!(parse_rule("XX").is_none());
        assert!(parse_rule("CET-1CEST,M13.5.0,M10.5.0").is_none());
    }

    #[test]
    fn bad_names_and_files_are_errors() {
        assert!(Zone::load("../etc/passwd").is_err());
        assert!(Zone::load("/etc/localtime").is_err());
        assert!(Zone::load("Mars/Olympus").is_err());
        assert!(Zone::from_tzif("x", b"nope").is_err());
        assert!(Zone::from_tzif("x", b"TZif2").is_err());
        assert_eq!(Zone::load(" UTC ").unwrap().name(), "UTC");
    }

    #[test]
    fn system_zone_files_parse_when_present() {
        for name in [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Sydney",
            "Asia/Kolkata",
        ] {
            if std::path::Path::new(ZONEINFO).join(name).is_file() {
                let z = Zone::load(name).unwrap();
                // Summer 2025 and winter 2025 differ except in Kolkata.
                let july = z.format(at(1_751_328_000)).rfc3339;
                let jan = z.format(at(1_735_689_600)).rfc3339;
                assert_eq!(july.len(), 25, "{name}: {july}");
                assert_eq!(name == "Asia/Kolkata", july[19..] == jan[19..], "{name}");
                let want = match name {
                    "Europe/Berlin" => ("+02:00", "+01:00"),
                    "America/New_York" => ("-04:00", "-05:00"),
                    "Australia/Sydney" => ("+10:00", "+11:00"),
                    _ => ("+05:30", "+05:30"),
                };
                assert_eq!((&july[19..], &jan[19..]), want, "{name}");
            }
        }
    }
}
