#!/usr/bin/env bash
# packaging/playground.sh - watch pullpilot do its job in about two minutes, on a fresh machine.
#
#   sudo bash packaging/playground.sh          the narrated tour; everything is removed at the end
#   sudo bash packaging/playground.sh --keep   leave the playground running and say how to explore it
#   sudo bash packaging/playground.sh --down   remove a playground that --keep left running
#   sudo bash packaging/playground.sh --ci     no pauses; check every outcome and exit non-zero
#                                              when one is wrong (PLAYGROUND_CI=1 does the same)
#
# As root on Debian/Ubuntu. It builds pullpilot (`cargo build --release`, as the owner of the
# checkout), brings up the test bed (tests/testbed/testbed.sh: its own containerd and dockerd,
# compose v2 and loopback registries; never the host's Docker, never /var/run/docker.sock),
# deploys a small compose project (web with a healthcheck, a worker in web's network namespace,
# db with a named volume) from images in the bed's open registry, and then runs the real
# commands and shows their real output:
#   1. `pullpilot plan`: everything is up to date;
#   2. new images of web and db are published: `apply` starts their soak clocks (20 s here, 24 h
#      by default) and `plan` shows them soaking;
#   3. after the soak `apply` rolls them out (compose makes each replacement, inside pullpilot's
#      journaled, health-gated protocol); `docker inspect` shows the same configuration, the
#      volume's data is still there, and `docker compose up -d` has nothing left to do;
#   4. a broken web image is published: `apply` health-gates it, rolls back and blocks the digest;
#      `status` shows the history and the block; the notification that reached a local webhook
#      sink is printed;
#   5. `pullpilot rollback web` and `pullpilot pin db`;
# then takes the bed down and checks that nothing is left (`testbed.sh verify-down`).
#
# The first run installs the bed's packages and builds pullpilot (minutes); later runs take
# about two minutes. Settings (environment): PULLPILOT_BIN (a pullpilot binary to use instead of
# building one), PLAYGROUND_SOAK (20s), PLAYGROUND_CI=1 (like --ci), PPTB_* (see testbed.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly BED=$ROOT/tests/testbed/testbed.sh
readonly BED_STATE=${PPTB_STATE_DIR:-/var/lib/pptb}
readonly BED_RUN=${PPTB_RUN_DIR:-/run/pptb}
# Everything the playground makes lives in the bed's state dir, so `testbed.sh down` removes it.
readonly PG=$BED_STATE/playground
readonly SOAK=${PLAYGROUND_SOAK:-20s}
readonly PYTHON=/usr/bin/python3

CI=${PLAYGROUND_CI:-0}
[[ $CI == 1 ]] || CI=0
KEEP=0
MODE=run
for arg in "$@"; do
  case $arg in
    --ci) CI=1 ;;
    --keep) KEEP=1 ;;
    --down) MODE=down ;;
    -h | --help)
      sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "playground: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done
# A CI run always cleans up after itself.
((CI)) && KEEP=0

T0=$(date +%s)
BOLD="" DIM="" OFF=""
if [[ -t 1 ]]; then
  BOLD=$'\e[1m' DIM=$'\e[2m' OFF=$'\e[0m'
fi

# ---------------------------------------------------------------------------------------------
# Messages

elapsed() { echo "$(($(date +%s) - T0))"; }
title() { printf '\n%s== %s%s %s[%ss]%s\n' "$BOLD" "$*" "$OFF" "$DIM" "$(elapsed)" "$OFF"; }
say() { printf '%s\n' "$*"; }
die() {
  printf '\nplayground: ERROR: %s\n' "$*" >&2
  exit 1
}
# check CONDITION_EXIT_STATUS MESSAGE: an outcome the playground promises; wrong means exit 1.
ok() { printf '   %sok:%s %s\n' "$BOLD" "$OFF" "$*"; }
expect() {
  local what=$1 got=$2 want=$3
  if [[ $got != "$want" ]]; then
    die "$what: expected '$want', got '$got'."
  fi
  ok "$what ($got)"
}

