"""What every rendered workload must have, the Ingress variant against the route table
(the Gateway API routes: test_gateway_routes.py), and the network flows, checked on the umbrella chart as values-dev.yaml and values-prod.yaml
render it (the same output `helm install` would apply)."""

from __future__ import annotations

import ipaddress
import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import routes
from tests.charts.conftest import (
    ENVIRONMENTS,
    K8S,
    NAMESPACE,
    PROD_IDENTITY,
    RELEASE,
    SERVICES,
    UMBRELLA,
    Manifest,
    by_name,
    k8s_manifests,
    load_yaml_docs,
    of_kind,
    run_helm,
    values,
)

UID = 10001
# Drone scheduler and workflow for the console's read-only views only (docs/console.md).
PUBLIC_SERVICES = {"ingestion", "delivery", "dronescheduler", "workflow"}
GATEWAY_NAMESPACE = "drone-delivery-gateway"
GATEWAY_LABEL = "gateway.networking.k8s.io/gateway-name"
DATASTORES_NAMESPACE = "drone-datastores"
# Callers of each service on 8080 inside the namespace (besides the entry point).
CALLERS = {
    "ingestion": set(),
    "workflow": set(),
    "package": {"workflow"},
    "dronescheduler": {"workflow"},
    "delivery": {"workflow"},
}
CALLEES = {"workflow": {"package", "dronescheduler", "delivery"}}
# The dev datastores each service uses: {(app label, port)}.
DEV_STORES = {
    "ingestion": {("rabbitmq", 5672), ("redis", 6379)},
    "workflow": {("rabbitmq", 5672)},
    "package": {("postgres", 5432)},
    "dronescheduler": {("postgres", 5432)},
    "delivery": {("redis", 6379)},
}
# Azure endpoints: 443 (Cosmos DB, Entra ID, AMQP over WebSockets), 5671 (Service Bus
# AMQP), 6380 (Azure Cache for Redis over TLS).
AZURE_PORTS = {443, 5671, 6380}
PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]

# Internal APIs (workflow's calls, reports): none may match a public entry-point path.
INTERNAL_PATHS = [
    "/api/packages/mypackage",
    "/api/packages/summary/myowner",
    "/api/dronedeliveries/d-1",
    "/api/dronedeliveries/utilization",
    "/api/deliveries/summary",
    "/api/deliveries/d-1/confirmations",
    "/api/deliveries/d-1/failure",
    "/api/deliveries/d-1/status/extra",
    "/api/deliveryrequests/d-1/extra",
    "/health/ready",
    "/metrics",
    "/docs",
    "/openapi.json",
    "/api/drones",
    "/api/workflow/progress",
    "/console/sub/console.js",
    "/api/console/other",
]
PUBLIC_PATHS = {
    "/api/deliveryrequests": "ingestion",
    "/api/deliveryrequests/d-1": "ingestion",
    "/api/deliveries/d-1": "delivery",
    "/api/deliveries/d-1/status": "delivery",
    "/api/deliveries/d-1/notifymerequests": "delivery",
    "/console": "delivery",
    "/console/console.js": "delivery",
    "/track/d-1": "delivery",
    "/api/console/deliveries": "delivery",
    "/api/console/fleet": "dronescheduler",
    "/api/console/pipeline": "workflow",
}


def deployments(manifests: tuple[Manifest, ...]) -> dict[str, Manifest]:
    return by_name(manifests, "Deployment")


def pod_specs(manifests: tuple[Manifest, ...]) -> dict[str, dict[str, Any]]:
    """Every pod the release can run: Deployments' templates and the helm test pod."""
    specs = {name: d["spec"]["template"]["spec"] for name, d in deployments(manifests).items()}
    specs |= {name: p["spec"] for name, p in by_name(manifests, "Pod").items()}
    return specs


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


# ---------------------------------------------------------------- every workload


