#!/usr/bin/env bash
# The tests talk to real PostgreSQL, Redis and RabbitMQ on loopback. This machine kind
# starts them before a session; if one has stopped, start it the way Debian does, and
# install it first where it is missing (a fresh Debian machine).
set -euo pipefail

up() { timeout 2 bash -c "</dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_up() {  # port, name: bounded wait for the port to accept connections
  for _ in $(seq 1 120); do up "$1" && return 0; sleep 0.5; done
  echo "ensure-servers: $2 did not come up on port $1" >&2; return 1
}

apt_install() {
  if [ -z "${apt_updated:-}" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >/dev/null
}

if ! up 5432; then
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  version=$(ls /etc/postgresql | sort -n | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_up 5432 PostgreSQL
fi
if ! up 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_up 6379 Redis
fi
if ! up 5672; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  rabbitmq-server -detached
  wait_up 5672 RabbitMQ
fi
# nginx -t checks the generated gateway config (tests/unit/gateway/test_nginx.py). The binary
# only: policy-rc.d keeps Debian from starting a daemon on port 80 during the install.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$guard" && chmod +x "$guard"
  fi
  rc=0; apt_install nginx-light || rc=$?
  [ -n "$guard" ] && rm -f "$guard"
  [ "$rc" = 0 ] || exit "$rc"
fi
# Debian's Chromium, for the console's browser test (tests/e2e/test_console.py drives it with
# Playwright; Playwright's own browser download cannot reach the internet from here).
if ! [ -x /usr/bin/chromium ]; then
  apt_install chromium
fi
# Trust auth for local TCP is what the tests assume (it is how this machine kind is set up).
echo "ensure-servers: PostgreSQL, Redis and RabbitMQ are up; nginx and chromium are installed"