# pause: a short breather between steps for a person at a terminal; never in CI.
pause() {
  ((CI)) && return 0
  [[ -t 0 ]] || return 0
  read -r -t 6 -p "${DIM}   (Enter: next step; going on by itself in 6 s)${OFF}" _ || echo
}

# show COMMAND...: prints the command like a shell prompt would, runs it (stdin from /dev/null),
# streams its output (stdout and stderr) indented, and returns its exit status.
quoted() {
  local a out=()
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
      out+=("$a")
    else
      out+=("'${a//\'/\'\\\'\'}'")
    fi
  done
  printf '%s' "${out[*]}"
}
show() {
  printf '\n%s$ %s%s\n' "$BOLD" "$(quoted "$@")" "$OFF"
  local rc
  {
    rc=0
    "$@" </dev/null 2>&1 || rc=$?
    echo "$rc" >"$PG/show.rc"
  } | sed -u 's/^/    /'
  rc=$(<"$PG/show.rc")
  ((rc == 0)) || printf '    %s(exit status %s)%s\n' "$DIM" "$rc" "$OFF"
  return "$rc"
}

# ---------------------------------------------------------------------------------------------
# The tools, always pointed at the bed

docker() { "$PPTB_DOCKER_CLI" "$@"; }
pullpilot() { "$PP_BIN" "$@"; }

# field SERVICE EXPRESSION: reads one JSON document (plan/status/apply --json) on stdin and
# prints EXPRESSION, a Python expression over `c`, the container of compose service SERVICE.
field() {
  "$PYTHON" -c '
import json, sys
doc = json.load(sys.stdin)
found = [c for c in doc["containers"] if c.get("service") == sys.argv[1]]
if not found:
    sys.exit("no container of service %s in the JSON" % sys.argv[1])
c = found[0]
value = eval(sys.argv[2])
print("" if value is None else value)' "$1" "$2"
}

# container_id SERVICE, label SERVICE KEY: what Docker says about the service's container.
container_id() { docker compose ps --all --quiet "$1"; }
label() { docker inspect --format "{{index .Config.Labels \"$2\"}}" "$(container_id "$1")"; }

# config SERVICE: the container's configuration that came from compose (not from the image), as
# one line per item, to compare before and after an update.
config() {
  docker inspect "$(container_id "$1")" | "$PYTHON" -c '
import json, sys
c = json.load(sys.stdin)[0]
labels = {k: v for k, v in c["Config"]["Labels"].items()
          if k.startswith("io.pullpilot.") or k in ("com.docker.compose.service", "com.docker.compose.project")}
print("name", c["Name"])
print("image", c["Config"]["Image"])
print("env", sorted(e for e in c["Config"]["Env"] if e.startswith("GREETING=")))
print("labels", sorted(labels.items()))
print("restart", c["HostConfig"]["RestartPolicy"]["Name"])
print("mounts", sorted((m["Type"], m.get("Name", ""), m["Destination"]) for m in c["Mounts"]))
mode = c["HostConfig"]["NetworkMode"]
print("network_mode", "container:<web>" if mode.startswith("container:") else mode)
print("networks", sorted((n, sorted(a for a in (v.get("Aliases") or []) if a != c["Id"][:12]))
                         for n, v in c["NetworkSettings"]["Networks"].items()))'
}

# ---------------------------------------------------------------------------------------------
# Build, bed, sink

