//! Pulls ahead of the recreates: while `apply` replaces one container (stop, start, health
//! gate), the images of the next updates are already being pulled, a few at a time
//! (`PP_PREFETCH`, default 3), on threads of their own. A pass with N soaked updates then
//! costs about max(pull) + Σ(recreate + gate) instead of Σ(pull + recreate + gate).
//!
//! Owns: which digests to pull ahead (one pull per repository, digest and platform, however
//! many containers wait for it), in the order the updates will be made, with the container's
//! platform and the registry's credentials exactly as the update executor would pull them; the
//! bound on pulls in flight; handing each update the image it needs. Must not: touch a
//! container, move a tag, or decide anything: a prefetched image is only a local image the
//! update may use (`local_image` of [`super::update::Executor::update_to`]).
//!
//! A prefetch that fails fails nothing: the update it was for pulls again itself, and reports
//! that pull's error as it always did. An update whose pull is still running waits for it. Free disk space is not checked here: the Engine API
//! does not report it (`/info` names the data root, `/system/df` counts what is used, neither
//! says what is free, and pullpilot may not see the engine's filesystem), so the bound on pulls
//! in flight is the only limit; a pull that fails for lack of space fails its own update.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use super::check::Evaluated;
use super::session::Session;
use crate::decide::Decision;
use crate::runtime::Runtime;
use crate::state::State;

/// One image to pull ahead.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Job {
    pub repository: String,
    pub digest: String,
    /// `os/arch[/variant]` of the image the container runs now.
    pub platform: String,
    /// `X-Registry-Auth` for the image's registry, as the update would send it.
    pub auth: Option<String>,
}

/// What to pull ahead, and which update each pull is for.
#[derive(Debug, Default)]
pub struct Plan {
    /// In the order the first update needing each one will be made.
    jobs: Vec<Job>,
    /// Index into `evaluated` → index into `jobs`.
    of: BTreeMap<usize, usize>,
    /// Job → its index, so a shared one is found in O(log n).
    known: BTreeMap<Job, usize>,
}

impl Plan {
    /// Adds the update at `index` (of the evaluated containers), needing `job`; a job already
    /// planned is shared.
    pub fn add(&mut self, index: usize, job: Job) {
        let next = self.jobs.len();
        let at = *self.known.entry(job.clone()).or_insert(next);
        if at == next {
            self.jobs.push(job);
        }
        self.of.insert(index, at);
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

/// The pulls ahead of the updates in `order` (indexes into `evaluated`): every container due
/// for an update with no interrupted update in the journal. Nothing is planned for a single
/// update (its pull cannot overlap anything). A container whose image cannot be inspected, or
/// whose registry credentials cannot be read, is left to its update, which reports why.
pub fn plan(
    session: &Session<'_>,
    evaluated: &[Evaluated],
    order: &[usize],
    state: &State,
) -> Plan {
    let mut plan = Plan::default();
    if session.settings.prefetch == 0 {
        return plan;
    }
    let due: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| {
            let e = &evaluated[i];
            matches!(e.decision, Decision::Update { .. })
                && e.reference.is_some()
                && !state.journal.iter().any(|j| j.name == e.container.name)
        })
        .collect();
    if due.len() < 2 {
        return plan;
    }
    for i in due {
        let e = &evaluated[i];
        let (Decision::Update { digest, .. }, Some(reference)) = (&e.decision, &e.reference) else {
            continue;
        };
        let Ok(Some(image)) = session.runtime.inspect_image(&e.container.image_id) else {
            continue;
        };
        let Ok(auth) = session.registry.engine_auth(reference.api_host()) else {
            continue;
        };
        plan.add(
            i,
            Job {
                repository: reference.name(),
                digest: digest.as_str().to_string(),
                platform: image.platform(),
                auth,
            },
        );
    }
    plan
}

#[derive(Debug)]
enum PullState {
    Queued,
    Running,
    /// Not pulled ahead (no workers): the update pulls it itself.
    Claimed,
    /// The image ID, or why the pull failed.
    Done(Result<String, String>),
}

/// The pulls in progress, shared by the workers and the update loop.
pub struct Prefetched<'p> {
    plan: &'p Plan,
    slots: Mutex<Vec<PullState>>,
    changed: Condvar,
}

