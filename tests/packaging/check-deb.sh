#!/usr/bin/env bash
# Builds the .deb with cargo-deb, installs it on this machine with dpkg, checks what it installed
# (binary, man pages, completions, units, the conffile, which units are enabled), verifies the
# units with `systemd-analyze verify`, renders every man page with `man -l`, and purges the
# package again, also when a check fails.
#
# Runs as root on Debian/Ubuntu; installs what is missing (cargo-deb from crates.io, Debian's
# systemd and man-db). Needs no running systemd and no Docker, and touches neither.
#
#   bash tests/packaging/check-deb.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

started=$(date +%s)
step() { printf '\n--> %s   [%ss]\n' "$*" "$(($(date +%s) - started))"; }
ok() { printf '    ok: %s\n' "$*"; }
fail() {
  printf '\ncheck-deb: FAILED: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || fail "run as root: the check installs and purges a package with dpkg"
command -v dpkg >/dev/null || fail "dpkg not found: this check needs Debian or Ubuntu"
command -v cargo >/dev/null || fail "cargo not found: install Rust first"

# ---------------------------------------------------------------------------------------------
step "Preconditions: no pullpilot installed, nothing in the package's way"
status=$(dpkg-query -W -f='${db:Status-Status}' pullpilot 2>/dev/null || true)
if [ -n "$status" ] && [ "$status" != "not-installed" ]; then
  fail "the pullpilot package is already on this machine (status: $status); this check would \
replace and then purge it. Remove it first: dpkg --purge pullpilot"
fi
for path in /usr/bin/pullpilot /etc/default/pullpilot \
  /usr/lib/systemd/system/pullpilot.service /etc/systemd/system/pullpilot.service \
  /etc/systemd/system/pullpilot.timer; do
  [ ! -e "$path" ] || fail "$path exists but is not from the package; move it away first"
done
# The package's purge removes /var/lib/pullpilot (the default PP_DATA_DIR): keep what a manual
# run left there and put it back afterwards.
state_backup=
if [ -e /var/lib/pullpilot ]; then
  state_backup=$(mktemp -d /var/lib/.pullpilot-check-deb.XXXXXX)
  mv /var/lib/pullpilot "$state_backup/"
  ok "moved the existing /var/lib/pullpilot aside; it is put back at the end"
fi
installed=0
cleanup() {
  local rc=$?
  if [ "$installed" = 1 ]; then
    printf '\n--> Purging the package (cleanup after a failure)\n'
    dpkg --purge pullpilot >/dev/null || true
  fi
  if [ -n "$state_backup" ] && [ -e "$state_backup/pullpilot" ]; then
    rm -rf /var/lib/pullpilot
    mv "$state_backup/pullpilot" /var/lib/pullpilot
    rmdir "$state_backup"
  fi
  exit "$rc"
}
trap cleanup EXIT
ok "nothing installed"

# ---------------------------------------------------------------------------------------------
step "Tools: cargo-deb 3, systemd-analyze, man and groff"
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
# cargo-deb 3 installs units under usr/lib/systemd/system and takes a list of systemd-units
# entries (one per unit name); older versions do neither.
cargo_deb_major=$(cargo deb --version 2>/dev/null | sed -n 's/^[^0-9]*\([0-9]\+\)\..*/\1/p' || true)
if [ "${cargo_deb_major:-0}" -lt 3 ]; then
  echo "    installing cargo-deb 3 from crates.io (about a minute)"
  cargo install cargo-deb --locked --version '^3' --quiet
fi
ok "$(cargo deb --version)"
command -v systemd-analyze >/dev/null || apt_install systemd
ok "$(systemd-analyze --version | head -n1)"
{ command -v man >/dev/null && command -v groff >/dev/null; } || apt_install man-db groff-base
ok "$(man --version)"

# ---------------------------------------------------------------------------------------------
step "Building the .deb (cargo deb: release build, then packaging)"
deb_log=$(mktemp)
cargo deb --locked --quiet 2>&1 | tee "$deb_log" || fail "cargo deb failed (output above)"
deb=$(tail -n1 "$deb_log")
rm -f "$deb_log"
[ -f "$deb" ] || fail "cargo deb did not name a .deb file; its last line was: $deb"
ok "$deb ($(du -h "$deb" | cut -f1))"
version=$(dpkg-deb -f "$deb" Version)
upstream=${version%-*}
[ "$(dpkg-deb -f "$deb" Package)" = pullpilot ] || fail "package name is not pullpilot"
depends=$(dpkg-deb -f "$deb" Depends)
recommends=$(dpkg-deb -f "$deb" Recommends)
case "$depends" in *docker*) fail "Docker must be a Recommends, not a Depends: $depends" ;; esac
case "$recommends" in *docker.io*docker-ce*) ;; *) fail "Recommends lacks docker.io | docker-ce: $recommends" ;; esac
ok "version $version; Depends: $depends; Recommends: $recommends"

