#!/usr/bin/env bash
# B5, pulls ahead of the recreates (issue #14): `pullpilot apply` with N soaked updates on N
# distinct images, through a latency- and bandwidth-limited registry path, with prefetch
# (PP_PREFETCH=3, the default) and without (PP_PREFETCH=0). Reports each pass's wall time and
# each service's downtime (the engine's `die` -> `start` of that service).
#
#   bash tests/bench/b5_prefetch.sh          (as root, the test bed up; a built release binary)
#
# Set-up, per run (each run has its own repositories, so nothing is cached between them):
# N images `b5<run>-img-NN` on the bed's open registry, v1 = pptb/base:v1 + a label (small:
# the containers start from it), v2 = v1 + a layer of SIZE_MIB random bytes (what the update
# pulls); N compose services (`network_mode: none`, no healthcheck) run v1 named through a
# delay proxy (tests/bench/delay_proxy.py: DELAY_MS each way, BANDWIDTH_KBPS shared by every
# download of the run); then v2 is pushed (directly, not through the proxy) under the same
# tag, and `apply` (PP_SOAK=0, PP_HEALTH_STABLE=GATE) updates all N, pulling through the proxy.
#
# Output (stdout): `key=value` lines for bench.sh, then a Markdown fragment between
# `--- b5 markdown ---` and `--- end ---`.
# Settings: BENCH_B5_IMAGES (20), BENCH_B5_SIZE_MIB (8), BENCH_B5_BANDWIDTH_KBPS (4096),
# BENCH_B5_DELAY_MS (50), BENCH_B5_GATE (2s), PULLPILOT (target/release/pullpilot).
# Creates only bench-b5* projects, b5*-img-NN images and removes them on exit (the registry
# repositories stay).
# shellcheck disable=SC2154 # pass_ms_*, downtimes_*, updated_* are set with printf -v
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
readonly N=${BENCH_B5_IMAGES:-20}
readonly SIZE_MIB=${BENCH_B5_SIZE_MIB:-8}
readonly BANDWIDTH_KBPS=${BENCH_B5_BANDWIDTH_KBPS:-4096}
readonly DELAY_MS=${BENCH_B5_DELAY_MS:-50}
readonly GATE=${BENCH_B5_GATE:-2s}

say() { printf 'b5: %s\n' "$*" >&2; }
die() {
  printf 'b5: ERROR: %s\n' "$*" >&2
  exit 1
}
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "")}'; }

[[ $(id -u) == 0 ]] || die "run as root (the test bed's socket is root's)"
eval "$(tests/testbed/testbed.sh env)"
export DOCKER_HOST=$PPTB_DOCKER_HOST
docker() { timeout "${DOCKER_TIMEOUT:-300}" "$PPTB_DOCKER_CLI" "$@"; }
pp=$(realpath "${PULLPILOT:-target/release/pullpilot}")
[[ -x $pp ]] || die "no $pp (build it: cargo build --release)"