impl Prefetched<'_> {
    fn slots(&self) -> MutexGuard<'_, Vec<PullState>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The image prefetched for the update at `index`, waiting for its pull when it has not
    /// finished; `None` when there is none (not planned, nothing pulled ahead, or the pull
    /// failed: the update then pulls itself).
    pub fn take(&self, index: usize) -> Option<String> {
        let at = *self.plan.of.get(&index)?;
        let job = &self.plan.jobs[at];
        let mut slots = self.slots();
        loop {
            match &slots[at] {
                PullState::Claimed => return None,
                // Not started yet only while the workers start: jobs are taken in the order
                // they are needed, so a queued job is the next one a worker takes.
                PullState::Queued | PullState::Running => {
                    slots = self
                        .changed
                        .wait(slots)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                PullState::Done(Ok(id)) => return Some(id.clone()),
                PullState::Done(Err(reason)) => {
                    log::warn!(
                        "Pulling {}@{} ahead failed ({reason}); pulling it again for its update.",
                        job.repository,
                        job.digest
                    );
                    return None;
                }
            }
        }
    }

    /// Takes the next queued job, in plan order.
    fn next(&self) -> Option<usize> {
        let mut slots = self.slots();
        let at = slots.iter().position(|s| matches!(s, PullState::Queued))?;
        slots[at] = PullState::Running;
        Some(at)
    }

    fn finish(&self, at: usize, result: Result<String, String>) {
        self.slots()[at] = PullState::Done(result);
        self.changed.notify_all();
    }

    fn work(&self, runtime: &dyn Runtime) {
        while let Some(at) = self.next() {
            // Should the pull panic, its update must not wait for it forever.
            let mut guard = Unfinished { fetched: self, at };
            let job = &self.plan.jobs[at];
            log::info!(
                "Pulling {}@{} ({}) ahead of its update.",
                job.repository,
                job.digest,
                job.platform
            );
            let result = runtime
                .pull_by_digest(
                    &job.repository,
                    &job.digest,
                    Some(&job.platform),
                    job.auth.as_deref(),
                )
                .map(|image| image.id)
                .map_err(|e| e.to_string());
            guard.at = usize::MAX;
            self.finish(at, result);
        }
    }
}

/// Marks a job failed unless it finished.
struct Unfinished<'f, 'p> {
    fetched: &'f Prefetched<'p>,
    at: usize,
}

impl Drop for Unfinished<'_, '_> {
    fn drop(&mut self) {
        if self.at != usize::MAX {
            self.fetched
                .finish(self.at, Err("the pull ahead stopped unexpectedly".into()));
        }
    }
}

