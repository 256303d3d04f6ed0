#!/usr/bin/env bash
# B6, the scaling curve (issue #14): `pullpilot plan` over 100 / 300 / 1,000 containers on
# 40 / 120 / 400 images: wall time and peak RSS per size.
#
#   bash tests/bench/b6_scale.sh            (as root, the test bed up; a built release binary)
#
# Set-up: 400 images `bench-b6-img-NNN` (pptb/base:v1 + a label each) on the bed's open
# registry, named through a delay proxy (tests/bench/delay_proxy.py, DELAY_MS each way). Per
# size, a compose project `bench-b6-<containers>` whose service i runs image i % <images>,
# *created, not started* (`docker compose create`: 1,000 running containers would cost the
# engine a shim each, gigabytes on this machine; `plan` lists, inspects and checks a created
# container exactly as a running one). Once all projects exist, every even-numbered image gets a
# new digest, so half the images of every size have an update (as B1's 20 of 40).
# Each size: one warm-up `plan`, then RUNS timed runs under /usr/bin/time -v; the median wall
# time and the highest peak RSS are reported. Projects are removed on exit, images too (the
# registry repositories stay).
#
# Output (stdout): `key=value` lines for bench.sh, then a Markdown fragment between
# `--- b6 markdown ---` and `--- end ---`.
# Settings: BENCH_B6_SIZES ("100:40 300:120 1000:400"), BENCH_B6_RUNS (3), BENCH_B6_DELAY_MS
# (50), PULLPILOT (target/release/pullpilot).
# shellcheck disable=SC2154 # ms_*, rss_*, … are set with printf -v
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."
readonly SIZES=${BENCH_B6_SIZES:-100:40 300:120 1000:400}
readonly RUNS=${BENCH_B6_RUNS:-3}
readonly DELAY_MS=${BENCH_B6_DELAY_MS:-50}

say() { printf 'b6: %s\n' "$*" >&2; }
die() {
  printf 'b6: ERROR: %s\n' "$*" >&2
  exit 1
}
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : "")}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
max_rss_kb() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

[[ $(id -u) == 0 ]] || die "run as root (the test bed's socket is root's)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
eval "$(tests/testbed/testbed.sh env)"
export DOCKER_HOST=$PPTB_DOCKER_HOST
docker() { timeout "${DOCKER_TIMEOUT:-300}" "$PPTB_DOCKER_CLI" "$@"; }
pp=$(realpath "${PULLPILOT:-target/release/pullpilot}")
[[ -x $pp ]] || die "no $pp (build it: cargo build --release)"

