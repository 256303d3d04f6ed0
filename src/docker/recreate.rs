//! The replacement container: its create request, built from the old container's inspect data,
//! and the call that creates it.
//!
//! Owns: what is carried over and what is dropped. Kept: everything the user configured (env,
//! labels, mounts, ports, restart policy, resources, networks with aliases, static IPs and
//! driver options) and the old container's anonymous volumes, re-attached by name so data
//! survives; the MAC address the user configured for the main network (never a generated one);
//! for a follower, every reference to its recreated parent (network, PID and IPC modes,
//! `VolumesFrom`) pointed at the new parent. Dropped: values that equal the OLD image's defaults
//! (env entries, cmd, entrypoint, labels, healthcheck, workdir, user, exposed ports, volumes,
//! stop signal), so the new image's defaults apply; the hostname Docker chose (the short ID, a
//! namespace parent's, the host's) and any hostname with `UTSMode: host`; the old short ID
//! among network aliases.
//! Compose's `com.docker.compose.image` label is set to the new image ID so a later
//! `docker compose up -d` sees nothing to do (only on the API path: on the compose path
//! compose makes the replacement). Must not: decide whether to update.
//! Over 500 lines: the create request is one field-by-field mapping from the inspect data, and
//! its MAC, hostname and namespace rules read best beside it.

use std::collections::HashMap;

use bollard::models::{
    self, ContainerCreateBody, EndpointSettings, Mount, MountType, NetworkConnectRequest,
    NetworkingConfig,
};
use bollard::query_parameters::CreateContainerOptionsBuilder;

use super::error::Op;
use super::{
    ApiVersion, ContainerSnapshot, Docker, DockerError, Healthcheck, ImageDefaults, NewParent,
    request_modifier,
};
use bollard::BollardRequest;

/// Compose's record of the image a container was created from.
const COMPOSE_IMAGE_LABEL: &str = "com.docker.compose.image";

/// A create request plus the networks to connect before the first start (engines older than
/// API 1.44 accept only one endpoint at create time).
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub(crate) body: ContainerCreateBody,
    pub(crate) later_networks: Vec<(String, EndpointSettings)>,
    /// The container-wide `Config.MacAddress` to send (API < 1.44 only, where the engine
    /// ignores endpoint MACs). bollard's create body has no such field any more, so
    /// [`Docker::create_replacement`] adds it to the JSON.
    pub(crate) container_mac: Option<String>,
}

/// What the create request needs besides the old container's inspect data.
#[derive(Debug, Clone, Default)]
pub(crate) struct CreateInputs<'a> {
    /// The engine speaks API ≥ 1.44: every endpoint (and its MAC) goes in the create request.
    pub(crate) api_1_44: bool,
    /// The MAC address the user configured for the main network (`Config.MacAddress` of the
    /// old container, read raw; see [`configured_mac`]). `None`: Docker generated it.
    pub(crate) configured_mac: Option<&'a str>,
    /// The daemon host's name (`/info` `Name`): the hostname Docker gives a container on the
    /// host network when none is configured.
    pub(crate) host_name: Option<&'a str>,
    /// Set when recreating a follower onto its recreated parent.
    pub(crate) parent: Option<&'a NewParent>,
}

