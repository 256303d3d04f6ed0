#!/usr/bin/env bash
# pullpilot benchmarks B1-B6 against the real test bed; writes the results into BENCHMARKS.md.
#
#   bash tests/bench/bench.sh            (as root; the test bed up, or entirely down)
#
# B1 check latency: compose project `bench-b1`, 100 containers on 40 images
#    (127.0.0.1:PROXY/bench-img-NN:v1, services sNNN use image NNN % 40), behind a loopback delay
#    proxy (tests/bench/delay_proxy.py) that adds DELAY_MS each way (RTT = 2 x DELAY_MS) to the
#    token registry AND, through a rewrite of the realm in the registry's challenge, to the token
#    issuer. 20 of the 40 tags then get a new digest. Median of RUNS runs (after one warm-up) of
#    `pullpilot plan`, of 40 serial `skopeo inspect --raw`, and of 40 serial `docker pull`.
# B2 peak RSS (/usr/bin/time -v) of `plan` and of a no-op `apply` (default 24 h soak, run once
#    before so the candidates exist) on the same project.
# B3 downtime: tests/bench/downtime.sh DOWNTIME_ROUNDS (its own project on the open registry).
# B4 registry requests of one `plan`: the registry's access log (only lines that came through
#    this run's proxy, whose upstream side binds a source address of its own, with the
#    pullpilot/ user agent) and the issuer's log (agent=pullpilot/ and a bench-img- scope).
# B5 pulls ahead of the recreates: tests/bench/b5_prefetch.sh (apply of 20 updates through a
#    bandwidth-limited path, PP_PREFETCH=3 vs 0: pass time and each service's downtime).
# B6 scaling: tests/bench/b6_scale.sh (plan over 100/300/1,000 containers on 40/120/400 images:
#    wall time and peak RSS).
#
# Settings (environment): BENCH_RUNS (5, at least 5 for the report), BENCH_DELAY_MS (50),
# BENCH_DOWNTIME_ROUNDS (7), BENCH_SOURCE_ADDR (127.0.77.1), BENCH_OUT (BENCHMARKS.md),
# BENCH_HANDSHAKE=1 (the proxy also charges one RTT per new TCP connection; off by default, as
# the floor counts none), BENCH_SKIP_BUILD=1 (use target/release/pullpilot as it is),
# BENCH_B5=0 / BENCH_B6=0 (skip B5 / B6; their own settings are in their scripts' headers).
# Creates only resources named bench-* (project bench-b1, images */bench-img-NN) and removes
# them on exit, also on failure; the registry repositories bench-img-NN stay. Never runs
# `testbed.sh down`; runs `testbed.sh up` only when every part of the bed is down.
# Bounded: every step has a timeout, no step starts after BENCH_BUDGET (1800 s) and B3, B5 and
# B6 get only what is left of it (B5 at most 900 s, B6 at most 1200 s), so a run ends within
# about 32 minutes whatever happens (B1-B4 about 6 normally; B5 and B6 add roughly 5 and 10).
# shellcheck disable=SC2154 # NAME_* results are set indirectly, with printf -v
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
ROOT=$PWD
bench_env=$(env | grep -E '^BENCH_[A-Z_]+=' | sort | tr '\n' ' ' || true)
readonly COMMAND="${bench_env}bash tests/bench/bench.sh${*:+ $*}"
readonly RUNS=${BENCH_RUNS:-5}
readonly DELAY_MS=${BENCH_DELAY_MS:-50}
readonly RTT_MS=$((2 * DELAY_MS))
readonly DOWNTIME_ROUNDS=${BENCH_DOWNTIME_ROUNDS:-7}
readonly HANDSHAKE=${BENCH_HANDSHAKE:-0}
readonly SOURCE_ADDR=${BENCH_SOURCE_ADDR:-127.0.77.1}
readonly OUT=${BENCH_OUT:-$ROOT/BENCHMARKS.md}
readonly BUDGET=${BENCH_BUDGET:-1800}
readonly RUN_B5=${BENCH_B5:-1} RUN_B6=${BENCH_B6:-1}
readonly PROJECT=bench-b1
readonly N_CONTAINERS=100 N_IMAGES=40 N_UPDATED=20
readonly T_START=$SECONDS

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
  printf 'bench: ERROR: %s\n' "$*" >&2
  exit 1
}
# budget WHAT: stop (cleanly, through the trap) once the run has used its time.
budget() { ((SECONDS - T_START < BUDGET)) || die "time budget of ${BUDGET}s used up before: $1"; }
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "")}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "n/a"; else printf "%.1f", a / b}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
max_rss_kb() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

