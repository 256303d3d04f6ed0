//! The update protocol, heal, followers, rollback, notifications and the "kill at step N then
//! heal" table, run against the in-memory runtime ([`crate::runtime::fake`]). Each case asserts
//! the containers, the tag, the state and (where they matter) the notifications at the end.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

use super::announce::{self, Notify};
use super::check::Evaluated;
use super::heal::{self, Healed};
use super::session::SystemClock;
use super::update::{Executor, UpdateKnobs, UpdateOutcome};
use super::{Session, rollback};
use crate::decide::Decision;
use crate::engine::discover::{self, Discovered};
use crate::engine::scope::Scope;
use crate::fault;
use crate::labels;
use crate::notify::{Event, EventKind};
use crate::reference::{Digest, ImageRef};
use crate::registry::{RegistryClient, RegistryOptions};
use crate::runtime::Runtime as _;
use crate::runtime::fake::{Behaviour, Fake};
use crate::settings::Settings;
use crate::state::{self, HistoryEntry, State, Store, record};

const REPO: &str = "ghcr.io/acme/web";
const REF: &str = "ghcr.io/acme/web:1";
const NAME: &str = "shop-web-1";

fn digest(c: char) -> Digest {
    Digest::parse(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
}

fn old_image() -> String {
    format!("sha256:{}", "1".repeat(64))
}

fn new_image() -> String {
    format!("sha256:{}", "2".repeat(64))
}

/// A fresh directory for one test bed, deleted when the bed drops.
fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("pp-engine-")
        .tempdir()
        .unwrap()
}

/// Notifications, recorded.
#[derive(Default)]
struct Recorder(RefCell<Vec<Event>>);

impl Notify for Recorder {
    fn send(&self, event: &Event) {
        self.0.borrow_mut().push(event.clone());
    }
}

impl Recorder {
    fn kinds(&self) -> Vec<EventKind> {
        self.0.borrow().iter().map(|e| e.kind).collect()
    }
}

/// One host: a fake runtime holding `shop-web-1` on the old image, a registry that serves the
/// new digest, and a data directory.
struct Bed {
    fake: Fake,
    store: Store,
    dir: TempDir,
    registry: RegistryClient,
    cleanup: bool,
    post_hook: Option<String>,
}

impl Bed {
    fn new(new_behaviour: Behaviour) -> Bed {
        Bed::with(new_behaviour, &[], true)
    }

    fn with(new_behaviour: Behaviour, extra_labels: &[(&str, &str)], running: bool) -> Bed {
        let fake = Fake::new();
        fake.image(&old_image(), REF, digest('a').as_str());
        fake.publish(REPO, digest('b').as_str(), &new_image(), new_behaviour);
        let mut labels = vec![
            (labels::COMPOSE_PROJECT, "shop"),
            (labels::COMPOSE_SERVICE, "web"),
        ];
        labels.extend_from_slice(extra_labels);
        fake.container(NAME, &old_image(), REF, &labels, running);
        let dir = temp_dir();
        let registry = RegistryClient::new(RegistryOptions {
            docker_config_dir: Some(dir.path().join("docker")),
            ..RegistryOptions::default()
        })
        .unwrap();
        Bed {
            fake,
            store: Store::unlocked(dir.path()),
            dir,
            registry,
            cleanup: false,
            post_hook: None,
        }
    }

    fn exec(&self) -> Executor<'_> {
        self.exec_with(None)
    }

    fn exec_with<'a>(&'a self, compose: Option<&'a dyn crate::compose::Compose>) -> Executor<'a> {
        Executor {
            runtime: &self.fake,
            registry: &self.registry,
            store: &self.store,
            knobs: UpdateKnobs {
                health_timeout: Duration::ZERO,
                health_stable: Duration::ZERO,
                cleanup: self.cleanup,
                pre_update_hook: None,
                post_update_hook: self.post_hook.clone(),
                hook_timeout: Duration::from_secs(10),
            },
            clock: &SystemClock,
            compose,
        }
    }

    fn discovered(&self, name: &str) -> Discovered {
        let scope = Scope {
            project: Some("shop".into()),
            own_container: None,
        };
        discover::discover(&self.fake, &scope, false)
            .unwrap()
            .into_iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} is discovered"))
    }

    /// Updates `shop-web-1` to the new digest.
    fn update(&self, state: &mut State) -> UpdateOutcome {
        let c = self.discovered(NAME);
        self.exec().update(
            state,
            &c,
            &ImageRef::parse(REF).unwrap(),
            &digest('b'),
            None,
        )
    }

    /// The state as a restarted process would read it.
    fn saved(&self) -> State {
        state::load(self.dir.path()).unwrap().state
    }

    fn heal(&self) -> (State, Vec<Healed>) {
        let mut state = self.saved();
        let healed = heal::heal_all(&self.exec(), &mut state);
        (state, healed)
    }

    /// `(name, image, running)` of every container.
    fn world(&self) -> Vec<(String, String, bool)> {
        self.fake.containers()
    }

    fn only(&self, image: &str, running: bool) {
        assert_eq!(
            self.world(),
            vec![(NAME.to_string(), image.to_string(), running)],
            "calls: {:#?}",
            self.fake.calls()
        );
    }
}

fn history(state: &State) -> Vec<String> {
    state
        .containers
        .get("shop/web")
        .map(|c| c.history.iter().map(|h| h.outcome.clone()).collect())
        .unwrap_or_default()
}

fn blocked(state: &State) -> bool {
    state
        .blocked
        .get(REPO)
        .is_some_and(|b| b.contains_key(&digest('b')))
}

// ---------------------------------------------------------------- the update protocol

#[test]
fn a_healthy_replacement_takes_over() {
    for behaviour in [Behaviour::Healthy, Behaviour::Runs] {
        let bed = Bed::new(behaviour);
        let mut state = State::default();
        let outcome = bed.update(&mut state);
        assert_eq!(
            outcome,
            UpdateOutcome::Updated {
                from: Some(digest('a')),
                to: digest('b')
            },
            "{behaviour:?}"
        );
        bed.only(&new_image(), true);
        assert_eq!(bed.fake.tag(REF), Some(new_image()));
        let saved = bed.saved();
        assert!(saved.journal.is_empty());
        assert_eq!(history(&saved), ["updated"]);
        assert!(!blocked(&saved));
        // Without cleanup the old image stays.
        assert!(bed.fake.has_image(&old_image()));
    }
}

#[test]
fn cleanup_removes_the_replaced_image() {
    let mut bed = Bed::new(Behaviour::Healthy);
    bed.cleanup = true;
    let mut state = State::default();
    assert!(matches!(
        bed.update(&mut state),
        UpdateOutcome::Updated { .. }
    ));
    assert!(!bed.fake.has_image(&old_image()));
    assert!(bed.fake.has_image(&new_image()));
}

#[test]
fn a_failing_replacement_is_rolled_back_and_its_digest_blocked() {
    let cases = [
        (Behaviour::Unhealthy, "its healthcheck reported unhealthy"),
        (Behaviour::Exits(3), "it exited with code 3"),
        (Behaviour::CrashLoop, "restarted"),
        (Behaviour::NeverHealthy, "did not become healthy within"),
    ];
    for (behaviour, why) in cases {
        let bed = Bed::new(behaviour);
        let mut state = State::default();
        let outcome = bed.update(&mut state);
        match &outcome {
            UpdateOutcome::RolledBack { digest: d, reason } => {
                assert_eq!(*d, digest('b'));
                assert!(reason.contains(why), "{behaviour:?}: {reason}");
            }
            other => panic!("{behaviour:?}: {other:?}"),
        }
        bed.only(&old_image(), true);
        assert_eq!(bed.fake.tag(REF), Some(old_image()), "{behaviour:?}");
        let saved = bed.saved();
        assert!(saved.journal.is_empty());
        assert!(blocked(&saved), "{behaviour:?}");
        assert_eq!(history(&saved), ["rolled-back"]);
        assert!(saved.containers["shop/web"].candidate.is_none());
    }
}

