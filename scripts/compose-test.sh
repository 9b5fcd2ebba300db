#!/usr/bin/env bash
# The system as docker compose runs it, tested through its entry point (CI's compose job):
#   engine -> stand-in images -> service images -> compose up --wait -> datastore check
#   -> e2e suite against the gateway -> tests/compose (restarts, the load profile)
#   -> compose down -v -> engine stop
# Teardown always runs (trap), and each phase's time is printed at the end.
# Env: GATEWAY_PORT (8080), COMPOSE_PROJECT (drone-delivery-test), UV (uv),
# PYTEST_ARGS (-q), KEEP_UP=1 leaves the stack and engine running for a look.
# BENCH_WORKFLOW_REPLICAS="1 2" measures throughput per workflow replica count instead of
# testing (make bench-compose; tests/benchmarks/compose_scale.py).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export GATEWAY_PORT="${GATEWAY_PORT:-8080}"
PROJECT="${COMPOSE_PROJECT:-drone-delivery-test}"
# Images built from this checkout (docker-compose.build.yml), bases from the stand-ins.
COMPOSE=(docker compose -p "$PROJECT" -f docker-compose.yml -f docker-compose.build.yml -f docker-compose.ci.yml)
OUT="$ROOT/build/compose-test"
UV="${UV:-uv}"
mkdir -p "$OUT"

timings=()
compose_started=0
phase() {
    local name="$1" start rc=0; shift
    echo "=== $name" >&2
    start=${EPOCHREALTIME/./}
    "$@" || rc=$?
    local ms=$(( (${EPOCHREALTIME/./} - start) / 1000 ))
    timings+=("$(printf '%-16s %4d.%d s%s' "$name" $((ms / 1000)) $((ms % 1000 / 100)) \
        "$([ "$rc" = 0 ] || echo "  FAILED ($rc)")")")
    return "$rc"
}

teardown() {
    local rc=$?
    trap - EXIT
    set +e
    if [ "$compose_started" = 1 ]; then
        "${COMPOSE[@]}" ps -a >"$OUT/ps.txt" 2>&1
        "${COMPOSE[@]}" logs --no-color --timestamps >"$OUT/compose.log" 2>&1
        if [ "$rc" != 0 ]; then
            echo "--- containers"; cat "$OUT/ps.txt"
            echo "--- last log lines (all in $OUT/compose.log)"; tail -n 60 "$OUT/compose.log"
        fi >&2
    fi
    if [ "${KEEP_UP:-0}" = 1 ]; then
        echo "KEEP_UP=1: stack and engine left running (${COMPOSE[*]} down -v; scripts/docker-engine.sh stop)" >&2
    else
        [ "$compose_started" = 1 ] && phase down "${COMPOSE[@]}" --profile load down -v --remove-orphans --timeout 20
        phase engine-stop scripts/docker-engine.sh stop
    fi
    echo "=== timings" >&2
    printf '  %s\n' "${timings[@]}" >&2
    echo "compose-test: $([ "$rc" = 0 ] && echo passed || echo "FAILED ($rc)")" >&2
    exit "$rc"
}
trap teardown EXIT

# Builds trust the same extra CAs as this machine (a proxy's, say): copied into the
# git-ignored docker/certs/ that docker/service.Dockerfile reads.
copy_host_cas() {
    mkdir -p docker/certs
    find /usr/local/share/ca-certificates -type f \( -name '*.crt' -o -name '*.pem' \) \
        -exec cp {} docker/certs/ \; 2>/dev/null || true
    echo "extra CA certificates: $(find docker/certs -type f | wc -l)" >&2
}

check_datastores() {
    docker run --rm --network "${PROJECT}_default" --read-only \
        -v "$ROOT/scripts/check-datastores.py:/check-datastores.py:ro" \
        "${IMAGE_PREFIX:-drone-delivery}/ingestion:${IMAGE_TAG:-dev}" python /check-datastores.py
}

build_services() {
    # One first: the others then reuse its dependency layer instead of each installing the
    # same locked dependencies at once.
    "${COMPOSE[@]}" build --quiet ingestion || return
    # The load profile's Locust image too: tests/compose runs it.
    "${COMPOSE[@]}" --profile load build --quiet
}

e2e() {
    # shellcheck disable=SC2086 # PYTEST_ARGS is a list of flags
    E2E_BASE_URL="http://127.0.0.1:$GATEWAY_PORT" "$UV" run --frozen pytest tests/e2e ${PYTEST_ARGS:--q}
}

restarts() {
    # shellcheck disable=SC2086 # PYTEST_ARGS is a list of flags
    COMPOSE_CMD="${COMPOSE[*]}" E2E_BASE_URL="http://127.0.0.1:$GATEWAY_PORT" \
        "$UV" run --frozen pytest tests/compose ${PYTEST_ARGS:--q} -s
}

phase engine-install scripts/docker-engine.sh install
phase engine-start scripts/docker-engine.sh start
phase standins scripts/build-standins.sh
copy_host_cas
phase build build_services
docker image ls "${IMAGE_PREFIX:-drone-delivery}/*:${IMAGE_TAG:-dev}" \
    --format '  {{.Repository}}:{{.Tag}} {{.Size}}' >&2
compose_started=1
# Leftovers of an interrupted run would carry old data into this one.
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
phase up "${COMPOSE[@]}" up --wait --wait-timeout 240 --no-build
if [ -n "${BENCH_WORKFLOW_REPLICAS:-}" ]; then
    # make bench-compose: throughput against workflow replicas instead of the tests.
    for n in $BENCH_WORKFLOW_REPLICAS; do
        phase "scale-$n" "${COMPOSE[@]}" up --wait --wait-timeout 240 --no-build \
            --scale workflow="$n"
        phase "bench-$n" "$UV" run --frozen python -m tests.benchmarks.compose_scale \
            "http://127.0.0.1:$GATEWAY_PORT" "$n"
    done
    exit 0
fi
phase datastores check_datastores
phase e2e e2e
phase restarts restarts
