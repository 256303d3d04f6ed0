//! `doctor`: each rule's ok/warn/fail and its fix (pure, from plain facts), and the gathering
//! through the in-memory runtime, loopback registries and notification targets, temporary
//! directories and a stand-in `systemctl`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::checks::{
    self, ComposeFacts, DataDirFacts, DirKind, EngineFacts, Facts, FileRead, Finding, Level,
    NotifyUrl, RegistryAnswer, RegistryFacts, ScopeFacts, SecretShape, SettingsFile, SystemdFacts,
    WebhookFacts,
};
use super::gather;
use crate::compose::{ComposeCli, ComposeSetting};
use crate::docker::{DockerError, EngineInfo};
use crate::labels;
use crate::registry::{CheckError, RegistryClient, RegistryOptions, RepoTag};
use crate::runtime::fake::Fake;
use crate::settings::Settings;
use crate::testhttp::Recorded;

fn settings(pairs: &[(&str, &str)]) -> (Settings, BTreeMap<String, String>) {
    let env: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let (s, _) = Settings::resolve(&crate::cli::GlobalArgs::default(), &env).unwrap();
    (s, env)
}

fn engine_info() -> EngineInfo {
    EngineInfo {
        server_version: "28.5.1".into(),
        api_version: "1.51".into(),
        client_api_version: "1.51".into(),
        os: "linux".into(),
        arch: "amd64".into(),
        driver: "overlay2".into(),
        containerd_image_store: false,
    }
}

/// A setup where everything is fine.
fn healthy() -> Facts {
    Facts {
        settings_file: SettingsFile {
            path: PathBuf::from("/etc/default/pullpilot"),
            read: FileRead::Read {
                count: 2,
                differing: vec![],
            },
        },
        engine: EngineFacts::Reached {
            endpoint: "unix:///var/run/docker.sock".into(),
            info: engine_info(),
        },
        compose: ComposeFacts::Found {
            command: "docker compose".into(),
            version: "2.40.3".into(),
            projects: vec![("shop".into(), Ok(()))],
        },
        scope: ScopeFacts::Resolved {
            label: "project:shop".into(),
            containers: vec!["web".into(), "db".into()],
            own_container: None,
        },
        data_dir: DataDirFacts {
            path: PathBuf::from("/var/lib/pullpilot"),
            kind: DirKind::Present {
                mode: 0o700,
                owner: 0,
                me: Some(0),
                writable: Ok(()),
            },
            in_container: false,
            on_volume: Some(false),
        },
        registries: RegistryFacts::Checked(vec![RegistryAnswer {
            host: "ghcr.io".into(),
            item: "acme/web:1".into(),
            result: Ok(()),
        }]),
        notify: vec![NotifyUrl {
            redacted: "ntfy://ntfy.sh/…".into(),
            parsed: Ok(()),
            sent: None,
        }],
        webhook: WebhookFacts {
            schedule: Ok(()),
            relay: false,
            relay_url: None,
            url_problem: None,
            registered: false,
            secret: None,
        },
        systemd: SystemdFacts::Units(vec![
            ("pullpilot.timer".into(), Ok("active".into())),
            ("pullpilot-listen.service".into(), Ok("inactive".into())),
            ("pullpilot.service".into(), Ok("inactive".into())),
        ]),
    }
}

/// The lines of `check`.
fn lines(facts: &Facts, check: &str) -> Vec<Finding> {
    checks::findings(facts)
        .into_iter()
        .filter(|f| f.check == check)
        .collect()
}

/// The one line of `check` at `level`, whose message and fix contain the given words.
fn expect(facts: &Facts, check: &str, level: Level, message: &str, fix: &str) {
    let found = lines(facts, check);
    let hit = found.iter().find(|f| f.level == level);
    let Some(hit) = hit else {
        panic!("no {level:?} line for {check}: {found:#?}");
    };
    assert!(hit.message.contains(message), "{check}: {hit:#?}");
    assert!(
        hit.fix.as_deref().unwrap_or_default().contains(fix),
        "{check}: {hit:#?}"
    );
}

