//! The replacement container: its create request, built from the old container's inspect data,
//! and the call that creates it.
//!
//! Owns: what is carried over and what is dropped. Kept: everything the user configured (env,
//! labels, mounts, ports, restart policy, resources, networks with aliases, static IPs and
//! driver options) and the old container's anonymous volumes, re-attached by name so data
//! survives. Dropped: values that equal the OLD image's defaults (env entries, cmd, entrypoint,
//! labels, healthcheck, workdir, user, exposed ports, volumes, stop signal), so the new image's
//! defaults apply; the auto-generated hostname; the old short ID among network aliases.
//! Compose's `com.docker.compose.image` label is set to the new image ID so a later
//! `docker compose up -d` sees nothing to do. Must not: decide whether to update.

use std::collections::HashMap;

use bollard::models::{
    self, ContainerCreateBody, EndpointSettings, Mount, MountType, NetworkConnectRequest,
    NetworkingConfig,
};
use bollard::query_parameters::CreateContainerOptionsBuilder;

use super::error::Op;
use super::{ContainerSnapshot, Docker, DockerError, Healthcheck, ImageDefaults};

/// Compose's record of the image a container was created from.
const COMPOSE_IMAGE_LABEL: &str = "com.docker.compose.image";

/// A create request plus the networks to connect before the first start (engines older than
/// API 1.44 accept only one endpoint at create time).
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) body: ContainerCreateBody,
    pub(crate) later_networks: Vec<(String, EndpointSettings)>,
}

