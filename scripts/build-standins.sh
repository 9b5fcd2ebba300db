#!/usr/bin/env bash
# Build the local images that stand in for registry images (docker-compose.ci.yml names
# them): Debian bases from debootstrap, Python 3.11, PostgreSQL, Redis, RabbitMQ, NGINX.
# Rebuilding is cheap: a base is skipped when present, the rest hits the build cache.
#
#   scripts/build-standins.sh [NAME...]   python postgres redis rabbitmq nginx (default: all)
#
# RabbitMQ is the current series (4.3) from Debian sid; everything else is bookworm's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BASE=drone-delivery/debian-base:bookworm
SID_BASE=drone-delivery/debian-base:sid
# What docker-compose.ci.yml and scripts/rabbitmq-current.sh run.
RABBITMQ_STANDIN=drone-delivery/standin-rabbitmq:4

timed() {
    local name="$1" start=$SECONDS; shift
    "$@"
    printf '[standins] %-10s %3d s\n' "$name" "$((SECONDS - start))" >&2
}

build() {
    local base="$1" tag="$2" dockerfile="$3" context="$4" log
    log="$(mktemp)"
    if ! docker build --build-arg "DEBIAN_BASE=$base" -t "$tag" -f "$dockerfile" "$context" >"$log" 2>&1; then
        tail -n 40 "$log" >&2; rm -f "$log"; return 1
    fi
    rm -f "$log"
}

names=("$@")
known=" python postgres redis rabbitmq nginx "
for name in "${names[@]}"; do
    [[ "$known" == *" $name "* ]] || { echo "build-standins: no stand-in $name (${known})" >&2; exit 2; }
done
wanted() { [ "${#names[@]}" = 0 ] || [[ " ${names[*]} " == *" $1 "* ]]; }

if wanted python || wanted postgres || wanted redis || wanted nginx; then
    timed base docker/base/debian-base.sh "$BASE"
fi
if wanted python; then timed python build "$BASE" drone-delivery/python-base:3.11 docker/base/python.Dockerfile docker/base; fi
if wanted postgres; then timed postgres build "$BASE" drone-delivery/standin-postgres:15 docker/standins/postgres/Dockerfile docker/standins/postgres; fi
if wanted redis; then timed redis build "$BASE" drone-delivery/standin-redis:7 docker/standins/redis/Dockerfile docker/standins/redis; fi
if wanted rabbitmq; then
    timed sid-base env DEBIAN_SUITE=sid docker/base/debian-base.sh "$SID_BASE"
    timed rabbitmq build "$SID_BASE" "$RABBITMQ_STANDIN" docker/standins/rabbitmq/Dockerfile docker/standins/rabbitmq
fi
if wanted nginx; then timed nginx build "$BASE" drone-delivery/standin-nginx:1.22 docker/standins/nginx/Dockerfile docker/standins/nginx; fi
docker image ls 'drone-delivery/*-base' --format '{{.Repository}}:{{.Tag}} {{.Size}}' >&2
docker image ls 'drone-delivery/standin-*' --format '{{.Repository}}:{{.Tag}} {{.Size}}' >&2
