//! Version tags: which newer tag a container may move to (`io.pullpilot.track`). Pure.
//!
//! A version tag is `[v]N(.N)*[-PRERELEASE][-SUFFIX]`: an optional `v`, one to four numbers,
//! an optional pre-release (`-rc1`, `-beta.2`, `-alpha`, …) and an optional suffix naming a
//! variant (`-alpine`, `-bookworm`). A candidate keeps the current tag's *shape*: the same
//! prefix, the same number of numbers and the same suffix. Pre-releases are chosen only when
//! the current tag is one or the operator allows them. Order is `SemVer` 2.0 precedence: numbers
//! numerically, a release above its pre-releases, pre-release identifiers left to right
//! (numbers below words); a word ending in a number (`rc10`) compares by that number, so rc10
//! follows rc9. Tags that do not parse are ignored.
//!
//! `patch` keeps the first two numbers, `minor` the first, `major` none. `regex:<pattern>`
//! orders the tags the pattern matches by its capture groups, read as numbers.

use std::cmp::Ordering;
use std::fmt;

/// How a container follows its image (`io.pullpilot.track`, `PP_TRACK`).
#[derive(Clone, Debug, Default)]
pub enum Track {
    /// The tag's digest only (no tag changes).
    #[default]
    Digest,
    Patch,
    Minor,
    Major,
    /// Tags matching the pattern, ordered by its capture groups as numbers.
    Regex(Pattern),
}

/// `digest`, for contexts that need a `&'static Track` (tests, defaults).
pub static DIGEST: Track = Track::Digest;

/// A compiled `regex:` pattern (compared by its text).
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    re: regex::Regex,
}

impl PartialEq for Track {
    fn eq(&self, other: &Track) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Track {}

/// What a valid `track` value looks like, for error messages.
pub const TRACK_FORM: &str = "digest, patch, minor, major, or regex:<pattern> with at least one \
     capture group of digits (for example regex:^build-(\\d+)$)";

impl Track {
    /// Parses a `track` value. A pattern must compile and have a capture group.
    pub fn parse(value: &str) -> Result<Track, String> {
        let v = value.trim();
        if let Some(pattern) = v.strip_prefix("regex:") {
            let re = regex::Regex::new(pattern)
                .map_err(|e| format!("the pattern does not compile ({e})"))?;
            if re.captures_len() < 2 {
                return Err("the pattern has no capture group to order the tags by".into());
            }
            return Ok(Track::Regex(Pattern {
                text: pattern.to_string(),
                re,
            }));
        }
        match v.to_ascii_lowercase().as_str() {
            "digest" => Ok(Track::Digest),
            "patch" => Ok(Track::Patch),
            "minor" => Ok(Track::Minor),
            "major" => Ok(Track::Major),
            _ => Err(format!("expected {TRACK_FORM}")),
        }
    }

    /// Whether tags are followed at all (anything but `digest`).
    pub fn follows_tags(&self) -> bool {
        !matches!(self, Track::Digest)
    }

    /// How many leading numbers a candidate must share with the current version.
    fn kept(&self) -> usize {
        match self {
            Track::Patch => 2,
            Track::Minor => 1,
            _ => 0,
        }
    }
}

impl fmt::Display for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Track::Digest => f.write_str("digest"),
            Track::Patch => f.write_str("patch"),
            Track::Minor => f.write_str("minor"),
            Track::Major => f.write_str("major"),
            Track::Regex(p) => write!(f, "regex:{}", p.text),
        }
    }
}

/// One identifier of a pre-release, as ordered.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ident {
    Num(u64),
    Word(String),
}

