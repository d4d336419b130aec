#!/usr/bin/env sh
# Sets up a fresh Debian machine for Fanout: Debian's redis-server, openssl, chromium and
# postgresql (if missing), the npm packages from the lockfile, the compiled dist/ (`npm run
# build`), and the Python packages of the generated-client test in .cache/python. Idempotent;
# run as root or with sudo available.
set -eu
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
# openssl: the Kubernetes test harness makes its CA, serving certificate and keys with it.
command -v openssl >/dev/null 2>&1 || apt_install openssl
# chromium: the dashboard tests drive Debian's headless Chromium through playwright-core.
[ -x /usr/bin/chromium ] || apt_install chromium
# postgresql: the tests start their own throwaway clusters with its initdb and pg_ctl
# (test/helpers/postgres.ts); the package's own "main" cluster is never used. Its install
# creates that cluster and runs `invoke-rc.d postgresql start`: a policy-rc.d that answers 101
# ("action forbidden") keeps it from starting, so no system cluster is left running (container
# images usually have one already; otherwise one is put in place for the install only).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ -e /usr/sbin/policy-rc.d ]; then
    apt_install postgresql
  else
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    pg_status=0
    apt_install postgresql || pg_status=$?
    $SUDO rm -f /usr/sbin/policy-rc.d
    [ "$pg_status" -eq 0 ] || exit "$pg_status"
  fi
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# Compile src/ into dist/, which `npx fanout` runs (bin/fanout.js falls back to the sources
# through tsx whenever dist/ is missing or older than them; see the comment there).
npm run --silent build
# Python: the test that generates a Python client from openapi.yaml (pinned in test/python).
# The generated client needs Python 3.11 or newer (Debian 12's python3 is 3.11) and venv with pip.
if [ -f test/python/requirements.txt ]; then
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt_install python3 python3-venv
  fi
  if [ ! -x .cache/python/bin/python ]; then
    python3 -m venv .cache/python
  fi
  if [ ! -f .cache/python/.installed ] || [ test/python/requirements.txt -nt .cache/python/.installed ]; then
    .cache/python/bin/pip install --quiet --disable-pip-version-check -r test/python/requirements.txt
    touch .cache/python/.installed
  fi
fi