#[test]
fn a_healthy_setup_is_all_ok_and_exits_0() {
    let list = checks::findings(&healthy());
    assert!(
        list.iter().all(|f| f.level == Level::Ok),
        "{}",
        checks::render(&list)
    );
    assert!(!checks::any_fail(&list));
    let checks: Vec<&str> = list.iter().map(|f| f.check).collect();
    for check in [
        "settings", "docker", "compose", "scope", "data dir", "registry", "notify", "webhook",
        "systemd",
    ] {
        assert!(checks.contains(&check), "{check} missing: {checks:?}");
    }
    let doc = checks::document(&list);
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["checks"][1]["check"], "docker");
    assert_eq!(doc["checks"][1]["level"], "ok");
}

#[test]
fn each_rule_names_the_thing_and_the_fix() {
    // Docker.
    let mut f = healthy();
    f.engine = EngineFacts::Failed(DockerError::Unreachable {
        endpoint: "unix:///var/run/docker.sock".into(),
        reason: "connection refused".into(),
        hint: "start Docker or set DOCKER_HOST".into(),
    });
    expect(
        &f,
        "docker",
        Level::Fail,
        "Docker is not reachable at unix:///var/run/docker.sock (connection refused)",
        "start Docker or set DOCKER_HOST",
    );
    assert!(checks::any_fail(&checks::findings(&f)));

    // Compose.
    let mut f = healthy();
    f.compose = ComposeFacts::Missing {
        explicit: false,
        why: "no compose v2 CLI was found; install the docker compose plugin".into(),
    };
    expect(
        &f,
        "compose",
        Level::Warn,
        "install the docker compose plugin",
        "",
    );
    f.compose = ComposeFacts::Missing {
        explicit: true,
        why: "it exited with 1".into(),
    };
    expect(
        &f,
        "compose",
        Level::Fail,
        "PP_COMPOSE does not work (it exited with 1)",
        "set PP_COMPOSE to a working compose v2 command",
    );
    f.compose = ComposeFacts::Found {
        command: "docker compose".into(),
        version: "2.40.3".into(),
        projects: vec![(
            "shop".into(),
            Err("its project directory /srv/shop is not here".into()),
        )],
    };
    expect(
        &f,
        "compose",
        Level::Warn,
        "compose project shop cannot be handed to compose (its project directory /srv/shop is \
         not here)",
        "mount the project directory read-only at that path",
    );
    f.compose = ComposeFacts::Off;
    expect(&f, "compose", Level::Ok, "PP_COMPOSE=off", "");

    // Scope.
    let mut f = healthy();
    f.scope = ScopeFacts::Failed("no compose project found: run pullpilot from …".into());
    expect(
        &f,
        "scope",
        Level::Fail,
        "the scope does not resolve: no compose project found",
        "",
    );
    f.scope = ScopeFacts::Resolved {
        label: "project:shop".into(),
        containers: vec![],
        own_container: None,
    };
    expect(
        &f,
        "scope",
        Level::Warn,
        "has no containers",
        "check PP_SCOPE",
    );
    f.scope = ScopeFacts::Skipped;
    expect(&f, "scope", Level::Skip, "Docker is not reachable", "");
    assert!(!checks::any_fail(&checks::findings(&f)), "skip is no fail");

    // Registries.
    let item = RepoTag {
        host: "127.0.0.1:5001".into(),
        repository: "acme/web".into(),
        tag: "1".into(),
    };
    let mut f = healthy();
    f.registries = RegistryFacts::Checked(vec![RegistryAnswer {
        host: item.host.clone(),
        item: "acme/web:1".into(),
        result: Err(CheckError::Unauthorized {
            item: item.clone(),
            credentials: Some("the entry for 127.0.0.1:5001 in /root/.docker/config.json".into()),
            config: PathBuf::from("/root/.docker/config.json"),
        }),
    }]);
    expect(
        &f,
        "registry",
        Level::Fail,
        "registry 127.0.0.1:5001 refused the credentials for acme/web:1 (HTTP 401): check the \
         entry for 127.0.0.1:5001 in /root/.docker/config.json or run `docker login \
         127.0.0.1:5001`",
        "",
    );
    f.registries = RegistryFacts::Checked(vec![RegistryAnswer {
        host: item.host.clone(),
        item: "acme/web:1".into(),
        result: Err(CheckError::RateLimited {
            item: item.clone(),
            retry_after: None,
        }),
    }]);
    expect(&f, "registry", Level::Warn, "127.0.0.1:5001", "");
    f.registries = RegistryFacts::Unusable("config.json is not JSON".into());
    expect(
        &f,
        "registry",
        Level::Fail,
        "the registry credentials cannot be read: config.json is not JSON",
        "DOCKER_CONFIG",
    );
    f.registries = RegistryFacts::Skipped("Docker is not reachable".into());
    expect(&f, "registry", Level::Skip, "not checked", "");

    // Notifications.
    let mut f = healthy();
    f.notify = vec![
        NotifyUrl {
            redacted: "slack://…".into(),
            parsed: Err("notification URL slack://… is not valid: …".into()),
            sent: None,
        },
        NotifyUrl {
            redacted: "gotify://push.example/…".into(),
            parsed: Ok(()),
            sent: Some(Err("HTTP 401".into())),
        },
    ];
    expect(
        &f,
        "notify",
        Level::Fail,
        "notification URL slack://… is not valid",
        "fix or remove it in PP_NOTIFY_URL",
    );
    let sent = lines(&f, "notify");
    assert_eq!(
        sent[1].message,
        "gotify://push.example/…: the test message failed (HTTP 401)"
    );
    assert_eq!(sent[1].level, Level::Fail);
    f.notify = vec![NotifyUrl {
        redacted: "gotify://push.example/…".into(),
        parsed: Ok(()),
        sent: Some(Ok(())),
    }];
    expect(&f, "notify", Level::Ok, "the test message was accepted", "");
    f.notify = vec![];
    expect(&f, "notify", Level::Ok, "no notification URL is set", "");

    // Webhook settings.
    let mut f = healthy();
    f.webhook.schedule = Err(("0 25 * * *".into(), "hour 25 is out of range".into()));
    expect(
        &f,
        "webhook",
        Level::Fail,
        "PP_SCHEDULE=\"0 25 * * *\" is not a schedule (hour 25 is out of range)",
        "five cron fields",
    );
    let mut f = healthy();
    f.webhook.relay = true;
    expect(
        &f,
        "webhook",
        Level::Fail,
        "PP_WEBHOOK=true but PP_WEBHOOK_URL is not set",
        "set PP_WEBHOOK_URL",
    );
    f.webhook.relay_url = Some("https://relay.example.org?x".into());
    f.webhook.url_problem = Some("has a query or fragment; give the base URL only".into());
    expect(
        &f,
        "webhook",
        Level::Fail,
        "has a query or fragment",
        "the relay's base URL",
    );
    f.webhook.url_problem = None;
    f.webhook.relay_url = Some("https://relay.example.org".into());
    expect(&f, "webhook", Level::Ok, "not registered yet", "");
    f.webhook.relay = false;
    expect(
        &f,
        "webhook",
        Level::Warn,
        "PP_WEBHOOK is false",
        "set PP_WEBHOOK=true, or remove PP_WEBHOOK_URL",
    );
    let mut f = healthy();
    f.webhook.secret = Some(SecretShape {
        length: 40,
        padded: true,
    });
    expect(
        &f,
        "webhook",
        Level::Fail,
        "PP_WEBHOOK_SECRET starts or ends with whitespace",
        "remove the whitespace",
    );
    f.webhook.secret = Some(SecretShape {
        length: 8,
        padded: false,
    });
    expect(
        &f,
        "webhook",
        Level::Warn,
        "short (8 characters)",
        "openssl rand -hex 32",
    );

    // systemd.
    let units = |timer: &str, listen: &str, pass: &str| {
        SystemdFacts::Units(vec![
            ("pullpilot.timer".into(), Ok(timer.into())),
            ("pullpilot-listen.service".into(), Ok(listen.into())),
            ("pullpilot.service".into(), Ok(pass.into())),
        ])
    };
    let mut f = healthy();
    f.systemd = units("active", "active", "inactive");
    expect(
        &f,
        "systemd",
        Level::Warn,
        "both pullpilot.timer and pullpilot-listen.service are active",
        "systemctl disable --now pullpilot.timer",
    );
    f.systemd = units("inactive", "inactive", "inactive");
    expect(
        &f,
        "systemd",
        Level::Warn,
        "no pass runs by itself",
        "systemctl enable --now pullpilot.timer",
    );
    f.systemd = units("inactive", "failed", "inactive");
    expect(
        &f,
        "systemd",
        Level::Fail,
        "pullpilot-listen.service has failed",
        "journalctl -u pullpilot-listen.service",
    );
    f.systemd = units("active", "inactive", "failed");
    expect(
        &f,
        "systemd",
        Level::Warn,
        "the last pass of pullpilot.service failed",
        "journalctl -u pullpilot.service",
    );
    f.systemd = SystemdFacts::NotRunning;
    expect(&f, "systemd", Level::Ok, "systemd is not running here", "");
}