[[ $RUNS -ge 1 ]] || die "BENCH_RUNS must be at least 1"
[[ $(id -u) == 0 ]] || die "run as root (the test bed's socket is root's)"

# --- the test bed ---------------------------------------------------------------------------
if ! tests/testbed/testbed.sh status 2>"${TMPDIR:-/tmp}/bench-status.$$"; then
  if grep -q ': running' "${TMPDIR:-/tmp}/bench-status.$$"; then
    cat "${TMPDIR:-/tmp}/bench-status.$$" >&2
    rm -f "${TMPDIR:-/tmp}/bench-status.$$"
    die "the test bed is partly up; it is shared, so it is left alone: fix it by hand"
  fi
  say "the test bed is down; starting it (it stays up afterwards)"
  setsid tests/testbed/testbed.sh up >/dev/null
fi
rm -f "${TMPDIR:-/tmp}/bench-status.$$"
eval "$(tests/testbed/testbed.sh env)"
export DOCKER_HOST=$PPTB_DOCKER_HOST
docker() { timeout "${DOCKER_TIMEOUT:-120}" "$PPTB_DOCKER_CLI" "$@"; }

# --- the binary -----------------------------------------------------------------------------
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  say "cargo build --release"
  timeout 600 cargo build --release --quiet
fi
pp=$ROOT/target/release/pullpilot
[[ -x $pp ]] || die "no $pp"
if [[ ! -x /usr/bin/time ]]; then
  say "installing Debian's time (for /usr/bin/time -v)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null; }
fi

