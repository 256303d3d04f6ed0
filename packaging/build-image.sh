#!/bin/sh
# packaging/build-image.sh [TAG] - builds the pullpilot container image offline.
#
# Builds target/release/pullpilot if it is missing (`cargo build --release --locked`; set
# PP_BINARY to use another binary), stages a context directory with the binary, the shared
# libraries it links (from `ldd`), this host's CA bundle and time-zone data and a minimal
# /etc/passwd, and runs `docker build` with the classic builder on packaging/Containerfile
# (`FROM scratch`: nothing is pulled, no network is needed). TAG defaults to pullpilot:local.
#
# Settings (environment):
#   PP_BINARY          the pullpilot binary to package (default: target/release/pullpilot)
#   PP_COMPOSE_BINARY  a docker compose v2 binary (the CLI plugin, which also runs standalone)
#                      to put in the image as /usr/local/bin/docker-compose; without it the
#                      image has no compose CLI and services are recreated through the API
#   DOCKER             the docker client (default: docker from PATH)
set -eu

tag=${1:-pullpilot:local}
root=$(cd "$(dirname "$0")/.." && pwd)
docker=${DOCKER:-docker}
bin=${PP_BINARY:-$root/target/release/pullpilot}

die() {
  echo "build-image.sh: $*" >&2
  exit 1
}

if [ ! -x "$bin" ]; then
  [ -z "${PP_BINARY:-}" ] || die "PP_BINARY=$bin is not an executable file."
  echo "Building the release binary (cargo build --release --locked)."
  (cd "$root" && cargo build --release --locked)
fi
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] || die "$ca is missing: install the ca-certificates package."
[ -d /usr/share/zoneinfo ] || die "/usr/share/zoneinfo is missing: install the tzdata package."

ctx=$(mktemp -d "${TMPDIR:-/tmp}/pullpilot-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT INT TERM
fs=$ctx/rootfs
mkdir -p "$fs/usr/bin" "$fs/etc/ssl/certs" "$fs/usr/share" "$fs/data" "$fs/root" "$fs/tmp"
chmod 0700 "$fs/data" "$fs/root"
chmod 1777 "$fs/tmp"
install -m 0755 "$bin" "$fs/usr/bin/pullpilot"

# Every library the binary links, and the loader, at the paths the binary looks for them
# (symlinks resolved: the image holds the files under their linked names).
libs=$(ldd "$bin" 2>/dev/null | awk '
  $2 == "=>" && $3 ~ /^\// { print $3 }
  $1 ~ /^\// { print $1 }
') || true
for lib in $libs; do
  mkdir -p "$fs$(dirname "$lib")"
  cp -L "$lib" "$fs$lib"
done

if [ -n "${PP_COMPOSE_BINARY:-}" ]; then
  [ -x "$PP_COMPOSE_BINARY" ] || die "PP_COMPOSE_BINARY=$PP_COMPOSE_BINARY is not an executable file."
  if ldd "$PP_COMPOSE_BINARY" 2>/dev/null | grep -q '=>'; then
    die "PP_COMPOSE_BINARY=$PP_COMPOSE_BINARY is linked dynamically; use the static release binary."
  fi
  mkdir -p "$fs/usr/local/bin"
  install -m 0755 "$PP_COMPOSE_BINARY" "$fs/usr/local/bin/docker-compose"
fi

cp -L "$ca" "$fs$ca"
cp -RL /usr/share/zoneinfo "$fs/usr/share/zoneinfo"
printf 'root:x:0:0:root:/root:/usr/bin/pullpilot\nnobody:x:65534:65534:nobody:/nonexistent:/usr/bin/pullpilot\n' >"$fs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$fs/etc/group"
cp "$root/packaging/Containerfile" "$ctx/Containerfile"

echo "Building $tag from $bin ($(du -sh "$fs" | cut -f1) staged)."
DOCKER_BUILDKIT=0 "$docker" build --quiet -f "$ctx/Containerfile" -t "$tag" "$ctx"
echo "Built $tag: docker run --rm -v /var/run/docker.sock:/var/run/docker.sock $tag plan --scope all"