max_images=0
for size in $SIZES; do
  if ((${size#*:} > max_images)); then max_images=${size#*:}; fi
done

work=$(mktemp -d /tmp/bench-b6-XXXXXX)
cfg=$work/docker-config
mkdir -p "$cfg/cli-plugins"
ln -s "$PPTB_COMPOSE_PLUGIN" "$cfg/cli-plugins/docker-compose"
echo '{}' >"$cfg/config.json"
export DOCKER_CONFIG=$cfg
proxy_pid=""
cleanup() {
  local rc=$? size refs ids
  trap - EXIT INT TERM
  for size in $SIZES; do
    mapfile -t ids < <(docker ps -aq --filter "label=com.docker.compose.project=bench-b6-${size%%:*}" 2>/dev/null || true)
    ((${#ids[@]} == 0)) || DOCKER_TIMEOUT=600 docker rm -f "${ids[@]}" >/dev/null 2>&1 || true
  done
  mapfile -t refs < <(docker images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null |
    grep -E '^[^/]+/bench-b6-img-[0-9]+:' || true)
  ((${#refs[@]} == 0)) || DOCKER_TIMEOUT=600 docker rmi -f "${refs[@]}" >/dev/null 2>&1 || true
  mapfile -t refs < <(docker images --digests --format '{{.Repository}}@{{.Digest}}' 2>/dev/null |
    grep -E '^[^/]+/bench-b6-img-[0-9]+@sha256:' || true)
  ((${#refs[@]} == 0)) || DOCKER_TIMEOUT=600 docker rmi -f "${refs[@]}" >/dev/null 2>&1 || true
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

python3 tests/bench/delay_proxy.py --delay-ms "$DELAY_MS" --ports-file "$work/ports" \
  --max-seconds 3600 --proxy "registry=$PPTB_REG_OPEN" 2>"$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 50); do [[ -s $work/ports ]] && break; sleep 0.1; done
[[ -s $work/ports ]] || { cat "$work/proxy.log" >&2; die "the delay proxy did not start"; }
PROXY=127.0.0.1:$(awk '$1 == "registry" {print $2}' "$work/ports")

img() { printf 'bench-b6-img-%03d' "$1"; }
# build_push VERSION I: image I at VERSION, pushed directly to the open registry as :v1.
build_push() {
  local ref
  ref=$PPTB_REG_OPEN/$(img "$2"):v1
  printf 'FROM pptb/base:v1\nLABEL org.example.b6-image="%s" org.example.b6-version="%s"\n' "$2" "$1" |
    DOCKER_BUILDKIT=0 docker build -q -t "$ref" - >/dev/null 2>"$work/build-$2.err" ||
    { cat "$work/build-$2.err" >&2; return 1; }
  docker push -q "$ref" >/dev/null
  docker rmi "$ref" >/dev/null
}
in_parallel() { # P FUNCTION ARG I...: FUNCTION ARG I for each I, P at a time
  local p=$1 fn=$2 arg=$3 i pids=() failed=0 pid
  shift 3
  for i in "$@"; do
    "$fn" "$arg" "$i" &
    pids+=($!)
    if ((${#pids[@]} >= p)); then
      wait "${pids[0]}" || failed=1
      pids=("${pids[@]:1}")
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  return $failed
}

t0=$SECONDS
say "building and pushing $max_images images"
mapfile -t all_images < <(seq 0 $((max_images - 1)))
in_parallel 4 build_push 1 "${all_images[@]}"
for size in $SIZES; do
  n=${size%%:*} m=${size#*:} project=bench-b6-${size%%:*}
  mkdir -p "$work/$project"
  {
    echo "services:"
    for ((i = 0; i < n; i++)); do
      printf '  s%04d:\n    image: %s/%s:v1\n    network_mode: none\n' "$i" "$PROXY" "$(img $((i % m)))"
    done
  } >"$work/$project/compose.yaml"
  say "creating $project ($n containers on $m images, not started)"
  DOCKER_TIMEOUT=1200 docker compose -p "$project" -f "$work/$project/compose.yaml" create \
    >"$work/$project/create.log" 2>&1 || { tail -20 "$work/$project/create.log" >&2; die "compose create failed"; }
  created=$(docker ps -aq --filter "label=com.docker.compose.project=$project" | wc -l)
  [[ $created == "$n" ]] || die "$project: $created of $n containers created"
done
say "a new digest for every even-numbered image"
mapfile -t even_images < <(seq 0 2 $((max_images - 1)))
in_parallel 4 build_push 2 "${even_images[@]}"
setup_s=$((SECONDS - t0))

rows=""
for size in $SIZES; do
  n=${size%%:*} m=${size#*:} project=bench-b6-${size%%:*}
  data=$work/data-$n
  mkdir -p "$data"
  run_plan() { # OUT: one timed plan under /usr/bin/time -v; prints its wall time (ms)
    local t
    t=$(now_ms)
    (cd "$work/$project" && PP_DATA_DIR=$data /usr/bin/time -v -o "$1" timeout 600 "$pp" plan \
      --scope "project:$project" >/dev/null 2>>"$work/plan-$n.err") ||
      { tail "$work/plan-$n.err" >&2; die "plan over $n containers failed"; }
    echo $(($(now_ms) - t))
  }
  say "plan over $n containers on $m images: warm-up + $RUNS runs"
  run_plan "$work/rss-$n-warm" >/dev/null
  times=() peak=0
  for ((r = 0; r < RUNS; r++)); do
    times+=("$(run_plan "$work/rss-$n-$r")")
    rss=$(max_rss_kb "$work/rss-$n-$r")
    if ((rss > peak)); then peak=$rss; fi
  done
  med=$(printf '%s\n' "${times[@]}" | median)
  printf -v "ms_$n" '%s' "$med"
  printf -v "rss_$n" '%s' "$peak"
  echo "b6_ms_$n=$med"
  echo "b6_rss_kb_$n=$peak"
  rows+="| $n | $m | **$med** | ${times[*]} | $(mib "$peak") |"$'\n'
done
first=${SIZES%% *}
last=${SIZES##* }
ms_first=ms_${first%%:*} ms_last=ms_${last%%:*}
growth_ms=$(awk -v a="${!ms_first}" -v b="${!ms_last}" 'BEGIN {printf "%.1f", (a ? b / a : 0)}')
growth_images=$(awk -v a="${first#*:}" -v b="${last#*:}" 'BEGIN {printf "%.1f", b / a}')
echo "b6_sizes=$SIZES"
echo "b6_growth_ms=$growth_ms"
echo "b6_growth_images=$growth_images"
echo "b6_setup_s=$setup_s"
echo "--- b6 markdown ---"
cat <<EOF
### B6 scaling of \`plan\` (\`bash tests/bench/b6_scale.sh\`)

Open registry behind ${DELAY_MS} ms each way; containers created, not started; every
even-numbered image has a new digest. Median of $RUNS runs after a warm-up; peak RSS is the
highest of those runs (\`/usr/bin/time -v\`). Set-up took ${setup_s} s.

| containers | images | median (ms) | runs (ms) | peak RSS (MiB) |
|---|---|---|---|---|
${rows}
From ${first%%:*} to ${last%%:*} containers (${growth_images}× the images) the wall time grew ${growth_ms}×.
EOF
echo "--- end ---"
