//! Property-based fuzzing of every parser that reads outside input: image references,
//! `WWW-Authenticate` challenges, compose files (project name and the `pin --compose` editor),
//! the state file, and container labels.
//!
//! Two ways to run it, and only the first is CI's:
//!
//! - **Deterministic** (CI, `tests/suite.sh`): every target runs `PP_FUZZ_CASES` cases (default
//!   100,000; 10,000 for the state loader, which writes a file per case) drawn from the fixed
//!   seed below, so a run's verdict depends on the code alone.
//!   `cargo test --release --test fuzz -- --ignored`. Plain `cargo test` runs the same targets
//!   for a few hundred cases, plus every regression below.
//! - **Exploratory** (by hand, never in CI): `PP_FUZZ_SEED=random PP_FUZZ_SECONDS=600 cargo test
//!   --release --test fuzz -- --ignored --nocapture` draws a new seed per round for as long as
//!   asked. A failure prints the shrunk input and the seed that found it; add the input to
//!   `regressions` below as a named test, so it stays fixed in every later run.
// The case count is reported on stderr so CI logs show how much each target ran.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::hash::{BuildHasher as _, Hasher as _};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use pullpilot::compose_edit::{self, EditError, ImageValue};
use pullpilot::reference::{Digest, ImageRef};
use pullpilot::{labels, registry, state};

/// CI's seed. Changing it is a change of the test suite, made in a commit like any other.
const FIXED_SEED: u64 = 0x7075_6c6c_7069_6c6f;
/// Cases per target in the deterministic run, unless a target asks for fewer (the state loader
/// writes a file per case).
const DEFAULT_CASES: u32 = 100_000;
/// Cases per target in plain `cargo test`.
const SMOKE_CASES: u32 = 300;

/// How a target runs this time.
enum Mode {
    /// `cases` cases from `seed`: the same inputs on every run.
    Fixed { seed: u64, cases: u32 },
    /// Rounds of 256 cases, each from a new seed, until `budget` is spent.
    Explore { budget: Duration },
}

fn mode(ignored_run: bool, default_cases: u32) -> Mode {
    if !ignored_run {
        // Plain `cargo test` is always the same run, whatever the environment says.
        return Mode::Fixed {
            seed: FIXED_SEED,
            cases: SMOKE_CASES,
        };
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let seed = var("PP_FUZZ_SEED");
    if seed.as_deref() == Some("random") {
        let secs = var("PP_FUZZ_SECONDS").map_or(60, |s| {
            s.trim()
                .parse()
                .expect("PP_FUZZ_SECONDS takes a whole number of seconds")
        });
        return Mode::Explore {
            budget: Duration::from_secs(secs),
        };
    }
    let seed = seed.map_or(FIXED_SEED, |s| {
        let s = s.trim();
        s.strip_prefix("0x")
            .map_or_else(|| s.parse(), |hex| u64::from_str_radix(hex, 16))
            .expect("PP_FUZZ_SEED takes a number (decimal or 0x…) or `random`")
    });
    let cases = var("PP_FUZZ_CASES").map_or(default_cases, |s| {
        s.trim()
            .parse()
            .expect("PP_FUZZ_CASES takes a whole number")
    });
    Mode::Fixed { seed, cases }
}

fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

/// Runs `test` on values of `strategy` as the mode says; panics on a failure with the shrunk
/// input and the seed that reproduces it.
fn fuzz<S: Strategy>(
    name: &str,
    ignored_run: bool,
    default_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let run = |seed: u64, cases: u32| {
        let config = Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = TestRunner::new_with_rng(config, rng(seed));
        if let Err(e) = runner.run(&strategy, &test) {
            panic!(
                "{name}: {e}\nreproduce with PP_FUZZ_SEED={seed:#x} PP_FUZZ_CASES={cases}, then add \
                 the input to the regressions in tests/fuzz.rs"
            );
        }
    };
    match mode(ignored_run, default_cases) {
        Mode::Fixed { seed, cases } => {
            let started = Instant::now();
            run(seed, cases);
            eprintln!(
                "{name}: {cases} cases from seed {seed:#x} in {:.1?} without a failure",
                started.elapsed()
            );
        }
        Mode::Explore { budget } => {
            let deadline = Instant::now() + budget;
            let mut rounds = 0u64;
            while Instant::now() < deadline {
                run(random_seed(), 256);
                rounds += 1;
            }
            eprintln!(
                "{name}: {} cases from random seeds in {budget:?} without a failure",
                rounds * 256
            );
        }
    }
}

/// One deterministic and one CI-sized test per target.
macro_rules! targets {
    ($($target:ident => $smoke:ident, $full:ident;)*) => {$(
        #[test]
        fn $smoke() {
            $target(false);
        }

        #[test]
        #[ignore = "fuzzing; run with --ignored (PP_FUZZ_CASES, PP_FUZZ_SEED, PP_FUZZ_SECONDS)"]
        fn $full() {
            $target(true);
        }
    )*};
}

targets! {
    reference_target => smoke_reference_parser, fuzz_reference_parser;
    challenge_target => smoke_challenge_parser, fuzz_challenge_parser;
    compose_target => smoke_compose_reader_and_editor, fuzz_compose_reader_and_editor;
    state_target => smoke_state_loader, fuzz_state_loader;
    label_target => smoke_label_parser, fuzz_label_parser;
}

fn reference_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9._:/@\\[\\]-]{0,80}",
        "((localhost|[a-z]{1,8}\\.[a-z]{2,3}|\\[::1\\]|127\\.0\\.0\\.1)(:[0-9]{1,5})?/)?[a-z0-9]{1,6}((/|__|[._-])[a-z0-9]{1,6}){0,3}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,10})?(@sha256:[a-f0-9]{64})?",
    ]
}