build_pullpilot() {
  if [[ -n ${PULLPILOT_BIN:-} ]]; then
    [[ -x $PULLPILOT_BIN ]] || die "PULLPILOT_BIN=$PULLPILOT_BIN is not an executable file."
    PP_BIN=$PULLPILOT_BIN
    say "Using $PP_BIN ($("$PP_BIN" --version))."
    return 0
  fi
  # Built as the owner of the checkout (with that user's cargo), so that `sudo` leaves no
  # root-owned files in its target/.
  local owner home log target=${CARGO_TARGET_DIR:-$ROOT/target} build=()
  owner=$(stat -c %U "$ROOT")
  if [[ $owner == root || $(id -u) != 0 ]]; then
    build=(env "PATH=$HOME/.cargo/bin:$PATH")
  else
    home=$(getent passwd "$owner" | cut -d: -f6)
    target=$ROOT/target
    build=(runuser -u "$owner" -- env -u CARGO_HOME -u RUSTUP_HOME -u CARGO_TARGET_DIR
      "HOME=$home" "PATH=$home/.cargo/bin:$PATH")
  fi
  "${build[@]}" sh -c 'command -v cargo' >/dev/null 2>&1 ||
    die "cargo is not installed (for $owner): install Rust (https://rustup.rs), or set PULLPILOT_BIN=/path/to/pullpilot."
  say "Building pullpilot: cargo build --release (as $owner; the first build takes a few minutes)."
  log=$(mktemp)
  if ! (cd "$ROOT" && "${build[@]}" cargo build --release --locked --bin pullpilot) >"$log" 2>&1; then
    tail -n 30 "$log" | sed 's/^/    /' >&2
    rm -f "$log"
    die "Building pullpilot failed (set PULLPILOT_BIN=/path/to/pullpilot to use a binary you have)."
  fi
  rm -f "$log"
  PP_BIN=$target/release/pullpilot
  say "Built $PP_BIN ($("$PP_BIN" --version)) [$(elapsed)s]."
}

bed_down() {
  local log=$1
  "$BED" down >>"$log" 2>&1 || true
  "$BED" verify-down >>"$log" 2>&1
}

BED_OURS=0
bed_up() {
  local log
  log=$(mktemp)
  BED_LOG=$log
  if [[ -e $BED_RUN || -e $BED_STATE ]]; then
    if [[ -d $PG ]]; then
      say "Removing the playground an earlier run left (--keep, or interrupted) first."
      bed_down "$log" || die "Could not take the earlier playground down: run '$BED down' and see what 'testbed.sh verify-down' lists."
    else
      die "A test bed is already up ($BED_RUN or $BED_STATE exists: an e2e run?). The playground brings up its own and removes it afterwards, so it leaves a bed it did not start alone: take that one down with '$BED down' first."
    fi
  fi
  BED_OURS=1
  say "Bringing up the test bed (tests/testbed/testbed.sh up): its own containerd, dockerd, compose v2"
  say "and loopback registries. The first time it downloads Debian packages (a few minutes)."
  if ! "$BED" up >"$log" 2>&1; then
    tail -n 30 "$log" | sed 's/^/    /' >&2
    die "testbed.sh up failed (the whole log: $log); it is taken down again."
  fi
  grep -E '^pptb: (The test bed is up|Installing|Downloading)' "$log" | sed 's/^pptb: /    /' || true
  eval "$("$BED" env)"
  export DOCKER_HOST=$PPTB_DOCKER_HOST DOCKER_CONFIG=$PPTB_DOCKER_CONFIG
  unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_API_VERSION COMPOSE_PROJECT_NAME \
    COMPOSE_FILE COMPOSE_PROFILES
  mkdir -m 0700 "$PG" "$PG/data"
  mkdir -p "$PG/project"
}

SINK_PID=""
start_sink() {
  cat >"$PG/sink.py" <<'EOF'
# The playground's notification sink: a loopback webhook that appends each body as one JSON line.
import http.server, os, sys

log, port_file = sys.argv[1], sys.argv[2]

class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    break
                body += chunk
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(log, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_PATCH = do_POST

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
EOF
  : >"$PG/notifications.jsonl"
  setsid "$PYTHON" "$PG/sink.py" "$PG/notifications.jsonl" "$PG/sink.port" \
    </dev/null >"$PG/sink.log" 2>&1 &
  SINK_PID=$!
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s $PG/sink.port ]] && break
    kill -0 "$SINK_PID" 2>/dev/null || die "The notification sink exited: $(cat "$PG/sink.log")"
    sleep 0.1
  done
  [[ -s $PG/sink.port ]] || die "The notification sink did not start within 10 s."
  PP_NOTIFY_URL="generic+http://127.0.0.1:$(<"$PG/sink.port")/pullpilot"
  export PP_NOTIFY_URL
}

