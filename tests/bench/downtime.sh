#!/usr/bin/env bash
# B3, downtime of one update: the time from the old container's `die` to the new container's
# `start`, read from the Docker engine's own event stream, for
#   - pullpilot apply on the compose path (the default: compose recreates the service),
#   - pullpilot apply on the API path (PP_COMPOSE=off: create-before-stop), each updating
#     v1 -> v2 and back, and
#   - docker compose up -d --force-recreate of the same service.
# Needs the test bed up (tests/testbed/testbed.sh up) and a built pullpilot binary.
#   bash tests/bench/downtime.sh [ROUNDS]      (default 5 rounds each)
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(tests/testbed/testbed.sh env)"
export DOCKER_HOST=$PPTB_DOCKER_HOST DOCKER_CONFIG=$PPTB_DOCKER_CONFIG
rounds=${1:-5}
pp=$(realpath "${PULLPILOT:-target/release/pullpilot}")
[ -x "$pp" ] || { cargo build --release --quiet && pp=$(realpath target/release/pullpilot); }

name="downtime-$(date +%s)"
work=$(mktemp -d)
data=$(mktemp -d)
cleanup() { (cd "$work" && docker compose -p "$name" down -v >/dev/null 2>&1) || true; rm -rf "$work" "$data"; }
trap cleanup EXIT

image="$PPTB_REG_OPEN/$name:stable"
push() { docker tag "pptb/base:$1" "$image" && docker push -q "$image" >/dev/null && docker rmi "$image" >/dev/null; }
push v1
printf 'services:\n  app:\n    image: %s\n' "$image" > "$work/compose.yaml"
(cd "$work" && docker compose -p "$name" up -d --wait >/dev/null 2>&1)

# Milliseconds from the first `die` to the next `start` of the service, between two times.
gap_ms() {
  docker events --since "$1" --until "$2" --filter "label=com.docker.compose.project=$name" \
    --filter type=container --format '{{.TimeNano}} {{.Action}}' |
    awk '$2=="die" && !d {d=$1} $2=="start" && d && !s {s=$1} END {printf "%d\n", (s-d)/1000000}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

ours=()
api=()
theirs=()
version=v2
# One update by pullpilot to the other image; $1 is PP_COMPOSE.
update() {
  push "$version"
  t0=$(date +%s.%N)
  (cd "$work" && PP_COMPOSE=$1 PP_DATA_DIR=$data PP_SOAK=0 PP_HEALTH_TIMEOUT=30s "$pp" apply --scope "project:$name" >/dev/null 2>&1)
  sleep 1
  gap_ms "$t0" "$(date +%s.%N)"
}
flip() { [ "$version" = v2 ] && version=v1 || version=v2; }
for _ in $(seq "$rounds"); do
  ours+=("$(update auto)"); flip
  api+=("$(update off)"); flip

  t0=$(date +%s.%N)
  (cd "$work" && docker compose -p "$name" up -d --force-recreate --wait >/dev/null 2>&1)
  sleep 1; theirs+=("$(gap_ms "$t0" "$(date +%s.%N)")")
done
echo "engine:                                $PPTB_ENGINE ($PPTB_ENGINE_VERSION)"
echo "pullpilot apply, die->start (ms):      ${ours[*]}  median $(printf '%s\n' "${ours[@]}" | median)"
echo "API path (PP_COMPOSE=off), die->start:  ${api[*]}  median $(printf '%s\n' "${api[@]}" | median)"
echo "compose --force-recreate, die->start:  ${theirs[*]}  median $(printf '%s\n' "${theirs[@]}" | median)"