def test_every_service_is_deployed(manifests: tuple[Manifest, ...]) -> None:
    assert set(deployments(manifests)) == set(SERVICES)
    assert set(by_name(manifests, "Service")) == set(SERVICES)


def test_every_pod_runs_hardened(manifests: tuple[Manifest, ...]) -> None:
    for name, spec in pod_specs(manifests).items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == UID, name
        assert pod["fsGroup"] == UID, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in sc["capabilities"], name
            assert sc.get("privileged") is not True, name
            for bound in ("requests", "limits"):
                assert set(c["resources"][bound]) >= {"cpu", "memory"}, f"{name} {bound}"
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, f"{name}: no emptyDir at /tmp"


def test_every_service_probes_health_in_seconds(manifests: tuple[Manifest, ...]) -> None:
    for name, d in deployments(manifests).items():
        (c,) = d["spec"]["template"]["spec"]["containers"]
        probes = {p: c[p] for p in ("startupProbe", "readinessProbe", "livenessProbe")}
        assert probes["readinessProbe"]["httpGet"]["path"] == "/health/ready", name
        assert probes["livenessProbe"]["httpGet"]["path"] == "/health/live", name
        assert probes["startupProbe"]["httpGet"]["path"] in ("/health/live", "/health/ready")
        for kind, p in probes.items():
            assert p["httpGet"]["port"] in ("http", 8080), (name, kind)
            # The original waited 40-120 s before the first probe; these services are
            # ready in 1-2 s, so nothing waits and the first answer counts within seconds.
            assert p.get("initialDelaySeconds", 0) <= 2, (name, kind)
            assert p["periodSeconds"] <= 10, (name, kind)
        startup = probes["startupProbe"]
        assert startup["periodSeconds"] <= 2, name
        assert 10 <= startup["periodSeconds"] * startup["failureThreshold"] <= 120, name
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        # Public services also listen on 8081, where only the public routes are served.
        public = {"public": 8081} if name in PUBLIC_SERVICES else {}
        assert ports == {"http": 8080, **public}, name


def test_every_service_listens_as_configured(manifests: tuple[Manifest, ...]) -> None:
    version = yaml.safe_load((UMBRELLA / "Chart.yaml").read_text())["appVersion"]
    for name, d in deployments(manifests).items():
        (c,) = d["spec"]["template"]["spec"]["containers"]
        env = env_of(c)
        assert env["HOST"] == "0.0.0.0" and env["PORT"] == "8080", name
        assert env.get("PUBLIC_PORT") == ("8081" if name in PUBLIC_SERVICES else None), name
        assert env["LOG_LEVEL"] in ("debug", "info", "warning", "error", "critical")
        assert re.fullmatch(
            rf"[^/]+(/[^/]+)*/drone-delivery/{name}(:[\w.-]+|@sha256:\w+)", c["image"]
        )
        assert c["image"].endswith((":dev", f":{version}")) or "@sha256:" in c["image"]


def test_shutdown_fits_the_grace_period(manifests: tuple[Manifest, ...]) -> None:
    for name, d in deployments(manifests).items():
        spec = d["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        env = env_of(c)
        pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pre_stop >= 1, name
        needed = pre_stop + float(env["DRAIN_SECONDS"]) + float(env["SHUTDOWN_GRACE_SECONDS"])
        assert spec["terminationGracePeriodSeconds"] > needed, name


def test_every_service_has_its_own_identity(
    manifests: tuple[Manifest, ...], environment: str
) -> None:
    accounts = by_name(manifests, "ServiceAccount")
    client_ids = set()
    for name, d in deployments(manifests).items():
        template = d["spec"]["template"]
        sa_name = template["spec"]["serviceAccountName"]
        assert sa_name == name
        sa = accounts[sa_name]
        assert sa["automountServiceAccountToken"] is False
        client_id = sa["metadata"].get("annotations", {}).get("azure.workload.identity/client-id")
        uses = template["metadata"]["labels"].get("azure.workload.identity/use")
        if environment == "prod":
            assert client_id and uses == "true", name
            client_ids.add(client_id)
        else:
            assert client_id is None and uses is None, name
    if environment == "prod":
        assert len(client_ids) == len(SERVICES), "each service needs its own managed identity"


def test_every_service_spreads_and_survives_disruption(manifests: tuple[Manifest, ...]) -> None:
    pdbs = of_kind(manifests, "PodDisruptionBudget")
    for name, d in deployments(manifests).items():
        selector = d["spec"]["selector"]["matchLabels"]
        spread = d["spec"]["template"]["spec"]["topologySpreadConstraints"]
        keys = {t["topologyKey"] for t in spread}
        assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}, name
        for t in spread:
            assert t["labelSelector"]["matchLabels"] == selector, name
        (pdb,) = [p for p in pdbs if p["spec"]["selector"]["matchLabels"] == selector]
        assert pdb["apiVersion"] == "policy/v1"
        assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]
        assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name


