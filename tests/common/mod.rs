//! Harness for the end-to-end tests against the real-Docker test bed.
//!
//! The bed is started outside the tests (`tests/testbed/testbed.sh up`, then
//! `eval "$(tests/testbed/testbed.sh env)"`); this module reads its `PPTB_*` variables and
//! gives the tests a few sharp tools:
//!
//! * [`Bed::get`]: the bed, with `docker`/`try_docker` that always pass the bed's own
//!   `DOCKER_HOST` and `DOCKER_CONFIG` (never the ambient ones);
//! * the three loopback registries ([`Reg`]), credentials and access logs;
//! * [`Bed::push_image`] to publish one of the bed's base images ([`Variant`]) under a
//!   repository of the test's own ([`unique_name`]), and [`Bed::registry_digest`] (skopeo) as
//!   the independent truth about what a tag points to;
//! * [`Project`]: a compose project in a temp dir that is taken down on drop, even when the
//!   test panics;
//! * [`LogMark`] / [`count_log_lines`] to count registry and token requests.
//!
//! Only `std` and `serde_json` are used.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub(crate) mod fault_proxy;
pub(crate) mod pullpilot;
pub(crate) mod sink;

/// What a test prints when the bed's variables are missing.
pub(crate) const BED_NOT_UP: &str = "the test bed is not up: run `tests/testbed/testbed.sh up` \
     as root, then `eval \"$(tests/testbed/testbed.sh env)\"` in the shell that runs \
     `cargo test --test e2e -- --ignored`";

/// Manifest media types, for `Accept` headers and checks.
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// One of the bed's three registries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reg {
    /// No authentication.
    Open,
    /// htpasswd Basic authentication.
    Basic,
    /// Bearer tokens from the bed's token issuer.
    Token,
}

impl Reg {
    pub(crate) const ALL: [Reg; 3] = [Reg::Open, Reg::Basic, Reg::Token];
}

/// The bed's base images `pptb/base:<tag>` (see tests/testbed/images/).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Variant {
    /// Good: `APP_VERSION=1`, healthy after about a second.
    V1,
    /// Good, with a different ENV, LABEL, HEALTHCHECK and CMD than v1.
    V2,
    /// Runs, but its healthcheck always fails.
    V2Unhealthy,
    /// Exits with code 1 at start.
    V2Exits,
    /// No healthcheck; runs about 2 s, then exits with code 1.
    V2Crashloop,
    /// Good, different again.
    V3,
}

impl Variant {
    pub(crate) const ALL: [Variant; 6] = [
        Variant::V1,
        Variant::V2,
        Variant::V2Unhealthy,
        Variant::V2Exits,
        Variant::V2Crashloop,
        Variant::V3,
    ];

    /// The tag of this variant (`v1`, `v2-unhealthy`, ...), in `pptb/base` and `pptb/app`.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Variant::V1 => "v1",
            Variant::V2 => "v2",
            Variant::V2Unhealthy => "v2-unhealthy",
            Variant::V2Exits => "v2-exits",
            Variant::V2Crashloop => "v2-crashloop",
            Variant::V3 => "v3",
        }
    }

    /// The local image in the bed's daemon, e.g. `pptb/base:v1`.
    pub(crate) fn base_image(self) -> String {
        format!("pptb/base:{}", self.tag())
    }
}

/// A registry of the bed: where it listens, how to log in, where its access log is.
#[derive(Clone, Debug)]
pub(crate) struct Registry {
    pub(crate) kind: Reg,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// `(user, password)`; `None` for the open registry.
    pub(crate) credentials: Option<(String, String)>,
    /// The registry's access log: one line per request, e.g.
    /// `127.0.0.1 - - [date] "HEAD /v2/REPO/manifests/TAG HTTP/1.1" 200 ...`.
    pub(crate) log: PathBuf,
    /// The registry's own log (errors, auth failures), for diagnostics.
    pub(crate) app_log: PathBuf,
}

impl Registry {
    /// `addr/repo:tag`.
    pub(crate) fn image(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.addr)
    }
}