#[test]
fn the_settings_file_rules_name_differing_variables_never_their_values() {
    let mut f = healthy();
    f.settings_file.read = FileRead::Read {
        count: 3,
        differing: vec!["PP_NOTIFY_URL".into(), "PP_SCOPE".into()],
    };
    expect(
        &f,
        "settings",
        Level::Warn,
        "this run's settings differ from /etc/default/pullpilot, which the units read, in \
         PP_NOTIFY_URL, PP_SCOPE",
        "make them agree",
    );
    f.settings_file.read = FileRead::Malformed(
        "the settings file /etc/default/pullpilot, line 4: `export` is shell syntax …".into(),
    );
    expect(&f, "settings", Level::Fail, "line 4: `export`", "");
    f.settings_file.read = FileRead::Unreadable("Permission denied (os error 13)".into());
    expect(
        &f,
        "settings",
        Level::Warn,
        "cannot be read (Permission denied",
        "sudo pullpilot doctor",
    );
    f.settings_file.read = FileRead::Missing;
    expect(&f, "settings", Level::Ok, "no settings file", "");
}

#[test]
fn the_settings_file_is_compared_with_this_runs_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pullpilot");
    assert!(matches!(
        gather::settings_file(&path, &BTreeMap::new()).read,
        FileRead::Missing
    ));
    std::fs::write(
        &path,
        "# units\nPP_SCOPE=all\nPP_SOAK='1h'\nPP_NOTIFY_URL=\nPATH=/opt/bin\n",
    )
    .unwrap();
    let (_, env) = settings(&[
        ("PP_SCOPE", "all"),
        ("PP_SOAK", "2h"),
        ("PP_LOG_LEVEL", "debug"),
        ("PP_NOTIFY_URL", ""),
    ]);
    let mut env = env;
    env.insert("PATH".into(), "/usr/bin".into());
    let FileRead::Read { count, differing } = gather::settings_file(&path, &env).read else {
        panic!("not read");
    };
    assert_eq!(count, 3, "PATH is not pullpilot's");
    assert_eq!(differing, ["PP_LOG_LEVEL", "PP_SOAK"]);
    std::fs::write(&path, "PP_SCOPE=all\nexport PP_SOAK=1h\n").unwrap();
    let FileRead::Malformed(why) = gather::settings_file(&path, &env).read else {
        panic!("not malformed");
    };
    assert!(why.contains(", line 2: `export`"), "{why}");
}