def test_autoscaling(manifests: tuple[Manifest, ...], environment: str) -> None:
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in of_kind(manifests, "HorizontalPodAutoscaler")
    }
    for h in hpas.values():
        assert h["apiVersion"] == "autoscaling/v2"
    if environment == "dev":  # one replica each, no metrics-server needed
        assert hpas == {}
        for d in deployments(manifests).values():
            assert d["spec"]["replicas"] == 1
        return
    assert set(hpas) == set(SERVICES)
    for name, h in hpas.items():
        assert h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        metrics = {m["resource"]["name"] for m in h["spec"]["metrics"]}
        assert "cpu" in metrics, name
        assert h["spec"]["minReplicas"] >= 2, name
        assert "replicas" not in deployments(manifests)[name]["spec"], "the HPA owns replicas"


def test_no_removed_or_beta_apis(manifests: tuple[Manifest, ...]) -> None:
    for m in (*manifests, *k8s_manifests()):
        assert not re.search(r"v\d+(alpha|beta)\d+$", m["apiVersion"]) or m["apiVersion"] in (
            "keda.sh/v1alpha1",  # KEDA's only API version
            "gateway.nginx.org/v1alpha1",  # NGINX Gateway Fabric's policies' only version
        ), m["apiVersion"]
        assert not m["apiVersion"].startswith("extensions/")


# ---------------------------------------------------------------- ingress (off by default)

INGRESS_ON = "ingress.enabled=true"


def test_route_table_copy_is_current() -> None:
    copy = json.loads((UMBRELLA / "files" / "routes.json").read_text())
    assert copy == json.loads(routes.as_json()), "run scripts/sync-chart-routes.sh"


@pytest.fixture
def with_ingress(
    render: Callable[..., tuple[Manifest, ...]], environment: str
) -> tuple[Manifest, ...]:
    return render(environment, INGRESS_ON)


def test_no_ingress_by_default(manifests: tuple[Manifest, ...]) -> None:
    assert of_kind(manifests, "Ingress") == []


def ingress_paths(manifests: tuple[Manifest, ...]) -> dict[bool, dict[str, str]]:
    """{versioned: {path: service}} over the release's Ingresses."""
    found: dict[bool, dict[str, str]] = {False: {}, True: {}}
    for ing in of_kind(manifests, "Ingress"):
        versioned = "nginx.org/rewrite-target" in ing["metadata"]["annotations"]
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                assert p["pathType"] == "ImplementationSpecific"  # regex paths
                assert p["backend"]["service"]["port"] == {"name": "public"}
                found[versioned][p["path"]] = p["backend"]["service"]["name"]
    return found


def test_ingress_paths_are_the_route_table(with_ingress: tuple[Manifest, ...]) -> None:
    paths = ingress_paths(with_ingress)
    prefix = re.escape(routes.VERSION_PREFIX)
    assert paths[False] == {f"{r.pattern}$": r.service for r in routes.ROUTES}
    assert paths[True] == {f"{prefix}/({r.pattern[1:]})$": r.service for r in routes.ROUTES}


