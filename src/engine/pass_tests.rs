//! Whole passes ([`super::pass`]) against the in-memory runtime and a loopback registry that
//! answers manifest checks: soak, roll-out, rollback, heal-first, and the once-only
//! notifications across passes (what is announced is remembered on disk).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::announce::Notify;
use super::session::Clock;
use super::update::UpdateOutcome;
use super::{PassRequest, Session, pass};
use crate::decide::Decision;
use crate::fault;
use crate::labels;
use crate::notify::{Event, EventKind};
use crate::registry::{RegistryClient, RegistryOptions};
use crate::runtime::fake::{Behaviour, Fake};
use crate::settings::Settings;
use crate::state;

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn image(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// A registry on 127.0.0.1 whose `acme/web:1` points at a digest the test can move.
struct Registry {
    host: String,
    digest: Arc<Mutex<String>>,
}

impl Registry {
    fn start(initial: &str) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let digest = Arc::new(Mutex::new(initial.to_string()));
        let shared = Arc::clone(&digest);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(req) = crate::testhttp::read_request(&mut stream) else {
                    continue;
                };
                let head = req.method == "HEAD";
                if req.path() == "/v2/acme/web/manifests/1" {
                    let d = shared.lock().unwrap().clone();
                    crate::testhttp::respond(
                        &mut stream,
                        200,
                        &[
                            ("Docker-Content-Digest".into(), d),
                            (
                                "Content-Type".into(),
                                "application/vnd.oci.image.index.v1+json".into(),
                            ),
                        ],
                        b"{}",
                        head,
                    );
                } else {
                    crate::testhttp::respond(&mut stream, 404, &[], b"", head);
                }
                let _ = stream.flush();
            }
        });
        Registry { host, digest }
    }

    fn publish(&self, d: &str) {
        *self.digest.lock().unwrap() = d.to_string();
    }
}

#[derive(Default)]
struct Recorder(RefCell<Vec<Event>>);

impl Notify for Recorder {
    fn send(&self, event: &Event) {
        self.0.borrow_mut().push(event.clone());
    }
}

impl Recorder {
    fn take(&self) -> Vec<EventKind> {
        self.0.borrow_mut().drain(..).map(|e| e.kind).collect()
    }
}

/// A host with `shop-web-1` running `<registry>/acme/web:1` at digest `a`, and a registry whose
/// tag points at digest `b` (image `2`, which behaves as `behaviour`).
struct Host {
    fake: Fake,
    registry: Registry,
    client: RegistryClient,
    settings: Settings,
    env: BTreeMap<String, String>,
    notes: Recorder,
    clock: Moving,
    _dir: tempfile::TempDir,
}

/// A clock the test moves.
struct Moving(Cell<SystemTime>);

impl Clock for Moving {
    fn now(&self) -> SystemTime {
        self.0.get()
    }
}

impl Moving {
    fn advance(&self, by: Duration) {
        self.0.set(self.0.get() + by);
    }
}