#[test]
fn data_dir_rules() {
    let dir = |kind: DirKind, in_container: bool, on_volume: Option<bool>| {
        let mut f = healthy();
        f.data_dir = DataDirFacts {
            path: PathBuf::from("/data"),
            kind,
            in_container,
            on_volume,
        };
        f
    };
    let present = |mode: u32, owner: u32, writable: Result<(), String>| DirKind::Present {
        mode,
        owner,
        me: Some(1000),
        writable,
    };
    let f = dir(present(0o700, 1000, Ok(())), true, Some(true));
    expect(
        &f,
        "data dir",
        Level::Ok,
        "/data: writable, mode 0700, on a volume",
        "",
    );
    let f = dir(present(0o700, 1000, Ok(())), true, Some(false));
    expect(
        &f,
        "data dir",
        Level::Warn,
        "is not on a volume: soak clocks",
        "mount a named volume there",
    );
    // Outside a container, a plain directory is what systemd's StateDirectory= makes.
    let f = dir(present(0o700, 1000, Ok(())), false, Some(false));
    expect(&f, "data dir", Level::Ok, "mode 0700", "");
    let f = dir(present(0o777, 1000, Ok(())), false, None);
    expect(
        &f,
        "data dir",
        Level::Fail,
        "can be written by group and others (mode 0777), so pullpilot refuses to use it",
        "chmod 700 /data",
    );
    let f = dir(present(0o755, 1000, Ok(())), false, None);
    expect(
        &f,
        "data dir",
        Level::Warn,
        "mode 0755: other users can see",
        "chmod 700 /data",
    );
    let f = dir(present(0o700, 1001, Ok(())), false, None);
    expect(
        &f,
        "data dir",
        Level::Fail,
        "belongs to user id 1001, not to the user running pullpilot (id 1000)",
        "chown 1000 /data",
    );
    let f = dir(
        present(0o700, 0, Err("Read-only file system (os error 30)".into())),
        false,
        None,
    );
    expect(
        &f,
        "data dir",
        Level::Fail,
        "the data directory /data (PP_DATA_DIR) cannot be written (Read-only file system",
        "make it writable",
    );
    let f = dir(DirKind::Missing, false, None);
    expect(
        &f,
        "data dir",
        Level::Warn,
        "does not exist yet",
        "install -d -m 0700 /data",
    );
    let f = dir(DirKind::NotADirectory, false, None);
    expect(
        &f,
        "data dir",
        Level::Fail,
        "is not a directory",
        "point PP_DATA_DIR at a directory",
    );
}