# notifications: what reached the sink, one line each.
notifications() {
  "$PYTHON" -c '
import json, sys
for line in open(sys.argv[1]):
    n = json.loads(line)
    print("[%s] %s/%s: %s" % (n.get("kind"), n.get("project"), n.get("service"), n.get("title")))
    print("        " + " ".join(str(n.get("message", "")).split()))' "$PG/notifications.jsonl"
}
# notified KIND SERVICE: how many notifications of that kind about that service the sink has.
notified() {
  "$PYTHON" -c '
import json, sys
print(sum(1 for line in open(sys.argv[1])
          if (n := json.loads(line)).get("kind") == sys.argv[2] and n.get("service") == sys.argv[3]))' \
    "$PG/notifications.jsonl" "$1" "$2"
}

TORN_DOWN=0
# teardown [STATUS]: stops the sink and takes the bed down (if this run brought it up), then
# checks that nothing is left. Returns STATUS, or 1 when something is left.
teardown() {
  local rc=${1:-0}
  ((TORN_DOWN)) && return "$rc"
  TORN_DOWN=1
  ((BED_OURS)) || return "$rc"
  if ((KEEP)) && [[ -n ${PP_DATA_DIR:-} ]]; then
    explore_help
    return "$rc"
  fi
  title "Taking everything down"
  cd /
  if [[ -n $SINK_PID ]]; then
    kill "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
  fi
  local log
  log=$(mktemp)
  if bed_down "$log"; then
    grep -E '^pptb: (down:|The test bed is down)' "$log" | sed 's/^pptb: /    /' || true
    rm -f "$log"
    # The bed's own log is kept when something failed: the error message names it.
    ((rc == 0)) && rm -f "${BED_LOG:-}"
    ok "testbed.sh verify-down: no process, mount, port, cgroup, interface or dir of the bed is left"
  else
    sed 's/^/    /' "$log" >&2
    printf '\nplayground: ERROR: the test bed is not fully down (see above).\n' >&2
    ((rc == 0)) && rc=1
  fi
  return "$rc"
}

explore_help() {
  cat >"$PG/env.sh" <<EOF
# source $PG/env.sh: point docker, compose and pullpilot at the playground.
export DOCKER_HOST='$DOCKER_HOST' DOCKER_CONFIG='$DOCKER_CONFIG'
export PP_DATA_DIR='$PP_DATA_DIR' PP_NOTIFY_URL='$PP_NOTIFY_URL'
unset DOCKER_CONTEXT
alias docker='$PPTB_DOCKER_CLI' pullpilot='$PP_BIN'
cd '$PG/project'
EOF
  cat <<EOF

${BOLD}The playground is still running.${OFF} To explore it (as root):

    source $PG/env.sh       # DOCKER_HOST, DOCKER_CONFIG, PP_DATA_DIR, aliases; cd to the project
    pullpilot status; pullpilot plan; docker compose ps
    pullpilot unpin web                                 # and let apply update it again
    skopeo copy --src-tls-verify=false --dest-tls-verify=false --src-no-creds --dest-no-creds \\
      docker://$REG/pptb/app:v3 docker://$REG/playground/web:stable      # publish a new build
    cat $PG/notifications.jsonl              # what the notification sink received

Images to publish: pptb/app:v1, v2, v3 (good), v2-unhealthy, v2-exits, v2-crashloop (broken).
Remove it all:   sudo bash packaging/playground.sh --down
EOF
}

# ---------------------------------------------------------------------------------------------
# The story