fn reference_target(ignored_run: bool) {
    fuzz(
        "reference",
        ignored_run,
        DEFAULT_CASES,
        reference_text(),
        |text| {
            if let Ok(r) = ImageRef::parse(&text) {
                // The normalised form is a fixed point.
                let again = ImageRef::parse(&r.to_string())
                    .map_err(|e| TestCaseError::fail(format!("{r} does not parse again: {e}")))?;
                prop_assert_eq!(&again, &r);
                prop_assert!(!r.repository().is_empty());
                prop_assert!(r.tag().is_some() || r.pinned_digest().is_some());
            }
            Ok(())
        },
    );
}

fn challenge_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(Bearer|Basic|bearer|Negotiate)( [a-z]{1,8}=(\"[^\"\\\\]{0,20}\"|[a-z0-9:/.,]{0,12}))?(, ?[a-z]{1,8}=(\"[^\"]{0,30}\"|[a-z0-9]{0,12})){0,4}(, (Basic|Bearer) realm=\"[a-z]{0,8}\"){0,2}",
    ]
}

fn challenge_target(ignored_run: bool) {
    fuzz(
        "challenge",
        ignored_run,
        DEFAULT_CASES,
        challenge_text(),
        |header| {
            for challenge in registry::parse_challenges(&header) {
                prop_assert_eq!(challenge.scheme.clone(), challenge.scheme.to_lowercase());
                for key in challenge.params.keys() {
                    prop_assert_eq!(key.clone(), key.to_lowercase());
                }
            }
            Ok(())
        },
    );
}

fn compose_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("services:".to_string()),
        "  [a-z]{1,6}:( \\{ image: [a-z:]{1,8} \\})?",
        "    image: (\"|')?[a-z0-9./:${}_-]{0,24}(\"|')?( # [a-z ]{0,10})?",
        "    [a-z_]{1,8}: [a-z0-9 \"'#]{0,16}",
        "      - [a-z0-9:\"]{0,12}",
        "#[ -~]{0,20}",
        "name: [a-z0-9${}]{0,10}",
        "[ -~\t]{0,30}",
        Just(String::new()),
    ];
    (prop::collection::vec(line, 0..24), prop::bool::ANY)
        .prop_map(|(lines, crlf)| lines.join(if crlf { "\r\n" } else { "\n" }))
}