/// The running test bed, from the `PPTB_*` environment.
#[derive(Debug)]
pub(crate) struct Bed {
    /// `28`, `20.10` or `28-containerd`.
    pub(crate) engine: String,
    /// The daemon's version, e.g. `28.5.2+dfsg4`.
    pub(crate) engine_version: String,
    /// The daemon's API version, e.g. `1.51`.
    pub(crate) api_version: String,
    /// `graphdriver` or `containerd`.
    pub(crate) image_store: String,
    /// `unix:///run/pptb/docker.sock`.
    pub(crate) docker_host: String,
    /// The bed's `DOCKER_CONFIG`: the compose plugin, no credentials.
    pub(crate) docker_config: PathBuf,
    pub(crate) docker_cli: PathBuf,
    pub(crate) compose_plugin: PathBuf,
    pub(crate) skopeo: PathBuf,
    /// The bed's Python (a venv with prometheus-client and aiosmtpd).
    pub(crate) python: PathBuf,
    pub(crate) open: Registry,
    pub(crate) basic: Registry,
    pub(crate) token: Registry,
    /// `http://127.0.0.1:PORT/token`.
    pub(crate) token_realm: String,
    pub(crate) token_service: String,
    /// One line per token request, with its scopes.
    pub(crate) token_issuer_log: PathBuf,
    pub(crate) dockerd_log: PathBuf,
    /// The busybox rootfs tar the base images are made of.
    pub(crate) rootfs: PathBuf,
    /// Build contexts of the base images: `<image_dir>/<variant tag>/`.
    pub(crate) image_dir: PathBuf,
    /// `127.0.0.1:PORT/pptb/multi:v1`, a linux/amd64 + linux/arm64 index in the open registry.
    pub(crate) multi_ref: String,
    /// The digest of that index, as `up` pushed it.
    pub(crate) multi_digest: String,
}

fn env_var(name: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!("{name} is not set: {BED_NOT_UP}"),
    }
}

static BED: OnceLock<Bed> = OnceLock::new();
static IMAGES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held while the harness builds, tags, pushes or removes images. On the containerd image
/// store a classic `docker build` can lose the image it builds on to a concurrent `rmi`
/// ("unable to find image sha256:…"), so the tests' own image changes take turns. pullpilot's
/// and compose's pulls are not serialized: they are what is under test.
pub(crate) fn image_lock() -> std::sync::MutexGuard<'static, ()> {
    IMAGES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether `docker ARGS` changes the daemon's images.
fn changes_images(args: &[&str]) -> bool {
    matches!(
        args.first(),
        Some(&("build" | "tag" | "rmi" | "push" | "image" | "load"))
    )
}
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test (in this run or an earlier one) uses: `prefix-<time>-<pid>-<n>`,
/// valid as a repository path component and as a compose project name.
pub(crate) fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() % 100_000_000);
    let prefix: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{prefix}-{secs}-{}-{n}", std::process::id())
}

/// Panics with everything needed to understand a failed command.
fn fail(what: &str, out: &Output) -> ! {
    panic!(
        "{what} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"))
}

fn describe(program: &Path, args: &[&str]) -> String {
    let mut s = program.display().to_string();
    for a in args {
        let _ = write!(s, " {a}");
    }
    s
}