/// Every line a broken setup prints, so a change of wording is a reviewed diff of
/// tests/snapshots/doctor.txt.
#[test]
fn the_report_of_a_broken_setup_is_snapshotted() {
    let mut f = healthy();
    f.engine = EngineFacts::Failed(DockerError::Unreachable {
        endpoint: "unix:///var/run/docker.sock".into(),
        reason: "the socket /var/run/docker.sock does not exist".into(),
        hint: "start the Docker daemon (`systemctl start docker`) or point DOCKER_HOST at its \
               socket"
            .into(),
    });
    f.settings_file.read = FileRead::Read {
        count: 4,
        differing: vec!["PP_SCOPE".into()],
    };
    f.scope = ScopeFacts::Skipped;
    f.registries = RegistryFacts::Skipped("Docker is not reachable".into());
    f.data_dir.kind = DirKind::Present {
        mode: 0o755,
        owner: 0,
        me: Some(0),
        writable: Err("Read-only file system (os error 30)".into()),
    };
    f.notify[0].sent = Some(Err("HTTP 403: forbidden".into()));
    f.webhook.relay = true;
    f.systemd = SystemdFacts::NotRunning;
    crate::testsnap::assert_snapshot("doctor", &checks::render(&checks::findings(&f)));
}

// --- Gathering -------------------------------------------------------------------------------

/// A loopback HTTP server answering every request with `reply(request)` = (status, headers),
/// recording each request.
/// What a [`Server`] answers: a status and headers.
type Answer = (u16, Vec<(String, String)>);

struct Server {
    addr: String,
    seen: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    fn start(reply: fn(&Recorded) -> Answer) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(req) = crate::testhttp::read_request(&mut stream) else {
                    continue;
                };
                let (status, headers) = reply(&req);
                let head = req.method == "HEAD";
                crate::testhttp::respond(&mut stream, status, &headers, b"{}", head);
                let _ = stream.flush();
                log.lock().unwrap().push(req);
            }
        });
        Server { addr, seen }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }
}

fn manifest_ok(_: &Recorded) -> Answer {
    (
        200,
        vec![
            (
                "Docker-Content-Digest".into(),
                format!("sha256:{}", "b".repeat(64)),
            ),
            (
                "Content-Type".into(),
                "application/vnd.oci.image.index.v1+json".into(),
            ),
        ],
    )
}

fn wants_login(_: &Recorded) -> Answer {
    (
        401,
        vec![("WWW-Authenticate".into(), "Basic realm=\"registry\"".into())],
    )
}

