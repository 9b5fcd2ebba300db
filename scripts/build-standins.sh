#!/usr/bin/env bash
# Build the local images that stand in for registry images (docker-compose.ci.yml names
# them): the Debian base from debootstrap, Python 3.11, PostgreSQL, Redis, RabbitMQ, NGINX.
# Rebuilding is cheap: the base is skipped when present, the rest hits the build cache.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BASE=drone-delivery/debian-base:bookworm

timed() {
    local name="$1" start=$SECONDS; shift
    "$@"
    printf '[standins] %-10s %3d s\n' "$name" "$((SECONDS - start))" >&2
}

build() {
    local tag="$1" dockerfile="$2" context="$3" log
    log="$(mktemp)"
    if ! docker build --build-arg "DEBIAN_BASE=$BASE" -t "$tag" -f "$dockerfile" "$context" >"$log" 2>&1; then
        tail -n 40 "$log" >&2; rm -f "$log"; return 1
    fi
    rm -f "$log"
}

timed base docker/base/debian-base.sh "$BASE"
timed python build drone-delivery/python-base:3.11 docker/base/python.Dockerfile docker/base
timed postgres build drone-delivery/standin-postgres:15 docker/standins/postgres/Dockerfile docker/standins/postgres
timed redis build drone-delivery/standin-redis:7 docker/standins/redis/Dockerfile docker/standins/redis
timed rabbitmq build drone-delivery/standin-rabbitmq:3.10 docker/standins/rabbitmq/Dockerfile docker/standins/rabbitmq
timed nginx build drone-delivery/standin-nginx:1.22 docker/standins/nginx/Dockerfile docker/standins/nginx
docker image ls 'drone-delivery/*-base' --format '{{.Repository}}:{{.Tag}} {{.Size}}' >&2
docker image ls 'drone-delivery/standin-*' --format '{{.Repository}}:{{.Tag}} {{.Size}}' >&2