REG=""
# publish VARIANT SERVICE: the publisher's CI pushes a new build of SERVICE's image; prints its
# digest.
publish() {
  local variant=$1 service=$2
  show skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --src-no-creds --dest-no-creds \
    "docker://$REG/pptb/app:$variant" "docker://$REG/playground/$service:stable" >&2 ||
    die "Publishing pptb/app:$variant as playground/$service:stable failed."
  skopeo inspect --tls-verify=false --no-creds --format '{{.Digest}}' "docker://$REG/playground/$service:stable"
}

# wait_for_soak: waits until plan says web's candidate may roll out.
wait_for_soak() {
  local left i
  left=$(pullpilot plan --json web | field web 'c.get("remaining_seconds", 0)')
  say ""
  say "Waiting ${left} s for the soak window to pass (a real host waits 24 h by default)..."
  sleep "$left"
  for ((i = 0; i < 30; i++)); do
    [[ $(pullpilot plan --json web | field web 'c["decision"]') == update ]] && return 0
    sleep 1
  done
  die "web's new digest was still not due 30 s after its soak window."
}

# show_inspect: what Docker says about web's and db's containers.
show_inspect() {
  show docker inspect --format '{{.Name}} {{.Config.Image}} (image: {{index .Config.Labels "org.example.variant"}}, {{.State.Health.Status}}) env={{.Config.Env}} mounts={{range .Mounts}}{{.Name}}:{{.Destination}}{{end}}' \
    playground-web-1 playground-db-1 || die "docker inspect failed."
}

write_project() {
  cat >"$PG/project/compose.yaml" <<EOF
# The playground's compose project: three services from the bed's loopback registry.
name: playground
services:
  web:
    image: $REG/playground/web:stable   # its healthcheck is the image's HEALTHCHECK
    environment:
      GREETING: hello from compose
    restart: unless-stopped
    labels:
      io.pullpilot.soak: $SOAK               # 24h by default
      io.pullpilot.health-timeout: 30s  # 90s by default
  worker:
    image: $REG/playground/worker:stable
    network_mode: service:web           # shares web's network namespace
    restart: unless-stopped
    labels:
      io.pullpilot.soak: $SOAK
  db:
    image: $REG/playground/db:stable
    volumes:
      - data:/data                      # a named volume: its data must outlive every update
    restart: unless-stopped
    labels:
      io.pullpilot.soak: $SOAK
volumes:
  data:
EOF
}