def nginx_location_for(manifests: tuple[Manifest, ...], path: str) -> list[tuple[str, str]]:
    """The Ingress paths that would take `path`: with nginx.org/path-regex: case_sensitive
    F5 NGINX Ingress Controller makes each path a regex location anchored at its start
    only (`location ~ "^PATH"`); the chart closes each one with `$`."""
    hits = []
    for versioned, table in ingress_paths(manifests).items():
        for pattern, service in table.items():
            m = re.match(pattern, path)
            if m:
                # rewrite-target /$1: the path the service receives
                hits.append(("/" + m.group(1) if versioned else path, service))
    return hits


def test_ingress_exposes_nothing_internal(with_ingress: tuple[Manifest, ...]) -> None:
    for path in INTERNAL_PATHS:
        for candidate in (path, routes.VERSION_PREFIX + path):
            assert nginx_location_for(with_ingress, candidate) == [], candidate


def test_ingress_routes_every_public_path(with_ingress: tuple[Manifest, ...]) -> None:
    for path, service in PUBLIC_PATHS.items():
        assert nginx_location_for(with_ingress, path) == [(path, service)]
        assert nginx_location_for(with_ingress, routes.VERSION_PREFIX + path) == [(path, service)]


def test_ingress_settings(with_ingress: tuple[Manifest, ...], environment: str) -> None:
    ings = of_kind(with_ingress, "Ingress")
    assert len(ings) == 2
    issuers = []
    for ing in ings:
        a = ing["metadata"]["annotations"]
        assert a["nginx.org/path-regex"] == "case_sensitive"
        assert a["nginx.org/client-max-body-size"] == "64k"
        assert ing["spec"]["ingressClassName"] == "nginx"
        (tls,) = ing["spec"]["tls"]
        assert tls["hosts"] == [ing["spec"]["rules"][0]["host"]]
        assert not any("snippet" in k for k in a), "raw NGINX config is refused"
        issuers += [k for k in a if k.startswith("cert-manager.io/")]
        if "nginx.org/rewrite-target" in a:
            assert a["nginx.org/rewrite-target"] == "/$1"
    if environment == "dev":  # one Certificate per Secret: only one Ingress asks cert-manager
        assert issuers == ["cert-manager.io/issuer"]
        assert NAMESPACE in {i["metadata"]["namespace"] for i in of_kind(with_ingress, "Issuer")}
    else:
        assert issuers == [] and of_kind(with_ingress, "Issuer") == []
        assert ings[0]["metadata"]["annotations"]["nginx.org/redirect-to-https"] == "true"


# ---------------------------------------------------------------- network policies


def policies(manifests: tuple[Manifest, ...]) -> dict[str, Manifest]:
    return by_name(manifests, "NetworkPolicy")


def peer_key(peer: dict[str, Any]) -> tuple[str, str]:
    """(namespace or '' for this one or 'ipBlock', app or Gateway name or '*')."""
    if "ipBlock" in peer:
        return ("ipBlock", peer["ipBlock"]["cidr"])
    ns = (
        peer.get("namespaceSelector", {})
        .get("matchLabels", {})
        .get("kubernetes.io/metadata.name", "")
    )
    labels = peer.get("podSelector", {}).get("matchLabels", {})
    name = (
        labels.get("app.kubernetes.io/name") or labels.get("k8s-app") or labels.get(GATEWAY_LABEL)
    )
    return (ns, name or "*")


def flows(rules: list[dict[str, Any]], direction: str) -> set[tuple[str, str, int, str]]:
    out = set()
    for rule in rules:
        peers = rule.get("from" if direction == "ingress" else "to")
        assert peers, "a rule without peers would allow every source or destination"
        assert rule.get("ports"), "a rule without ports would allow every port"
        for peer in peers:
            for port in rule["ports"]:
                out.add((*peer_key(peer), port["port"], port.get("protocol", "TCP")))
    return out