/// Builds the replacement's create request. `network_mode` overrides `HostConfig.NetworkMode`
/// (used to point a `container:<id>` dependent at its recreated parent).
pub(crate) fn build(
    old: &models::ContainerInspectResponse,
    old_image: &ImageDefaults,
    new_image_id: &str,
    all_endpoints_at_create: bool,
    network_mode: Option<&str>,
) -> Spec {
    let cfg = old.config.clone().unwrap_or_default();
    let id = old.id.as_deref().unwrap_or_default();
    let short_id = &id[..id.len().min(12)];

    // Docker fills in a hostname (the short ID, or a namespace parent's) and refuses one it
    // did not choose when the network namespace is shared.
    let shares_namespace = network_mode
        .or(old
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.as_deref()))
        .is_some_and(|m| m.starts_with("container:"));
    let auto_generated = |h: &String| h.len() == 12 && id.starts_with(h.as_str());
    let hostname = cfg
        .hostname
        .filter(|h| !(shares_namespace || auto_generated(h)));
    let env = cfg.env.map(|env| {
        env.into_iter()
            .filter(|e| !old_image.env.contains(e))
            .collect::<Vec<_>>()
    });
    let cmd = cfg.cmd.filter(|c| *c != old_image.cmd);
    let entrypoint = cfg.entrypoint.filter(|e| *e != old_image.entrypoint);
    let mut labels: HashMap<String, String> = cfg
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| old_image.labels.get(k) != Some(v))
        .collect();
    if labels.contains_key(COMPOSE_IMAGE_LABEL) {
        labels.insert(COMPOSE_IMAGE_LABEL.to_string(), new_image_id.to_string());
    }
    let healthcheck = cfg
        .healthcheck
        .filter(|h| Some(&as_ours(h)) != old_image.healthcheck.as_ref());
    let without = |values: Option<Vec<String>>, image: &[String]| {
        values
            .map(|v| {
                v.into_iter()
                    .filter(|x| !image.contains(x))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
    };
    let differs = |value: Option<String>, image: &str| value.filter(|v| v != image);

    let mut host_config = old.host_config.clone().unwrap_or_default();
    if let Some(mode) = network_mode {
        host_config.network_mode = Some(mode.to_string());
    }
    reattach_anonymous_volumes(old, &mut host_config);
    let (networking_config, later_networks) = networks(
        old,
        host_config.network_mode.as_deref().unwrap_or_default(),
        short_id,
        all_endpoints_at_create,
    );

    let body = ContainerCreateBody {
        hostname,
        domainname: cfg.domainname,
        user: differs(cfg.user, &old_image.user),
        attach_stdin: cfg.attach_stdin,
        attach_stdout: cfg.attach_stdout,
        attach_stderr: cfg.attach_stderr,
        exposed_ports: without(cfg.exposed_ports, &old_image.exposed_ports),
        tty: cfg.tty,
        open_stdin: cfg.open_stdin,
        stdin_once: cfg.stdin_once,
        env,
        cmd,
        healthcheck,
        args_escaped: cfg.args_escaped,
        image: cfg.image,
        volumes: without(cfg.volumes, &old_image.volumes),
        working_dir: differs(cfg.working_dir, &old_image.working_dir),
        entrypoint,
        network_disabled: cfg.network_disabled,
        on_build: cfg.on_build,
        labels: Some(labels),
        stop_signal: cfg
            .stop_signal
            .filter(|s| Some(s) != old_image.stop_signal.as_ref()),
        stop_timeout: cfg.stop_timeout,
        shell: cfg.shell,
        host_config: Some(host_config),
        networking_config,
    };
    Spec {
        body,
        later_networks,
    }
}

fn as_ours(h: &models::HealthConfig) -> Healthcheck {
    Healthcheck {
        test: h.test.clone().unwrap_or_default(),
        interval_ns: h.interval.unwrap_or_default(),
        timeout_ns: h.timeout.unwrap_or_default(),
        start_period_ns: h.start_period.unwrap_or_default(),
        start_interval_ns: h.start_interval.unwrap_or_default(),
        retries: h.retries.unwrap_or_default(),
    }
}

/// Points the replacement at the old container's anonymous volumes (by name) instead of
/// letting Docker create fresh, empty ones. Named volumes and binds are already in the config.
fn reattach_anonymous_volumes(
    old: &models::ContainerInspectResponse,
    host: &mut models::HostConfig,
) {
    let bind_targets: Vec<String> = host
        .binds
        .iter()
        .flatten()
        .filter_map(|b| b.split(':').nth(1).map(str::to_string))
        .collect();
    let mounts = host.mounts.get_or_insert_with(Vec::new);
    for point in old.mounts.iter().flatten() {
        let (Some("volume"), Some(name), Some(target)) = (
            point.typ.as_deref(),
            point.name.as_ref(),
            point.destination.as_ref(),
        ) else {
            continue;
        };
        if bind_targets.contains(target) {
            continue;
        }
        match mounts
            .iter_mut()
            .find(|m| m.target.as_ref() == Some(target))
        {
            Some(m) if m.source.as_deref().is_none_or(str::is_empty) => {
                m.source = Some(name.clone());
            }
            Some(_) => {}
            None => mounts.push(Mount {
                target: Some(target.clone()),
                source: Some(name.clone()),
                typ: Some(MountType::VOLUME),
                read_only: point.rw.map(|rw| !rw),
                ..Mount::default()
            }),
        }
    }
    if mounts.is_empty() {
        host.mounts = None;
    }
}

/// The endpoints to create with, and those to connect afterwards. The primary network is the
/// one `NetworkMode` names, so the container's default route does not change.
fn networks(
    old: &models::ContainerInspectResponse,
    network_mode: &str,
    short_id: &str,
    all_at_create: bool,
) -> (Option<NetworkingConfig>, Vec<(String, EndpointSettings)>) {
    let shares_namespace =
        network_mode.starts_with("container:") || matches!(network_mode, "host" | "none");
    let attached = old
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default();
    if shares_namespace || attached.is_empty() {
        return (None, Vec::new());
    }
    let primary = if network_mode == "default" {
        "bridge"
    } else {
        network_mode
    };
    let mut endpoints: Vec<(String, EndpointSettings)> = attached
        .into_iter()
        .map(|(name, e)| {
            let aliases = e
                .aliases
                .map(|a| a.into_iter().filter(|x| x != short_id).collect::<Vec<_>>())
                .filter(|a| !a.is_empty());
            let settings = EndpointSettings {
                ipam_config: e.ipam_config,
                links: e.links,
                aliases,
                driver_opts: e.driver_opts,
                gw_priority: e.gw_priority,
                ..EndpointSettings::default()
            };
            (name, settings)
        })
        .collect();
    endpoints.sort_by_key(|(name, _)| (name != primary, name.clone()));
    let later = if all_at_create {
        Vec::new()
    } else {
        endpoints.split_off(1)
    };
    let config = NetworkingConfig {
        endpoints_config: Some(endpoints.into_iter().collect()),
    };
    (Some(config), later)
}

impl Docker {
    /// Creates the replacement for `old` under `name`, from the image the old container's
    /// reference now points to, and checks that it really runs `new_image_id`. On any failure
    /// the half-made replacement is removed again.
    pub fn create_replacement(
        &self,
        old: &ContainerSnapshot,
        old_image: &ImageDefaults,
        new_image_id: &str,
        name: &str,
        platform: Option<&str>,
        network_mode: Option<&str>,
    ) -> Result<String, DockerError> {
        let all_at_create = self.api_version
            >= super::ApiVersion {
                major: 1,
                minor: 44,
            };
        let spec = build(
            old.inspect(),
            old_image,
            new_image_id,
            all_at_create,
            network_mode,
        );
        let mut options = CreateContainerOptionsBuilder::new().name(name);
        if let Some(platform) = platform {
            options = options.platform(platform);
        }
        let op = Op::new("creating", format!("container {name:?}"));
        let created = self.run(
            &op,
            self.limits.call,
            self.api.create_container(Some(options.build()), spec.body),
        )?;
        let id = created.id;
        let finish = || -> Result<(), DockerError> {
            for (network, endpoint) in spec.later_networks {
                let op = Op::new(
                    "connecting",
                    format!("container {name:?} to network {network:?}"),
                );
                let request = NetworkConnectRequest {
                    container: id.clone(),
                    endpoint_config: Some(endpoint),
                };
                self.run(
                    &op,
                    self.limits.call,
                    self.api.connect_network(&network, request),
                )?;
            }
            let facts = self.inspect_container(&id)?;
            if facts.image_id != new_image_id {
                return Err(DockerError::Protocol {
                    endpoint: self.endpoint.clone(),
                    action: format!("creating container {name:?}"),
                    message: format!(
                        "it got image {} instead of {new_image_id}: the local tag moved while \
                         updating (another pull?); nothing was changed",
                        facts.image_id
                    ),
                });
            }
            Ok(())
        };
        if let Err(e) = finish() {
            let _ = self.remove_container(&id, false, true);
            return Err(e);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> models::ContainerInspectResponse {
        serde_json::from_str(include_str!("testdata/inspect_compose_healthcheck.json")).unwrap()
    }

    fn image_defaults() -> ImageDefaults {
        ImageDefaults {
            env: vec!["PATH=/bin".into(), "APP_VERSION=1".into()],
            cmd: vec!["/bin/app".into(), "--serve".into()],
            labels: [(
                "org.opencontainers.image.version".to_string(),
                "1".to_string(),
            )]
            .into(),
            healthcheck: Some(Healthcheck {
                test: vec!["CMD-SHELL".into(), "test -f /srv/ok".into()],
                interval_ns: 2_000_000_000,
                timeout_ns: 1_000_000_000,
                retries: 3,
                ..Healthcheck::default()
            }),
            working_dir: "/srv".into(),
            user: String::new(),
            exposed_ports: vec!["8080/tcp".into()],
            volumes: vec!["/data".into()],
            stop_signal: Some("SIGQUIT".into()),
            ..ImageDefaults::default()
        }
    }

    #[test]
    fn drops_the_old_images_defaults_and_keeps_the_users_config() {
        let spec = build(&fixture(), &image_defaults(), "sha256:new", true, None);
        let b = &spec.body;
        assert_eq!(
            b.env.as_deref(),
            Some(&["APP_MODE=prod".to_string()][..]),
            "only compose's env"
        );
        assert_eq!(b.cmd, None, "the image's cmd is left to the new image");
        assert_eq!(b.healthcheck, None);
        assert_eq!(b.working_dir, None);
        assert_eq!(b.stop_signal, None);
        assert_eq!(
            b.user.as_deref(),
            Some("1000"),
            "a user the image did not set is kept"
        );
        assert_eq!(
            b.exposed_ports.as_deref(),
            Some(&["443/tcp".to_string()][..])
        );
        assert_eq!(b.volumes, None);
        assert_eq!(b.hostname, None, "the auto-generated hostname is dropped");
        assert_eq!(b.image.as_deref(), Some("127.0.0.1:15001/pptb/app:stable"));
        assert_eq!(b.stop_timeout, Some(30));
        let labels = b.labels.as_ref().unwrap();
        assert!(!labels.contains_key("org.opencontainers.image.version"));
        assert_eq!(labels["com.docker.compose.image"], "sha256:new");
        assert_eq!(labels["com.docker.compose.config-hash"], "5d0b6b1e0c2f");
        assert_eq!(labels["io.pullpilot.soak"], "1h");
        let host = b.host_config.as_ref().unwrap();
        assert_eq!(
            host.binds.as_deref(),
            Some(&["/srv/shop/conf:/etc/app:ro".to_string()][..])
        );
        assert_eq!(
            host.restart_policy,
            fixture().host_config.unwrap().restart_policy
        );
    }

    #[test]
    fn keeps_values_that_differ_from_the_image() {
        let mut image = image_defaults();
        image.cmd = vec!["/bin/other".into()];
        image.env.clear();
        image.healthcheck = None;
        let spec = build(&fixture(), &image, "sha256:new", true, None);
        assert_eq!(spec.body.cmd.as_deref().map(<[String]>::len), Some(2));
        assert_eq!(spec.body.env.as_ref().map(Vec::len), Some(3));
        assert!(spec.body.healthcheck.is_some());
    }

    #[test]
    fn networks_keep_aliases_and_static_ips_without_the_old_short_id() {
        let old = fixture();
        let spec = build(&old, &image_defaults(), "sha256:new", true, None);
        let endpoints = spec
            .body
            .networking_config
            .unwrap()
            .endpoints_config
            .unwrap();
        let attached = old.network_settings.unwrap().networks.unwrap();
        assert_eq!(endpoints.len(), attached.len());
        let short = &old.id.unwrap()[..12];
        for (name, endpoint) in &endpoints {
            let before = &attached[name];
            assert_eq!(endpoint.ipam_config, before.ipam_config, "{name}");
            let aliases = endpoint.aliases.clone().unwrap_or_default();
            assert!(!aliases.iter().any(|a| a == short), "{name}: {aliases:?}");
            for alias in before.aliases.iter().flatten().filter(|a| *a != short) {
                assert!(aliases.contains(alias), "{name} lost alias {alias}");
            }
            assert_eq!(endpoint.ip_address, None, "runtime fields are not carried");
        }
        assert!(spec.later_networks.is_empty());
    }

    #[test]
    fn old_engines_get_the_primary_network_first_and_the_rest_later() {
        let mut old = fixture();
        let networks = old
            .network_settings
            .as_mut()
            .unwrap()
            .networks
            .as_mut()
            .unwrap();
        let template = networks.values().next().unwrap().clone();
        networks.insert("zzz_extra".into(), template.clone());
        networks.insert("aaa_extra".into(), template);
        let spec = build(&old, &image_defaults(), "sha256:new", false, None);
        let at_create = spec
            .body
            .networking_config
            .unwrap()
            .endpoints_config
            .unwrap();
        assert_eq!(at_create.keys().collect::<Vec<_>>(), ["shop_default"]);
        let later: Vec<&str> = spec
            .later_networks
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(later, ["aaa_extra", "backend", "zzz_extra"]);
    }

    #[test]
    fn anonymous_volumes_are_reattached_by_name() {
        let mut old = fixture();
        old.host_config.as_mut().unwrap().mounts = None;
        old.mounts.as_mut().unwrap().push(models::MountPoint {
            typ: Some("volume".into()),
            name: Some("a".repeat(64)),
            destination: Some("/cache".into()),
            rw: Some(true),
            ..models::MountPoint::default()
        });
        let spec = build(&old, &image_defaults(), "sha256:new", true, None);
        let mounts = spec.body.host_config.unwrap().mounts.unwrap();
        let cache = mounts
            .iter()
            .find(|m| m.target.as_deref() == Some("/cache"))
            .unwrap();
        assert_eq!(cache.source.as_deref(), Some("a".repeat(64).as_str()));
        assert_eq!(cache.typ, Some(MountType::VOLUME));
        assert_eq!(cache.read_only, Some(false));
    }

    #[test]
    fn a_shared_network_namespace_is_pointed_at_the_new_parent() {
        let spec = build(
            &fixture(),
            &image_defaults(),
            "sha256:new",
            true,
            Some("container:abc"),
        );
        assert_eq!(
            spec.body.hostname, None,
            "docker refuses a hostname with a shared namespace"
        );
        assert_eq!(
            spec.body.hostname, None,
            "docker refuses a hostname with a shared namespace"
        );
        let host = spec.body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("container:abc"));
        assert!(spec.body.networking_config.is_none());
    }
}

#[cfg(test)]
mod follower_tests {
    use super::*;

    #[test]
    fn a_follower_created_by_docker_gets_no_hostname() {
        let old: models::ContainerInspectResponse =
            serde_json::from_str(include_str!("testdata/inspect_netns_follower.json")).unwrap();
        let spec = build(
            &old,
            &ImageDefaults::default(),
            "sha256:x",
            true,
            Some("container:abc"),
        );
        let json = serde_json::to_value(&spec.body).unwrap();
        assert!(json.get("Hostname").is_none(), "{json:#}");
    }
}