story() {
  title "Setting up"
  build_pullpilot
  bed_up
  start_sink
  REG=$PPTB_REG_OPEN
  export PP_DATA_DIR=$PG/data
  cd "$PG/project"
  say "Docker engine $PPTB_ENGINE_VERSION at $DOCKER_HOST (the host's own Docker is never used)."
  say "Registry: $REG (loopback). Notifications: $PP_NOTIFY_URL (a local sink)."
  say "pullpilot's state: $PP_DATA_DIR. The compose project: $PG/project."
  local service
  for service in web worker db; do
    publish v1 "$service" >/dev/null 2>"$PG/publish.log" || {
      cat "$PG/publish.log" >&2
      die "Publishing the first images failed."
    }
  done
  write_project
  show cat compose.yaml
  show docker compose up --detach --wait --wait-timeout 60 || die "docker compose up failed."
  show docker compose exec -T db sh -c 'echo "order 1001: 3 coffees" >> /data/orders.txt' ||
    die "Writing to db's volume failed."
  show_inspect
  local web_before db_before ids_before plan status
  web_before=$(config web)
  db_before=$(config db)
  pause

  # -------------------------------------------------------------------------------------------
  title "1. Nothing new yet: pullpilot plan"
  say "plan is read-only: one manifest HEAD per image, no pull, no container touched."
  show pullpilot plan || die "pullpilot plan failed."
  if ((CI)); then
    plan=$(pullpilot plan --json)
    for service in web worker db; do
      expect "plan: $service" "$(field "$service" 'c["decision"]' <<<"$plan")" up-to-date
    done
  fi
  pause

  # -------------------------------------------------------------------------------------------
  title "2. New images of web and db are published; they soak first"
  local web_v1 web_v2 db_v2
  web_v1=$(pullpilot status --json | field web 'c["current_digest"]')
  web_v2=$(publish v2 web)
  db_v2=$(publish v2 db)
  say ""
  say "apply (what the timer runs) sees the new digests and starts their soak clocks; nothing is"
  say "pulled yet. A digest must stay the tag's digest for the whole window ($SOAK here)."
  show pullpilot apply || die "pullpilot apply (starting the soak) failed."
  show pullpilot plan || die "pullpilot plan failed."
  if ((CI)); then
    plan=$(pullpilot plan --json)
    expect "plan: web" "$(field web 'c["decision"]' <<<"$plan")" soaking
    expect "plan: web's soak clock runs" "$(field web 'c["new_candidate"]' <<<"$plan")" False
    expect "plan: db" "$(field db 'c["decision"]' <<<"$plan")" soaking
    expect "plan: worker" "$(field worker 'c["decision"]' <<<"$plan")" up-to-date
  fi
  pause

  # -------------------------------------------------------------------------------------------
  title "3. The soak is over: pullpilot apply rolls the new images out"
  wait_for_soak
  ids_before="$(container_id web) $(container_id worker) $(container_id db)"
  say "Compose makes each replacement, exactly as 'docker compose up -d' would; pullpilot pulled the"
  say "soaked digest first, journals every step and health-gates the result."
  say "worker shares web's network namespace, so compose recreates it together with web."
  show pullpilot apply || die "pullpilot apply (the rollout) failed."
  show_inspect
  show docker compose exec -T db cat /data/orders.txt || die "Reading db's volume failed."
  local ids_after
  ids_after="$(container_id web) $(container_id worker) $(container_id db)"
  say ""
  say "compose agrees: 'docker compose up -d' finds web, worker and db up to date."
  show docker compose up -d || die "docker compose up -d failed."
  local ids_compose
  ids_compose="$(container_id web) $(container_id worker) $(container_id db)"
  show docker compose ps --format 'table {{.Service}}\t{{.Image}}\t{{.Status}}'
  if ((CI)); then
    status=$(pullpilot status --json)
    expect "web runs the v2 image" "$(label web org.example.variant)" v2
    expect "db runs the v2 image" "$(label db org.example.variant)" v2
    expect "web's digest" "$(field web 'c["current_digest"]' <<<"$status")" "$web_v2"
    expect "db's digest" "$(field db 'c["current_digest"]' <<<"$status")" "$db_v2"
    [[ $(config web) == "$web_before" ]] || die "web's configuration changed in the update:
before: $web_before
after:  $(config web)"
    ok "web's configuration from compose is unchanged"
    [[ $(config db) == "$db_before" ]] || die "db's configuration changed in the update:
before: $db_before
after:  $(config db)"
    ok "db's configuration (and its named volume) is unchanged"
    expect "db's volume data" "$(docker compose exec -T db cat /data/orders.txt)" "order 1001: 3 coffees"
    local i before after
    read -r -a before <<<"$ids_before"
    read -r -a after <<<"$ids_after"
    for i in 0 1 2; do
      [[ ${after[i]} != "${before[i]}" ]] || die "apply did not recreate container ${before[i]} (web, worker, db: $ids_before)."
    done
    ok "apply recreated web, worker and db"
    expect "worker's network namespace" \
      "$(docker inspect --format '{{.HostConfig.NetworkMode}}' "$(container_id worker)")" \
      "container:$(docker inspect --format '{{.Id}}' "$(container_id web)")"
    expect "web, worker and db containers after 'docker compose up -d'" "$ids_compose" "$ids_after"
    expect "updated notifications for web" "$(notified updated web)" 1
  fi
  pause

  # -------------------------------------------------------------------------------------------
  title "4. A broken image of web is published"
  say "It starts, but its healthcheck never passes. It soaks like any new digest: the soak cannot"
  say "tell a broken image from a good one, the health gate can."
  local broken
  broken=$(publish v2-unhealthy web)
  show pullpilot apply || die "pullpilot apply (starting the soak) failed."
  wait_for_soak
  say "The health gate waits for 'healthy' (up to the 30 s health-timeout label); 'unhealthy'"
  say "fails it at once: the old container comes back and the digest is blocked."
  local rc=0
  show pullpilot apply || rc=$?
  ((rc == 1)) || die "apply with a broken image should exit 1 (an update failed), not $rc."
  show pullpilot status || true
  show pullpilot plan web || true
  say ""
  say "The notification sink received (PP_NOTIFY_URL=$PP_NOTIFY_URL):"
  notifications | sed 's/^/    /'
  if ((CI)); then
    status=$(pullpilot status --json)
    expect "web runs the v2 image again" "$(label web org.example.variant)" v2
    expect "web's digest" "$(field web 'c["current_digest"]' <<<"$status")" "$web_v2"
    expect "web is running" "$(field web 'c["running"]' <<<"$status")" True
    expect "the broken digest is blocked" \
      "$(field web '" ".join(b["digest"] for b in c["blocked"])' <<<"$status")" "$broken"
    expect "web's last history entry" "$(field web 'c["history"][-1]["outcome"]' <<<"$status")" rolled-back
    expect "plan: web" "$(pullpilot plan --json web | field web 'c["decision"]')" blocked
    expect "rolled_back notifications for web" "$(notified rolled_back web)" 1
  fi
  pause

  # -------------------------------------------------------------------------------------------
  title "5. By hand: pullpilot rollback and pin"
  say "rollback puts web back on the image it ran before its last update, through the same"
  say "health-gated recreate, blocks the abandoned digest and pins web there."
  show pullpilot rollback web || die "pullpilot rollback web failed."
  say ""
  say "pin holds db at the digest it runs: apply leaves it alone until 'pullpilot unpin db'."
  show pullpilot pin db || die "pullpilot pin db failed."
  show pullpilot plan || die "pullpilot plan failed."
  if ((CI)); then
    status=$(pullpilot status --json)
    expect "web runs the v1 image again" "$(label web org.example.variant)" v1
    expect "web's digest" "$(field web 'c["current_digest"]' <<<"$status")" "$web_v1"
    expect "web is pinned at" "$(field web 'c["pin"]["digest"]' <<<"$status")" "$web_v1"
    expect "db is pinned at" "$(field db 'c["pin"]["digest"]' <<<"$status")" "$db_v2"
  fi
  pause
}