def test_default_deny(manifests: tuple[Manifest, ...]) -> None:
    deny = policies(manifests)["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_every_pod_has_its_own_policy(manifests: tuple[Manifest, ...]) -> None:
    selectors = [p["spec"]["podSelector"].get("matchLabels") for p in policies(manifests).values()]
    for d in deployments(manifests).values():
        assert d["spec"]["selector"]["matchLabels"] in selectors
    for pod in of_kind(manifests, "Pod"):
        labels = pod["metadata"]["labels"]
        assert any(s and s.items() <= labels.items() for s in selectors), pod["metadata"]["name"]


def test_service_ingress_flows(manifests: tuple[Manifest, ...]) -> None:
    for name in SERVICES:
        spec = policies(manifests)[name]["spec"]
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        expected = {("", caller, 8080, "TCP") for caller in CALLERS[name]}
        if name in PUBLIC_SERVICES:
            expected.add((GATEWAY_NAMESPACE, RELEASE, 8081, "TCP"))  # the Gateway's proxies
        assert flows(spec["ingress"], "ingress") == expected, name


def test_service_egress_flows(manifests: tuple[Manifest, ...], environment: str) -> None:
    for name in SERVICES:
        egress = flows(policies(manifests)[name]["spec"]["egress"], "egress")
        dns = {("kube-system", "kube-dns", 53, "UDP"), ("kube-system", "kube-dns", 53, "TCP")}
        assert dns <= egress, name
        calls = {("", callee, 8080, "TCP") for callee in CALLEES.get(name, set())}
        in_namespace = {f for f in egress if f[0] == ""}
        assert in_namespace == calls, name
        stores = egress - dns - calls
        if environment == "dev":
            expected = {(DATASTORES_NAMESPACE, app, port, "TCP") for app, port in DEV_STORES[name]}
            assert stores == expected, name
        else:
            assert stores and all(f[0] == "ipBlock" for f in stores), name
            assert {f[2] for f in stores} <= AZURE_PORTS, name


def test_external_egress_excludes_private_ranges(manifests: tuple[Manifest, ...]) -> None:
    for name, policy in policies(manifests).items():
        for rule in policy["spec"].get("egress", []):
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    excepted = [ipaddress.ip_network(n) for n in peer["ipBlock"].get("except", [])]
                    assert all(p in excepted for p in PRIVATE), name
                    assert ipaddress.ip_network("169.254.169.254/32").subnet_of(
                        next(n for n in excepted if n.prefixlen == 16 and str(n).startswith("169"))
                    ), f"{name}: instance metadata must stay unreachable"


def test_workflow_calls_services_in_cluster(
    manifests: tuple[Manifest, ...], environment: str
) -> None:
    (c,) = deployments(manifests)["workflow"]["spec"]["template"]["spec"]["containers"]
    env = env_of(c)
    host = values(environment)["entryPoint"]["host"]
    for service in ("package", "dronescheduler", "delivery"):
        url = env[f"{service.upper()}_URL"]
        assert url == f"http://{service}.{NAMESPACE}.svc.cluster.local:8080", url
        assert host not in url


def test_smoke_test_reaches_only_the_gateway(manifests: tuple[Manifest, ...]) -> None:
    spec = policies(manifests)[f"{RELEASE}-smoke-test"]["spec"]
    assert spec["ingress"] == []
    egress = flows(spec["egress"], "egress")
    assert {f[0] for f in egress} == {"kube-system", GATEWAY_NAMESPACE}
    assert {f[2] for f in egress if f[0] == GATEWAY_NAMESPACE} == {80, 443}


# ---------------------------------------------------------------- the namespace layout in k8s/


def test_namespaces_the_policies_name_exist() -> None:
    declared = {m["metadata"]["name"] for m in k8s_manifests() if m["kind"] == "Namespace"}
    assert {NAMESPACE, GATEWAY_NAMESPACE, DATASTORES_NAMESPACE} <= declared


def test_datastores_admit_exactly_their_owners() -> None:
    docs = load_yaml_docs(K8S / "dev-datastores" / "networkpolicy.yaml")
    admitted: dict[str, set[str]] = {}
    for p in docs:
        app = p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        for rule in p["spec"].get("ingress", []):
            for peer in rule["from"]:
                assert peer["namespaceSelector"]["matchLabels"] == {
                    "kubernetes.io/metadata.name": NAMESPACE
                }
                sel = peer["podSelector"]
                names = set(sel.get("matchLabels", {}).values()) or set(
                    sel["matchExpressions"][0]["values"]
                )
                admitted.setdefault(app, set()).update(names)
    owners: dict[str, set[str]] = {}
    for service, stores in DEV_STORES.items():
        for app, _ in stores:
            owners.setdefault(app, set()).add(service)
    assert admitted == owners


def test_dev_store_urls_name_the_dev_datastores(
    render: Callable[..., tuple[Manifest, ...]],
) -> None:
    services = {
        m["metadata"]["name"]: {p["port"] for p in m["spec"]["ports"]}
        for m in load_yaml_docs_all(K8S / "dev-datastores")
        if m["kind"] == "Service"
    }
    for name, d in deployments(render("dev")).items():
        (c,) = d["spec"]["template"]["spec"]["containers"]
        env = env_of(c)
        named = set()
        for url in filter(None, (env.get("STORE_URL"), env.get("QUEUE_URL"))):
            m = re.match(r"\w+://(?:[^@/]*@)?([^.:/]+)\.([^.:/]+)\.svc\.cluster\.local:(\d+)", url)
            assert m, url
            host, ns, port = m.group(1), m.group(2), int(m.group(3))
            assert ns == DATASTORES_NAMESPACE and port in services[host], url
            named.add((host, port))
        assert named == DEV_STORES[name], name


def load_yaml_docs_all(folder: Path) -> list[Manifest]:
    return [d for path in sorted(folder.glob("*.yaml")) for d in load_yaml_docs(path)]


def test_gateway_data_plane_reaches_only_the_public_ports() -> None:
    docs = load_yaml_docs(K8S / "gateway" / "networkpolicy.yaml")
    assert {d["metadata"]["namespace"] for d in docs} == {GATEWAY_NAMESPACE}
    (policy,) = [p for p in docs if p["metadata"]["name"] == "drone-delivery-gateway"]
    assert policy["spec"]["podSelector"]["matchLabels"] == {GATEWAY_LABEL: RELEASE}
    to_app = [
        r
        for r in policy["spec"]["egress"]
        if any(
            peer.get("namespaceSelector", {}).get("matchLabels")
            == {"kubernetes.io/metadata.name": NAMESPACE}
            for peer in r.get("to", [])
        )
    ]
    (rule,) = to_app
    (expr,) = rule["to"][0]["podSelector"]["matchExpressions"]
    # The public services (the side-by-side release's pods carry the same name label).
    assert set(expr["values"]) == PUBLIC_SERVICES
    assert [p["port"] for p in rule["ports"]] == [8081]


def test_nginx_gateway_fabric_values() -> None:
    v = yaml.safe_load((K8S / "gateway" / "nginx-gateway-fabric-values.yaml").read_text())
    assert v["nginxGateway"]["replicas"] >= 2 and v["nginx"]["replicas"] >= 2
    assert v["nginxGateway"]["gatewayClassName"] == "nginx"
    assert v["nginxGateway"]["snippetsFilters"]["enable"] is False
    assert v["nginx"]["service"]["externalTrafficPolicy"] == "Local"  # per-client-IP limits


def test_rbac_is_namespaced() -> None:
    kinds = {m["kind"] for m in k8s_manifests()}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    for m in k8s_manifests():
        if m["kind"] in ("Role", "RoleBinding"):
            assert m["metadata"]["namespace"] in (NAMESPACE, GATEWAY_NAMESPACE)
            if m["kind"] == "RoleBinding":
                assert m["roleRef"]["kind"] == "Role"


def test_every_namespace_has_quota_and_limits() -> None:
    docs = k8s_manifests()
    namespaces = {m["metadata"]["name"] for m in docs if m["kind"] == "Namespace"}
    for kind in ("ResourceQuota", "LimitRange"):
        assert {m["metadata"]["namespace"] for m in docs if m["kind"] == kind} == namespaces


def quantity(value: str) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for unit, factor in units.items():
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    return float(value)


def test_quota_covers_prod_at_full_scale(render: Callable[..., tuple[Manifest, ...]]) -> None:
    prod = render("prod")
    (quota,) = [
        m
        for m in k8s_manifests()
        if m["kind"] == "ResourceQuota" and m["metadata"]["namespace"] == NAMESPACE
    ]
    hard = quota["spec"]["hard"]
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
        for h in of_kind(prod, "HorizontalPodAutoscaler")
    }
    total: dict[str, float] = {"pods": 1}  # the helm test pod
    for name, d in deployments(prod).items():
        pods = math.ceil(hpas[name] * 1.25)  # maxSurge 25% during a rollout
        total["pods"] += pods
        (c,) = d["spec"]["template"]["spec"]["containers"]
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                key = f"{bound}.{resource}"
                total[key] = total.get(key, 0) + pods * quantity(c["resources"][bound][resource])
    for key, needed in total.items():
        assert needed <= quantity(str(hard[key])), f"{key}: prod at full scale needs {needed}"


