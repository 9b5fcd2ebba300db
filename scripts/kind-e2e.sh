#!/usr/bin/env bash
# The whole application on a local kind cluster, end to end, as .github/workflows/cluster-e2e.yml
# runs it: build and load the images, install the Gateway API CRDs (standard channel),
# NGINX Gateway Fabric, cert-manager (with its Gateway API support) and the dev datastores,
# install the umbrella chart with values-dev.yaml (it makes the Gateway and the
# HTTPRoutes), `helm test`, then the e2e suite through the Gateway.
#
# Needs: docker, kind (>= 0.24: its CNI enforces NetworkPolicy), kubectl, helm 3, uv, and
# internet access for the CRDs, the NGINX Gateway Fabric and cert-manager charts and the
# datastore images.
# Env: CLUSTER (default drone-delivery), KEEP_CLUSTER=1 to leave the cluster running,
#      SKIP_BUILD=1 to reuse loaded images, E2E_PORT (default 8088),
#      NGF_VERSION (default 2.4.0: NGINX Gateway Fabric, and the Gateway API CRDs it ships).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-drone-delivery}
E2E_PORT=${E2E_PORT:-8088}
TAG=dev   # values-dev.yaml: localhost/drone-delivery/<service>:dev
SERVICES=(ingestion workflow package dronescheduler delivery)
NS=drone-delivery
GATEWAY_NS=drone-delivery-gateway
NGF_VERSION=${NGF_VERSION:-2.4.0}
PF_PID=""

log() { printf '\n== %s\n' "$*"; }

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is not on PATH" >&2; exit 2; }
done

cleanup() {
  local rc=$?
  [[ -n $PF_PID ]] && kill "$PF_PID" 2>/dev/null || true
  if ((rc != 0)); then
    log "failure: cluster state"
    kubectl get pods,svc,networkpolicy -A -o wide || true
    kubectl get gateways,httproutes -A -o yaml || true
    kubectl get events -A --sort-by=.lastTimestamp | tail -n 60 || true
    for s in "${SERVICES[@]}"; do
      kubectl logs -n "$NS" "deployment/$s" --all-containers --tail=80 2>/dev/null || true
    done
    kubectl logs -n "$NS" drone-delivery-smoke-test --tail=80 2>/dev/null || true
  fi
  if [[ ${KEEP_CLUSTER:-0} != 1 ]]; then kind delete cluster --name "$CLUSTER" || true; fi
  exit $rc
}
trap cleanup EXIT

log "kind cluster $CLUSTER"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  # Two workers so topology spread and PodDisruptionBudgets have something to spread over.
  kind create cluster --name "$CLUSTER" --wait 120s --config - <<'EOF'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
  - role: worker
EOF
fi
kubectl config use-context "kind-$CLUSTER"

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "build and load images"
  for s in "${SERVICES[@]}"; do
    docker build -f docker/service.Dockerfile --build-arg "SERVICE=$s" -t "localhost/drone-delivery/$s:$TAG" .
    kind load docker-image --name "$CLUSTER" "localhost/drone-delivery/$s:$TAG"
  done
fi

log "namespaces, quotas, network policies, dev datastores"
kubectl apply -f k8s/namespaces.yaml -f k8s/quotas.yaml -f k8s/rbac.yaml
kubectl apply -f k8s/gateway/networkpolicy.yaml
kubectl apply -f k8s/dev-datastores/
for d in postgres redis rabbitmq; do
  kubectl rollout status -n drone-datastores "deployment/$d" --timeout=180s
done

log "Gateway API CRDs (standard channel) and NGINX Gateway Fabric $NGF_VERSION"
kubectl kustomize "https://github.com/nginx/nginx-gateway-fabric/config/crd/gateway-api/standard?ref=v$NGF_VERSION" \
  | kubectl apply -f -
# kind has no load balancer: the Gateway's Service as NodePort, reached by port-forward below.
helm upgrade --install ngf oci://ghcr.io/nginx/charts/nginx-gateway-fabric --version "$NGF_VERSION" \
  -n nginx-gateway --create-namespace -f k8s/gateway/nginx-gateway-fabric-values.yaml \
  --set nginx.service.type=NodePort --wait --timeout 5m

log "cert-manager, Gateway API support on (the dev values use a self-signed Issuer)"
helm upgrade --install cert-manager cert-manager --repo https://charts.jetstack.io \
  -n cert-manager --create-namespace --set crds.enabled=true \
  --set config.apiVersion=controller.config.cert-manager.io/v1alpha1 \
  --set config.kind=ControllerConfiguration --set config.enableGatewayAPI=true \
  --wait --timeout 5m

log "drone-delivery with values-dev.yaml"
for chart in "${SERVICES[@]}"; do helm dependency update --skip-refresh "charts/$chart" >/dev/null; done
helm dependency update --skip-refresh charts/drone-delivery >/dev/null
helm upgrade --install drone-delivery charts/drone-delivery -n "$NS" \
  -f charts/drone-delivery/values-dev.yaml --wait --timeout 5m
kubectl wait -n "$GATEWAY_NS" gateway/drone-delivery --for=condition=Programmed --timeout=180s
for route in drone-delivery drone-delivery-versioned; do
  kubectl wait -n "$NS" "httproute/$route" --timeout=120s \
    --for=jsonpath='{.status.parents[0].conditions[?(@.type=="Accepted")].status}'=True
done

log "helm test"
helm test drone-delivery -n "$NS" --logs --timeout 5m

log "e2e suite through the Gateway (port-forward to localhost:$E2E_PORT)"
# NGINX Gateway Fabric names the Gateway's Service <gateway>-<class>.
kubectl port-forward -n "$GATEWAY_NS" service/drone-delivery-nginx "$E2E_PORT:80" >/dev/null &
PF_PID=$!
for _ in $(seq 1 30); do
  # Any HTTP answer (a 404 for an unknown delivery) means the Gateway is serving.
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://localhost:$E2E_PORT/api/deliveries/probe/status") != 000 ]] && break
  sleep 1
done
E2E_BASE_URL="http://localhost:$E2E_PORT" uv run pytest tests/e2e