impl Bed {
    /// The bed, read once from the environment. Panics with [`BED_NOT_UP`] if it is missing.
    pub(crate) fn get() -> &'static Bed {
        BED.get_or_init(Bed::from_env)
    }

    fn from_env() -> Bed {
        let registry = |kind, addr: &str, log: &str, creds: Option<(&str, &str)>| Registry {
            kind,
            addr: env_var(addr),
            credentials: creds.map(|(u, p)| (env_var(u), env_var(p))),
            log: PathBuf::from(env_var(log)),
            app_log: PathBuf::from(env_var(&log.replace("_LOG", "_APP_LOG"))),
        };
        let bed = Bed {
            engine: env_var("PPTB_ENGINE"),
            engine_version: env_var("PPTB_ENGINE_VERSION"),
            api_version: env_var("PPTB_API_VERSION"),
            image_store: env_var("PPTB_IMAGE_STORE"),
            docker_host: env_var("PPTB_DOCKER_HOST"),
            docker_config: PathBuf::from(env_var("PPTB_DOCKER_CONFIG")),
            docker_cli: PathBuf::from(env_var("PPTB_DOCKER_CLI")),
            compose_plugin: PathBuf::from(env_var("PPTB_COMPOSE_PLUGIN")),
            skopeo: PathBuf::from(env_var("PPTB_SKOPEO")),
            python: PathBuf::from(env_var("PPTB_PYTHON")),
            open: registry(Reg::Open, "PPTB_REG_OPEN", "PPTB_REG_OPEN_LOG", None),
            basic: registry(
                Reg::Basic,
                "PPTB_REG_BASIC",
                "PPTB_REG_BASIC_LOG",
                Some(("PPTB_BASIC_USER", "PPTB_BASIC_PASSWORD")),
            ),
            token: registry(
                Reg::Token,
                "PPTB_REG_TOKEN",
                "PPTB_REG_TOKEN_LOG",
                Some(("PPTB_TOKEN_USER", "PPTB_TOKEN_PASSWORD")),
            ),
            token_realm: env_var("PPTB_TOKEN_REALM"),
            token_service: env_var("PPTB_TOKEN_SERVICE"),
            token_issuer_log: PathBuf::from(env_var("PPTB_TOKEN_ISSUER_LOG")),
            dockerd_log: PathBuf::from(env_var("PPTB_DOCKERD_LOG")),
            rootfs: PathBuf::from(env_var("PPTB_ROOTFS")),
            image_dir: PathBuf::from(env_var("PPTB_IMAGE_DIR")),
            multi_ref: env_var("PPTB_MULTI_REF"),
            multi_digest: env_var("PPTB_MULTI_DIGEST"),
        };
        let socket = bed.docker_host.trim_start_matches("unix://");
        assert!(
            Path::new(socket).exists(),
            "the bed's Docker socket {socket} does not exist: {BED_NOT_UP}"
        );
        bed
    }

    /// A `docker` command for the bed's daemon with the given `DOCKER_CONFIG` dir. The ambient
    /// DOCKER_* variables are removed so nothing reaches another daemon.
    pub(crate) fn docker_command(&self, config: &Path) -> Command {
        let mut cmd = Command::new(&self.docker_cli);
        for var in [
            "DOCKER_CONTEXT",
            "DOCKER_TLS_VERIFY",
            "DOCKER_CERT_PATH",
            "DOCKER_API_VERSION",
            "DOCKER_DEFAULT_PLATFORM",
            "COMPOSE_PROJECT_NAME",
            "COMPOSE_FILE",
            "COMPOSE_PROFILES",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("DOCKER_HOST", &self.docker_host)
            .env("DOCKER_CONFIG", config);
        cmd
    }

    /// Runs `docker ARGS` with the bed's config; returns whatever happened.
    pub(crate) fn try_docker(&self, args: &[&str]) -> Output {
        self.try_docker_in(&self.docker_config, args)
    }

    /// Runs `docker ARGS` with the bed's config; returns stdout, panics on failure.
    pub(crate) fn docker(&self, args: &[&str]) -> String {
        self.docker_in(&self.docker_config, args)
    }

    /// Runs `docker ARGS` with a custom `DOCKER_CONFIG` dir (see [`Bed::docker_config_with`]).
    pub(crate) fn try_docker_in(&self, config: &Path, args: &[&str]) -> Output {
        let _images = changes_images(args).then(image_lock);
        run(self.docker_command(config).args(args))
    }

    /// Like [`Bed::try_docker_in`], but returns stdout and panics on failure.
    pub(crate) fn docker_in(&self, config: &Path, args: &[&str]) -> String {
        let out = self.try_docker_in(config, args);
        if !out.status.success() {
            fail(&describe(&self.docker_cli, args), &out);
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker inspect` of one object, as JSON.
    pub(crate) fn inspect(&self, object: &str) -> Value {
        let out = self.docker(&["inspect", object]);
        let mut all: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("docker inspect {object}: bad JSON ({e}): {out}"));
        all.get_mut(0).map_or_else(
            || panic!("docker inspect {object} returned nothing"),
            Value::take,
        )
    }

    /// Like [`Bed::inspect`], but `None` when the object is gone (removed mid-update).
    pub(crate) fn try_inspect(&self, object: &str) -> Option<Value> {
        let out = self.try_docker_in(&self.docker_config, &["inspect", object]);
        if !out.status.success() {
            return None;
        }
        let mut all: Value = serde_json::from_slice(&out.stdout).ok()?;
        all.get_mut(0).map(Value::take)
    }

    pub(crate) fn registry(&self, reg: Reg) -> &Registry {
        match reg {
            Reg::Open => &self.open,
            Reg::Basic => &self.basic,
            Reg::Token => &self.token,
        }
    }

    /// A fresh `DOCKER_CONFIG` dir whose `config.json` has `auths` for the given registries
    /// (the open one needs none, so it is skipped) and which links the compose plugin.
    /// `docker_config_with(&[])` is a config that holds no credentials at all.
    pub(crate) fn docker_config_with(&self, regs: &[Reg]) -> TempDir {
        let dir = TempDir::new("docker-config");
        let mut auths = serde_json::Map::new();
        for reg in regs {
            let r = self.registry(*reg);
            if let Some((user, password)) = &r.credentials {
                auths.insert(
                    r.addr.clone(),
                    serde_json::json!({ "auth": base64(format!("{user}:{password}").as_bytes()) }),
                );
            }
        }
        let config = serde_json::json!({ "auths": auths });
        fs::write(dir.path().join("config.json"), config.to_string()).expect("writing config.json");
        let plugins = dir.path().join("cli-plugins");
        fs::create_dir_all(&plugins).expect("creating cli-plugins");
        std::os::unix::fs::symlink(&self.compose_plugin, plugins.join("docker-compose"))
            .expect("linking the compose plugin");
        dir
    }

    /// Pushes the bed's base image `variant` as `<registry>/<repo>:<tag>` (with the registry's
    /// credentials), removes that tag from the local daemon again (so a later pull really
    /// pulls), and returns the pushed manifest's digest as the registry reports it.
    pub(crate) fn push_image(&self, reg: Reg, repo: &str, tag: &str, variant: Variant) -> String {
        let image = self.registry(reg).image(repo, tag);
        self.docker(&["tag", &variant.base_image(), &image]);
        let config = self.docker_config_with(&[reg]);
        self.docker_in(config.path(), &["push", "--quiet", &image]);
        self.docker(&["rmi", &image]);
        self.registry_digest(reg, repo, tag)
    }

    /// Like [`Bed::push_image`], but the pushed image is new to the daemon: `variant` plus a
    /// label naming `repo:tag`, removed locally after the push. Pulling it makes dockerd
    /// really fetch its manifest and config (the layers are the base image's).
    pub(crate) fn push_fresh_image(
        &self,
        reg: Reg,
        repo: &str,
        tag: &str,
        variant: Variant,
    ) -> String {
        let fresh = format!("{repo}:{tag}");
        self.push_labelled_image(reg, repo, tag, variant, &[("io.pptb.fresh", &fresh)])
    }

    /// Like [`Bed::push_fresh_image`], with these image labels (`LABEL k="v"` lines).
    pub(crate) fn push_labelled_image(
        &self,
        reg: Reg,
        repo: &str,
        tag: &str,
        variant: Variant,
        labels: &[(&str, &str)],
    ) -> String {
        #![allow(
            clippy::print_stderr,
            reason = "a retried build is said in the test's output"
        )]
        let image = self.registry(reg).image(repo, tag);
        let mut dockerfile = format!("FROM {}\n", variant.base_image());
        for (k, v) in labels {
            let _ = writeln!(dockerfile, "LABEL {k}=\"{v}\"");
        }
        let build = || {
            let _images = image_lock();
            let mut child = self
                .docker_command(&self.docker_config)
                .env("DOCKER_BUILDKIT", "0")
                .args(["build", "--quiet", "--tag", &image, "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("running docker build");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(dockerfile.as_bytes())
                .expect("writing the Dockerfile");
            child.wait_with_output().expect("waiting for docker build")
        };
        let mut out = build();
        // The containerd image store's classic builder can lose its base image to a pull or
        // tag change elsewhere in the daemon (seen once in CI); one more try, said out loud.
        if !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("unable to find image")
        {
            eprintln!(
                "docker build -t {image} lost its base image ({}); building again",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            out = build();
        }
        if !out.status.success() {
            fail(&format!("docker build -t {image}"), &out);
        }
        let config = self.docker_config_with(&[reg]);
        self.docker_in(config.path(), &["push", "--quiet", &image]);
        self.docker(&["rmi", &image]);
        self.registry_digest(reg, repo, tag)
    }

    /// `skopeo ARGS` with the registry's credentials (or none), TLS off, on `repo:tag`.
    fn skopeo_on(&self, reg: Reg, args: &[&str], repo: &str, tag: &str) -> Output {
        let r = self.registry(reg);
        let mut cmd = Command::new(&self.skopeo);
        cmd.args(args).arg("--tls-verify=false");
        match &r.credentials {
            Some((user, password)) => cmd.arg(format!("--creds={user}:{password}")),
            None => cmd.arg("--no-creds"),
        };
        cmd.arg(format!("docker://{}", r.image(repo, tag)));
        run(&mut cmd)
    }

    /// The digest `repo:tag` points to, per skopeo: the independent truth for digests. For an
    /// index this is the index's digest.
    pub(crate) fn registry_digest(&self, reg: Reg, repo: &str, tag: &str) -> String {
        let out = self.skopeo_on(reg, &["inspect", "--format", "{{.Digest}}"], repo, tag);
        if !out.status.success() {
            fail(
                &format!("skopeo inspect {}", self.registry(reg).image(repo, tag)),
                &out,
            );
        }
        let digest = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            digest.starts_with("sha256:"),
            "skopeo gave no digest: {digest:?}"
        );
        digest
    }

    /// The raw manifest (or index) of `repo:tag`, as JSON, per skopeo.
    pub(crate) fn registry_manifest(&self, reg: Reg, repo: &str, tag: &str) -> Value {
        let out = self.skopeo_on(reg, &["inspect", "--raw"], repo, tag);
        if !out.status.success() {
            fail(
                &format!(
                    "skopeo inspect --raw {}",
                    self.registry(reg).image(repo, tag)
                ),
                &out,
            );
        }
        serde_json::from_slice(&out.stdout).expect("skopeo inspect --raw printed no JSON")
    }
}

/// A directory under the system temp dir, removed (with its contents) on drop.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique_name(&format!("pptb-e2e-{prefix}")));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A small tmpfs (root only) mounted on a fresh temp dir with mode 0700, for data dirs that
/// run full or read-only. Unmounted and removed on drop, also when the test panics.
#[derive(Debug)]
pub(crate) struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    pub(crate) fn mount(prefix: &str, size_kib: u32) -> Tmpfs {
        let dir = TempDir::new(prefix);
        // -n everywhere: without it util-linux creates /run/mount on the host (utab).
        let out = run(Command::new("mount")
            .args(["-n", "-t", "tmpfs", "-o"])
            .arg(format!("size={size_kib}k,mode=0700"))
            .arg("pptb-e2e")
            .arg(dir.path()));
        if !out.status.success() {
            fail(
                &format!("mounting a tmpfs on {}", dir.path().display()),
                &out,
            );
        }
        Tmpfs { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `mount -o remount,OPTIONS`, e.g. `ro` or `rw`.
    pub(crate) fn remount(&self, options: &str) {
        let out = run(Command::new("mount")
            .args(["-n", "-o"])
            .arg(format!("remount,{options}"))
            .arg(self.path()));
        if !out.status.success() {
            fail(
                &format!("remounting {} {options}", self.path().display()),
                &out,
            );
        }
    }

    /// Fills the filesystem with `filler` until not one more byte fits.
    pub(crate) fn fill(&self) {
        let mut file = fs::File::create(self.path().join("filler")).expect("creating the filler");
        let chunk = vec![0xa5_u8; 4096];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "filling the tmpfs: {e}");
                    break;
                }
            }
        }
        let _ = file.write_all(b"x");
    }

    /// Removes the filler again.
    pub(crate) fn drain(&self) {
        fs::remove_file(self.path().join("filler")).expect("removing the filler");
    }
}

impl Drop for Tmpfs {
    // A failed clean-up must not panic (this may run while a test is already panicking).
    #[allow(clippy::print_stderr)]
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut cmd = Command::new("umount");
            cmd.arg("-n");
            if lazy {
                cmd.arg("--lazy");
            }
            cmd.arg(self.path())
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !umount(false) && !umount(true) {
            eprintln!("warning: could not unmount {}", self.path().display());
        }
        // The TempDir then removes the (now empty) mount point.
    }
}

/// A compose project in its own temp dir, with a unique project name. Dropping it runs
/// `docker compose down -v --remove-orphans` and removes the dir, also when a test panics.
pub(crate) struct Project<'a> {
    bed: &'a Bed,
    name: String,
    dir: TempDir,
    config: PathBuf,
}

impl<'a> Project<'a> {
    /// The bed the project runs on.
    pub(crate) fn bed(&self) -> &'a Bed {
        self.bed
    }

    /// Writes `compose.yaml` and runs `docker compose up -d --wait` with the bed's config.
    pub(crate) fn up(bed: &'a Bed, yaml: &str) -> Project<'a> {
        Project::up_with_config(bed, yaml, &bed.docker_config)
    }

    /// Like [`Project::up`], with a custom `DOCKER_CONFIG` dir (registry credentials) that is
    /// also used by every later [`Project::compose`] call. The dir must outlive the project.
    pub(crate) fn up_with_config(bed: &'a Bed, yaml: &str, config: &Path) -> Project<'a> {
        let project = Project::create(bed, yaml, config);
        project.compose(&["up", "--detach", "--wait", "--wait-timeout", "90"]);
        project
    }

    /// Writes `compose.yaml` only; nothing is started (for tests that start it their way).
    pub(crate) fn create(bed: &'a Bed, yaml: &str, config: &Path) -> Project<'a> {
        let dir = TempDir::new("compose");
        fs::write(dir.path().join("compose.yaml"), yaml).expect("writing compose.yaml");
        Project {
            bed,
            name: unique_name("pptb"),
            dir,
            config: config.to_path_buf(),
        }
    }

    /// The compose project name (`-p`), also the `com.docker.compose.project` label.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The project directory, holding `compose.yaml`.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn compose_file(&self) -> PathBuf {
        self.dir().join("compose.yaml")
    }

    /// `docker compose -p NAME -f DIR/compose.yaml ARGS`; returns whatever happened.
    pub(crate) fn try_compose(&self, args: &[&str]) -> Output {
        let file = self.compose_file();
        let mut cmd = self.bed.docker_command(&self.config);
        cmd.current_dir(self.dir())
            .arg("compose")
            .arg("--project-name")
            .arg(&self.name)
            .arg("--file")
            .arg(&file)
            .arg("--project-directory")
            .arg(self.dir())
            .args(args);
        run(&mut cmd)
    }

    /// Like [`Project::try_compose`], but returns stdout and panics on failure.
    pub(crate) fn compose(&self, args: &[&str]) -> String {
        let out = self.try_compose(args);
        if !out.status.success() {
            fail(
                &format!("docker compose -p {} {}", self.name, args.join(" ")),
                &out,
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Asserts that `docker compose up -d --dry-run` for the whole project names nothing to
    /// create, recreate or start: compose agrees with what runs. Waiting for a dependency's
    /// condition is not an action, and a finished one-shot job (a service named `oneshot`) is
    /// started again by every `up`, which is compose's way.
    pub(crate) fn assert_quiet(&self, when: &str) {
        let out = self.try_compose(&["--dry-run", "--progress", "json", "up", "-d"]);
        assert!(out.status.success(), "{when}: {out:?}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let busy: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("\"status\""))
            .filter(|l| !l.contains("\"Running\""))
            .filter(|l| {
                !["\"Waiting\"", "\"Healthy\"", "\"Exited\""]
                    .iter()
                    .any(|w| l.contains(w))
            })
            .filter(|l| !(l.contains("oneshot") && l.contains("Start")))
            .collect();
        assert!(
            busy.is_empty(),
            "{when}: compose would still act:\n{}",
            busy.join("\n")
        );
    }

    /// IDs of the service's containers (running or not).
    pub(crate) fn container_ids(&self, service: &str) -> Vec<String> {
        self.compose(&["ps", "--all", "--quiet", service])
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// `docker inspect` of the service's container (the only one, or panics).
    pub(crate) fn container(&self, service: &str) -> Value {
        let ids = self.container_ids(service);
        assert_eq!(
            ids.len(),
            1,
            "service {service} has {} containers: {ids:?}",
            ids.len()
        );
        self.bed.inspect(&ids[0])
    }
}

impl Drop for Project<'_> {
    // A failed clean-up must not panic (this may run while a test is already panicking).
    #[allow(clippy::print_stderr)]
    fn drop(&mut self) {
        let out = self.try_compose(&["down", "--volumes", "--remove-orphans", "--timeout", "2"]);
        if !out.status.success() {
            eprintln!(
                "warning: docker compose down of project {} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Number of lines of `path` that contain `needle` (0 if the file does not exist).
pub(crate) fn count_log_lines(path: &Path, needle: &str) -> usize {
    LogMark {
        path: path.to_path_buf(),
        offset: 0,
    }
    .count(needle)
}

/// A position in a log file: take one before an action, then count only the lines the
/// action added.
#[derive(Clone, Debug)]
pub(crate) struct LogMark {
    path: PathBuf,
    offset: u64,
}

impl LogMark {
    /// Marks the current end of `path`.
    pub(crate) fn new(path: &Path) -> LogMark {
        let offset = fs::metadata(path).map_or(0, |m| m.len());
        LogMark {
            path: path.to_path_buf(),
            offset,
        }
    }

    /// The complete lines written after the mark.
    pub(crate) fn lines(&self) -> Vec<String> {
        let Ok(mut file) = fs::File::open(&self.path) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut lines = Vec::new();
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            if line.ends_with('\n') {
                lines.push(line.trim_end().to_string());
            }
            line.clear();
        }
        lines
    }

    /// How many lines written after the mark contain `needle`.
    pub(crate) fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }

    /// Waits up to `timeout` until at least `n` lines after the mark contain `needle` (the
    /// registries write their access log right after answering); returns the final count.
    pub(crate) fn wait_count(&self, needle: &str, n: usize, timeout: Duration) -> usize {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let count = self.count(needle);
            if count >= n || std::time::Instant::now() >= deadline {
                return count;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A manifest HEAD against a registry that needs no credentials (the open one), with the
/// given `Accept` types; returns the status and the `Docker-Content-Digest` header.
pub(crate) fn head_manifest(
    addr: &str,
    repo: &str,
    reference: &str,
    accept: &[&str],
) -> (u16, Option<String>) {
    assert!(addr.starts_with("127."), "only loopback registries: {addr}");
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let request = format!(
        "HEAD /v2/{repo}/manifests/{reference} HTTP/1.1\r\nHost: {addr}\r\nAccept: {}\r\n\
         User-Agent: pptb-e2e\r\nConnection: close\r\n\r\n",
        accept.join(", ")
    );
    stream
        .write_all(request.as_bytes())
        .expect("sending the HEAD request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("reading the HEAD response");
    let mut lines = response.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad HTTP response: {response:?}"));
    let digest = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("docker-content-digest"))
        .map(|(_, value)| value.trim().to_string());
    (status, digest)
}

/// Standard base64 with padding (for `config.json` `auth` fields).
pub(crate) fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Extracts the digest from `docker pull` output (`Digest: sha256:...`).
pub(crate) fn pulled_digest(pull_output: &str) -> Option<String> {
    pull_output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Digest: "))
        .map(|d| d.trim().to_string())
}