fn compose_target(ignored_run: bool) {
    let digest = Digest::parse(&format!("sha256:{}", "c".repeat(64))).unwrap();
    fuzz(
        "compose",
        ignored_run,
        DEFAULT_CASES,
        (compose_text(), "[a-z]{1,6}"),
        |(text, service)| {
            let _ = serde_yaml::from_str::<serde_yaml::Value>(&text);
            if let Ok(ImageValue::Line { index, .. }) = compose_edit::find_image(&text, &service) {
                let pinned = compose_edit::set_image_line(&text, index, Some(&digest));
                prop_assert_eq!(pinned.lines().count(), text.lines().count());
                let changed = text
                    .lines()
                    .zip(pinned.lines())
                    .filter(|(a, b)| a != b)
                    .count();
                prop_assert!(changed <= 1, "more than the image line changed");
                match compose_edit::find_image(&pinned, &service) {
                    Ok(ImageValue::Line {
                        index: again,
                        value,
                    }) => {
                        prop_assert_eq!(again, index);
                        prop_assert!(value.ends_with(digest.as_str()), "{}", value);
                    }
                    other => {
                        return Err(TestCaseError::fail(format!(
                            "lost the image line: {other:?}"
                        )));
                    }
                }
                let unpinned = compose_edit::set_image_line(&pinned, index, None);
                let twice = compose_edit::set_image_line(&unpinned, index, None);
                prop_assert_eq!(unpinned, twice, "unpinning is idempotent");
            }
            Ok(())
        },
    );
}

fn state_target(ignored_run: bool) {
    let tmp = tempfile::Builder::new()
        .prefix("pp-fuzz-state-")
        .tempdir()
        .unwrap();
    // Created and removed again for every case.
    let dir = tmp.path().join("state");
    let valid = serde_json::to_string(&state::State::default()).unwrap();
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        "\\{\"version\": ?[0-9]{1,3}(, \"(containers|blocked|journal|counters)\": ?(\\{\\}|\\[\\]|null|[0-9]{1,3}|\"[a-z]{0,4}\"))*\\}".prop_map(String::into_bytes),
        (0..valid.len()).prop_map(move |cut| valid.as_bytes()[..cut].to_vec()),
    ];
    fuzz("state", ignored_run, 10_000, bytes, |bytes| {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("state.json"), &bytes).unwrap();
        // Never panics; a damaged file is reported and never silently replaced when read-only.
        let _ = state::load_read_only(&dir);
        prop_assert!(dir.join("state.json").exists());
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    });
}

fn label_target(ignored_run: bool) {
    let key = prop_oneof![
        prop::sample::select(
            labels::ALL
                .iter()
                .map(|(k, _)| (*k).to_string())
                .collect::<Vec<_>>()
        ),
        Just(labels::WATCHTOWER_ENABLE.to_string()),
        "[a-z.-]{1,30}",
    ];
    let map = prop::collection::btree_map(key, any::<String>(), 0..8);
    fuzz(
        "labels",
        ignored_run,
        DEFAULT_CASES,
        (map, prop::bool::ANY),
        |(map, compat): (BTreeMap<String, String>, bool)| {
            let parsed = labels::parse(&map, compat);
            for error in &parsed.errors {
                prop_assert!(
                    map.contains_key(&error.label),
                    "an error names a label that was set"
                );
                prop_assert!(!error.to_string().is_empty());
            }
            Ok(())
        },
    );
}

/// Inputs that once failed a target, kept as plain tests.
mod regressions {
    use super::*;

    #[test]
    fn default_tag_is_part_of_the_normal_form() {
        let short = ImageRef::parse("0").unwrap();
        assert_eq!(ImageRef::parse(&short.to_string()).unwrap(), short);
        assert_eq!(
            ImageRef::parse("nginx").unwrap(),
            ImageRef::parse("docker.io/library/nginx:latest").unwrap()
        );
    }

    /// Found by `fuzz_compose_reader_and_editor`: pinning an empty `image:` followed by a
    /// comment glued the digest to the comment (`image:  @sha256:…# `), which then read back as
    /// the value `@sha256:…#`.
    #[test]
    fn empty_image_value_before_a_comment_is_refused() {
        let text = "services:\n\to:\n    image:  # ";
        assert_eq!(
            compose_edit::find_image(text, "o"),
            Err(EditError::EmptyImage("o".into()))
        );
    }

    #[test]
    fn references_that_looked_like_ports() {
        assert!(ImageRef::parse("nginx:a/b").is_err());
        assert!(ImageRef::parse("[::1]/app:x").is_ok());
    }
}
