#!/usr/bin/env bash
# The current RabbitMQ series (4.3, Debian sid's) in a throwaway container, for tests that
# must hold on it as well as on this machine's 3.x (make test-contract-rabbitmq4):
#
#   scripts/rabbitmq-current.sh COMMAND [ARG...]      e.g. ... bash, for a look
#
# Starts a Docker engine if none answers (scripts/docker-engine.sh), builds the stand-in
# (scripts/build-standins.sh rabbitmq: seconds once the image exists), runs it on
# 127.0.0.1:$RABBITMQ_CURRENT_PORT (default: a free port the engine picks), waits until the
# broker answers the AMQP protocol header, then runs COMMAND with TEST_AMQP_URL pointing at
# it, and RABBITMQ_CURRENT_CONTAINER naming the container (for `docker exec`, e.g. the
# chaos test's CHAOS_RABBITMQCTL). The container, and an engine this script started, go at
# the end whatever happened.
# Env: RABBITMQ_CURRENT_PORT, RABBITMQ_READY_TIMEOUT (120 s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
IMAGE=drone-delivery/standin-rabbitmq:4
NAME="rabbitmq-current-$$"
PORT="${RABBITMQ_CURRENT_PORT:-}"
READY_TIMEOUT="${RABBITMQ_READY_TIMEOUT:-120}"
# Its own engine state: `stop` then stops only an engine that this script started.
ENGINE_STATE="$ROOT/build/rabbitmq-current/docker"

log() { printf '[rabbitmq-current] %s\n' "$*" >&2; }

[ "$#" -gt 0 ] || { sed -n '2,12p' "$0" >&2; exit 2; }

container=0
teardown() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ "$container" = 1 ]; then
        [ "$rc" = 0 ] || { log "broker log (last lines):"; docker logs --tail 30 "$NAME" >&2 2>&1; }
        docker rm -f -v "$NAME" >/dev/null 2>&1
    fi
    scripts/docker-engine.sh stop "$ENGINE_STATE" 2>/dev/null
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# The broker answers the 8-byte protocol header with a connection.start frame (type 1);
# before it listens, the engine's port proxy accepts the connection and closes it at once.
amqp_answers() {
    local reply
    reply="$( (exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf 'AMQP\x00\x00\x09\x01' >&3 &&
        timeout 2 head -c 1 <&3) 2>/dev/null | od -An -tx1 | tr -d ' \n')" || true
    [ "$reply" = 01 ]
}

started=$SECONDS
scripts/docker-engine.sh start "$ENGINE_STATE"
scripts/build-standins.sh rabbitmq
container=1
docker run -d --rm --name "$NAME" --hostname rabbitmq-current \
    -p "127.0.0.1:${PORT}:5672" "$IMAGE" >/dev/null
PORT="$(docker port "$NAME" 5672/tcp | head -n1)"
PORT="${PORT##*:}"
waited=0
until amqp_answers; do
    if [ "$(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" != true ]; then
        log "the broker exited"; exit 1
    fi
    if [ "$waited" -ge "$((READY_TIMEOUT * 4))" ]; then
        log "no AMQP answer on 127.0.0.1:$PORT after ${READY_TIMEOUT}s"; exit 1
    fi
    sleep 0.25; waited=$((waited + 1))
done
version="$(docker exec "$NAME" rabbitmqctl -q version 2>/dev/null || echo '?')"
log "RabbitMQ $version on 127.0.0.1:$PORT, ready after $((SECONDS - started)) s"

export TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:$PORT/%2F"
export RABBITMQ_CURRENT_CONTAINER="$NAME"
export REQUIRE_SERVERS="${REQUIRE_SERVERS:+$REQUIRE_SERVERS,}rabbitmq"  # never a pass by skipping
"$@"