# --- work dir, cleanup ----------------------------------------------------------------------
work=$(mktemp -d /tmp/bench-XXXXXX)
cfg=$work/docker-config
proxy_pid=""
cleanup() {
  local rc=$? ids
  trap - EXIT INT TERM
  say "cleaning up"
  if [[ -f $work/compose.yaml ]]; then
    DOCKER_CONFIG=$cfg DOCKER_TIMEOUT=180 docker compose -p "$PROJECT" -f "$work/compose.yaml" \
      down -v -t 1 --remove-orphans >/dev/null 2>&1 || true
  fi
  # Whatever compose left (e.g. after an interrupted `up`), by label: only this project.
  mapfile -t ids < <(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null || true)
  ((${#ids[@]} == 0)) || docker rm -f "${ids[@]}" >/dev/null 2>&1 || true
  remove_images
  if [[ -n $proxy_pid ]]; then
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
# remove_images: every local image named */bench-img-NN (any registry host or tag).
remove_images() {
  local refs
  mapfile -t refs < <(docker images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null |
    grep -E '^[^/]+/bench-img-[0-9]+:' || true)
  ((${#refs[@]} == 0)) || docker rmi -f "${refs[@]}" >/dev/null 2>&1 || true
  mapfile -t refs < <(docker images --digests --format '{{.Repository}}@{{.Digest}}' 2>/dev/null |
    grep -E '^[^/]+/bench-img-[0-9]+@sha256:' || true)
  ((${#refs[@]} == 0)) || docker rmi -f "${refs[@]}" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of an earlier, killed run.
mapfile -t ids < <(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")
((${#ids[@]} == 0)) || { say "removing leftover $PROJECT containers"; docker rm -f "${ids[@]}" >/dev/null; }
remove_images

# --- the delay proxy ------------------------------------------------------------------------
say "delay proxy: ${DELAY_MS} ms each way in front of $PPTB_REG_TOKEN and ${PPTB_TOKEN_REALM%/token}"
issuer_hostport=${PPTB_TOKEN_REALM#http://}
issuer_hostport=${issuer_hostport%%/*}
handshake=()
[[ $HANDSHAKE != 1 ]] || handshake=(--handshake)
python3 tests/bench/delay_proxy.py --delay-ms "$DELAY_MS" --source "$SOURCE_ADDR" "${handshake[@]}" \
  --ports-file "$work/ports" --max-seconds $((BUDGET + 120)) \
  --proxy "registry=$PPTB_REG_TOKEN" --proxy "issuer=$issuer_hostport" \
  --rewrite registry "realm=\"http://$issuer_hostport/" "realm=\"http://127.0.0.1:{issuer}/" \
  2>"$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 50); do [[ -s $work/ports ]] && break; sleep 0.1; done
[[ -s $work/ports ]] || { cat "$work/proxy.log" >&2; die "the delay proxy did not start"; }
iss_start=$(wc -l <"$PPTB_TOKEN_ISSUER_LOG")
PROXY=127.0.0.1:$(awk '$1 == "registry" {print $2}' "$work/ports")
ISSUER_PROXY=127.0.0.1:$(awk '$1 == "issuer" {print $2}' "$work/ports")

# DOCKER_CONFIG: the token registry's credentials, for its own address and the proxy's.
mkdir -p "$cfg/cli-plugins"
ln -s "$PPTB_COMPOSE_PLUGIN" "$cfg/cli-plugins/docker-compose"
auth=$(printf '%s:%s' "$PPTB_TOKEN_USER" "$PPTB_TOKEN_PASSWORD" | base64 -w0)
printf '{"auths":{"%s":{"auth":"%s"},"%s":{"auth":"%s"}}}\n' \
  "$PPTB_REG_TOKEN" "$auth" "$PROXY" "$auth" >"$cfg/config.json"
export DOCKER_CONFIG=$cfg

img() { printf 'bench-img-%02d' "$1"; }

# build_push N VERSION: builds a distinct image (pptb/base:v1 + labels) and pushes it to the
# token registry directly (not through the proxy) as bench-img-NN:v1.
build_push() {
  local ref
  ref=$PPTB_REG_TOKEN/$(img "$1"):v1
  printf 'FROM pptb/base:v1\nLABEL org.example.bench-image="%s" org.example.bench-version="%s"\n' \
    "$1" "$2" | DOCKER_BUILDKIT=0 docker build -q -t "$ref" - >/dev/null 2>"$work/build-$1.err" ||
    { cat "$work/build-$1.err" >&2; return 1; }
  docker push -q "$ref" >/dev/null
}
# in_parallel P COUNT FUNCTION ARGS...: runs `FUNCTION I ARGS...` for I in 0..COUNT-1, at most P at
# a time; fails if any failed.
in_parallel() {
  local p=$1 upto=$2 fn=$3 i pids=() failed=0 pid
  shift 3
  for ((i = 0; i < upto; i++)); do
    "$fn" "$i" "$@" &
    pids+=($!)
    if ((${#pids[@]} >= p)); then
      wait "${pids[0]}" || failed=1
      pids=("${pids[@]:1}")
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  return $failed
}
pull_via_proxy() { docker pull -q "$PROXY/$(img "$1"):v1" >/dev/null && docker rmi "$PPTB_REG_TOKEN/$(img "$1"):v1" >/dev/null; }

# --- B1 setup -------------------------------------------------------------------------------
budget "setup"
t0=$SECONDS
say "building and pushing $N_IMAGES images bench-img-NN:v1"
in_parallel 4 "$N_IMAGES" build_push 1
say "pulling them through the proxy (so their RepoDigests name $PROXY)"
in_parallel 4 "$N_IMAGES" pull_via_proxy
{
  echo "# $PROJECT: $N_CONTAINERS containers on $N_IMAGES images (written by tests/bench/bench.sh)"
  echo "services:"
  for ((n = 0; n < N_CONTAINERS; n++)); do
    printf '  s%03d:\n    image: %s/%s:v1\n' "$n" "$PROXY" "$(img $((n % N_IMAGES)))"
    # Idle and cheap: no network, no healthcheck probes, one wake-up an hour.
    printf '    network_mode: none\n    healthcheck: {disable: true}\n'
    printf '    command: ["/bin/sh", "-c", "trap '"'"'exit 0'"'"' TERM; while :; do sleep 3600 & wait $$!; done"]\n'
  done
} >"$work/compose.yaml"
say "starting $PROJECT ($N_CONTAINERS containers)"
DOCKER_TIMEOUT=300 docker compose -p "$PROJECT" -f "$work/compose.yaml" up -d --quiet-pull >"$work/compose-up.log" 2>&1 ||
  { tail -20 "$work/compose-up.log" >&2; die "compose up failed"; }
running=$(docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter status=running | wc -l)
[[ $running == "$N_CONTAINERS" ]] || die "$running of $N_CONTAINERS containers running"
say "pushing a new digest for $N_UPDATED of the $N_IMAGES tags"
in_parallel 4 "$N_UPDATED" build_push 2
for ((i = 0; i < N_UPDATED; i++)); do docker rmi "$PPTB_REG_TOKEN/$(img "$i"):v1" >/dev/null; done
setup_s=$((SECONDS - t0))

pp_env=(env PP_DATA_DIR="$work/pp-plan" DOCKER_CONFIG="$cfg" DOCKER_HOST="$DOCKER_HOST")
plan_cmd=("$pp" plan --scope "project:$PROJECT")
status_cmd=("$pp" status --scope "project:$PROJECT")

# Sanity: plan sees every container, and exactly the updated tags' containers as new digests.
"${pp_env[@]}" timeout 120 "${plan_cmd[@]}" --json >"$work/plan.json" 2>"$work/plan.err" ||
  { cat "$work/plan.err" >&2; die "pullpilot plan failed"; }
decisions=$(python3 -c '
import json, sys, collections
doc = json.load(open(sys.argv[1]))
items = doc.get("containers", doc) if isinstance(doc, dict) else doc
c = collections.Counter(str(i.get("decision")) for i in items)
print(", ".join(f"{v} {k}" for k, v in sorted(c.items())))' "$work/plan.json")
say "plan: $decisions"

# --- B1 measurements ------------------------------------------------------------------------
time_plan() {
  local t
  t=$(now_ms)
  "${pp_env[@]}" timeout 120 "${plan_cmd[@]}" >/dev/null 2>>"$work/plan.err"
  echo $(($(now_ms) - t))
}
# The Docker part of the floor: what `pullpilot status` takes (the listing and inspects a pass
# needs, no registry).
time_status() {
  local t
  t=$(now_ms)
  "${pp_env[@]}" timeout 120 "${status_cmd[@]}" >/dev/null 2>>"$work/plan.err"
  echo $(($(now_ms) - t))
}
time_skopeo() {
  local t i
  t=$(now_ms)
  for ((i = 0; i < N_IMAGES; i++)); do
    timeout 60 "$PPTB_SKOPEO" inspect --raw --tls-verify=false \
      --creds "$PPTB_TOKEN_USER:$PPTB_TOKEN_PASSWORD" "docker://$PROXY/$(img "$i"):v1" >/dev/null
  done
  echo $(($(now_ms) - t))
}
time_pull() {
  local t i
  t=$(now_ms)
  for ((i = 0; i < N_IMAGES; i++)); do
    docker pull -q "$PROXY/$(img "$i"):v1" >/dev/null
  done
  echo $(($(now_ms) - t))
}
# Request accounting. mark: the two logs' line counts now. account MARK AGENT TAG: counts what
# came since MARK from AGENT (user-agent prefix: pullpilot/, skopeo/, docker/): registry lines
# that came through this run's proxy (source address $SOURCE_ADDR), split by kind, and token
# requests in the issuer's log for bench-img- scopes; sets TAG_probe, TAG_head, TAG_head_ok,
# TAG_get, TAG_other, TAG_tokens, TAG_scopes, TAG_repos.
mark() { echo "$(wc -l <"$PPTB_REG_TOKEN_LOG") $(wc -l <"$PPTB_TOKEN_ISSUER_LOG")"; }
account() {
  local reg iss agent=$2 tag=$3 f total probe head get
  read -r reg iss <<<"$1"
  sleep 1 # the registry writes its access-log line after the response
  f=$work/requests-$tag
  tail -n +$((reg + 1)) "$PPTB_REG_TOKEN_LOG" |
    awk -v src="$SOURCE_ADDR" -v ua="\"$agent" '$1 == src && index($0, ua)' >"$f.registry"
  tail -n +$((iss + 1)) "$PPTB_TOKEN_ISSUER_LOG" |
    grep -F "agent=$agent" | grep -E 'scopes=[^ ]*bench-img-' >"$f.issuer" || true
  total=$(wc -l <"$f.registry")
  probe=$(grep -cE '"GET /v2/ HTTP' "$f.registry" || true)
  head=$(grep -cE '"HEAD /v2/[^ ]+/manifests/' "$f.registry" || true)
  get=$(grep -cE '"GET /v2/[^ ]+/manifests/' "$f.registry" || true)
  printf -v "${tag}_probe" '%s' "$probe"
  printf -v "${tag}_head" '%s' "$head"
  printf -v "${tag}_get" '%s' "$get"
  printf -v "${tag}_other" '%s' "$((total - probe - head - get))"
  printf -v "${tag}_head_ok" '%s' "$(grep -cE '"HEAD /v2/[^ ]+/manifests/[^ ]+ HTTP/[0-9.]+" 200 ' "$f.registry" || true)"
  printf -v "${tag}_tokens" '%s' "$(wc -l <"$f.issuer")"
  printf -v "${tag}_scopes" '%s' "$(grep -oE 'bench-img-[0-9]+' "$f.issuer" | sort -u | wc -l)"
  printf -v "${tag}_repos" '%s' "$(grep -oE '"(HEAD|GET) /v2/bench-img-[0-9]+/' "$f.registry" | sort -u | wc -l)"
}

plan_first="" plan_runs="" plan_med="" skopeo_first="" skopeo_runs="" skopeo_med=""
pull_first="" pull_runs="" pull_med=""
# measure NAME FUNCTION AGENT: one warm-up run, then RUNS runs; sets NAME_first, NAME_runs,
# NAME_med, and the request counts of the first measured run (account ... NAME).
measure() {
  local name=$1 fn=$2 agent=$3 runs=() r ms m
  budget "$name"
  say "B1 $name: warm-up + $RUNS runs"
  ms=$($fn)
  printf -v "${name}_first" '%s' "$ms"
  for ((r = 0; r < RUNS; r++)); do
    budget "$name run $((r + 1))"
    m=$(mark)
    ms=$($fn)
    runs+=("$ms")
    ((r > 0)) || account "$m" "$agent" "$name"
  done
  printf -v "${name}_runs" '%s' "${runs[*]}"
  printf -v "${name}_med" '%s' "$(printf '%s\n' "${runs[@]}" | median)"
  local first=${name}_first
  say "  $name: warm-up ${!first} ms, runs ${runs[*]} ms"
}
measure plan time_plan pullpilot/
status_runs=()
for ((r = 0; r < RUNS; r++)); do status_runs+=("$(time_status)"); done
status_med=$(printf '%s\n' "${status_runs[@]}" | median)
measure skopeo time_skopeo skopeo/

# --- B4: requests of one plan (before any docker pull changes local tags) --------------------
budget "B4"
say "B4: counting one plan's requests"
m=$(mark)
"${pp_env[@]}" timeout 120 "${plan_cmd[@]}" >/dev/null 2>>"$work/plan.err"
account "$m" pullpilot/ b4

# --- B2: peak RSS -----------------------------------------------------------------------------
budget "B2"
say "B2: peak RSS of plan and of a no-op apply"
"${pp_env[@]}" /usr/bin/time -v -o "$work/rss-plan" timeout 120 "${plan_cmd[@]}" >/dev/null 2>>"$work/plan.err"
apply_env=(env PP_DATA_DIR="$work/pp-apply" DOCKER_CONFIG="$cfg" DOCKER_HOST="$DOCKER_HOST")
apply_cmd=("$pp" apply --scope "project:$PROJECT")
"${apply_env[@]}" /usr/bin/time -v -o "$work/rss-apply1" timeout 180 "${apply_cmd[@]}" \
  >"$work/apply1.out" 2>"$work/apply1.err" || { tail "$work/apply1.err" >&2; die "apply (first) failed"; }
"${apply_env[@]}" /usr/bin/time -v -o "$work/rss-apply2" timeout 180 "${apply_cmd[@]}" \
  >"$work/apply2.out" 2>"$work/apply2.err" || { tail "$work/apply2.err" >&2; die "apply (no-op) failed"; }
rss_plan=$(max_rss_kb "$work/rss-plan")
rss_apply1=$(max_rss_kb "$work/rss-apply1")
rss_apply2=$(max_rss_kb "$work/rss-apply2")
# Nothing may have changed: still the same 100 containers on the same images.
changed=$(docker ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Image}}' |
  grep -cv "^$PROXY/bench-img-[0-9]*:v1\$" || true)
[[ $changed == 0 ]] || die "the no-op apply changed $changed containers"

# --- B1: docker pull (last: it moves the local tags of the updated images) ----------------------
measure pull time_pull docker/

# --- B3 -----------------------------------------------------------------------------------------
budget "B3"
say "B3: tests/bench/downtime.sh $DOWNTIME_ROUNDS"
left=$((BUDGET - (SECONDS - T_START)))
b3_out=$(PULLPILOT=$pp timeout $((left < 300 ? left : 300)) bash tests/bench/downtime.sh "$DOWNTIME_ROUNDS" 2>"$work/downtime.err") ||
  { tail "$work/downtime.err" >&2; die "downtime.sh failed"; }
b3_ours=$(sed -n 's/^pullpilot apply.*median \([0-9]*\)$/\1/p' <<<"$b3_out")
b3_theirs=$(sed -n 's/^compose --force-recreate.*median \([0-9]*\)$/\1/p' <<<"$b3_out")
b3_api=$(sed -n 's/^API path.*median \([0-9]*\)$/\1/p' <<<"$b3_out")

# --- B5 and B6: their own scripts, projects and proxies ------------------------------------------
# run_part NAME SCRIPT CAP: runs SCRIPT with what is left of the budget (at most CAP seconds);
# its key=value lines become variables, its Markdown fragment NAME_md. A failed part is
# reported as such; it does not stop the run.
run_part() {
  local name=$1 script=$2 cap=$3 left out line rc=0
  left=$((BUDGET - (SECONDS - T_START)))
  if ((left < 60)); then
    printf -v "${name}_status" '%s' "Not run: the time budget was used up"
    return
  fi
  say "$name: $script"
  out=$(PULLPILOT=$pp timeout $((left < cap ? left : cap)) bash "$script" 2>"$work/$name.err") || rc=$?
  if ((rc == 0)); then
    printf -v "${name}_status" '%s' "Ran"
  else
    tail "$work/$name.err" >&2
    printf -v "${name}_status" '%s' "**Failed** (exit $rc): $(tail -1 "$work/$name.err")"
  fi
  while IFS= read -r line; do
    if [[ $line =~ ^(b[56]_[a-z0-9_]+)=(.*)$ ]]; then
      printf -v "${BASH_REMATCH[1]}" '%s' "${BASH_REMATCH[2]}"
    fi
  done <<<"$out"
  printf -v "${name}_md" '%s' "$(sed -n "/^--- $name markdown ---\$/,/^--- end ---\$/p" <<<"$out" | sed '1d;$d')"
}
b5_status="Skipped (BENCH_B5=0)" b5_md="" b6_status="Skipped (BENCH_B6=0)" b6_md=""
b5_pass_prefetch_ms="" b5_pass_serial_ms="" b5_speedup="" b5_downtime_median_prefetch_ms=""
b5_downtime_median_serial_ms="" b6_growth_ms="" b6_growth_images="" b6_rss_kb_1000="" b6_ms_1000=""
if [[ $RUN_B5 == 1 ]]; then
  budget "B5"
  run_part b5 tests/bench/b5_prefetch.sh 900
fi
if [[ $RUN_B6 == 1 ]]; then
  budget "B6"
  run_part b6 tests/bench/b6_scale.sh 1200
fi
[[ -n $b5_md ]] || b5_md=$(printf '### B5 pulls ahead of the recreates\n\n%s.' "$b5_status")
# shellcheck disable=SC2016 # a literal `plan`
[[ -n $b6_md ]] || b6_md=$(printf '### B6 scaling of `plan`\n\n%s.' "$b6_status")

# --- the proxy's own account (connections per side, realm rewrites) ---------------------------
kill "$proxy_pid" 2>/dev/null || true
wait "$proxy_pid" 2>/dev/null || true
proxy_pid=""
proxy_stats=$(sed -n 's/^delay_proxy: stopped after [0-9]* s; //p' "$work/proxy.log")
# The issuer serves HTTP/1.0 (one request per connection): the pull-token requests for bench-img
# repositories since the proxy started (the setup's pushes, direct, ask for push too) should all
# be connections the issuer proxy carried.
realm_tokens=$(tail -n +$((iss_start + 1)) "$PPTB_TOKEN_ISSUER_LOG" | grep -E 'scopes=[^ ]*bench-img-' |
  grep -cv ':push' || true)
issuer_conns=$(sed -n 's/.*issuer: \([0-9]*\) connections.*/\1/p' "$work/proxy.log")

# --- the report -----------------------------------------------------------------------------------
# The floor from physics, not from pullpilot's settings: the Docker listing a pass needs, plus
# one RTT per unavoidable registry round on a token registry (the challenge, the token, one
# round of every HEAD at once).
floor_rtts=3
floor_ms=$((status_med + floor_rtts * RTT_MS))
speedup_skopeo=$(ratio "$skopeo_med" "$plan_med")
speedup_pull=$(ratio "$pull_med" "$plan_med")
vs_floor=$(ratio "$plan_med" "$floor_ms")
met() { if eval "$1"; then echo met; else echo "**missed**"; fi; }
b1_ok=$(met "awk -v s=$speedup_skopeo -v f=$vs_floor 'BEGIN {exit !(s >= 50 && f <= 1.5)}'")
# shellcheck disable=SC2034 # read by met's eval
b2_peak=$((rss_plan > rss_apply2 ? rss_plan : rss_apply2))
b2_ok=$(met "((b2_peak <= 20 * 1024))")
b3_ok=$(met "((b3_ours <= b3_theirs && b3_api <= b3_theirs))")
# One HEAD per image answered 200, plus at most one that only fetched the challenge (or the
# /v2/ probe instead), one token request, nothing else.
b4_ok=$(met "((b4_head_ok == N_IMAGES && b4_head - b4_head_ok + b4_probe <= 1 && b4_get == 0 && b4_tokens == 1 && b4_other == 0))")
# B5: the prefetch pass is faster, and the median downtime per service at most 10 % above the
# serial pass's (run-to-run noise; it must not grow).
if [[ -n $b5_pass_prefetch_ms && -n $b5_downtime_median_serial_ms ]]; then
  b5_ok=$(met "awk -v a=$b5_pass_prefetch_ms -v b=$b5_pass_serial_ms -v da=$b5_downtime_median_prefetch_ms -v db=$b5_downtime_median_serial_ms 'BEGIN {exit !(a < b && da <= db * 1.1)}'")
  b5_result="${b5_pass_prefetch_ms} ms vs ${b5_pass_serial_ms} ms without (${b5_speedup}× faster); downtime median ${b5_downtime_median_prefetch_ms} vs ${b5_downtime_median_serial_ms} ms"
else
  b5_ok="not measured" b5_result=$b5_status
fi
# B6: wall time grows no faster than the images, RSS under 32 MiB at 1,000 containers.
if [[ -n $b6_growth_ms && -n $b6_rss_kb_1000 ]]; then
  b6_ok=$(met "awk -v g=$b6_growth_ms -v i=$b6_growth_images -v r=$b6_rss_kb_1000 'BEGIN {exit !(g <= i && r <= 32 * 1024)}'")
  b6_result="wall time ×${b6_growth_ms} for ×${b6_growth_images} the images (${b6_ms_1000} ms at 1,000); $(mib "$b6_rss_kb_1000") MiB at 1,000"
else
  b6_ok="not measured" b6_result=$b6_status
fi
total_s=$((SECONDS - T_START))

engine_version=$(docker version --format '{{.Server.Version}}')
compose_version=$(docker compose version --short 2>/dev/null || echo "?")
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || rev="$rev + uncommitted changes in src/"

results=$(
  cat <<EOF
<!-- bench:begin (generated by tests/bench/bench.sh; edits inside this block are overwritten) -->
## Latest results

- **Command:** \`$COMMAND\` (total ${total_s} s, of which ${setup_s} s setting up B1)
- **Date:** $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- **Machine:** $(nproc) cores ($cpu), $mem memory, kernel $(uname -r)
- **Engine:** Docker $engine_version (test bed engine \`$PPTB_ENGINE\`, $PPTB_IMAGE_STORE image store), compose $compose_version, $("$PPTB_SKOPEO" --version)
- **pullpilot:** $("$pp" --version 2>/dev/null || echo "?") (release build), commit $rev
- **Delay:** ${DELAY_MS} ms each way (RTT ${RTT_MS} ms) on the token registry ($PROXY → $PPTB_REG_TOKEN) and on its token issuer ($ISSUER_PROXY → $issuer_hostport, reached because the registry proxy rewrites the challenge's realm); $( ((HANDSHAKE == 1)) && echo "new TCP connections charged one extra RTT" || echo "TCP handshakes not delayed"); proxy account: $proxy_stats; the issuer logged $realm_tokens pull-token requests for bench-img repositories in that time, so $( ((realm_tokens == ${issuer_conns:-0})) && echo "all of them came through the delayed path" || echo "**not all of them came through the delayed path**")

| target | result | status |
|---|---|---|
| B1 plan ≥ 50× faster than serial skopeo, and within 1.5× of the floor | ${speedup_skopeo}× faster; ${vs_floor}× the floor | $b1_ok |
| B2 peak RSS ≤ 20 MiB (plan, no-op apply) | $(mib "$rss_plan") MiB, $(mib "$rss_apply2") MiB | $b2_ok |
| B3 downtime no worse than compose's | compose path ${b3_ours} ms, API path ${b3_api} ms vs ${b3_theirs} ms (medians) | $b3_ok |
| B4 requests = floor (1 HEAD per unique image, 1 token request, + 1 challenge HEAD or \`/v2/\` probe) | $b4_head HEAD + $b4_get GET manifests + $b4_probe probe + $b4_other other; $b4_tokens token request(s) | $b4_ok |
| B5 \`apply\` of 20 updates: pulls ahead make it faster, per-service downtime does not grow | $b5_result | $b5_ok |
| B6 \`plan\` 100 → 1,000 containers: time grows ≤ images, RSS ≤ 32 MiB at 1,000 | $b6_result | $b6_ok |

### B1 check latency ($N_CONTAINERS containers, $N_IMAGES unique images, $N_UPDATED with a new digest)

\`pullpilot plan\` saw: $decisions.

| method | median of $RUNS (ms) | runs (ms) | warm-up run (ms) | vs pullpilot |
|---|---|---|---|---|
| \`pullpilot plan --scope project:$PROJECT\` | **$plan_med** | $plan_runs | $plan_first | 1× |
| \`skopeo inspect --raw\` × $N_IMAGES, serial | $skopeo_med | $skopeo_runs | $skopeo_first | ${speedup_skopeo}× slower |
| \`docker pull\` × $N_IMAGES, serial | $pull_med | $pull_runs | $pull_first | ${speedup_pull}× slower |
| floor: Docker listing (\`pullpilot status\`, median $status_med ms) + (challenge + token + 1 HEAD round = $floor_rtts RTT) × ${RTT_MS} ms | $floor_ms | | | pullpilot = ${vs_floor}× the floor |

Registry and issuer requests of one measured pass of each method (from the logs, as in B4):

| method | \`GET /v2/\` | manifest HEAD | manifest GET | other | token requests |
|---|---|---|---|---|---|
| pullpilot plan | $plan_probe | $plan_head | $plan_get | $plan_other | $plan_tokens |
| skopeo inspect --raw × $N_IMAGES | $skopeo_probe | $skopeo_head | $skopeo_get | $skopeo_other | $skopeo_tokens |
| docker pull × $N_IMAGES | $pull_probe | $pull_head | $pull_get | $pull_other | $pull_tokens |

### B2 peak RSS (\`/usr/bin/time -v\`, maximum resident set size)

| run | max RSS |
|---|---|
| \`pullpilot plan\` | $(mib "$rss_plan") MiB |
| \`pullpilot apply\`, first (starts the soak clocks of the $N_UPDATED new digests) | $(mib "$rss_apply1") MiB |
| \`pullpilot apply\`, no-op (nothing soaked, default PP_SOAK=24h) | $(mib "$rss_apply2") MiB |

### B3 downtime (\`bash tests/bench/downtime.sh $DOWNTIME_ROUNDS\`)

\`\`\`
$b3_out
\`\`\`

### B4 registry requests of one \`plan\` (floor: $N_IMAGES HEADs + 1 token request, + the \`/v2/\` probe)

| request | count | floor |
|---|---|---|
| \`GET /v2/\` probe | $b4_probe | 1 |
| \`HEAD /v2/<repo>/manifests/<tag>\` | $b4_head ($b4_repos repositories, $b4_head_ok answered 200) | $N_IMAGES |
| \`GET /v2/<repo>/manifests/<tag>\` | $b4_get | 0 |
| other registry requests | $b4_other | 0 |
| token requests (issuer log) | $b4_tokens, covering $b4_scopes repositories | 1 |

$b5_md

$b6_md
<!-- bench:end -->
EOF
)

# Replace the generated block, keeping any hand-written text around it; a new file gets a stub.
printf '%s\n' "$results" >"$work/results.md"
python3 - "$OUT" "$work/results.md" <<'PY'
import re, sys, os
out, block = sys.argv[1], open(sys.argv[2], encoding="utf-8").read().rstrip("\n")
text = open(out, encoding="utf-8").read() if os.path.exists(out) else "# Benchmarks\n\n"
pattern = re.compile(r"<!-- bench:begin.*?<!-- bench:end -->", re.S)
text = pattern.sub(lambda m: block, text, count=1) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
open(out, "w", encoding="utf-8").write(text)
PY
say "results written to $OUT"
printf '%s\n' "$results" | sed -n '/^| target/,/^$/p'