/// Runs `updates` on this thread while at most `limit` threads pull `plan`'s images ahead;
/// `updates` gets each one with [`Prefetched::take`]. Returns when the updates and every pull
/// have finished. With an empty plan or `limit` 0 no thread is started.
pub fn run<R>(
    runtime: &dyn Runtime,
    plan: &Plan,
    limit: usize,
    updates: impl FnOnce(&Prefetched<'_>) -> R,
) -> R {
    let fetched = Prefetched {
        plan,
        slots: Mutex::new(plan.jobs.iter().map(|_| PullState::Queued).collect()),
        changed: Condvar::new(),
    };
    let workers = limit.min(plan.len());
    if workers == 0 {
        // Nothing runs ahead: every update pulls for itself.
        fetched
            .slots()
            .iter_mut()
            .for_each(|s| *s = PullState::Claimed);
        return updates(&fetched);
    }
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| fetched.work(runtime));
        }
        updates(&fetched)
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Job, Plan, run};
    use crate::runtime::Runtime;
    use crate::runtime::fake::{Behaviour, Fake, hex_id};

    const PULL: Duration = Duration::from_millis(150);

    fn digest(k: usize) -> String {
        format!("sha256:{k:064x}")
    }

    /// `n` services `svc-K`, each running image `old-K` of its own repository `reg/img-K`, whose
    /// soaked digest `K` pulls image `new-K` in `PULL`; and the plan that pulls them all ahead.
    fn host(n: usize) -> (Fake, Plan) {
        let fake = Fake::new();
        let mut plan = Plan::default();
        for k in 0..n {
            let repo = format!("reg/img-{k}");
            fake.image(
                &hex_id(100 + k as u64),
                &format!("{repo}:1"),
                &digest(1000 + k),
            );
            fake.publish(&repo, &digest(k), &hex_id(200 + k as u64), Behaviour::Runs);
            fake.container(&format!("svc-{k}"), &hex_id(100 + k as u64), "", &[], true);
            plan.add(
                k,
                Job {
                    repository: repo,
                    digest: digest(k),
                    platform: "linux/amd64".into(),
                    auth: None,
                },
            );
        }
        fake.pull_delay(PULL);
        (fake, plan)
    }

    /// The updates in order, as the pass makes them: the prefetched image or a pull of its
    /// own, then stop and start (the recreate) and a gate of `gate`. Returns what each update
    /// was handed.
    fn updates(fake: &Fake, plan: &Plan, limit: usize, gate: Duration) -> Vec<Option<String>> {
        run(fake, plan, limit, |fetched| {
            (0..plan.len())
                .map(|k| {
                    let handed = fetched.take(k);
                    if handed.is_none() {
                        fake.pull_by_digest(&format!("reg/img-{k}"), &digest(k), None, None)
                            .unwrap();
                    }
                    fake.stop_container(&format!("svc-{k}"), None).unwrap();
                    fake.start_container(&format!("svc-{k}")).unwrap();
                    std::thread::sleep(gate);
                    handed
                })
                .collect()
        })
    }

    fn first(fake: &Fake, event: &str) -> Instant {
        fake.timeline()
            .into_iter()
            .find(|(e, _)| e == event)
            .unwrap_or_else(|| panic!("no {event}"))
            .1
    }

    #[test]
    fn pulls_run_ahead_of_the_recreates_a_bounded_few_at_a_time_in_update_order() {
        let (fake, plan) = host(7);
        let handed = updates(&fake, &plan, 3, PULL);
        for (k, h) in handed.iter().enumerate() {
            assert_eq!(
                h.as_deref(),
                Some(hex_id(200 + k as u64).as_str()),
                "update {k}"
            );
        }
        let pulls = fake.pulls();
        assert_eq!(pulls.len(), 7, "one pull per image: {pulls:?}");
        assert_eq!(fake.max_pulls_in_flight(), 3, "never more than the bound");
        // The second and third images were pulled while the first service was recreated.
        let first_stop = first(&fake, "stop svc-0");
        for k in [1, 2] {
            let (_, started, _) = pulls
                .iter()
                .find(|(r, _, _)| r.starts_with(&format!("reg/img-{k}@")))
                .unwrap();
            assert!(*started < first_stop, "pull {k} did not start ahead");
        }
        // The first pulls are those the first updates need.
        let mut by_start = pulls.clone();
        by_start.sort_by_key(|p| p.1);
        let mut early: Vec<String> = by_start[..3].iter().map(|p| p.0.clone()).collect();
        early.sort();
        let expected: Vec<String> = (0..3)
            .map(|k| format!("reg/img-{k}@{}", digest(k)))
            .collect();
        assert_eq!(early, expected);
        // The recreates keep their order: stop and start of each service, one after the other.
        let order: Vec<String> = fake.timeline().into_iter().map(|e| e.0).collect();
        let expected: Vec<String> = (0..7)
            .flat_map(|k| [format!("stop svc-{k}"), format!("start svc-{k}")])
            .collect();
        assert_eq!(order, expected);
    }

    #[test]
    fn a_pass_costs_about_the_first_pull_plus_the_recreates() {
        let (fake, plan) = host(6);
        let t = Instant::now();
        updates(&fake, &plan, 3, PULL);
        let ahead = t.elapsed();
        // Σ(pull + gate) = 6 × 300 ms serially; ahead: ≈ 1 pull + 6 gates = 1050 ms.
        assert!(ahead < PULL * 10, "{ahead:?}");

        let (fake, plan) = host(6);
        let t = Instant::now();
        let handed = updates(&fake, &plan, 0, PULL);
        let serial = t.elapsed();
        assert!(
            handed.iter().all(Option::is_none),
            "0: nothing pulled ahead"
        );
        assert!(serial >= PULL * 12, "{serial:?}");
        assert_eq!(fake.max_pulls_in_flight(), 1);
    }

    #[test]
    fn a_failed_pull_ahead_fails_nothing_and_only_its_update_pulls_again() {
        let (fake, plan) = host(5);
        fake.fail("pull", "reg/img-2@", 1);
        let handed = updates(&fake, &plan, 2, Duration::ZERO);
        let got: Vec<bool> = handed.iter().map(Option::is_some).collect();
        assert_eq!(got, [true, true, false, true, true]);
        let pulls_of = |k: usize| {
            fake.calls()
                .iter()
                .filter(|c| c.starts_with(&format!("pull reg/img-{k}@")))
                .count()
        };
        assert_eq!(pulls_of(2), 2, "its update pulled again");
        for k in [0, 1, 3, 4] {
            assert_eq!(pulls_of(k), 1, "image {k}");
        }
        assert!(fake.has_image(&hex_id(202)));
    }

    #[test]
    fn services_on_one_image_share_its_pull() {
        let mut plan = Plan::default();
        let job = Job {
            repository: "reg/img".into(),
            digest: digest(1),
            platform: "linux/amd64".into(),
            auth: None,
        };
        plan.add(4, job.clone());
        plan.add(9, job.clone());
        plan.add(
            6,
            Job {
                platform: "linux/arm64".into(),
                ..job
            },
        );
        assert_eq!(plan.len(), 2, "another platform is another pull");
    }
}
