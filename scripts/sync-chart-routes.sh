#!/usr/bin/env bash
# Copy the public route table (services/gateway/routes.py) into the umbrella chart, which
# builds its Ingress paths from it. check-charts.sh fails while the copy is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHONPATH=services python3 -m gateway.routes > charts/drone-delivery/files/routes.json
echo "wrote charts/drone-delivery/files/routes.json"