#[test]
fn one_head_per_registry_host_in_scope_and_a_refusal_is_a_named_fail() {
    let open = Server::start(manifest_ok);
    let closed = Server::start(wants_login);
    let fake = Fake::new();
    for (n, (name, image)) in [
        ("web", format!("{}/acme/web:1", open.addr)),
        ("worker", format!("{}/acme/web:1", open.addr)),
        ("api", format!("{}/acme/api:2", open.addr)),
        ("private", format!("{}/team/secret:3", closed.addr)),
        (
            "pinned",
            format!("{}/acme/pinned@sha256:{}", closed.addr, "c".repeat(64)),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("sha256:{n:064}");
        fake.image(&id, &image, &format!("sha256:{}", "a".repeat(64)));
        fake.container(
            &format!("shop-{name}-1"),
            &id,
            &image,
            &[
                (labels::COMPOSE_PROJECT, "shop"),
                (labels::COMPOSE_SERVICE, name),
            ],
            true,
        );
    }
    let config = tempfile::tempdir().unwrap();
    let (s, env) = settings(&[("PP_SCOPE", "project:shop")]);
    let client = RegistryClient::new(RegistryOptions {
        docker_config_dir: Some(config.path().to_path_buf()),
        ..RegistryOptions::default()
    })
    .unwrap();
    let side = gather::engine_side(&s, &env, &fake, "fake://engine", Ok(&client));
    let ScopeFacts::Resolved {
        label, containers, ..
    } = &side.scope
    else {
        panic!("the scope did not resolve");
    };
    assert_eq!(label, "project:shop");
    assert_eq!(containers.len(), 5);
    let RegistryFacts::Checked(answers) = &side.registries else {
        panic!("registries were not checked");
    };
    assert_eq!(answers.len(), 2, "one per host");
    // One manifest per host is asked about (a 401 challenge may cost a second HEAD of it).
    let asked = |s: &Server| {
        let mut paths: Vec<String> = s.requests().iter().map(|r| r.path().to_string()).collect();
        paths.dedup();
        paths
    };
    assert_eq!(
        asked(&open),
        ["/v2/acme/api/manifests/2"],
        "the first tag by name"
    );
    assert_eq!(asked(&closed), ["/v2/team/secret/manifests/3"]);

    let facts = Facts {
        engine: side.engine,
        scope: side.scope,
        registries: side.registries,
        ..healthy()
    };
    expect(
        &facts,
        "docker",
        Level::Ok,
        "Docker 28.5.1 at fake://engine (linux/amd64, overlay2): API 1.51, pullpilot uses 1.51",
        "",
    );
    expect(
        &facts,
        "registry",
        Level::Ok,
        &format!("{}: acme/api:2 answered", open.addr),
        "",
    );
    expect(
        &facts,
        "registry",
        Level::Fail,
        &format!(
            "registry {} wants credentials for team/secret:3 (HTTP 401) and none are configured: \
             run `docker login {}`",
            closed.addr, closed.addr
        ),
        "",
    );
}

#[test]
fn a_scope_that_does_not_resolve_skips_the_registries() {
    let empty = tempfile::tempdir().unwrap();
    let (mut s, env) = settings(&[]);
    s.project_directory = Some(empty.path().to_path_buf());
    let client = RegistryClient::new(RegistryOptions::default()).unwrap();
    let side = gather::engine_side(&s, &env, &Fake::new(), "fake://engine", Ok(&client));
    let ScopeFacts::Failed(why) = &side.scope else {
        panic!("the scope resolved");
    };
    assert!(why.contains("no compose project found"), "{why}");
    assert!(matches!(side.registries, RegistryFacts::Skipped(_)));
    let side = gather::engine_side(&s, &env, &Fake::new(), "fake://engine", Err("bad JSON"));
    assert!(matches!(side.scope, ScopeFacts::Failed(_)));
}

#[test]
fn a_data_dir_is_probed_for_writing_and_its_mode_read() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let facts = gather::data_dir(&dir, false, None);
    assert!(matches!(facts.kind, DirKind::Missing));

    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let facts = gather::data_dir(&dir, false, None);
    let DirKind::Present { mode, writable, .. } = &facts.kind else {
        panic!("not present");
    };
    assert_eq!(*mode, 0o700);
    assert_eq!(*writable, Ok(()));
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "the probe file is removed"
    );

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let DirKind::Present { mode, .. } = gather::data_dir(&dir, false, None).kind else {
        panic!("not present");
    };
    assert_eq!(mode, 0o777);

    let file = temp.path().join("file");
    std::fs::write(&file, "x").unwrap();
    assert!(matches!(
        gather::data_dir(&file, false, None).kind,
        DirKind::NotADirectory
    ));
    assert!(matches!(
        gather::data_dir(&file.join("below"), false, None).kind,
        DirKind::NotADirectory
    ));
}