impl Host {
    fn new(behaviour: Behaviour) -> Host {
        let temp = tempfile::Builder::new()
            .prefix("pp-pass-")
            .tempdir()
            .unwrap();
        let dir = temp.path().to_path_buf();
        let registry = Registry::start(&digest('b'));
        let repo = format!("{}/acme/web", registry.host);
        let reference = format!("{repo}:1");
        let fake = Fake::new();
        fake.image(&image('1'), &reference, &digest('a'));
        fake.publish(&repo, &digest('b'), &image('2'), behaviour);
        fake.container(
            "shop-web-1",
            &image('1'),
            &reference,
            &[
                (labels::COMPOSE_PROJECT, "shop"),
                (labels::COMPOSE_SERVICE, "web"),
            ],
            true,
        );
        let env: BTreeMap<String, String> = [
            ("PP_SCOPE", "project:shop"),
            ("PP_DATA_DIR", dir.to_str().unwrap()),
            ("DOCKER_CONFIG", dir.join("docker").to_str().unwrap()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (mut settings, _) =
            Settings::resolve(&crate::cli::GlobalArgs::default(), &env).unwrap();
        settings.health_timeout = Duration::ZERO;
        settings.health_stable = Duration::ZERO;
        settings.soak = Duration::from_secs(3600);
        let client = RegistryClient::new(RegistryOptions {
            docker_config_dir: Some(dir.join("docker")),
            ..RegistryOptions::default()
        })
        .unwrap();
        Host {
            fake,
            registry,
            client,
            settings,
            env,
            notes: Recorder::default(),
            clock: Moving(Cell::new(SystemTime::now())),
            _dir: temp,
        }
    }

    fn pass(&self) -> super::PassReport {
        let session = Session {
            settings: &self.settings,
            env: &self.env,
            runtime: &self.fake,
            registry: &self.client,
            notifier: &self.notes,
            clock: &self.clock,
            compose: None,
        };
        pass(&session, &PassRequest::default()).unwrap()
    }

    fn running(&self) -> String {
        let c = self.fake.get("shop-web-1").unwrap();
        assert!(c.running);
        c.image_id
    }
}

fn decision_words(report: &super::PassReport) -> Vec<&'static str> {
    report
        .evaluated
        .iter()
        .zip(&report.outcomes)
        .map(|(e, o)| {
            o.as_ref()
                .map_or_else(|| e.decision.word(), UpdateOutcome::word)
        })
        .collect()
}

#[test]
fn a_new_digest_soaks_is_announced_once_then_rolls_out() {
    let host = Host::new(Behaviour::Healthy);
    let first = host.pass();
    assert_eq!(decision_words(&first), ["soaking"]);
    assert_eq!(host.notes.take(), [EventKind::SoakEntered]);
    let second = host.pass();
    assert_eq!(decision_words(&second), ["soaking"]);
    assert_eq!(host.notes.take(), [], "announced once, remembered on disk");
    assert_eq!(host.running(), image('1'));

    host.clock.advance(Duration::from_secs(3599));
    assert_eq!(decision_words(&host.pass()), ["soaking"], "a second early");
    host.clock.advance(Duration::from_secs(1));
    let third = host.pass();
    assert_eq!(decision_words(&third), ["updated"], "{third:?}");
    assert_eq!(third.summary.updated, 1);
    assert_eq!(host.notes.take(), [EventKind::Updated]);
    assert_eq!(host.running(), image('2'));
    let saved = state::load(&host.settings.data_dir).unwrap().state;
    assert_eq!(saved.counters.updates, 1);
    assert!(saved.containers["shop/web"].candidate.is_none());

    let fourth = host.pass();
    assert_eq!(decision_words(&fourth), ["up to date"]);
    assert_eq!(host.notes.take(), []);
}

#[test]
fn a_failed_rollout_is_announced_once_and_the_digest_is_not_tried_again() {
    let mut host = Host::new(Behaviour::Unhealthy);
    host.settings.soak = Duration::ZERO;
    let first = host.pass();
    assert_eq!(decision_words(&first), ["rolled back"]);
    assert_eq!(first.summary.failed, 1);
    assert_eq!(host.notes.take(), [EventKind::RolledBack]);
    assert_eq!(host.running(), image('1'));

    let second = host.pass();
    assert!(
        matches!(second.evaluated[0].decision, Decision::Blocked { .. }),
        "{:?}",
        second.evaluated[0].decision
    );
    assert_eq!(host.notes.take(), []);
    let pulls = host
        .fake
        .calls()
        .iter()
        .filter(|c| c.starts_with("pull"))
        .count();
    assert_eq!(pulls, 1, "the blocked digest is not pulled again");

    // A newer digest is tried.
    host.fake.publish(
        &format!("{}/acme/web", host.registry.host),
        &digest('c'),
        &image('3'),
        Behaviour::Healthy,
    );
    host.registry.publish(&digest('c'));
    let third = host.pass();
    assert_eq!(decision_words(&third), ["updated"]);
    assert_eq!(host.running(), image('3'));
}

#[test]
fn a_pass_heals_what_a_killed_pass_left_before_it_decides() {
    let mut host = Host::new(Behaviour::Healthy);
    host.settings.soak = Duration::ZERO;
    fault::crash_at(Some("after-rename-old"));
    let died = catch_unwind(AssertUnwindSafe(|| host.pass()));
    fault::crash_at(None);
    assert!(died.is_err());
    assert!(!host.fake.get("shop-web-1").is_some_and(|c| c.running));

    let next = host.pass();
    assert_eq!(next.healed.len(), 1);
    assert_eq!(next.healed[0].action, "restored");
    // Healed, then updated in the same pass.
    assert_eq!(decision_words(&next), ["updated"]);
    assert_eq!(host.running(), image('2'));
    assert_eq!(
        host.fake
            .containers()
            .iter()
            .map(|c| c.0.as_str())
            .collect::<Vec<_>>(),
        ["shop-web-1"]
    );
    assert_eq!(host.notes.take(), [EventKind::Updated]);
}

#[test]
fn an_apply_pulls_ahead_once_for_services_sharing_an_image_before_any_recreate() {
    let mut host = Host::new(Behaviour::Healthy);
    host.settings.soak = Duration::ZERO;
    let reference = format!("{}/acme/web:1", host.registry.host);
    host.fake.container(
        "shop-api-1",
        &image('1'),
        &reference,
        &[
            (labels::COMPOSE_PROJECT, "shop"),
            (labels::COMPOSE_SERVICE, "api"),
        ],
        true,
    );
    let report = host.pass();
    assert_eq!(
        decision_words(&report),
        ["updated", "updated"],
        "{report:?}"
    );
    let calls = host.fake.calls();
    let pulls: Vec<usize> = (0..calls.len())
        .filter(|&i| calls[i].starts_with("pull "))
        .collect();
    let first_create = calls.iter().position(|c| c.starts_with("create ")).unwrap();
    assert_eq!(pulls.len(), 1, "one pull ahead for both: {calls:?}");
    assert!(pulls[0] < first_create, "{calls:?}");
}

#[test]
fn with_prefetch_off_each_update_pulls_for_itself() {
    let mut host = Host::new(Behaviour::Healthy);
    host.settings.soak = Duration::ZERO;
    host.settings.prefetch = 0;
    let reference = format!("{}/acme/web:1", host.registry.host);
    host.fake.container(
        "shop-api-1",
        &image('1'),
        &reference,
        &[
            (labels::COMPOSE_PROJECT, "shop"),
            (labels::COMPOSE_SERVICE, "api"),
        ],
        true,
    );
    let report = host.pass();
    assert_eq!(
        decision_words(&report),
        ["updated", "updated"],
        "{report:?}"
    );
    let pulls = host
        .fake
        .calls()
        .iter()
        .filter(|c| c.starts_with("pull "))
        .count();
    assert_eq!(pulls, 2);
}
