//! Property-based fuzzing of every parser that reads outside input: image references,
//! `WWW-Authenticate` challenges, compose files (project name and the `pin --compose` editor),
//! the state file, and container labels.
//!
//! Each target runs random and structured inputs for `PP_FUZZ_SECONDS` (default 2) seconds. The
//! suite runs them with `PP_FUZZ_SECONDS=60 cargo test --release --test fuzz -- --ignored`.
//! A failure prints the shrunk input; add it to `regressions` below so it stays fixed.
// The case count is reported on stderr so CI logs show how much each target ran.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use pullpilot::compose_edit::{self, ImageValue};
use pullpilot::reference::{Digest, ImageRef};
use pullpilot::{labels, registry, state};

fn budget() -> Duration {
    let secs = std::env::var("PP_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    Duration::from_secs(secs)
}

/// Runs `test` on values of `strategy` until the time budget is spent; panics on a failure
/// with the shrunk input.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let deadline = Instant::now() + budget();
    let mut rounds = 0u64;
    while Instant::now() < deadline {
        let mut runner = TestRunner::new(Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        });
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("{name}: {e}");
        }
        rounds += 1;
    }
    eprintln!(
        "{name}: {} cases in {:?} without a failure",
        rounds * 256,
        budget()
    );
}

fn reference_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9._:/@\\[\\]-]{0,80}",
        "((localhost|[a-z]{1,8}\\.[a-z]{2,3}|\\[::1\\]|127\\.0\\.0\\.1)(:[0-9]{1,5})?/)?[a-z0-9]{1,6}((/|__|[._-])[a-z0-9]{1,6}){0,3}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,10})?(@sha256:[a-f0-9]{64})?",
    ]
}

#[test]
#[ignore = "fuzzing; run with --ignored (PP_FUZZ_SECONDS sets the time)"]
fn fuzz_reference_parser() {
    fuzz("reference", reference_text(), |text| {
        if let Ok(r) = ImageRef::parse(&text) {
            // The normalised form is a fixed point.
            let again = ImageRef::parse(&r.to_string())
                .map_err(|e| TestCaseError::fail(format!("{r} does not parse again: {e}")))?;
            prop_assert_eq!(&again, &r);
            prop_assert!(!r.repository().is_empty());
            prop_assert!(r.tag().is_some() || r.pinned_digest().is_some());
        }
        Ok(())
    });
}

fn challenge_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(Bearer|Basic|bearer|Negotiate)( [a-z]{1,8}=(\"[^\"\\\\]{0,20}\"|[a-z0-9:/.,]{0,12}))?(, ?[a-z]{1,8}=(\"[^\"]{0,30}\"|[a-z0-9]{0,12})){0,4}(, (Basic|Bearer) realm=\"[a-z]{0,8}\"){0,2}",
    ]
}

#[test]
#[ignore = "fuzzing; run with --ignored (PP_FUZZ_SECONDS sets the time)"]
fn fuzz_challenge_parser() {
    fuzz("challenge", challenge_text(), |header| {
        for challenge in registry::parse_challenges(&header) {
            prop_assert_eq!(challenge.scheme.clone(), challenge.scheme.to_lowercase());
            for key in challenge.params.keys() {
                prop_assert_eq!(key.clone(), key.to_lowercase());
            }
        }
        Ok(())
    });
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

#[test]
#[ignore = "fuzzing; run with --ignored (PP_FUZZ_SECONDS sets the time)"]
fn fuzz_compose_reader_and_editor() {
    let digest = Digest::parse(&format!("sha256:{}", "c".repeat(64))).unwrap();
    fuzz(
        "compose",
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

#[test]
#[ignore = "fuzzing; run with --ignored (PP_FUZZ_SECONDS sets the time)"]
fn fuzz_state_loader() {
    let dir = std::env::temp_dir().join(format!("pp-fuzz-state-{}", std::process::id()));
    let valid = serde_json::to_string(&state::State::default()).unwrap();
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        "\\{\"version\": ?[0-9]{1,3}(, \"(containers|blocked|journal|counters)\": ?(\\{\\}|\\[\\]|null|[0-9]{1,3}|\"[a-z]{0,4}\"))*\\}".prop_map(String::into_bytes),
        (0..valid.len()).prop_map(move |cut| valid.as_bytes()[..cut].to_vec()),
    ];
    fuzz("state", bytes, |bytes| {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("state.json"), &bytes).unwrap();
        // Never panics; a damaged file is reported and never silently replaced when read-only.
        let _ = state::load_read_only(&dir);
        prop_assert!(dir.join("state.json").exists());
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    });
}

#[test]
#[ignore = "fuzzing; run with --ignored (PP_FUZZ_SECONDS sets the time)"]
fn fuzz_label_parser() {
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

    #[test]
    fn references_that_looked_like_ports() {
        assert!(ImageRef::parse("nginx:a/b").is_err());
        assert!(ImageRef::parse("[::1]/app:x").is_ok());
    }
}