def test_key_vault_mount_matches_delivery(render: Callable[..., tuple[Manifest, ...]]) -> None:
    (spc,) = load_yaml_docs(K8S / "azure" / "secretproviderclass.yaml")
    assert spc["apiVersion"] == "secrets-store.csi.x-k8s.io/v1"
    params = spc["spec"]["parameters"]
    assert params["usePodIdentity"] == "false"
    delivery = values("prod")["delivery"]
    assert params["clientID"] == delivery["serviceAccount"]["workloadIdentity"]["clientId"]
    assert spc["metadata"]["name"] == delivery["secretFiles"]["secretProviderClass"]
    aliases = re.findall(r"objectAlias:\s*(\S+)", params["objects"])
    assert set(delivery["secretFiles"]["files"].values()) <= set(aliases)
    spec = deployments(render("prod"))["delivery"]["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if "csi" in v]
    assert volume["csi"]["volumeAttributes"]["secretProviderClass"] == spc["metadata"]["name"]
    assert env_of(spec["containers"][0])["REDIS_PASSWORD_FILE"] == "/mnt/secrets/redis-password"


# ---------------------------------------------------------------- optional parts


def test_keda_and_service_monitors(render: Callable[..., tuple[Manifest, ...]]) -> None:
    sets = ["workflow.keda.enabled=true", *(f"{s}.serviceMonitor.enabled=true" for s in SERVICES)]
    out = render("prod", *sets)
    (scaled,) = of_kind(out, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "workflow"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "azure-servicebus"
    assert trigger["metadata"]["queueName"] == "deliveryrequests"
    (auth,) = of_kind(out, "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    client_id = values("prod")["workflow"]["serviceAccount"]["workloadIdentity"]["clientId"]
    assert auth["spec"]["podIdentity"] == {"provider": "azure-workload", "identityId": client_id}
    hpas = {h["spec"]["scaleTargetRef"]["name"] for h in of_kind(out, "HorizontalPodAutoscaler")}
    assert "workflow" not in hpas, "KEDA makes its own HPA"
    assert "replicas" not in deployments(out)["workflow"]["spec"]
    dedicated = "66666666-6666-6666-6666-666666666666"
    (auth,) = of_kind(
        render("prod", *sets, f"workflow.keda.identityId={dedicated}"), "TriggerAuthentication"
    )
    assert auth["spec"]["podIdentity"]["identityId"] == dedicated
    monitors = by_name(out, "ServiceMonitor")
    assert set(monitors) == set(SERVICES)
    for name, sm in monitors.items():
        assert sm["spec"]["endpoints"][0]["path"] == "/metrics"
        scrape = ("monitoring", "*", 8080, "TCP")
        assert scrape in flows(policies(out)[name]["spec"]["ingress"], "ingress"), name


def test_service_monitors_appear_by_themselves_where_the_operator_is(
    render: Callable[..., tuple[Manifest, ...]],
) -> None:
    with_operator = render("prod", "--api-versions=monitoring.coreos.com/v1/ServiceMonitor")
    assert set(by_name(with_operator, "ServiceMonitor")) == set(SERVICES)
    for name in SERVICES:
        scrape = ("monitoring", "*", 8080, "TCP")
        assert scrape in flows(policies(with_operator)[name]["spec"]["ingress"], "ingress"), name
    assert of_kind(render("prod"), "ServiceMonitor") == []  # no operator, no ServiceMonitor


def test_defaults_keep_optional_parts_off(manifests: tuple[Manifest, ...]) -> None:
    for kind in ("ScaledObject", "TriggerAuthentication", "ServiceMonitor"):
        assert of_kind(manifests, kind) == []


# ---------------------------------------------------------------- values are checked

BAD_VALUES = [
    "ingestion.securityContext.uid=0",  # root
    "delivery.env.STORE_URL=ftp://nowhere",
    "workflow.probes.liveness.periodSeconds=0",
    "package.resources.limits.cpu=lots",
    "entryPoint.tls.mode=letsencrypt",
    "entryPoint.tls.mode=clusterIssuer",  # without entryPoint.tls.clusterIssuer
    "workflow.keda.enabled=true",  # dev: no Service Bus namespace, no identity
    "dronescheduler.replicaCont=3",  # a typo
]


@pytest.mark.parametrize("bad", BAD_VALUES)
@pytest.mark.parametrize("command", ["lint", "template"])
def test_bad_values_are_refused(helm: str, command: str, bad: str) -> None:
    args = [command, *(["--strict"] if command == "lint" else ["t"]), str(UMBRELLA)]
    done = run_helm(helm, *args, "-f", str(UMBRELLA / "values-dev.yaml"), "--set", bad)
    assert done.returncode != 0, f"helm {command} accepted --set {bad}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_good_values_lint(helm: str, environment: str) -> None:
    files = ["-f", str(UMBRELLA / f"values-{environment}.yaml")]
    if environment == "prod":
        files += ["-f", str(PROD_IDENTITY)]
    done = run_helm(helm, "lint", "--strict", str(UMBRELLA), *files)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_notes_say_how_to_reach_the_app(helm: str, environment: str, tmp_path: Path) -> None:
    # `helm template` does not render NOTES.txt: render a copy of it as an ordinary template.
    chart = tmp_path / "drone-delivery"
    shutil.copytree(UMBRELLA, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "notes.yaml").write_text(
        '{{- define "notes" }}' + notes + '{{- end }}\nnotes: {{ include "notes" . | quote }}\n'
    )
    done = run_helm(
        helm, "template", RELEASE, str(chart), "-n", NAMESPACE,
        "-f", str(UMBRELLA / f"values-{environment}.yaml"), "-f", str(PROD_IDENTITY),
        "--show-only", "templates/notes.yaml",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = yaml.safe_load(done.stdout)["notes"]
    host = values(environment)["entryPoint"]["host"]
    assert f"{routes.VERSION_PREFIX}/api/deliveryrequests" in text
    assert "/api/deliveries/$DELIVERY_ID" in text and host in text
    assert "kubectl get gateway" in text and "helm test" in text