/// Builds the replacement's create request.
pub(crate) fn build(
    old: &models::ContainerInspectResponse,
    old_image: &ImageDefaults,
    new_image_id: &str,
    inputs: &CreateInputs<'_>,
) -> Spec {
    let cfg = old.config.clone().unwrap_or_default();
    let id = old.id.as_deref().unwrap_or_default();
    let short_id = &id[..id.len().min(12)];

    let mut host_config = old.host_config.clone().unwrap_or_default();
    if let Some(parent) = inputs.parent {
        point_at_new_parent(&mut host_config, parent);
    }
    let network_mode = host_config.network_mode.clone().unwrap_or_default();

    // Docker fills in a hostname when none is configured: the short ID, a namespace parent's,
    // or (on the host network) the host's. It refuses one it did not choose when the network
    // namespace is shared ("conflicting options: hostname and the network mode") and with
    // `UTSMode: host` ("conflicting options: hostname and the UTS mode").
    let uts_host = host_config.uts_mode.as_deref() == Some("host");
    let auto_generated = |h: &String| {
        (h.len() == 12 && id.starts_with(h.as_str()))
            || (network_mode == "host" && Some(h.as_str()) == inputs.host_name)
    };
    let hostname = cfg
        .hostname
        .filter(|h| !(network_mode.starts_with("container:") || uts_host || auto_generated(h)));
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

    reattach_anonymous_volumes(old, &mut host_config);
    let mac = inputs
        .configured_mac
        .filter(|m| !m.is_empty() && takes_a_mac(&network_mode));
    let (networking_config, later_networks) = networks(
        old,
        &network_mode,
        short_id,
        inputs.api_1_44,
        mac.filter(|_| inputs.api_1_44),
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
        // API ≥ 1.44 takes the MAC on the main endpoint only: a container-wide one next to it
        // must match it exactly, and API ≥ 1.52 refuses the container-wide field outright.
        container_mac: mac.filter(|_| !inputs.api_1_44).map(str::to_owned),
    }
}

/// A MAC address can be configured only on a network of the container's own: the engine
/// refuses one with `host`, `none` or `container:` ("conflicting options: mac-address and the
/// network mode").
fn takes_a_mac(network_mode: &str) -> bool {
    !(network_mode.is_empty()
        || matches!(network_mode, "host" | "none")
        || network_mode.starts_with("container:"))
}

