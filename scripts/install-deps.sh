#!/usr/bin/env bash
# Installs the Debian packages the tests need and that a fresh machine may
# lack: redis-server (fault tests start their own), the PostgreSQL client
# tools (pg_isready), and systemd for systemd-analyze and systemctl, which
# deploy/systemd's test runs on the units, and chromium, which the web UI's
# browser tests (test/ui_test.go) drive headless. Idempotent; needs root or sudo.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
command -v pg_isready >/dev/null 2>&1 || need+=(postgresql-client)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ! command -v promtool >/dev/null 2>&1; then
  # promtool checks deploy/prometheus/alerts.yml (test/alerts_test.go); it
  # comes only with Debian's prometheus package, taken without its
  # recommends (node-exporter) and with every service kept from starting
  # while it installs (policy-rc.d), then the server disabled and stopped:
  # only the tool is wanted, no daemon.
  s=""
  [ "$(id -u)" -ne 0 ] && s=sudo
  echo "installing prometheus (for promtool)" >&2
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $s tee /usr/sbin/policy-rc.d >/dev/null
    $s chmod +x /usr/sbin/policy-rc.d
    policy=1
  fi
  $s apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $s apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  [ -n "$policy" ] && $s rm -f /usr/sbin/policy-rc.d
  if [ -d /run/systemd/system ]; then
    $s systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif command -v update-rc.d >/dev/null 2>&1; then
    $s update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
fi
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
echo "installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