down_only() {
  [[ $(id -u) == 0 ]] || die "Run it as root: sudo bash packaging/playground.sh --down"
  local log
  log=$(mktemp)
  if bed_down "$log"; then
    rm -f "$log"
    say "The playground (and its test bed) is gone; nothing is left."
  else
    cat "$log" >&2
    die "The test bed is not fully down (see above)."
  fi
}

main() {
  if [[ $MODE == down ]]; then
    down_only
    return
  fi
  [[ $(id -u) == 0 ]] || die "Run it as root (it starts its own dockerd): sudo bash packaging/playground.sh"
  command -v dpkg >/dev/null || die "This needs Debian or Ubuntu (the test bed installs Debian packages)."
  trap 'teardown $?; exit $?' EXIT
  story
  trap - EXIT
  teardown 0
  title "Done in $(elapsed) s"
  if ((KEEP)); then
    return 0
  fi
  if ((CI)); then
    say "playground: every outcome checked: the update applied with its configuration and volume"
    say "data intact and nothing for compose to redo on web and db, the broken image rolled back and blocked, the"
    say "rollback notification sent, rollback and pin done, and the bed left nothing behind."
  else
    say "To run it on your own host, see the README's quick start. To explore this playground"
    say "yourself, run it again with --keep."
  fi
}

main