const MOUNTINFO: &str = "\
600 500 0:50 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/x
601 600 0:51 / /proc rw,nosuid - proc proc rw
602 600 8:1 /var/lib/docker/volumes/pp/_data /data rw,relatime - ext4 /dev/sda1 rw
603 600 8:1 /var/lib/docker/containers/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/hostname /etc/hostname rw - ext4 /dev/sda1 rw
604 600 8:1 /srv/my\\040dir /mnt/my\\040dir rw - ext4 /dev/sda1 rw
";

#[test]
fn a_volume_is_told_from_the_container_root_by_the_longest_mount_above() {
    assert_eq!(gather::on_volume(Path::new("/data"), MOUNTINFO), Some(true));
    assert_eq!(
        gather::on_volume(Path::new("/data/pullpilot/../state"), MOUNTINFO),
        Some(true)
    );
    assert_eq!(
        gather::on_volume(Path::new("/var/lib/pullpilot-nonexistent-xyz"), MOUNTINFO),
        Some(false)
    );
    assert_eq!(
        gather::on_volume(Path::new("/mnt/my dir/state"), MOUNTINFO),
        Some(true),
        "octal escapes are read"
    );
    assert_eq!(gather::on_volume(Path::new("/data"), ""), None);
}

#[test]
fn a_container_is_recognised_by_marker_cgroup_or_hostname_mount() {
    assert!(gather::in_container(true, "", ""));
    assert!(gather::in_container(
        false,
        "12:pids:/docker/0123456789abcdef\n",
        ""
    ));
    assert!(gather::in_container(false, "0::/\n", MOUNTINFO));
    let host = "600 500 0:50 / / rw - ext4 /dev/sda1 rw\n";
    assert!(!gather::in_container(false, "0::/init.scope\n", host));
}

#[test]
fn each_notification_url_is_checked_on_its_own_and_sent_a_test_when_asked() {
    let target = Server::start(|_| (200, vec![]));
    let refusing = Server::start(|_| (403, vec![]));
    let good = format!("generic+http://{}/hook?token=s3cr3t-value", target.addr);
    let bad = format!("generic+http://{}/hook?token=other-s3cr3t", refusing.addr);
    let urls = vec![good.clone(), "slack://not-a-token".into(), bad];
    let zone = jiff::tz::TimeZone::UTC;

    let quiet = gather::notify(&urls, &zone, false, "host1");
    assert_eq!(quiet.len(), 3);
    assert!(quiet[0].parsed.is_ok() && quiet[0].sent.is_none());
    assert!(quiet[1].parsed.is_err());
    assert!(
        target.requests().is_empty(),
        "nothing sent without --send-test"
    );

    let sent = gather::notify(&urls, &zone, true, "host1");
    assert_eq!(sent[0].sent, Some(Ok(())));
    assert_eq!(sent[1].sent, None, "an invalid URL is not sent to");
    let Some(Err(why)) = &sent[2].sent else {
        panic!("the refusing target did not fail");
    };
    assert!(why.contains("403"), "{why}");
    let requests = target.requests();
    assert_eq!(requests.len(), 1);
    let body = requests[0].json();
    assert_eq!(body["kind"], "test");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("test message from `pullpilot doctor --send-test` on host1"),
        "{body}"
    );
    let facts = Facts {
        notify: sent,
        ..healthy()
    };
    let text = checks::render(&checks::findings(&facts));
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(
        text.contains(&format!(
            "generic+http://{}/…: the test message was accepted",
            target.addr
        )),
        "{text}"
    );
}