work=$(mktemp -d /tmp/bench-b5-XXXXXX)
cfg=$work/docker-config
mkdir -p "$cfg/cli-plugins"
ln -s "$PPTB_COMPOSE_PLUGIN" "$cfg/cli-plugins/docker-compose"
echo '{}' >"$cfg/config.json"
export DOCKER_CONFIG=$cfg
proxy_pid=""
projects=()
cleanup() {
  local rc=$? p refs
  trap - EXIT INT TERM
  for p in "${projects[@]}"; do
    if [[ -f $work/$p/compose.yaml ]]; then
      docker compose -p "$p" -f "$work/$p/compose.yaml" down -t 1 --remove-orphans >/dev/null 2>&1 || true
    fi
  done
  mapfile -t refs < <(docker images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null |
    grep -E '^[^/]+/b5[a-z]-img-[0-9]+:' || true)
  ((${#refs[@]} == 0)) || docker rmi -f "${refs[@]}" >/dev/null 2>&1 || true
  mapfile -t refs < <(docker images --digests --format '{{.Repository}}@{{.Digest}}' 2>/dev/null |
    grep -E '^[^/]+/b5[a-z]-img-[0-9]+@sha256:' || true)
  ((${#refs[@]} == 0)) || docker rmi -f "${refs[@]}" >/dev/null 2>&1 || true
  if [[ -n $proxy_pid ]]; then
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 tests/bench/delay_proxy.py --delay-ms "$DELAY_MS" --bandwidth-kbps "$BANDWIDTH_KBPS" \
  --ports-file "$work/ports" --max-seconds 1800 --proxy "registry=$PPTB_REG_OPEN" \
  2>"$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 50); do [[ -s $work/ports ]] && break; sleep 0.1; done
[[ -s $work/ports ]] || { cat "$work/proxy.log" >&2; die "the delay proxy did not start"; }
PROXY=127.0.0.1:$(awk '$1 == "registry" {print $2}' "$work/ports")

# build_push RUN K VERSION: b5RUN-img-KK:v1 on the open registry (pushed directly).
build_push() {
  local run=$1 k=$2 version=$3 ref dir
  ref=$PPTB_REG_OPEN/$(printf 'b5%s-img-%02d' "$run" "$k"):v1
  dir=$work/build-$run-$k
  mkdir -p "$dir"
  if [[ $version == 2 ]]; then
    head -c $((SIZE_MIB * 1048576)) /dev/urandom >"$dir/payload"
    printf 'FROM pptb/base:v1\nCOPY payload /payload\nLABEL org.example.b5="%s-%s-v2"\n' "$run" "$k" >"$dir/Dockerfile"
  else
    printf 'FROM pptb/base:v1\nLABEL org.example.b5="%s-%s-v1"\n' "$run" "$k" >"$dir/Dockerfile"
  fi
  DOCKER_BUILDKIT=0 docker build -q -t "$ref" "$dir" >/dev/null 2>"$dir/err" || { cat "$dir/err" >&2; return 1; }
  docker push -q "$ref" >/dev/null
  docker rmi "$ref" >/dev/null
  rm -rf "$dir"
}
in_parallel() {
  local p=$1 upto=$2 fn=$3 i pids=() failed=0 pid
  shift 3
  for ((i = 0; i < upto; i++)); do
    "$fn" "$@" "$i" &
    pids+=($!)
    if ((${#pids[@]} >= p)); then
      wait "${pids[0]}" || failed=1
      pids=("${pids[@]:1}")
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  return $failed
}
b5_build() { build_push "$1" "$3" "$2"; }

# one_run RUN PREFETCH: sets up project bench-b5RUN and applies with PP_PREFETCH=PREFETCH;
# sets pass_ms_RUN, downtimes_RUN (ms per service, in service order), updated_RUN.
one_run() {
  local run=$1 prefetch=$2 project=bench-b5$1 k t0 t1 since until out
  projects+=("$project")
  mkdir -p "$work/$project" "$work/$project-data"
  say "run $run (PP_PREFETCH=$prefetch): $N images v1"
  in_parallel 4 "$N" b5_build "$run" 1
  {
    echo "services:"
    for ((k = 0; k < N; k++)); do
      printf '  s%02d:\n    image: %s/%s:v1\n' "$k" "$PROXY" "$(printf 'b5%s-img-%02d' "$run" "$k")"
      printf '    network_mode: none\n    healthcheck: {disable: true}\n'
      printf '    command: ["/bin/sh", "-c", "trap '"'"'exit 0'"'"' TERM; while :; do sleep 3600 & wait $$!; done"]\n'
    done
  } >"$work/$project/compose.yaml"
  docker compose -p "$project" -f "$work/$project/compose.yaml" up -d --quiet-pull >"$work/$project/up.log" 2>&1 ||
    { tail -20 "$work/$project/up.log" >&2; die "compose up failed"; }
  say "run $run: pushing v2 ($SIZE_MIB MiB of new layer each) for all $N"
  in_parallel 4 "$N" b5_build "$run" 2
  say "run $run: apply"
  since=$(date +%s.%N)
  t0=$(now_ms)
  out=$(cd "$work/$project" && PP_PREFETCH=$prefetch PP_SOAK=0 PP_HEALTH_STABLE=$GATE PP_HEALTH_TIMEOUT=60s \
    PP_DATA_DIR="$work/$project-data" timeout 900 "$pp" apply --json --scope "project:$project" \
    2>"$work/$project/apply.err") || { tail -20 "$work/$project/apply.err" >&2; die "apply (run $run) failed"; }
  t1=$(now_ms)
  sleep 1
  until=$(date +%s.%N)
  printf -v "pass_ms_$run" '%s' "$((t1 - t0))"
  printf -v "updated_$run" '%s' "$(python3 -c '
import json, sys
doc = json.load(sys.stdin)
print(sum(1 for c in doc["containers"] if (c.get("result") or {}).get("outcome") == "updated"))' <<<"$out")"
  # Per service: the first `die` and the first `start` after it, from the engine's events.
  printf -v "downtimes_$run" '%s' "$(docker events --since "$since" --until "$until" \
    --filter "label=com.docker.compose.project=$project" --filter type=container \
    --format '{{.TimeNano}} {{.Action}} {{index .Actor.Attributes "com.docker.compose.service"}}' |
    awk '$2 == "die" && !($3 in d) {d[$3] = $1}
         $2 == "start" && ($3 in d) && !($3 in s) {s[$3] = $1}
         END {for (k in s) printf "%s %d\n", k, (s[k] - d[k]) / 1000000}' |
    sort | awk '{printf "%s%s", sep, $2; sep=" "}')"
  docker compose -p "$project" -f "$work/$project/compose.yaml" down -t 1 >/dev/null 2>&1 || true
}

one_run a 3
one_run b 0

stats() { # "ms ms ..." -> "median max sum"
  local sorted
  sorted=$(tr ' ' '\n' <<<"$1" | grep -E '^[0-9]+$' | sort -n || true)
  [[ -n $sorted ]] || { echo "? ? ?"; return; }
  echo "$(median <<<"$sorted") $(tail -1 <<<"$sorted") $(awk '{s += $1} END {print s + 0}' <<<"$sorted")"
}
read -r med_a max_a sum_a <<<"$(stats "$downtimes_a")"
read -r med_b max_b sum_b <<<"$(stats "$downtimes_b")"
speedup=$(awk -v a="$pass_ms_a" -v b="$pass_ms_b" 'BEGIN {printf "%.2f", (a ? b / a : 0)}')
proxy_line=$(sed -n 's/^delay_proxy: \(registry .*\)$/\1/p' "$work/proxy.log" | head -1)

echo "b5_images=$N"
echo "b5_pass_prefetch_ms=$pass_ms_a"
echo "b5_pass_serial_ms=$pass_ms_b"
echo "b5_speedup=$speedup"
echo "b5_updated_prefetch=$updated_a"
echo "b5_updated_serial=$updated_b"
echo "b5_downtime_median_prefetch_ms=$med_a"
echo "b5_downtime_median_serial_ms=$med_b"
echo "b5_downtime_max_prefetch_ms=$max_a"
echo "b5_downtime_max_serial_ms=$max_b"
echo "--- b5 markdown ---"
cat <<EOF
### B5 pulls ahead of the recreates (\`bash tests/bench/b5_prefetch.sh\`)

$N soaked updates on $N distinct images (each v2 adds a ${SIZE_MIB} MiB layer), pulled through
one link of ${BANDWIDTH_KBPS} KiB/s with ${DELAY_MS} ms each way ($proxy_line); \`PP_SOAK=0\`,
\`PP_HEALTH_STABLE=$GATE\`, no healthcheck.

| \`apply\` | pass (ms) | updated | downtime per service, median / max / sum (ms) |
|---|---|---|---|
| \`PP_PREFETCH=3\` (default) | **$pass_ms_a** | $updated_a of $N | $med_a / $max_a / $sum_a |
| \`PP_PREFETCH=0\` (each update pulls its own) | $pass_ms_b | $updated_b of $N | $med_b / $max_b / $sum_b |

Downtime of each service (ms, services s00…): prefetch \`$downtimes_a\`; serial \`$downtimes_b\`.
EOF
echo "--- end ---"