# The maintainer scripts must never start or restart pullpilot.service or the listen unit:
# installing or upgrading must not run an update pass.
scripts=$(mktemp -d)
dpkg-deb -e "$deb" "$scripts"
if grep -E 'deb-systemd-invoke .*(start|restart)' "$scripts"/postinst "$scripts"/prerm 2>/dev/null |
  grep -E 'pullpilot(-listen|-relay)?\.service'; then
  fail "a maintainer script starts or restarts a service (lines above)"
fi
for script in postinst prerm postrm; do
  sh -n "$scripts/$script" || fail "the $script script has a syntax error"
done
# cargo-deb expands every DEBHELPER token, even one in a comment: the snippets must be there once.
[ "$(grep -c 'deb-systemd-helper enable pullpilot.timer' "$scripts/postinst")" = 1 ] ||
  fail "postinst does not enable pullpilot.timer exactly once (a stray DEBHELPER token?)"
rm -rf "$scripts"
ok "maintainer scripts: valid sh, enable the timer once, never start pullpilot.service or pullpilot-listen.service"

# ---------------------------------------------------------------------------------------------
step "Installing with dpkg"
installed=1
dpkg -i "$deb" || fail "dpkg -i $deb failed"
[ "$(dpkg-query -W -f='${db:Status-Status}' pullpilot)" = installed ] || fail "not installed"
ok "installed"

step "Checking the installed files"
got=$(/usr/bin/pullpilot --version) || fail "/usr/bin/pullpilot --version failed"
case "$got" in
  "pullpilot $upstream (commit "*", built "*")") ;;
  *) fail "pullpilot --version printed '$got', expected 'pullpilot $upstream (commit …, built …)'" ;;
esac
ok "/usr/bin/pullpilot --version: $got"

man_pages=()
for source in man/*.1 man/*.7; do
  name=$(basename "$source")
  section=${name##*.}
  page=
  for candidate in "/usr/share/man/man$section/$name.gz" "/usr/share/man/man$section/$name"; do
    [ -f "$candidate" ] && page=$candidate && break
  done
  if [ -z "$page" ]; then
    if grep -rqs 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/; then
      fail "man page $name was not installed: dpkg on this machine excludes /usr/share/man \
(see /etc/dpkg/dpkg.cfg.d/), as minimal container images do"
    fi
    fail "man page $name is not in /usr/share/man/man$section"
  fi
  man_pages+=("$page")
done
ok "${#man_pages[@]} man pages: $(printf '%s ' "${man_pages[@]##*/}")"
[ "$(man -w 7 pullpilot)" = /usr/share/man/man7/pullpilot.7.gz ] || fail "man -w 7 pullpilot: $(man -w 7 pullpilot 2>&1)"
ok "man -w 7 pullpilot finds the page"

for completion in /usr/share/bash-completion/completions/pullpilot \
  /usr/share/zsh/vendor-completions/_pullpilot \
  /usr/share/fish/vendor_completions.d/pullpilot.fish; do
  [ -s "$completion" ] || fail "completion $completion is missing"
done
bash -n /usr/share/bash-completion/completions/pullpilot || fail "the bash completion has a syntax error"
# shellcheck disable=SC1091
( . /usr/share/bash-completion/completions/pullpilot && complete -p pullpilot >/dev/null ) ||
  fail "sourcing the bash completion registers nothing for pullpilot"
if command -v zsh >/dev/null; then zsh -n /usr/share/zsh/vendor-completions/_pullpilot || fail "zsh completion"; fi
if command -v fish >/dev/null; then fish -n /usr/share/fish/vendor_completions.d/pullpilot.fish || fail "fish completion"; fi
ok "bash, zsh and fish completions (bash one sourced and registered)"

units=(pullpilot.service pullpilot.timer pullpilot-listen.service pullpilot-relay.service)
for unit in "${units[@]}"; do
  [ -f "/usr/lib/systemd/system/$unit" ] || fail "unit $unit is not in /usr/lib/systemd/system"
  cmp -s "/usr/lib/systemd/system/$unit" "systemd/$unit" || fail "installed $unit differs from systemd/$unit"
done
ok "units: ${units[*]}"

conffiles=$(dpkg-query -W -f='${Conffiles}' pullpilot)
grep -q '^ /etc/default/pullpilot ' <<<"$conffiles" || fail "/etc/default/pullpilot is not a conffile: $conffiles"
mode=$(stat -c '%a %U:%G' /etc/default/pullpilot)
[ "$mode" = "600 root:root" ] || fail "/etc/default/pullpilot is $mode, expected 600 root:root"
cmp -s /etc/default/pullpilot systemd/pullpilot.env || fail "/etc/default/pullpilot differs from systemd/pullpilot.env"
ok "/etc/default/pullpilot: conffile, mode $mode"