#[test]
fn webhook_settings_are_read_as_listen_reads_them() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().to_str().unwrap();
    let (s, _) = settings(&[
        ("PP_DATA_DIR", data),
        ("PP_WEBHOOK", "true"),
        ("PP_WEBHOOK_URL", "https://user:pw@relay.example.org?x=1"),
        ("PP_WEBHOOK_SECRET", "short "),
        ("PP_SCHEDULE", "61 * * * *"),
    ]);
    let w = gather::webhook(&s);
    let Err((value, _)) = &w.schedule else {
        panic!("the schedule parsed");
    };
    assert_eq!(value, "61 * * * *");
    assert!(w.relay);
    assert!(
        !w.relay_url.as_deref().unwrap().contains("pw"),
        "{:?}",
        w.relay_url
    );
    assert!(
        w.url_problem.as_deref().unwrap().contains("query"),
        "{:?}",
        w.url_problem
    );
    assert!(!w.registered);
    let shape = w.secret.as_ref().unwrap();
    assert!(shape.padded);
    assert_eq!(shape.length, 6);

    let (s, _) = settings(&[("PP_DATA_DIR", data)]);
    let w = gather::webhook(&s);
    assert_eq!(w.schedule, Ok(()));
    assert!(!w.relay && w.relay_url.is_none() && w.secret.is_none());
}

/// A stand-in `systemctl` that answers `is-active` the way the real one does.
fn fake_systemctl(dir: &Path) -> String {
    let path = dir.join("systemctl");
    std::fs::write(
        &path,
        "#!/bin/sh\ncase \"$2\" in\n  pullpilot.timer) echo active; exit 0;;\n  \
         pullpilot.service) echo failed; exit 3;;\n  *) echo inactive; exit 3;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn systemd_units_are_asked_of_systemctl_only_where_systemd_runs() {
    let temp = tempfile::tempdir().unwrap();
    let systemctl = fake_systemctl(temp.path());
    assert!(matches!(
        gather::systemd(false, &systemctl),
        SystemdFacts::NotRunning
    ));
    let SystemdFacts::Units(units) = gather::systemd(true, &systemctl) else {
        panic!("no units");
    };
    assert_eq!(
        units,
        [
            ("pullpilot.timer".to_string(), Ok("active".to_string())),
            (
                "pullpilot-listen.service".to_string(),
                Ok("inactive".to_string())
            ),
            ("pullpilot.service".to_string(), Ok("failed".to_string())),
        ]
    );
    let SystemdFacts::Units(units) = gather::systemd(true, "/nonexistent/systemctl") else {
        panic!("no units");
    };
    let facts = Facts {
        systemd: SystemdFacts::Units(units),
        ..healthy()
    };
    expect(
        &facts,
        "systemd",
        Level::Warn,
        "systemd could not be asked about pullpilot.timer (`/nonexistent/systemctl` could not \
         be started",
        "systemctl status pullpilot.timer",
    );
}

#[test]
fn compose_is_found_with_its_version_or_named_as_missing() {
    let env = BTreeMap::new();
    let setting = ComposeSetting::Command(vec!["sh".into(), "-c".into(), "echo v2.40.3".into()]);
    let cli = ComposeCli::new(setting.clone(), None, &env);
    let ComposeFacts::Found {
        command, version, ..
    } = gather::compose(&cli, &setting, &[])
    else {
        panic!("compose not found");
    };
    assert_eq!(version, "2.40.3");
    assert_eq!(command, "sh -c echo v2.40.3");

    let setting = ComposeSetting::Command(vec!["false".into()]);
    let cli = ComposeCli::new(setting.clone(), None, &env);
    assert!(matches!(
        gather::compose(&cli, &setting, &[]),
        ComposeFacts::Missing { explicit: true, .. }
    ));

    let cli = ComposeCli::new(ComposeSetting::Off, None, &env);
    assert!(matches!(
        gather::compose(&cli, &ComposeSetting::Off, &[]),
        ComposeFacts::Off
    ));
}