#[test]
fn the_same_image_under_a_new_digest_is_not_recreated() {
    let bed = Bed::new(Behaviour::Healthy);
    bed.fake
        .publish(REPO, digest('b').as_str(), &old_image(), Behaviour::Runs);
    let mut state = State::default();
    assert_eq!(
        bed.update(&mut state),
        UpdateOutcome::Unchanged { to: digest('b') }
    );
    bed.only(&old_image(), true);
    assert!(!bed.fake.calls().iter().any(|c| c.starts_with("create")));
    assert_eq!(history(&bed.saved()), ["unchanged-image"]);
}

#[test]
fn a_failed_pull_changes_nothing() {
    let bed = Bed::new(Behaviour::Healthy);
    bed.fake.fail("pull", REPO, 1);
    let mut state = State::default();
    match bed.update(&mut state) {
        UpdateOutcome::Failed { reason } => {
            assert!(reason.contains("nothing was changed"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    bed.only(&old_image(), true);
    assert_eq!(bed.fake.tag(REF), Some(old_image()));
    assert!(state.journal.is_empty());
    assert!(!blocked(&state));
}

#[test]
fn a_stopped_container_is_updated_but_not_started() {
    let bed = Bed::with(Behaviour::Healthy, &[], false);
    let mut state = State::default();
    assert!(matches!(
        bed.update(&mut state),
        UpdateOutcome::Updated { .. }
    ));
    bed.only(&new_image(), false);
    assert!(!bed.fake.calls().iter().any(|c| c.starts_with("start")));
}

#[test]
fn a_foreign_container_under_a_temporary_name_stops_the_update() {
    let bed = Bed::new(Behaviour::Healthy);
    bed.fake
        .container("shop-web-1-pp-new", &old_image(), REF, &[], false);
    let mut state = State::default();
    match bed.update(&mut state) {
        UpdateOutcome::Failed { reason } => {
            assert!(
                reason.contains("shop-web-1-pp-new already exists"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bed.world().len(), 2);
    assert_eq!(bed.fake.get(NAME).unwrap().image_id, old_image());
    assert!(state.journal.is_empty());
}

#[test]
fn a_docker_failure_mid_update_restores_the_old_container() {
    // (operation, target fragment): each fails once, during the update only.
    let cases = [
        ("create", "pp-new"),
        ("stop", ""),
        ("rename", "pp-old"),
        ("rename", &format!(" {NAME}$")),
        ("start", ""),
    ];
    for (op, target) in cases {
        let bed = Bed::new(Behaviour::Healthy);
        bed.fake.fail(op, target, 1);
        let mut state = State::default();
        match bed.update(&mut state) {
            UpdateOutcome::Failed { reason } => {
                assert!(
                    reason.contains("the old container was restored"),
                    "{op}: {reason}"
                );
            }
            other => panic!("{op} {target}: {other:?}"),
        }
        bed.only(&old_image(), true);
        assert_eq!(bed.fake.tag(REF), Some(old_image()), "{op}");
        let saved = bed.saved();
        assert!(saved.journal.is_empty(), "{op}");
        assert!(
            !blocked(&saved),
            "{op}: a Docker failure is no reason to block"
        );
    }
}

#[test]
fn a_restore_that_fails_too_asks_for_a_person_and_keeps_the_journal() {
    let bed = Bed::new(Behaviour::Unhealthy);
    // The replacement fails its gate; giving the old container its name back fails too.
    bed.fake.fail("rename", &format!(" {NAME}$"), 2);
    let mut state = State::default();
    // The first rename to the name is the replacement's (it succeeds only if not failed):
    // here it fails, the update restores, and the restore's own rename fails as well.
    match bed.update(&mut state) {
        UpdateOutcome::ActionNeeded { reason } => {
            assert!(
                reason.contains("restoring the old container also failed"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bed.saved().journal.len(), 1, "heal must see it next time");
    // The next run heals it.
    let (state, healed) = bed.heal();
    assert_eq!(healed.len(), 1);
    assert_eq!(healed[0].action, "restored");
    bed.only(&old_image(), true);
    assert!(state.journal.is_empty());
}

#[test]
fn a_refusing_pre_update_hook_changes_nothing() {
    let bed = Bed::with(Behaviour::Healthy, &[(labels::PRE_UPDATE, "exit 7")], true);
    let mut state = State::default();
    match bed.update(&mut state) {
        UpdateOutcome::Failed { reason } => {
            assert!(reason.contains("pre-update hook refused"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    bed.only(&old_image(), true);
    assert_eq!(bed.fake.tag(REF), Some(old_image()));
}

#[test]
fn the_post_update_hook_is_told_the_outcome() {
    let mut bed = Bed::new(Behaviour::Unhealthy);
    let out = bed.dir.path().join("hook.out");
    bed.post_hook = Some(format!(
        "printf '%s %s' \"$PULLPILOT_HOOK\" \"$PULLPILOT_OUTCOME\" > '{}'",
        out.display()
    ));
    let mut state = State::default();
    let c = bed.discovered(NAME);
    let outcome = bed.update(&mut state);
    bed.exec().post_update_hook(&c, &digest('b'), &outcome);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "post-update rolled-back"
    );
}

#[test]
fn history_stays_within_its_limit_on_every_path() {
    for (behaviour, last) in [
        (Behaviour::Healthy, "updated"),
        (Behaviour::Unhealthy, "rolled-back"),
    ] {
        let bed = Bed::new(behaviour);
        let mut state = State::default();
        let entry = HistoryEntry {
            tag: None,
            previous_tag: None,
            at: SystemTime::UNIX_EPOCH,
            digest: digest('c'),
            image_id: "sha256:x".into(),
            previous_digest: None,
            previous_image_id: None,
            outcome: "earlier".into(),
        };
        for _ in 0..record::HISTORY_LIMIT {
            record::applied(&mut state, "shop/web", entry.clone());
        }
        bed.update(&mut state);
        let history = &bed.saved().containers["shop/web"].history;
        assert_eq!(history.len(), record::HISTORY_LIMIT, "{behaviour:?}");
        assert_eq!(history.last().unwrap().outcome, last, "{behaviour:?}");
    }
}

// ---------------------------------------------------------------- followers

/// `shop-vpn-1` (the parent, updated) and `shop-app-1`, which shares its network namespace.
fn followers_bed(follower: Behaviour, parent: Behaviour) -> Bed {
    let bed = Bed::new(parent);
    // The parent is shop-web-1; the follower runs its own image.
    let app_image = format!("sha256:{}", "3".repeat(64));
    bed.fake
        .image(&app_image, "ghcr.io/acme/app:1", digest('d').as_str());
    bed.fake.behave(&app_image, follower);
    let parent_id = bed.fake.get(NAME).unwrap().id;
    let app = bed.fake.container(
        "shop-app-1",
        &app_image,
        "ghcr.io/acme/app:1",
        &[
            (labels::COMPOSE_PROJECT, "shop"),
            (labels::COMPOSE_SERVICE, "app"),
        ],
        true,
    );
    bed.fake
        .network_mode(&app, &format!("container:{parent_id}"));
    bed
}

#[test]
fn followers_are_recreated_onto_the_new_parent() {
    let bed = followers_bed(Behaviour::Runs, Behaviour::Healthy);
    let mut state = State::default();
    assert!(matches!(
        bed.update(&mut state),
        UpdateOutcome::Updated { .. }
    ));
    let parent = bed.fake.get(NAME).unwrap();
    assert_eq!(parent.image_id, new_image());
    let app = bed.fake.get("shop-app-1").unwrap();
    assert!(app.running);
    assert_eq!(app.network_mode, format!("container:{}", parent.id));
    assert_eq!(
        bed.world().len(),
        2,
        "the old ones are removed: {:?}",
        bed.world()
    );
    assert!(bed.saved().journal.is_empty());
}

#[test]
fn a_follower_on_the_parents_tag_takes_the_new_image_too() {
    let bed = Bed::new(Behaviour::Healthy);
    let parent_id = bed.fake.get(NAME).unwrap().id;
    let side = bed.fake.container(
        "shop-side-1",
        &old_image(),
        REF,
        &[
            (labels::COMPOSE_PROJECT, "shop"),
            (labels::COMPOSE_SERVICE, "side"),
        ],
        true,
    );
    bed.fake
        .network_mode(&side, &format!("container:{parent_id}"));
    let mut state = State::default();
    let outcome = bed.update(&mut state);
    assert!(
        matches!(outcome, UpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
    let parent = bed.fake.get(NAME).unwrap();
    let side = bed.fake.get("shop-side-1").unwrap();
    assert_eq!(side.image_id, new_image(), "one tag, one image");
    assert_eq!(side.network_mode, format!("container:{}", parent.id));
    assert_eq!(bed.world().len(), 2, "{:?}", bed.world());
}

#[test]
fn a_failing_follower_rolls_the_whole_group_back() {
    let bed = followers_bed(Behaviour::Exits(1), Behaviour::Healthy);
    let old_parent = bed.fake.get(NAME).unwrap().id;
    let old_app = bed.fake.get("shop-app-1").unwrap().id;
    let mut state = State::default();
    match bed.update(&mut state) {
        UpdateOutcome::RolledBack { reason, .. } => {
            assert!(
                reason.contains("shop-app-1 (which shares its network) failed"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let parent = bed.fake.get(NAME).unwrap();
    let app = bed.fake.get("shop-app-1").unwrap();
    assert_eq!(
        (parent.id.as_str(), parent.running),
        (old_parent.as_str(), true)
    );
    assert_eq!(app.id, old_app);
    assert_eq!(app.network_mode, format!("container:{old_parent}"));
    assert_eq!(bed.world().len(), 2, "{:?}", bed.world());
    assert!(blocked(&bed.saved()));
}

// ---------------------------------------------------------------- kill at step N, then heal

/// Where a kill at each step leaves things after the next run's heal: the image that runs
/// under the name, and whether heal had anything to do.
fn expected_after_kill(point: &str, healthy: bool) -> (String, bool) {
    match point {
        "after-pull" => (old_image(), false),
        "after-journal" | "after-create" | "after-stop" | "after-rename-old" => (old_image(), true),
        "after-rename-new" | "after-start" | "during-gate" => {
            (if healthy { new_image() } else { old_image() }, true)
        }
        "after-pass" => (new_image(), true),
        other => panic!("unknown point {other}"),
    }
}

#[test]
fn a_kill_at_any_step_is_healed_by_the_next_run() {
    for healthy in [true, false] {
        for point in fault::POINTS {
            let behaviour = if healthy {
                Behaviour::Healthy
            } else {
                Behaviour::Unhealthy
            };
            // "after-pass" is reached only by a passing update.
            if *point == "after-pass" && !healthy {
                continue;
            }
            let bed = Bed::new(behaviour);
            fault::crash_at(Some(point));
            let mut state = State::default();
            let died = catch_unwind(AssertUnwindSafe(|| bed.update(&mut state)));
            fault::crash_at(None);
            let payload = died.expect_err(point);
            assert!(
                payload.downcast_ref::<fault::Crashed>().is_some(),
                "{point}"
            );

            let (state, healed) = bed.heal();
            let (image, had_work) = expected_after_kill(point, healthy);
            let case = format!("{point}, healthy={healthy}");
            bed.only(&image, true);
            assert_eq!(bed.fake.tag(REF), Some(image.clone()), "{case}");
            assert_eq!(!healed.is_empty(), had_work, "{case}: {healed:?}");
            assert!(state.journal.is_empty(), "{case}");
            assert_eq!(bed.saved().journal, state.journal, "{case}: saved");
            let rolled_back =
                !healthy && ["after-rename-new", "after-start", "during-gate"].contains(point);
            assert_eq!(blocked(&state), rolled_back, "{case}");
            if image == new_image() {
                assert_eq!(history(&state), ["updated"], "{case}");
                assert!(matches!(healed[0].outcome, UpdateOutcome::Updated { .. }));
            }
            // A second heal has nothing left to do.
            assert!(bed.heal().1.is_empty(), "{case}");
        }
    }
}

// ---------------------------------------------------------------- heal: journal × runtime

#[test]
fn heal_needs_a_person_when_both_containers_are_gone() {
    let bed = Bed::new(Behaviour::Healthy);
    fault::crash_at(Some("after-create"));
    let mut state = State::default();
    let _ = catch_unwind(AssertUnwindSafe(|| bed.update(&mut state)));
    fault::crash_at(None);
    bed.fake.delete(NAME);
    bed.fake.delete("shop-web-1-pp-new");
    let (state, healed) = bed.heal();
    assert!(matches!(
        healed[0].outcome,
        UpdateOutcome::ActionNeeded { .. }
    ));
    assert_eq!(healed[0].action, "none");
    assert_eq!(state.journal.len(), 1, "kept for the person to see");
}

#[test]
fn heal_gates_a_replacement_whose_old_container_was_removed_by_hand() {
    for (behaviour, image_after) in [
        (Behaviour::Healthy, Some(new_image())),
        (Behaviour::Unhealthy, None),
    ] {
        let bed = Bed::new(behaviour);
        fault::crash_at(Some("after-create"));
        let mut state = State::default();
        let _ = catch_unwind(AssertUnwindSafe(|| bed.update(&mut state)));
        fault::crash_at(None);
        bed.fake.delete(NAME);
        let (state, healed) = bed.heal();
        assert_eq!(healed[0].action, "gated", "{behaviour:?}");
        match image_after {
            Some(image) => bed.only(&image, true),
            // Nothing to go back to: the replacement is removed and a person must look.
            None => assert!(
                matches!(healed[0].outcome, UpdateOutcome::ActionNeeded { .. }),
                "{:?}",
                healed[0].outcome
            ),
        }
        let _ = state;
    }
}

#[test]
fn heal_restores_a_stopped_container_without_starting_it() {
    let bed = Bed::with(Behaviour::Healthy, &[], false);
    fault::crash_at(Some("after-rename-old"));
    let mut state = State::default();
    let _ = catch_unwind(AssertUnwindSafe(|| bed.update(&mut state)));
    fault::crash_at(None);
    let (state, healed) = bed.heal();
    assert_eq!(healed[0].action, "restored");
    bed.only(&old_image(), false);
    assert!(state.journal.is_empty());
}

#[test]
fn heal_finishes_a_stopped_container_whose_replacement_has_the_name() {
    let bed = Bed::with(Behaviour::Healthy, &[], false);
    fault::crash_at(Some("after-rename-new"));
    let mut state = State::default();
    let _ = catch_unwind(AssertUnwindSafe(|| bed.update(&mut state)));
    fault::crash_at(None);
    let (state, healed) = bed.heal();
    assert_eq!(healed[0].action, "finished");
    bed.only(&new_image(), false);
    assert_eq!(history(&state), ["updated"]);
}

// ---------------------------------------------------------------- rollback

fn settings(dir: &TempDir) -> Settings {
    let env: BTreeMap<String, String> = [
        ("PP_SCOPE", "project:shop"),
        ("PP_DATA_DIR", dir.path().to_str().unwrap()),
        ("DOCKER_CONFIG", dir.path().join("docker").to_str().unwrap()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (mut settings, _) = Settings::resolve(&crate::cli::GlobalArgs::default(), &env).unwrap();
    settings.health_timeout = Duration::ZERO;
    settings.health_stable = Duration::ZERO;
    settings
}

#[test]
fn rollback_returns_to_the_previous_image_blocks_the_new_one_and_pins() {
    let bed = Bed::new(Behaviour::Healthy);
    let mut state = State::default();
    assert!(matches!(
        bed.update(&mut state),
        UpdateOutcome::Updated { .. }
    ));
    // The registry no longer serves the old digest: the local image must be used.
    let settings = settings(&bed.dir);
    let env = BTreeMap::new();
    let notifier = Recorder::default();
    let session = Session {
        settings: &settings,
        env: &env,
        runtime: &bed.fake,
        registry: &bed.registry,
        notifier: &notifier,
        clock: &SystemClock,
        compose: None,
    };
    let report = rollback::rollback(&session, "web", None).unwrap();
    assert!(report.pinned, "{:?}", report.outcome);
    assert_eq!(report.to, digest('a'));
    bed.only(&old_image(), true);
    assert_eq!(bed.fake.tag(REF), Some(old_image()));
    let saved = bed.saved();
    assert!(blocked(&saved));
    assert_eq!(history(&saved), ["updated", "manual-rollback"]);
    assert_eq!(
        saved.containers["shop/web"].pin.as_ref().unwrap().digest,
        digest('a')
    );
    assert!(
        !bed.fake
            .calls()
            .iter()
            .any(|c| c.contains(&format!("pull {REPO}@{}", digest('a'))))
    );
}

#[test]
fn rollback_without_history_is_a_usage_error() {
    let bed = Bed::new(Behaviour::Healthy);
    let settings = settings(&bed.dir);
    let env = BTreeMap::new();
    let notifier = Recorder::default();
    let session = Session {
        settings: &settings,
        env: &env,
        runtime: &bed.fake,
        registry: &bed.registry,
        notifier: &notifier,
        clock: &SystemClock,
        compose: None,
    };
    let err = rollback::rollback(&session, "web", None).unwrap_err();
    assert!(err.to_string().contains("has not updated web yet"), "{err}");
    assert_eq!(
        crate::error::kind_of(&err),
        Some(crate::error::FailureKind::Usage)
    );
    bed.only(&old_image(), true);
}

#[test]
fn a_rollback_that_cannot_reach_the_old_image_changes_nothing() {
    let bed = Bed::new(Behaviour::Healthy);
    let mut state = State::default();
    bed.update(&mut state);
    let settings = settings(&bed.dir);
    let env = BTreeMap::new();
    let notifier = Recorder::default();
    let session = Session {
        settings: &settings,
        env: &env,
        runtime: &bed.fake,
        registry: &bed.registry,
        notifier: &notifier,
        clock: &SystemClock,
        compose: None,
    };
    // Looking up the old image fails.
    bed.fake.fail("inspect-image", &old_image(), 1);
    let report = rollback::rollback(&session, "web", None).unwrap();
    assert!(!report.pinned);
    bed.only(&new_image(), true);
    assert!(bed.saved().containers["shop/web"].pin.is_none());
}

// ---------------------------------------------------------------- notifications

fn evaluated(bed: &Bed, decision: Decision) -> Evaluated {
    Evaluated {
        changes: None,
        version: None,
        container: bed.discovered(NAME),
        reference: ImageRef::parse(REF).ok(),
        available: Some(digest('b')),
        platform_check: None,
        decision,
    }
}

#[test]
fn soak_and_available_notices_are_sent_once_per_digest() {
    let bed = Bed::new(Behaviour::Healthy);
    let rec = Recorder::default();
    let mut state = State::default();
    let soaking = evaluated(
        &bed,
        Decision::Soaking {
            tag: None,
            digest: digest('b'),
            first_seen: SystemTime::UNIX_EPOCH,
            rollout_at: SystemTime::UNIX_EPOCH,
            remaining_seconds: 1,
            new_candidate: true,
        },
    );
    assert!(announce::decisions(
        &rec,
        &mut state,
        std::slice::from_ref(&soaking),
        SystemTime::now()
    ));
    assert!(!announce::decisions(
        &rec,
        &mut state,
        std::slice::from_ref(&soaking),
        SystemTime::now()
    ));
    assert_eq!(rec.kinds(), [EventKind::SoakEntered]);
    // Monitor-only for the same digest: already announced.
    let monitor = evaluated(
        &bed,
        Decision::MonitorOnly {
            tag: None,
            digest: digest('b'),
        },
    );
    assert!(!announce::decisions(
        &rec,
        &mut state,
        &[monitor],
        SystemTime::now()
    ));
    // A different digest is news.
    let newer = evaluated(
        &bed,
        Decision::MonitorOnly {
            tag: None,
            digest: digest('c'),
        },
    );
    assert!(announce::decisions(
        &rec,
        &mut state,
        &[newer],
        SystemTime::now()
    ));
    assert_eq!(
        rec.kinds(),
        [EventKind::SoakEntered, EventKind::UpdateAvailable]
    );
    assert_eq!(state.containers["shop/web"].notified.len(), 2);
}

#[test]
fn outcomes_are_announced_each_time_except_unchanged() {
    let bed = Bed::new(Behaviour::Healthy);
    let rec = Recorder::default();
    let c = bed.discovered(NAME);
    let outcomes = [
        UpdateOutcome::Unchanged { to: digest('b') },
        UpdateOutcome::Updated {
            from: None,
            to: digest('b'),
        },
        UpdateOutcome::RolledBack {
            digest: digest('b'),
            reason: "x".into(),
        },
        UpdateOutcome::Failed { reason: "x".into() },
        UpdateOutcome::ActionNeeded { reason: "x".into() },
        UpdateOutcome::Failed { reason: "y".into() },
    ];
    for o in &outcomes {
        announce::outcome(&rec, &c, o, None, None, SystemTime::now());
    }
    assert_eq!(
        rec.kinds(),
        [
            EventKind::Updated,
            EventKind::RolledBack,
            EventKind::Failed,
            EventKind::ActionNeeded,
            EventKind::Failed
        ]
    );
}

#[test]
fn heal_announces_only_what_needs_a_person_or_rolled_back() {
    let rec = Recorder::default();
    let healed = |outcome| Healed {
        container: NAME.into(),
        action: "gated",
        outcome,
    };
    announce::healed(
        &rec,
        &healed(UpdateOutcome::Updated {
            from: None,
            to: digest('b'),
        }),
        SystemTime::now(),
    );
    announce::healed(
        &rec,
        &healed(UpdateOutcome::Failed { reason: "x".into() }),
        SystemTime::now(),
    );
    announce::healed(
        &rec,
        &healed(UpdateOutcome::ActionNeeded { reason: "x".into() }),
        SystemTime::now(),
    );
    announce::healed(
        &rec,
        &healed(UpdateOutcome::RolledBack {
            digest: digest('b'),
            reason: "x".into(),
        }),
        SystemTime::now(),
    );
    assert_eq!(
        rec.kinds(),
        [EventKind::ActionNeeded, EventKind::RolledBack]
    );
}

// ---------------------------------------------------------------- heal: every phase × runtime

/// What a person (or Docker) may have done after the kill and before the next run.
#[derive(Clone, Copy, Debug)]
enum Meddling {
    Nothing,
    OldRemoved,
    NewRemoved,
    BothRemoved,
    NewStopped,
}

/// Every step a kill can leave in the journal, crossed with what the runtime shows when the
/// next run heals: heal either leaves one healthy container under the name with the tag on its
/// image and an empty journal, or says a person is needed and keeps the journal for them.
#[test]
fn heal_leaves_one_consistent_container_or_asks_for_a_person() {
    let meddlings = [
        Meddling::Nothing,
        Meddling::OldRemoved,
        Meddling::NewRemoved,
        Meddling::BothRemoved,
        Meddling::NewStopped,
    ];
    let mut cells = 0;
    for behaviour in [Behaviour::Healthy, Behaviour::Unhealthy] {
        for point in fault::POINTS.iter().filter(|p| **p != "after-pull") {
            for meddling in meddlings {
                let bed = Bed::new(behaviour);
                let old_id = bed.fake.get(NAME).unwrap().id;
                fault::crash_at(Some(point));
                let mut state = State::default();
                let died = catch_unwind(AssertUnwindSafe(|| bed.update(&mut state)));
                fault::crash_at(None);
                if died.is_ok() {
                    // An unhealthy replacement never reaches "after-pass".
                    continue;
                }
                let journal = bed.saved().journal;
                let new_id = bed
                    .fake
                    .containers()
                    .into_iter()
                    .find(|(_, image, _)| *image == new_image())
                    .and_then(|(name, _, _)| bed.fake.get(&name))
                    .map(|c| c.id);
                match meddling {
                    Meddling::Nothing => {}
                    Meddling::OldRemoved => bed.fake.delete(&old_id),
                    Meddling::NewRemoved => {
                        if let Some(id) = &new_id {
                            bed.fake.delete(id);
                        }
                    }
                    Meddling::BothRemoved => {
                        bed.fake.delete(&old_id);
                        if let Some(id) = &new_id {
                            bed.fake.delete(id);
                        }
                    }
                    Meddling::NewStopped => {
                        if let Some(id) = &new_id {
                            bed.fake.stop_container(id, None).unwrap();
                        }
                    }
                }
                let case = format!("{point} × {meddling:?}, {behaviour:?}");
                let (after, healed) = bed.heal();
                cells += 1;
                assert_eq!(healed.len(), journal.len(), "{case}");
                if healed
                    .iter()
                    .any(|h| matches!(h.outcome, UpdateOutcome::ActionNeeded { .. }))
                {
                    assert_eq!(after.journal.len(), 1, "{case}: kept for a person");
                    assert_eq!(bed.saved().journal.len(), 1, "{case}: kept on disk");
                    continue;
                }
                let world = bed.world();
                assert_eq!(world.len(), 1, "{case}: {world:?}");
                let (name, image, running) = &world[0];
                assert_eq!(name, NAME, "{case}");
                // A passed update is finished as it stands: heal does not start a replacement
                // someone stopped after it passed its gate.
                let stopped_after_pass =
                    *point == "after-pass" && matches!(meddling, Meddling::NewStopped);
                assert_eq!(*running, !stopped_after_pass, "{case}");
                assert_eq!(bed.fake.tag(REF).as_ref(), Some(image), "{case}");
                assert!(after.journal.is_empty(), "{case}");
                assert!(bed.saved().journal.is_empty(), "{case}");
                if *image == new_image() {
                    assert!(!blocked(&after), "{case}");
                    assert_eq!(history(&after), ["updated"], "{case}");
                }
                // Healing again finds nothing to do.
                assert!(bed.heal().1.is_empty(), "{case}");
            }
        }
    }
    assert!(cells >= 60, "only {cells} cells ran");
}

#[test]
fn a_stopped_follower_follows_but_stays_stopped() {
    let bed = followers_bed(Behaviour::Runs, Behaviour::Healthy);
    let app = bed.fake.get("shop-app-1").unwrap().id;
    bed.fake.stop_container(&app, None).unwrap();
    let mut state = State::default();
    assert!(matches!(
        bed.update(&mut state),
        UpdateOutcome::Updated { .. }
    ));
    let parent = bed.fake.get(NAME).unwrap();
    let app = bed.fake.get("shop-app-1").unwrap();
    assert!(!app.running);
    assert_eq!(app.network_mode, format!("container:{}", parent.id));
    assert_eq!(bed.world().len(), 2, "{:?}", bed.world());
}

#[test]
fn rollback_to_a_digest_from_the_history() {
    let bed = Bed::new(Behaviour::Healthy);
    let mut state = State::default();
    bed.update(&mut state);
    let settings = settings(&bed.dir);
    let env = BTreeMap::new();
    let notifier = Recorder::default();
    let session = Session {
        settings: &settings,
        env: &env,
        runtime: &bed.fake,
        registry: &bed.registry,
        notifier: &notifier,
        clock: &SystemClock,
        compose: None,
    };
    let unknown = digest('e');
    let err = rollback::rollback(&session, "web", Some(unknown.as_str())).unwrap_err();
    assert!(
        err.to_string().contains("is not in the history of web"),
        "{err}"
    );
    assert!(
        err.to_string().contains(digest('a').as_str()),
        "lists known: {err}"
    );

    let report = rollback::rollback(&session, "web", Some(digest('a').as_str())).unwrap();
    assert!(report.pinned);
    bed.only(&old_image(), true);
    assert!(
        notifier.kinds().is_empty(),
        "rollback by hand notifies nobody"
    );
}

// ---------------------------------------------------------------- the fake keeps Docker's rules

#[test]
fn the_fake_runtime_keeps_dockers_rules() {
    use crate::runtime::Runtime;
    let fake = Fake::new();
    fake.image(&old_image(), REF, digest('a').as_str());
    let a = fake.container("a", &old_image(), REF, &[], true);
    fake.container("b", &old_image(), REF, &[], false);
    assert!(fake.rename_container(&a, "b").unwrap_err().is_conflict());
    assert!(
        fake.remove_container(&a, false, false)
            .unwrap_err()
            .is_conflict()
    );
    assert!(fake.inspect_container("nope").unwrap_err().is_not_found());
    assert!(matches!(
        fake.remove_image(&old_image()).unwrap(),
        crate::docker::ImageRemoval::InUse { .. }
    ));
    assert!(
        fake.pull_by_digest(REPO, digest('f').as_str(), None, None)
            .is_err()
    );
    fake.fail("start", "", 1);
    assert!(fake.start_container("b").is_err());
    assert!(
        fake.start_container("b").is_ok(),
        "an injected failure fires once"
    );
    assert!(fake.inspect_container("b").unwrap().running);
}

// ---------------------------------------------------------------- the compose path

mod compose_path {
    use super::*;
    use crate::compose::Compose as _;
    use crate::compose::fake::{self as fake_compose, FakeCompose};
    use crate::engine::update::{RecreatePath, recreate_path};

    /// A bed whose `shop-web-1` compose made from files in a real directory.
    fn compose_bed(behaviour: Behaviour) -> (Bed, TempDir) {
        let project = temp_dir();
        std::fs::write(project.path().join("compose.yaml"), "services: {}\n").unwrap();
        let labels = fake_compose::labels("shop", "web", project.path().to_str().unwrap());
        let extra: Vec<(&str, &str)> = labels
            .iter()
            .filter(|(k, _)| k != labels::COMPOSE_PROJECT && k != labels::COMPOSE_SERVICE)
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        (Bed::with(behaviour, &extra, true), project)
    }

    fn update_with(bed: &Bed, compose: &FakeCompose<'_>, state: &mut State) -> UpdateOutcome {
        let c = bed.discovered(NAME);
        bed.exec_with(Some(compose)).update(
            state,
            &c,
            &ImageRef::parse(REF).unwrap(),
            &digest('b'),
            None,
        )
    }

    fn heal_with(bed: &Bed, compose: &FakeCompose<'_>) -> (State, Vec<Healed>) {
        let mut state = bed.saved();
        let healed = heal::heal_all(&bed.exec_with(Some(compose)), &mut state);
        (state, healed)
    }

    fn calls(compose: &FakeCompose<'_>) -> Vec<String> {
        compose.calls.lock().unwrap().clone()
    }

    #[test]
    fn compose_makes_the_replacement_and_the_gate_passes_it() {
        let (bed, _project) = compose_bed(Behaviour::Healthy);
        let compose = FakeCompose::new(&bed.fake);
        let mut state = State::default();
        let outcome = update_with(&bed, &compose, &mut state);
        assert!(
            matches!(outcome, UpdateOutcome::Updated { .. }),
            "{outcome:?}"
        );
        bed.only(&new_image(), true);
        assert_eq!(bed.fake.tag(REF), Some(new_image()));
        assert_eq!(calls(&compose), ["dry-run web", "up web"]);
        assert!(
            !bed.fake.calls().iter().any(|c| c.contains("-pp-new")),
            "no API recreate: {:?}",
            bed.fake.calls()
        );
        let saved = bed.saved();
        assert!(saved.journal.is_empty());
        assert_eq!(history(&saved), ["updated"]);
    }

    #[test]
    fn a_failing_replacement_is_rolled_back_by_compose() {
        let (bed, _project) = compose_bed(Behaviour::Unhealthy);
        let compose = FakeCompose::new(&bed.fake);
        let mut state = State::default();
        let outcome = update_with(&bed, &compose, &mut state);
        assert!(
            matches!(outcome, UpdateOutcome::RolledBack { .. }),
            "{outcome:?}"
        );
        bed.only(&old_image(), true);
        assert_eq!(bed.fake.tag(REF), Some(old_image()));
        assert_eq!(calls(&compose), ["dry-run web", "up web", "up web"]);
        let saved = bed.saved();
        assert!(blocked(&saved));
        assert!(saved.journal.is_empty());
        assert_eq!(history(&saved), ["rolled-back"]);
    }

    #[test]
    fn a_failed_compose_step_leaves_the_old_image_running() {
        let (bed, _project) = compose_bed(Behaviour::Healthy);
        let compose = FakeCompose::new(&bed.fake);
        *compose.fail_up.lock().unwrap() = 1;
        let mut state = State::default();
        let outcome = update_with(&bed, &compose, &mut state);
        match &outcome {
            UpdateOutcome::Failed { reason } => {
                assert!(reason.contains("compose could not recreate"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        bed.only(&old_image(), true);
        assert_eq!(bed.fake.tag(REF), Some(old_image()));
        let saved = bed.saved();
        assert!(saved.journal.is_empty());
        assert!(!blocked(&saved), "no verdict on the image, so no block");
    }

    #[test]
    fn a_drifted_project_keeps_the_running_configuration_and_says_why() {
        let (bed, _project) = compose_bed(Behaviour::Healthy);
        let compose = FakeCompose::new(&bed.fake);
        compose.drifted.lock().unwrap().push("web".into());
        let c = bed.discovered(NAME);
        let r = recreate_path(&bed.fake, Some(&compose), &c, None);
        let reason = r.fallback_reason().expect("falls back").to_string();
        assert!(
            reason
                .starts_with("compose file changed since `up`: keeping the running configuration"),
            "{reason}"
        );
        let mut state = State::default();
        let outcome = update_with(&bed, &compose, &mut state);
        assert!(
            matches!(outcome, UpdateOutcome::Updated { .. }),
            "{outcome:?}"
        );
        assert_eq!(
            calls(&compose),
            ["dry-run web", "dry-run web"],
            "compose never ran `up`"
        );
        assert!(
            bed.fake
                .calls()
                .iter()
                .any(|c| c.contains("shop-web-1-pp-new"))
        );
        bed.only(&new_image(), true);
    }

    #[test]
    fn routes_say_why_compose_is_not_used() {
        let (bed, project) = compose_bed(Behaviour::Healthy);
        let compose = FakeCompose::new(&bed.fake);
        let c = bed.discovered(NAME);
        assert!(matches!(
            recreate_path(&bed.fake, Some(&compose), &c, None),
            RecreatePath::Compose(_)
        ));
        let off = recreate_path(&bed.fake, None, &c, None);
        assert!(
            off.fallback_reason().unwrap().contains("PP_COMPOSE"),
            "{off:?}"
        );
        let mut stopped = c.clone();
        stopped.running = false;
        let r = recreate_path(&bed.fake, Some(&compose), &stopped, None);
        assert!(r.fallback_reason().unwrap().contains("stopped"), "{r:?}");
        // A second container of the service (scaled).
        let labels: Vec<(String, String)> =
            bed.fake.get(NAME).unwrap().labels.into_iter().collect();
        let pairs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        bed.fake
            .container("shop-web-2", &old_image(), REF, &pairs, true);
        let r = recreate_path(&bed.fake, Some(&compose), &c, None);
        assert!(
            r.fallback_reason().unwrap().contains("has 2 containers"),
            "{r:?}"
        );
        // Not a compose container at all: no reason to give.
        let mut plain = c.clone();
        plain.project = None;
        assert_eq!(
            recreate_path(&bed.fake, Some(&compose), &plain, None),
            RecreatePath::Api(String::new())
        );
        // The project's files are gone.
        drop(project);
        let r = recreate_path(&bed.fake, Some(&compose), &c, None);
        assert!(
            r.fallback_reason().unwrap().contains("is not here"),
            "{r:?}"
        );
    }

    #[test]
    fn an_edited_image_line_is_recreated_by_compose_on_the_same_image() {
        let (bed, _project) = compose_bed(Behaviour::Healthy);
        let compose = FakeCompose::new(&bed.fake);
        // `pin --compose` wrote a digest into the image line: compose's model changed.
        compose.drifted.lock().unwrap().push("web".into());
        let c = bed.discovered(NAME);
        let before = bed.fake.get(NAME).unwrap().id;
        let done = bed
            .exec_with(Some(&compose))
            .refresh_after_edit(&c)
            .unwrap();
        assert_eq!(done, crate::engine::update::Refresh::Recreated);
        bed.only(&old_image(), true);
        assert_ne!(bed.fake.get(NAME).unwrap().id, before, "recreated");
        assert_eq!(calls(&compose), ["dry-run web", "up web"]);

        let left = bed
            .exec()
            .refresh_after_edit(&bed.discovered(NAME))
            .unwrap();
        assert!(
            matches!(&left, crate::engine::update::Refresh::Left(why) if why.contains("PP_COMPOSE")),
            "{left:?}"
        );
    }

    #[test]
    fn plan_asks_compose_once_per_project_however_many_containers_wait() {
        let (bed, project) = compose_bed(Behaviour::Healthy);
        let dir = project.path().to_str().unwrap().to_string();
        for service in ["api", "db"] {
            let labels = fake_compose::labels("shop", service, &dir);
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            bed.fake.container(
                &format!("shop-{service}-1"),
                &old_image(),
                REF,
                &pairs,
                true,
            );
        }
        let compose = FakeCompose::new(&bed.fake);
        compose.drifted.lock().unwrap().push("db".into());
        let all: Vec<Discovered> = ["shop-web-1", "shop-api-1", "shop-db-1"]
            .iter()
            .map(|n| bed.discovered(n))
            .collect();
        let asked: Vec<&Discovered> = all.iter().collect();
        let paths = crate::engine::update::recreate_paths(&bed.fake, Some(&compose), &asked, None);
        assert_eq!(calls(&compose), ["dry-run web api db"], "one dry run");
        assert!(matches!(paths[0], RecreatePath::Compose(_)), "{paths:?}");
        assert!(matches!(paths[1], RecreatePath::Compose(_)), "{paths:?}");
        let why = paths[2].fallback_reason().unwrap();
        assert!(
            why.contains("compose would change shop-db-1 (recreate)"),
            "{why}"
        );
    }

    #[test]
    fn a_tag_moved_by_hand_is_pointed_back_before_compose_judges() {
        let (bed, _project) = compose_bed(Behaviour::Healthy);
        let compose = FakeCompose::new(&bed.fake);
        let other = format!("sha256:{}", "9".repeat(64));
        bed.fake.image(&other, REF, digest('c').as_str());
        let c = bed.discovered(NAME);
        let r = recreate_path(&bed.fake, Some(&compose), &c, None);
        assert!(
            matches!(r, RecreatePath::AtUpdate(_)),
            "plan moves no tag: {r:?}"
        );
        assert_eq!(bed.fake.tag(REF), Some(other));
        let mut state = State::default();
        let outcome = update_with(&bed, &compose, &mut state);
        assert!(
            matches!(outcome, UpdateOutcome::Updated { .. }),
            "{outcome:?}"
        );
        assert_eq!(calls(&compose), ["dry-run web", "up web"]);
        bed.only(&new_image(), true);
    }

    #[test]
    fn dependents_move_with_the_service_and_are_gated() {
        let (mut bed, project) = compose_bed(Behaviour::Healthy);
        let dir = project.path().to_str().unwrap().to_string();
        let side_labels = fake_compose::labels("shop", "side", &dir);
        let pairs: Vec<(&str, &str)> = side_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let side = bed
            .fake
            .container("shop-side-1", &old_image(), REF, &pairs, true);
        bed.fake.network_mode(&side, &format!("container:{NAME}"));
        bed.cleanup = false;
        let mut compose = FakeCompose::new(&bed.fake);
        compose
            .dependents
            .insert("web".into(), vec!["side".into(), "gone".into()]);
        let mut state = State::default();
        let outcome = update_with(&bed, &compose, &mut state);
        assert!(
            matches!(outcome, UpdateOutcome::Updated { .. }),
            "{outcome:?}"
        );
        // `gone` has no container, so it is not named (compose would create it).
        assert_eq!(calls(&compose), ["dry-run web side", "up web side"]);
        let world = bed.world();
        assert_eq!(world.len(), 2, "{world:?}");
        assert!(
            world
                .iter()
                .all(|(_, image, running)| *image == new_image() && *running)
        );
    }

    fn expected(point: &str, healthy: bool) -> (String, bool) {
        match point {
            "after-pull" => (old_image(), false),
            "after-pass" => (new_image(), true),
            _ => (if healthy { new_image() } else { old_image() }, true),
        }
    }

    #[test]
    fn a_kill_at_any_compose_step_is_healed_by_the_next_run() {
        for healthy in [true, false] {
            for point in fault::COMPOSE_POINTS {
                if *point == "after-pass" && !healthy {
                    continue;
                }
                // The fake compose reports no progress lines; its own mid-step kill is the
                // `crash_mid_up` case.
                if *point == "during-compose" {
                    continue;
                }
                let behaviour = if healthy {
                    Behaviour::Healthy
                } else {
                    Behaviour::Unhealthy
                };
                let (bed, _project) = compose_bed(behaviour);
                let compose = FakeCompose::new(&bed.fake);
                fault::crash_at(Some(point));
                let mut state = State::default();
                let died =
                    catch_unwind(AssertUnwindSafe(|| update_with(&bed, &compose, &mut state)));
                fault::crash_at(None);
                let payload = died.expect_err(point);
                assert!(
                    payload.downcast_ref::<fault::Crashed>().is_some(),
                    "{point}"
                );

                let case = format!("{point}, healthy={healthy}");
                let (state, healed) = heal_with(&bed, &compose);
                let (image, had_work) = expected(point, healthy);
                bed.only(&image, true);
                assert_eq!(bed.fake.tag(REF), Some(image.clone()), "{case}");
                assert_eq!(!healed.is_empty(), had_work, "{case}: {healed:?}");
                assert!(state.journal.is_empty(), "{case}");
                assert_eq!(bed.saved().journal, state.journal, "{case}: saved");
                assert_eq!(blocked(&state), had_work && !healthy, "{case}");
                if image == new_image() {
                    assert_eq!(history(&state), ["updated"], "{case}");
                }
                assert!(heal_with(&bed, &compose).1.is_empty(), "{case}");
            }
        }
    }

    #[test]
    fn a_compose_killed_mid_recreate_is_converged_by_heal() {
        for healthy in [true, false] {
            let behaviour = if healthy {
                Behaviour::Healthy
            } else {
                Behaviour::Unhealthy
            };
            let (bed, _project) = compose_bed(behaviour);
            let compose = FakeCompose::new(&bed.fake);
            *compose.crash_mid_up.lock().unwrap() = true;
            // pullpilot dies with it: the journal says the step was under way.
            fault::crash_at(Some("after-compose"));
            let mut state = State::default();
            let outcome =
                catch_unwind(AssertUnwindSafe(|| update_with(&bed, &compose, &mut state)));
            fault::crash_at(None);
            // compose's failure was seen before the kill point: the update restored itself.
            let outcome = outcome.expect("the failed step is handled, not a crash");
            assert!(
                matches!(outcome, UpdateOutcome::Failed { .. }),
                "{outcome:?}"
            );
            bed.only(&old_image(), true);
            assert!(bed.saved().journal.is_empty());

            // And when pullpilot itself dies with compose, heal converges.
            let (bed, _project) = compose_bed(behaviour);
            let compose = FakeCompose::new(&bed.fake);
            let mut state = State::default();
            let c = bed.discovered(NAME);
            let exec = bed.exec_with(Some(&compose));
            *compose.crash_mid_up.lock().unwrap() = true;
            fault::crash_at(Some("before-compose"));
            let _ = catch_unwind(AssertUnwindSafe(|| {
                exec.update(
                    &mut state,
                    &c,
                    &ImageRef::parse(REF).unwrap(),
                    &digest('b'),
                    None,
                )
            }));
            fault::crash_at(None);
            // What compose would have left had it been killed mid-recreate.
            let _ = compose.up(
                &crate::compose::ProjectFiles::parse(&c.labels).unwrap(),
                &["web".to_string()],
                true,
            );
            let names: Vec<String> = bed.world().into_iter().map(|(n, _, _)| n).collect();
            assert!(names[0].ends_with("_shop-web-1"), "{names:?}");
            let (state, healed) = heal_with(&bed, &compose);
            let image = if healthy { new_image() } else { old_image() };
            bed.only(&image, true);
            assert_eq!(healed.len(), 1, "{healed:?}");
            assert!(state.journal.is_empty());
        }
    }
}

// ---------------------------------------------------------------- pid, ipc and volumes followers

/// `shop-web-1` (the parent) and three more: `shop-top-1` shares its PID namespace by ID,
/// `shop-shm-1` its IPC namespace by name and its volumes, `shop-data-1` only its volumes (by
/// name, read-only) next to another container's; `shop-other-1` shares nothing of it.
fn namespace_followers_bed(follower: Behaviour) -> Bed {
    let bed = Bed::new(Behaviour::Healthy);
    let side_image = format!("sha256:{}", "3".repeat(64));
    bed.fake
        .image(&side_image, "ghcr.io/acme/side:1", digest('d').as_str());
    bed.fake.behave(&side_image, follower);
    let parent = bed.fake.get(NAME).unwrap().id;
    let add = |name: &str, service: &str| {
        bed.fake.container(
            name,
            &side_image,
            "ghcr.io/acme/side:1",
            &[
                (labels::COMPOSE_PROJECT, "shop"),
                (labels::COMPOSE_SERVICE, service),
            ],
            true,
        )
    };
    let top = add("shop-top-1", "top");
    bed.fake.pid_mode(&top, &format!("container:{parent}"));
    let shm = add("shop-shm-1", "shm");
    bed.fake.ipc_mode(&shm, &format!("container:{NAME}"));
    bed.fake.volumes_from(&shm, &[&parent]);
    let other = add("shop-other-1", "other");
    let data = add("shop-data-1", "data");
    bed.fake
        .volumes_from(&data, &[&format!("{NAME}:ro"), "shop-other-1"]);
    bed.fake.pid_mode(&other, "host");
    bed
}

#[test]
fn pid_ipc_and_volumes_followers_are_recreated_onto_the_new_parent() {
    let bed = namespace_followers_bed(Behaviour::Runs);
    let other_before = bed.fake.get("shop-other-1").unwrap();
    let mut state = State::default();
    let outcome = bed.update(&mut state);
    assert!(
        matches!(outcome, UpdateOutcome::Updated { .. }),
        "{outcome:?}"
    );
    let parent = bed.fake.get(NAME).unwrap();
    assert_eq!(parent.image_id, new_image());
    let top = bed.fake.get("shop-top-1").unwrap();
    assert_eq!(top.pid_mode, format!("container:{}", parent.id));
    assert!(top.running);
    let shm = bed.fake.get("shop-shm-1").unwrap();
    assert_eq!(shm.ipc_mode, format!("container:{}", parent.id));
    assert_eq!(shm.volumes_from, std::slice::from_ref(&parent.id));
    let data = bed.fake.get("shop-data-1").unwrap();
    assert_eq!(
        data.volumes_from,
        [format!("{}:ro", parent.id), "shop-other-1".to_owned()],
        "the access mode and the other container's entry are kept"
    );
    assert_eq!(
        bed.fake.get("shop-other-1").unwrap(),
        other_before,
        "a container sharing nothing with it is left alone"
    );
    assert_eq!(bed.world().len(), 5, "old ones removed: {:?}", bed.world());
    assert!(bed.saved().journal.is_empty());
}

#[test]
fn a_failing_pid_follower_rolls_the_whole_group_back() {
    let bed = namespace_followers_bed(Behaviour::Exits(1));
    let old_parent = bed.fake.get(NAME).unwrap().id;
    let old_top = bed.fake.get("shop-top-1").unwrap().id;
    let mut state = State::default();
    match bed.update(&mut state) {
        UpdateOutcome::RolledBack { reason, .. } => {
            // Followers follow in name order; shop-data-1 is the first.
            assert!(
                reason.contains("shop-data-1 (which shares its volumes) failed"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let top = bed.fake.get("shop-top-1").unwrap();
    assert_eq!(top.id, old_top);
    assert_eq!(top.pid_mode, format!("container:{old_parent}"));
    let parent = bed.fake.get(NAME).unwrap();
    assert_eq!(
        (parent.id.as_str(), parent.running),
        (old_parent.as_str(), true)
    );
    assert_eq!(bed.world().len(), 5, "{:?}", bed.world());
}

#[test]
fn a_failed_copy_into_a_follower_restores_the_whole_group() {
    let bed = namespace_followers_bed(Behaviour::Runs);
    let top = bed.fake.get("shop-top-1").unwrap().id;
    bed.fake.file(&top, "/run/secrets/key", "k");
    bed.fake.fail("copy", "", 1);
    let mut state = State::default();
    let outcome = bed.update(&mut state);
    assert!(
        matches!(outcome, UpdateOutcome::Failed { .. }),
        "a failed copy into a follower restores the group: {outcome:?}"
    );
    let parent = bed.fake.get(NAME).unwrap();
    assert_eq!(parent.image_id, old_image());
    let top = bed.fake.get("shop-top-1").unwrap();
    assert_eq!(top.pid_mode, format!("container:{}", parent.id));
    assert_eq!(bed.world().len(), 5, "{:?}", bed.world());
    assert!(bed.saved().journal.is_empty());
    // The next run updates the whole group.
    let mut state = bed.saved();
    assert!(matches!(
        bed.update(&mut state),
        UpdateOutcome::Updated { .. }
    ));
    let parent = bed.fake.get(NAME).unwrap();
    assert_eq!(
        bed.fake.get("shop-top-1").unwrap().pid_mode,
        format!("container:{}", parent.id)
    );
    assert_eq!(bed.fake.files("shop-top-1")["/run/secrets/key"], "k");
}

// ---------------------------------------------------------------- files compose injected

#[test]
fn injected_files_are_copied_into_the_replacement_before_it_starts() {
    let bed = Bed::new(Behaviour::Healthy);
    let old = bed.fake.get(NAME).unwrap().id;
    bed.fake.file(&old, "/run/secrets/db_password", "s3cret");
    bed.fake.file(&old, "/app_config", "mode=prod");
    bed.fake
        .file(&old, "/var/log/app.log", "written by the app");
    let mut state = State::default();
    assert!(matches!(
        bed.update(&mut state),
        UpdateOutcome::Updated { .. }
    ));
    let files = bed.fake.files(NAME);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["/app_config", "/run/secrets/db_password"],
        "only compose's default targets are carried"
    );
    assert_eq!(files["/run/secrets/db_password"], "s3cret");
    let calls = bed.fake.calls();
    let copy = calls.iter().position(|c| c.starts_with("copy ")).unwrap();
    let stop = calls.iter().position(|c| c.starts_with("stop ")).unwrap();
    assert!(
        copy < stop,
        "copied while the old one still runs: {calls:#?}"
    );
}

#[test]
fn a_failed_copy_restores_the_old_container() {
    let bed = Bed::new(Behaviour::Healthy);
    let old = bed.fake.get(NAME).unwrap().id;
    bed.fake.file(&old, "/run/secrets/token", "t");
    bed.fake.fail("copy", "", 1);
    let mut state = State::default();
    match bed.update(&mut state) {
        UpdateOutcome::Failed { reason } => {
            assert!(
                reason.contains("copying the injected files of shop-web-1"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    bed.only(&old_image(), true);
    assert_eq!(bed.fake.tag(REF), Some(old_image()));
}

#[test]
fn no_injected_files_means_no_copy() {
    let bed = Bed::new(Behaviour::Healthy);
    let mut state = State::default();
    assert!(matches!(
        bed.update(&mut state),
        UpdateOutcome::Updated { .. }
    ));
    assert!(!bed.fake.calls().iter().any(|c| c.starts_with("copy ")));
}

#[test]
fn an_engine_that_cannot_list_changes_still_updates() {
    let bed = Bed::new(Behaviour::Healthy);
    bed.fake.fail("injected-files", "", 5);
    let mut state = State::default();
    assert!(matches!(
        bed.update(&mut state),
        UpdateOutcome::Updated { .. }
    ));
    bed.only(&new_image(), true);
}