wants=/etc/systemd/system/timers.target.wants/pullpilot.timer
[ -L "$wants" ] || fail "pullpilot.timer is not enabled: no symlink $wants"
case "$(readlink "$wants")" in
  /lib/systemd/system/pullpilot.timer | /usr/lib/systemd/system/pullpilot.timer) ;;
  *) fail "$wants points to $(readlink "$wants")" ;;
esac
ok "pullpilot.timer enabled ($wants -> $(readlink "$wants"))"
leftover=$(find /etc/systemd/system -name 'pullpilot-listen*' -o -name 'pullpilot-relay*' -o -name 'pullpilot.service' | head -n5)
[ -z "$leftover" ] || fail "pullpilot-listen.service, pullpilot-relay.service or pullpilot.service is enabled: $leftover"
for unit in "${units[@]}"; do
  printf '    systemctl --root=/ is-enabled %-26s %s\n' "$unit" \
    "$(systemctl --root=/ is-enabled "$unit" 2>&1 || true)"
done
[ "$(systemctl --root=/ is-enabled pullpilot.timer 2>&1)" = enabled ] || fail "systemctl: timer not enabled"
[ "$(systemctl --root=/ is-enabled pullpilot-listen.service 2>&1 || true)" = disabled ] ||
  fail "systemctl: pullpilot-listen.service is not disabled"
[ "$(systemctl --root=/ is-enabled pullpilot-relay.service 2>&1 || true)" = disabled ] ||
  fail "systemctl: pullpilot-relay.service is not disabled"
if [ -d /run/systemd/system ]; then
  # A real systemd: the postinst started the timer, and nothing ran a pass.
  systemctl is-active --quiet pullpilot.timer || fail "pullpilot.timer is not active"
  ! systemctl is-active --quiet pullpilot.service || fail "installing started pullpilot.service"
  ok "systemd runs here: the timer is active, the service was not started"
else
  ok "systemd is not PID 1 here: enabling is checked on disk, starting is not"
fi

# ---------------------------------------------------------------------------------------------
step "systemd-analyze verify (offline: loads the units without a running systemd)"
verify_out=$(mktemp)
if ! systemd-analyze verify "${units[@]/#//usr/lib/systemd/system/}" >"$verify_out" 2>&1; then
  cat "$verify_out" >&2
  fail "systemd-analyze verify rejected the units"
fi
# Its messages about other units on the machine are not ours; any about ours fail the check.
if grep -i 'pullpilot' "$verify_out"; then
  fail "systemd-analyze verify complained about a pullpilot unit (lines above)"
fi
sed 's/^/    (other units) /' "$verify_out"
rm -f "$verify_out"
ok "systemd-analyze verify: no complaint about ${units[*]}"
if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
  exposure=$(systemd-analyze security --offline=yes /usr/lib/systemd/system/pullpilot.service 2>/dev/null |
    grep -i 'overall exposure' || true)
  [ -z "$exposure" ] || ok "pullpilot.service: ${exposure#→ }"
fi

# ---------------------------------------------------------------------------------------------
step "Rendering every man page (man -l, groff warnings on)"
for page in "${man_pages[@]}"; do
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -l "$page" 2>&1 >/dev/null)
  [ -z "$warnings" ] || fail "man -l $page warned:
$warnings"
  lines=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>/dev/null | wc -l)
  [ "$lines" -gt 10 ] || fail "man -l $page rendered only $lines lines"
done
ok "${#man_pages[@]} pages render without warnings"

# ---------------------------------------------------------------------------------------------
step "Purging the package"
dpkg --purge pullpilot || fail "dpkg --purge pullpilot failed"
installed=0
left=$( (ls -d /usr/bin/pullpilot /etc/default/pullpilot /var/lib/pullpilot \
  /usr/lib/systemd/system/pullpilot* /usr/share/man/man1/pullpilot* /usr/share/man/man7/pullpilot* \
  /usr/share/bash-completion/completions/pullpilot 2>/dev/null || true
  find /etc/systemd /var/lib/systemd -name '*pullpilot*' 2>/dev/null) | head -n20)
[ -z "$left" ] || fail "the purge left files behind:
$left"
status=$(dpkg-query -W -f='${db:Status-Status}' pullpilot 2>/dev/null || true)
[ -z "$status" ] || [ "$status" = not-installed ] || fail "dpkg still knows pullpilot: $status"
ok "nothing left behind"

printf '\ncheck-deb: the .deb builds, installs, checks out and purges cleanly (%ss).\n' \
  "$(($(date +%s) - started))"
