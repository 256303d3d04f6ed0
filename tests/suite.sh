#!/usr/bin/env bash
# The full test suite, one command: formatting, lints, the Docker-free tests, the playground
# (packaging/playground.sh --ci), then a real Docker test bed (engine, compose v2, three
# registries) and the end-to-end tests against it.
#
# Runs on a fresh Debian/Ubuntu machine as root; installs what is missing. The test bed is
# isolated from any other Docker on the machine and is torn down at the end, even on failure.
#
#   bash tests/suite.sh                    # engines 28, 28-containerd and 20.10
#   PPTB_ENGINE=20.10 bash tests/suite.sh  # one engine only
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

step "Rust toolchain"
if ! command -v cargo >/dev/null; then
  echo "cargo is not installed: install Rust (rustup or Debian's cargo) and run this again." >&2
  exit 2
fi
cargo --version

step "Formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "Lints (clippy, warnings denied; with and without the test-only fault injection)"
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --all-targets --locked --features fault-injection -- -D warnings

step "Tests that need no Docker (cargo test)"
cargo test --locked

step "Fuzzing: every parser of outside input, a fixed seed and case count (exploration: see README)"
# The environment cannot turn CI into an exploratory run.
env -u PP_FUZZ_SEED -u PP_FUZZ_SECONDS -u PP_FUZZ_CASES \
  cargo test --locked --release --test fuzz -- --ignored --nocapture --test-threads=1

step "Debian package: build with cargo-deb, install, check, purge"
bash tests/packaging/check-deb.sh

bed=tests/testbed/testbed.sh
teardown() {
  step "Test bed down"
  "$bed" down || true
}
trap teardown EXIT

step "Playground (packaging/playground.sh --ci): the README's first command, outcomes checked"
# It brings up a bed of its own and takes it down again (verify-down included), so it runs
# while no other bed is up, and the engines below start from a clean machine.
"$bed" down >/dev/null 2>&1 || true
bash packaging/playground.sh --ci

# Every engine pullpilot supports: 28 (classic image store), 28 with the containerd image
# store (the default of fresh Docker 29 installs), and 20.10 (API 1.41). PPTB_ENGINE picks one.
engines=${PPTB_ENGINE:-28 28-containerd 20.10}
first=1
for engine in $engines; do
  step "Test bed up (engine $engine)"
  "$bed" down >/dev/null 2>&1 || true
  PPTB_ENGINE=$engine "$bed" up
  if [ "$first" = 1 ]; then
    step "Test bed up again (must be idempotent)"
    PPTB_ENGINE=$engine "$bed" up >/dev/null
    first=0
  fi
  eval "$("$bed" env)"

  step "End-to-end tests against engine $engine"
  # fault-injection lets the crash-safety tests kill pullpilot at each step of an update.
  cargo test --locked --features fault-injection --test e2e -- --ignored --test-threads="${PPTB_TEST_THREADS:-4}" --skip serial_

  step "End-to-end tests that restart dockerd, one at a time (engine $engine)"
  # They restart the bed's dockerd (testbed.sh restart-engine) mid-pass, which would break any
  # test running beside them.
  cargo test --locked --features fault-injection --test e2e -- --ignored --test-threads=1 serial_
done

trap - EXIT
teardown
step "Test bed leaves nothing behind"
"$bed" verify-down

printf '\nFull suite passed in %ss.\n' "$(( $(date +%s) - started ))"
