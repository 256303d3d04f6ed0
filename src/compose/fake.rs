//! An in-memory [`Compose`] over the fake runtime, for unit tests of the compose path: `up`
//! recreates a service's container when the image its tag points at is not the one it runs
//! (or when told its model drifted), the way compose does (new container, old one removed,
//! same name), and starts it. Failures can be injected, and a crash mid-`up` left behind.

use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::{Result, bail};

use super::{Change, Compose, ProjectFiles};
use crate::runtime::Runtime;
use crate::runtime::fake::Fake;

const SERVICE: &str = "com.docker.compose.service";
const PROJECT: &str = "com.docker.compose.project";

/// The fake compose.
pub struct FakeCompose<'a> {
    pub runtime: &'a Fake,
    /// service → services that depend on it.
    pub dependents: BTreeMap<String, Vec<String>>,
    /// Services whose model no longer matches their container (the file was edited).
    pub drifted: Mutex<Vec<String>>,
    /// The next `up` calls fail (after doing nothing).
    pub fail_up: Mutex<usize>,
    /// The next `up` stops after creating the replacement under compose's temporary name and
    /// removing the old container, as a crash would leave it.
    pub crash_mid_up: Mutex<bool>,
    pub calls: Mutex<Vec<String>>,
}

impl<'a> FakeCompose<'a> {
    pub fn new(runtime: &'a Fake) -> FakeCompose<'a> {
        FakeCompose {
            runtime,
            dependents: BTreeMap::new(),
            drifted: Mutex::new(Vec::new()),
            fail_up: Mutex::new(0),
            crash_mid_up: Mutex::new(false),
            calls: Mutex::new(Vec::new()),
        }
    }

    fn container_of(&self, project: &str, service: &str) -> Option<(String, String)> {
        let all = self.runtime.list_containers(Some(project)).ok()?;
        all.into_iter()
            .find(|c| c.labels.get(SERVICE).map(String::as_str) == Some(service))
            .map(|c| (c.id, c.name))
    }

    fn would_recreate(&self, project: &str, service: &str) -> bool {
        if self.drifted.lock().unwrap().iter().any(|s| s == service) {
            return true;
        }
        let Some((id, _)) = self.container_of(project, service) else {
            return true;
        };
        let facts = self.runtime.get(&id).expect("listed");
        let tagged = self.runtime.tag(&facts.config_image);
        tagged.is_some_and(|t| t != facts.image_id)
    }
}

impl Compose for FakeCompose<'_> {
    fn available(&self) -> Result<(), String> {
        Ok(())
    }

    fn dependents(&self, _project: &ProjectFiles, service: &str) -> Result<Vec<String>> {
        Ok(self.dependents.get(service).cloned().unwrap_or_default())
    }

    fn changes(&self, project: &ProjectFiles, services: &[String]) -> Result<Vec<Change>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("dry-run {}", services.join(" ")));
        Ok(services
            .iter()
            .filter(|s| self.would_recreate(&project.name, s))
            .map(|s| Change {
                container: format!("{}-{s}-1", project.name),
                status: "Recreate".into(),
            })
            .collect())
    }

    fn up(&self, project: &ProjectFiles, services: &[String], start: bool) -> Result<()> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("up {}", services.join(" ")));
        {
            let mut fail = self.fail_up.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                bail!("compose up failed (injected)");
            }
        }
        for service in services {
            if !self.would_recreate(&project.name, service) {
                if let Some((id, _)) = self.container_of(&project.name, service)
                    && start
                {
                    self.runtime.start_container(&id)?;
                }
                continue;
            }
            let Some((old_id, name)) = self.container_of(&project.name, service) else {
                bail!("fake compose: no container for {service}");
            };
            let old = self.runtime.get(&old_id).expect("listed");
            let image = self
                .runtime
                .tag(&old.config_image)
                .unwrap_or(old.image_id.clone());
            let mut labels = old.labels.clone();
            labels.insert("com.docker.compose.image".into(), image.clone());
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let temp = format!("{}_{name}", &old_id[..12]);
            let new_id = self
                .runtime
                .container(&temp, &image, &old.config_image, &pairs, false);
            self.runtime.stop_container(&old_id, None)?;
            self.runtime.remove_container(&old_id, false, true)?;
            self.drifted.lock().unwrap().retain(|s| s != service);
            if std::mem::take(&mut *self.crash_mid_up.lock().unwrap()) {
                bail!("compose was killed mid-recreate (injected)");
            }
            self.runtime.rename_container(&new_id, &name)?;
            if start {
                self.runtime.start_container(&new_id)?;
            }
        }
        Ok(())
    }
}

/// Labels of a container compose made for `service` of project `project`, whose files are
/// under `dir`.
pub fn labels(project: &str, service: &str, dir: &str) -> Vec<(String, String)> {
    vec![
        (PROJECT.into(), project.into()),
        (SERVICE.into(), service.into()),
        (
            "com.docker.compose.project.working_dir".into(),
            dir.to_string(),
        ),
        (
            "com.docker.compose.project.config_files".into(),
            format!("{dir}/compose.yaml"),
        ),
        ("com.docker.compose.container-number".into(), "1".into()),
        ("com.docker.compose.oneoff".into(), "False".into()),
    ]
}