impl Ord for Ident {
    fn cmp(&self, other: &Ident) -> Ordering {
        match (self, other) {
            (Ident::Num(a), Ident::Num(b)) => a.cmp(b),
            (Ident::Num(_), Ident::Word(_)) => Ordering::Less,
            (Ident::Word(_), Ident::Num(_)) => Ordering::Greater,
            (Ident::Word(a), Ident::Word(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Ident {
    fn partial_cmp(&self, other: &Ident) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A parsed version tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    prefix: String,
    numbers: Vec<u64>,
    pre: Option<Vec<Ident>>,
    suffix: String,
}

/// Words that start a pre-release (`-rc1`, `-beta.2`, `-alpha`, `-preview3`).
const PRE_WORDS: &[&str] = &[
    "alpha", "beta", "rc", "pre", "preview", "dev", "snapshot", "nightly", "canary", "next",
];

/// Most numbers a version tag may have.
const MAX_NUMBERS: usize = 4;

impl Version {
    /// Parses a tag, or `None` when it is not a version tag.
    pub fn parse(tag: &str) -> Option<Version> {
        let (prefix, rest) = match tag.strip_prefix('v') {
            Some(rest) => ("v", rest),
            None => ("", tag),
        };
        let core_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (core, tail) = rest.split_at(core_end);
        let mut numbers = Vec::new();
        for part in core.split('.') {
            if part.is_empty() || part.len() > 19 {
                return None;
            }
            numbers.push(part.parse::<u64>().ok()?);
        }
        if numbers.is_empty() || numbers.len() > MAX_NUMBERS {
            return None;
        }
        if tail.is_empty() {
            return Some(Version {
                prefix: prefix.into(),
                numbers,
                pre: None,
                suffix: String::new(),
            });
        }
        let tail = tail.strip_prefix('-')?;
        if tail.is_empty() {
            return None;
        }
        let (first, after) = tail.split_once('-').unwrap_or((tail, ""));
        match prerelease(first) {
            Some(pre) => Some(Version {
                prefix: prefix.into(),
                numbers,
                pre: Some(pre),
                suffix: after.to_string(),
            }),
            None => Some(Version {
                prefix: prefix.into(),
                numbers,
                pre: None,
                suffix: tail.to_string(),
            }),
        }
    }

    fn same_shape(&self, other: &Version) -> bool {
        self.prefix == other.prefix
            && self.numbers.len() == other.numbers.len()
            && self.suffix == other.suffix
    }

    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some()
    }

    /// `16.x` for `minor` on 16.2, `1.2.x` for `patch` on 1.2.3: what the track keeps.
    fn kept_range(&self, kept: usize) -> String {
        let kept = kept.min(self.numbers.len());
        let mut parts: Vec<String> = self.numbers[..kept].iter().map(u64::to_string).collect();
        parts.push("x".into());
        format!("{}{}", self.prefix, parts.join("."))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.numbers
            .cmp(&other.numbers)
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The identifiers of a pre-release segment, or `None` when it does not start with a
/// pre-release word.
fn prerelease(segment: &str) -> Option<Vec<Ident>> {
    let lower = segment.to_ascii_lowercase();
    let word = PRE_WORDS
        .iter()
        .filter(|w| lower.starts_with(*w))
        .max_by_key(|w| w.len())?;
    let after = &lower[word.len()..];
    // `rc1`, `rc.1`, `rc-`: the word must end at a digit, a dot or the end.
    if !(after.is_empty()
        || after.starts_with('.')
        || after.starts_with(|c: char| c.is_ascii_digit()))
    {
        return None;
    }
    let mut idents = Vec::new();
    for part in lower.split('.') {
        if part.is_empty() || !part.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        let digits_at = part
            .find(|c: char| c.is_ascii_digit())
            .filter(|&at| part[at..].chars().all(|c| c.is_ascii_digit()));
        match digits_at {
            Some(0) => idents.push(Ident::Num(part.parse().ok()?)),
            Some(at) => {
                idents.push(Ident::Word(part[..at].to_string()));
                idents.push(Ident::Num(part[at..].parse().ok()?));
            }
            None => idents.push(Ident::Word(part.to_string())),
        }
    }
    Some(idents)
}

/// The tags a track moves between, and why the current one cannot be followed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Choice {
    /// The newest tag the track allows, when it is newer than the current one.
    pub best: Option<String>,
    /// A still newer tag that the track level excludes (reported, never applied), with what
    /// the track keeps (`16.x`).
    pub held_back: Option<HeldBack>,
}

/// A newer version the track level does not allow.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HeldBack {
    pub tag: String,
    pub track: String,
    /// What the track keeps, e.g. `16.x`.
    pub keeps: String,
}

impl fmt::Display for HeldBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is available; track={} keeps {}",
            self.tag, self.track, self.keeps
        )
    }
}

/// Why the current tag cannot be followed by its track.
pub fn unfit(current: &str, track: &Track) -> Option<String> {
    match track {
        Track::Digest => None,
        Track::Regex(p) => regex_key(p, current).is_none().then(|| {
            format!(
                "the tag {current} does not match the track pattern {} with numbers in every \
                 capture group",
                p.text
            )
        }),
        _ => Version::parse(current).is_none().then(|| {
            format!(
                "the tag {current} is not a version tag such as 1.2.3, v2.1 or 16.2-alpine, so \
                 track={track} cannot follow it"
            )
        }),
    }
}

/// Chooses among `tags` for a container on `current` with `track`. `prerelease` allows
/// pre-release candidates when the current tag is not one.
pub fn choose(current: &str, track: &Track, prerelease: bool, tags: &[String]) -> Choice {
    match track {
        Track::Digest => Choice::default(),
        Track::Regex(p) => {
            let Some(now) = regex_key(p, current) else {
                return Choice::default();
            };
            let best = tags
                .iter()
                .filter_map(|t| regex_key(p, t).map(|k| (k, t)))
                .filter(|(k, _)| *k > now)
                .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
            Choice {
                best: best.map(|(_, t)| t.clone()),
                held_back: None,
            }
        }
        _ => {
            let Some(now) = Version::parse(current) else {
                return Choice::default();
            };
            let allow_pre = prerelease || now.is_prerelease();
            let kept = track.kept().min(now.numbers.len());
            let newer: Vec<(Version, &String)> = tags
                .iter()
                .filter_map(|t| Version::parse(t).map(|v| (v, t)))
                .filter(|(v, _)| v.same_shape(&now) && (allow_pre || !v.is_prerelease()))
                .filter(|(v, _)| *v > now)
                .collect();
            // Equal versions spelled differently cannot happen within one shape, but keep
            // the choice stable anyway: the lexically first tag wins a tie.
            let top = |list: &mut dyn Iterator<Item = &(Version, &String)>| {
                list.max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
                    .map(|(v, t)| (v.clone(), (*t).clone()))
            };
            let best = top(&mut newer
                .iter()
                .filter(|(v, _)| v.numbers[..kept] == now.numbers[..kept]));
            let overall = top(&mut newer.iter());
            let held_back = match (&best, overall) {
                (Some((b, _)), Some((o, tag))) if o > *b => Some(tag),
                (None, Some((_, tag))) => Some(tag),
                _ => None,
            }
            .map(|tag| HeldBack {
                tag,
                track: track.to_string(),
                keeps: now.kept_range(kept),
            });
            Choice {
                best: best.map(|(_, t)| t),
                held_back,
            }
        }
    }
}

/// The capture groups of `tag` as numbers, when the whole pattern matches and every group
/// that took part is digits.
fn regex_key(p: &Pattern, tag: &str) -> Option<Vec<u64>> {
    let caps = p.re.captures(tag)?;
    let mut key = Vec::new();
    for group in caps.iter().skip(1).flatten() {
        let text = group.as_str();
        if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        key.push(text.parse().ok()?);
    }
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    fn best(current: &str, track: &str, list: &[&str]) -> Option<String> {
        choose(current, &Track::parse(track).unwrap(), false, &tags(list)).best
    }

    const SERIES: &[&str] = &[
        "1.2.3",
        "1.2.4",
        "1.2.10",
        "1.2.9",
        "1.3.0",
        "2.0.0",
        "1.2.11-rc1",
        "latest",
        "1.2",
        "v1.2.12",
        "1.2.12-alpine",
        "1.2.x",
        "",
    ];

    #[test]
    fn track_levels_choose_numerically_within_the_shape() {
        assert_eq!(best("1.2.3", "patch", SERIES).as_deref(), Some("1.2.10"));
        assert_eq!(best("1.2.3", "minor", SERIES).as_deref(), Some("1.3.0"));
        assert_eq!(best("1.2.3", "major", SERIES).as_deref(), Some("2.0.0"));
        assert_eq!(best("1.2.3", "digest", SERIES), None);
        assert_eq!(best("2.0.0", "major", SERIES), None, "nothing newer");
        // A v-prefixed and a suffixed variant move only within their own shape.
        let shaped = &[
            "v1.4.0",
            "v1.4.2",
            "1.4.9",
            "v1.5.0",
            "v1.4.3-alpine",
            "v1.4.1-alpine",
            "v1.4.9-rc1-alpine",
        ];
        assert_eq!(best("v1.4.0", "patch", shaped).as_deref(), Some("v1.4.2"));
        assert_eq!(best("v1.4.0", "minor", shaped).as_deref(), Some("v1.5.0"));
        assert_eq!(
            best("v1.4.0-alpine", "patch", shaped).as_deref(),
            Some("v1.4.3-alpine")
        );
        // Two numbers stay two numbers.
        assert_eq!(
            best("16.2", "minor", &["16.3", "16.10", "16.3.1", "17.0", "16"]).as_deref(),
            Some("16.10")
        );
    }

    #[test]
    fn prereleases_only_when_current_is_one_or_allowed() {
        let list = &["1.2.4-rc1", "1.2.4-rc10", "1.2.4-rc9", "1.2.3"];
        assert_eq!(best("1.2.3", "patch", list), None);
        let allowed = choose("1.2.3", &Track::Patch, true, &tags(list));
        assert_eq!(
            allowed.best.as_deref(),
            Some("1.2.4-rc10"),
            "rc10 follows rc9"
        );
        assert_eq!(
            best("1.2.4-rc1", "patch", list).as_deref(),
            Some("1.2.4-rc10")
        );
        // The release beats its pre-releases.
        assert_eq!(
            best("1.2.4-rc1", "patch", &["1.2.4-rc2", "1.2.4"]).as_deref(),
            Some("1.2.4")
        );
        assert_eq!(
            best(
                "2.0.0-beta.2",
                "patch",
                &["2.0.0-beta.10", "2.0.0-alpha.9", "2.0.0-beta.1"]
            )
            .as_deref(),
            Some("2.0.0-beta.10")
        );
    }

    #[test]
    fn held_back_versions_are_reported_with_what_the_track_keeps() {
        let c = choose(
            "16.2",
            &Track::Minor,
            false,
            &tags(&["16.3", "17.0", "17.1"]),
        );
        assert_eq!(c.best.as_deref(), Some("16.3"));
        let held = c.held_back.unwrap();
        assert_eq!(
            held.to_string(),
            "17.1 is available; track=minor keeps 16.x"
        );
        let c = choose("1.2.3", &Track::Patch, false, &tags(SERIES));
        assert_eq!(c.held_back.unwrap().tag, "2.0.0");
        let c = choose("1.2.10", &Track::Patch, false, &tags(&["1.3.0"]));
        assert_eq!(c.best, None);
        assert_eq!(c.held_back.unwrap().keeps, "1.2.x");
        assert_eq!(
            choose("2.0.0", &Track::Major, false, &tags(SERIES)).held_back,
            None
        );
    }

    #[test]
    fn regex_tracks_order_by_captured_numbers() {
        let builds = &[
            "build-9",
            "build-10",
            "build-100",
            "build-x",
            "nightly-500",
            "build-",
        ];
        assert_eq!(
            best("build-9", r"regex:^build-(\d+)$", builds).as_deref(),
            Some("build-100")
        );
        let dates = &[
            "2024.01.05",
            "2024.10.01",
            "2024.09.30",
            "2023.12.31",
            "2024.1.5x",
        ];
        assert_eq!(
            best("2024.01.05", r"regex:^(\d{4})\.(\d{2})\.(\d{2})$", dates).as_deref(),
            Some("2024.10.01")
        );
        assert!(unfit("latest", &Track::parse(r"regex:^build-(\d+)$").unwrap()).is_some());
        assert!(unfit("build-3", &Track::parse(r"regex:^build-(\d+)$").unwrap()).is_none());
    }

    #[test]
    fn invalid_track_values_are_errors() {
        for bad in ["", "newest", "regex:(", "regex:^build-\\d+$", "semver"] {
            assert!(Track::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Track::parse(" Minor ").unwrap(), Track::Minor);
        assert_eq!(
            Track::parse(r"regex:^v(\d+)$").unwrap().to_string(),
            r"regex:^v(\d+)$"
        );
        assert!(
            unfit("latest", &Track::Minor)
                .unwrap()
                .contains("not a version tag")
        );
        assert!(unfit("latest", &Track::Digest).is_none());
    }

    #[test]
    fn parsing_rejects_what_is_not_a_version() {
        for tag in [
            "latest",
            "v",
            "1..2",
            "1.2.3.4.5",
            "1.2.3rc1",
            "1.2-",
            ".1",
            "1.2.3_x",
            "99999999999999999999",
        ] {
            assert_eq!(Version::parse(tag), None, "{tag}");
        }
        let v = Version::parse("v1.4.0-rc.1-alpine").unwrap();
        assert!(v.is_prerelease());
        assert_eq!(v.suffix, "alpine");
        assert_eq!(Version::parse("2.4.1-1").unwrap().suffix, "1");
        assert_eq!(
            Version::parse("16.2-bookworm").unwrap().numbers,
            vec![16, 2]
        );
    }
}
