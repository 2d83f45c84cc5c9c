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
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
echo "installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