/// Rewrites every reference to the old parent (`container:` network, PID and IPC modes, and
/// `VolumesFrom` entries, by ID or name, keeping `:ro`/`:rw`) to the new parent's ID.
fn point_at_new_parent(host: &mut models::HostConfig, parent: &NewParent) {
    for mode in [
        &mut host.network_mode,
        &mut host.pid_mode,
        &mut host.ipc_mode,
    ] {
        if let Some(new) = mode.as_deref().and_then(|m| parent.repoint_mode(m)) {
            *mode = Some(new);
        }
    }
    for entry in host.volumes_from.iter_mut().flatten() {
        if let Some(new) = parent.repoint_volumes_from(entry) {
            *entry = new;
        }
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
    primary_mac: Option<&str>,
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
            // `MacAddress` here is operational (a generated one included), so it is never
            // copied; only the configured MAC of the main network is known (see
            // [`configured_mac`]).
            let settings = EndpointSettings {
                ipam_config: e.ipam_config,
                links: e.links,
                aliases,
                driver_opts: e.driver_opts,
                gw_priority: e.gw_priority,
                mac_address: primary_mac.filter(|_| name == primary).map(str::to_owned),
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

/// The newest API whose container inspect still shows `Config.MacAddress` (API 1.52 dropped
/// it).
const LAST_API_WITH_CONFIG_MAC: ApiVersion = ApiVersion {
    major: 1,
    minor: 51,
};

/// The MAC address configured for a container's main network, from its raw inspect JSON.
///
/// Fact relied on (moby `daemon/inspect.go` and `daemon/server/router/container/inspect.go`,
/// engine 25 to 29): `NetworkSettings.Networks[n].MacAddress` is operational — once the
/// container has run it holds the address in use, generated or not — while the daemon keeps
/// the configured one apart (`DesiredMacAddress`, never shown per endpoint) and shows it as
/// `Config.MacAddress` for the main network (a bridge or user-defined `NetworkMode`) on API
/// < 1.52, empty when Docker generated the MAC. On engine 20.10 (API 1.41) `Config.MacAddress`
/// is simply the container-wide `--mac-address` / compose `mac_address` as given, empty when
/// none was. So this value is what the user set, and an operational MAC is never pinned.
/// bollard's models (API 1.53) no longer carry the field, hence the raw JSON.
pub(crate) fn configured_mac(raw_inspect: &[u8]) -> Result<Option<String>, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(raw_inspect)?;
    Ok(value
        .pointer("/Config/MacAddress")
        .and_then(serde_json::Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_owned))
}

/// The create body as JSON with the container-wide `MacAddress` that bollard's model lacks.
fn body_with_mac(body: &ContainerCreateBody, mac: &str) -> Result<Vec<u8>, serde_json::Error> {
    let mut value = serde_json::to_value(body)?;
    if let Some(object) = value.as_object_mut() {
        object.insert("MacAddress".to_owned(), mac.into());
    }
    serde_json::to_vec(&value)
}

impl Docker {
    /// The MAC address configured for `id`'s main network, if any (see [`configured_mac`]).
    fn read_configured_mac(&self, id: &str) -> Result<Option<String>, DockerError> {
        let op = Op::new("reading the MAC address of", format!("container {id:?}"));
        let version = self.api_version.min(LAST_API_WITH_CONFIG_MAC);
        let raw = self.raw_get(&op, &format!("/v{version}/containers/{id}/json"))?;
        configured_mac(&raw).map_err(|e| DockerError::Protocol {
            endpoint: self.endpoint.clone(),
            action: op.action,
            message: format!("the inspect answer is not JSON ({e})"),
        })
    }

    /// The daemon host's name (`/info` `Name`).
    fn host_name(&self) -> Result<Option<String>, DockerError> {
        let op = Op::new("reading", "the engine information".to_owned());
        let info = self.run(&op, self.limits.call, self.api.info())?;
        Ok(info.name.filter(|n| !n.is_empty()))
    }

    /// Creates the replacement for `old` under `name`, from the image the old container's
    /// reference now points to, and checks that it really runs `new_image_id`. `parent`: the
    /// old container is a follower whose parent was recreated. On any failure the half-made
    /// replacement is removed again.
    pub fn create_replacement(
        &self,
        old: &ContainerSnapshot,
        old_image: &ImageDefaults,
        new_image_id: &str,
        name: &str,
        platform: Option<&str>,
        parent: Option<&NewParent>,
    ) -> Result<String, DockerError> {
        let inspect = old.inspect();
        let old_id = inspect.id.as_deref().unwrap_or_default();
        let mut network_mode = inspect
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.clone())
            .unwrap_or_default();
        if let Some(new) = parent.and_then(|p| p.repoint_mode(&network_mode)) {
            network_mode = new;
        }
        let configured_mac = if takes_a_mac(&network_mode) {
            match self.read_configured_mac(old_id) {
                Ok(mac) => mac,
                // An engine that no longer serves API 1.51 cannot say; that must not block
                // every update of a container with a network of its own.
                Err(DockerError::Api { status: 400, .. }) => {
                    log::warn!(
                        "Docker at {} no longer shows which MAC address container {name:?} was \
                         given, if any; its replacement gets one generated by Docker. Set \
                         `mac_address` in compose and run `docker compose up -d` if it needs a \
                         fixed one.",
                        self.endpoint
                    );
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let host_name = if network_mode == "host" {
            self.host_name()?
        } else {
            None
        };
        let inputs = CreateInputs {
            api_1_44: self.api_version
                >= ApiVersion {
                    major: 1,
                    minor: 44,
                },
            configured_mac: configured_mac.as_deref(),
            host_name: host_name.as_deref(),
            parent,
        };
        let spec = build(inspect, old_image, new_image_id, &inputs);
        let mut options = CreateContainerOptionsBuilder::new().name(name);
        if let Some(platform) = platform {
            options = options.platform(platform);
        }
        let op = Op::new("creating", format!("container {name:?}"));
        let api = match &spec.container_mac {
            None => self.api.clone(),
            Some(mac) => {
                let body = body_with_mac(&spec.body, mac).map_err(|e| DockerError::Protocol {
                    endpoint: self.endpoint.clone(),
                    action: op.action.clone(),
                    message: format!("the create request could not be written ({e})"),
                })?;
                self.api
                    .clone()
                    .with_request_modifier(replace_create_body(self.api_version, body))
            }
        };
        let created = self.run(
            &op,
            self.limits.call,
            api.create_container(Some(options.build()), spec.body),
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

/// The facade's usual request modifier, plus: the body of `POST /containers/create` is
/// replaced by `body` (the same request with the field bollard cannot express).
fn replace_create_body(
    version: ApiVersion,
    body: Vec<u8>,
) -> impl Fn(BollardRequest) -> BollardRequest + Send + Sync + 'static {
    let versioned = request_modifier(version, None);
    move |request| {
        let mut request = versioned(request);
        if request.method().as_str() == "POST"
            && request.uri().path().ends_with("/containers/create")
        {
            *request.body_mut() = bollard::body_full(body.clone().into());
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine of API 1.44 or later, nothing else known.
    const API_1_44: CreateInputs<'static> = CreateInputs {
        api_1_44: true,
        configured_mac: None,
        host_name: None,
        parent: None,
    };
    /// Engine 20.10 (API 1.41).
    const API_1_41: CreateInputs<'static> = CreateInputs {
        api_1_44: false,
        ..API_1_44
    };

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
        let spec = build(&fixture(), &image_defaults(), "sha256:new", &API_1_44);
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
        let spec = build(&fixture(), &image, "sha256:new", &API_1_44);
        assert_eq!(spec.body.cmd.as_deref().map(<[String]>::len), Some(2));
        assert_eq!(spec.body.env.as_ref().map(Vec::len), Some(3));
        assert!(spec.body.healthcheck.is_some());
    }

    #[test]
    fn networks_keep_aliases_and_static_ips_without_the_old_short_id() {
        let old = fixture();
        let spec = build(&old, &image_defaults(), "sha256:new", &API_1_44);
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
        let spec = build(&old, &image_defaults(), "sha256:new", &API_1_41);
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
        let spec = build(&old, &image_defaults(), "sha256:new", &API_1_44);
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
        let mut old = fixture();
        old.host_config.as_mut().unwrap().network_mode = Some("container:shop-db-1".into());
        let parent = NewParent {
            old_id: "0".repeat(64),
            old_name: "shop-db-1".into(),
            new_id: "abc".into(),
        };
        let inputs = CreateInputs {
            parent: Some(&parent),
            ..API_1_44
        };
        let spec = build(&old, &image_defaults(), "sha256:new", &inputs);
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
mod mac_and_namespace_tests {
    use super::*;

    fn raw(name: &str) -> &'static str {
        match name {
            "1.51" => include_str!("testdata/inspect_mac_api_1_51.json"),
            "1.41" => include_str!("testdata/inspect_mac_api_1_41.json"),
            "generated" => include_str!("testdata/inspect_mac_generated.json"),
            "uts" => include_str!("testdata/inspect_uts_host.json"),
            "follower" => include_str!("testdata/inspect_pid_ipc_volumes_follower.json"),
            other => panic!("no fixture {other}"),
        }
    }

    fn inspect(name: &str) -> models::ContainerInspectResponse {
        serde_json::from_str(raw(name)).unwrap()
    }

    fn endpoint_macs(spec: &Spec) -> Vec<(String, Option<String>)> {
        let mut macs: Vec<_> = spec
            .body
            .networking_config
            .iter()
            .flat_map(|n| n.endpoints_config.iter().flatten())
            .chain(spec.later_networks.iter().map(|(n, e)| (n, e)))
            .map(|(n, e)| (n.clone(), e.mac_address.clone()))
            .collect();
        macs.sort();
        macs
    }

    #[test]
    fn only_the_configured_mac_is_read_and_never_a_generated_one() {
        let mac = Some("02:42:ac:14:00:99".to_owned());
        assert_eq!(configured_mac(raw("1.51").as_bytes()).unwrap(), mac);
        assert_eq!(configured_mac(raw("1.41").as_bytes()).unwrap(), mac);
        assert_eq!(configured_mac(raw("generated").as_bytes()).unwrap(), None);
        assert_eq!(
            configured_mac(br#"{"Config":{"MacAddress":""}}"#).unwrap(),
            None
        );
        assert!(configured_mac(b"<html>").is_err());
    }

    #[test]
    fn api_1_44_puts_the_configured_mac_on_the_main_endpoint_only() {
        let old = inspect("1.51");
        let inputs = CreateInputs {
            api_1_44: true,
            configured_mac: Some("02:42:ac:14:00:99"),
            ..CreateInputs::default()
        };
        let spec = build(&old, &ImageDefaults::default(), "sha256:new", &inputs);
        assert_eq!(
            endpoint_macs(&spec),
            [
                ("backend".to_owned(), None),
                (
                    "shop_default".to_owned(),
                    Some("02:42:ac:14:00:99".to_owned())
                ),
            ],
            "backend's operational (generated) MAC is not pinned"
        );
        assert_eq!(
            spec.container_mac, None,
            "no container-wide MAC: API 1.44 wants it equal to the endpoint's, 1.52 refuses it"
        );
    }

    #[test]
    fn api_1_41_sends_the_configured_mac_container_wide() {
        let old = inspect("1.41");
        let inputs = CreateInputs {
            configured_mac: Some("02:42:ac:14:00:99"),
            ..CreateInputs::default()
        };
        let spec = build(&old, &ImageDefaults::default(), "sha256:new", &inputs);
        assert_eq!(spec.container_mac.as_deref(), Some("02:42:ac:14:00:99"));
        assert_eq!(endpoint_macs(&spec), [("shop_default".to_owned(), None)]);
        let json: serde_json::Value =
            serde_json::from_slice(&body_with_mac(&spec.body, "02:42:ac:14:00:99").unwrap())
                .unwrap();
        assert_eq!(json["MacAddress"], "02:42:ac:14:00:99");
        assert_eq!(json["Image"], "127.0.0.1:15001/pptb/app:stable");
    }

    #[test]
    fn a_generated_mac_stays_generated() {
        for api_1_44 in [true, false] {
            let inputs = CreateInputs {
                api_1_44,
                ..CreateInputs::default()
            };
            let spec = build(
                &inspect("generated"),
                &ImageDefaults::default(),
                "sha256:new",
                &inputs,
            );
            assert!(
                endpoint_macs(&spec).iter().all(|(_, m)| m.is_none()),
                "{api_1_44}"
            );
            assert_eq!(spec.container_mac, None);
        }
    }

    #[test]
    fn no_mac_where_the_network_is_not_the_containers_own() {
        for mode in ["host", "none", "container:abc"] {
            let mut old = inspect("1.41");
            old.host_config.as_mut().unwrap().network_mode = Some(mode.into());
            let inputs = CreateInputs {
                configured_mac: Some("02:42:ac:14:00:99"),
                ..CreateInputs::default()
            };
            let spec = build(&old, &ImageDefaults::default(), "sha256:new", &inputs);
            assert_eq!(spec.container_mac, None, "{mode}");
            assert!(spec.body.networking_config.is_none(), "{mode}");
        }
    }

    #[test]
    fn uts_host_and_the_hosts_own_name_give_no_hostname() {
        let inputs = CreateInputs {
            api_1_44: true,
            host_name: Some("bedhost"),
            ..CreateInputs::default()
        };
        let old = inspect("uts");
        let spec = build(&old, &ImageDefaults::default(), "sha256:new", &inputs);
        assert_eq!(spec.body.hostname, None, "conflicts with UTSMode host");
        assert!(spec.body.networking_config.is_none());

        // `uts: host` with a hostname somebody set is refused by Docker all the same.
        let mut custom = old.clone();
        custom.config.as_mut().unwrap().hostname = Some("custom".into());
        let spec = build(&custom, &ImageDefaults::default(), "sha256:new", &inputs);
        assert_eq!(spec.body.hostname, None);

        // The host network alone: the host's name was Docker's choice, another one the user's.
        let mut net_host = old.clone();
        net_host.host_config.as_mut().unwrap().uts_mode = Some(String::new());
        let spec = build(&net_host, &ImageDefaults::default(), "sha256:new", &inputs);
        assert_eq!(spec.body.hostname, None);
        net_host.config.as_mut().unwrap().hostname = Some("custom".into());
        let spec = build(&net_host, &ImageDefaults::default(), "sha256:new", &inputs);
        assert_eq!(spec.body.hostname.as_deref(), Some("custom"));
    }

    #[test]
    fn every_reference_to_the_old_parent_points_at_the_new_one() {
        let old = inspect("follower");
        let parent = NewParent {
            old_id: "7d3a9c1e5b2f4d6a8c0e1f3a5b7d9c1e3f5a7b9d1c3e5f7a9b1d3c5e7f9a1b3c".into(),
            old_name: "shop-db-1".into(),
            new_id: "9".repeat(64),
        };
        let inputs = CreateInputs {
            api_1_44: true,
            parent: Some(&parent),
            ..CreateInputs::default()
        };
        let spec = build(&old, &ImageDefaults::default(), "sha256:new", &inputs);
        let host = spec.body.host_config.unwrap();
        let new_mode = format!("container:{}", parent.new_id);
        assert_eq!(host.pid_mode.as_deref(), Some(new_mode.as_str()));
        assert_eq!(host.ipc_mode.as_deref(), Some(new_mode.as_str()));
        assert_eq!(
            host.volumes_from.unwrap(),
            [format!("{}:ro", parent.new_id), "shop-logs-1".to_owned()]
        );
        assert_eq!(host.network_mode.as_deref(), Some("shop_default"));
        assert_eq!(spec.body.hostname.as_deref(), Some("sidecar"));

        // By name, and by a short ID; a too-short prefix is not trusted.
        let mut by_name = inspect("follower");
        let h = by_name.host_config.as_mut().unwrap();
        h.pid_mode = Some("container:shop-db-1".into());
        h.ipc_mode = Some("container:7d3a9c1e5b2f".into());
        h.volumes_from = Some(vec!["7d3a".into()]);
        let spec = build(&by_name, &ImageDefaults::default(), "sha256:new", &inputs);
        let host = spec.body.host_config.unwrap();
        assert_eq!(host.pid_mode.as_deref(), Some(new_mode.as_str()));
        assert_eq!(host.ipc_mode.as_deref(), Some(new_mode.as_str()));
        assert_eq!(host.volumes_from.unwrap(), ["7d3a"]);
    }
}

#[cfg(test)]
mod follower_tests {
    use super::*;

    #[test]
    fn a_follower_created_by_docker_gets_no_hostname() {
        let old: models::ContainerInspectResponse =
            serde_json::from_str(include_str!("testdata/inspect_netns_follower.json")).unwrap();
        let parent = NewParent {
            old_id: "ec8386ddbd509fbd9a796d114c6d12689eb4824afb157fe95986edf16f34104a".into(),
            old_name: "ppx-app".into(),
            new_id: "abc".into(),
        };
        let inputs = CreateInputs {
            api_1_44: true,
            parent: Some(&parent),
            ..CreateInputs::default()
        };
        let spec = build(&old, &ImageDefaults::default(), "sha256:x", &inputs);
        assert_eq!(
            spec.body
                .host_config
                .as_ref()
                .unwrap()
                .network_mode
                .as_deref(),
            Some("container:abc")
        );
        let json = serde_json::to_value(&spec.body).unwrap();
        assert!(json.get("Hostname").is_none(), "{json:#}");
    }
}
