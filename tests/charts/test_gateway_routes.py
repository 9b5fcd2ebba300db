"""The Gateway API entry point against the route table: the rendered HTTPRoutes route every
public path and method to its service's public port, nothing internal, and the values
files for NGINX Gateway Fabric, the AKS application routing add-on and Application Gateway
for Containers each render what their implementation needs. Requests are matched the way
the Gateway API specification says (HTTPRouteMatch: path, method, headers; URLRewrite
ReplacePrefixMatch), so these tests need no implementation running."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from contracts import routes
from tests.charts.conftest import (
    NAMESPACE,
    RELEASE,
    UMBRELLA,
    Manifest,
    by_name,
    of_kind,
    run_helm,
)
from tests.charts.test_policies import INTERNAL_PATHS, PUBLIC_PATHS

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PUBLIC_PORT = 8081
GATEWAY_NAMESPACE = "drone-delivery-gateway"
TABLE = json.loads((UMBRELLA / "files" / "gateway-routes.json").read_text())
# Standard channel, HTTPRoute v1: the only fields and filters the chart may use.
RULE_FIELDS = {"matches", "filters", "backendRefs", "timeouts"}
FILTERS = {"URLRewrite", "RequestHeaderModifier", "RequestRedirect"}
# Segments where the table's look-aheads bite, and lengths at the id limit.
EDGE_SEGMENTS = [
    ".", "..", "...", ".a", "..a", "a.", "summary", "summar", "summaryx", "Summary", "s",
    "x" * 128, "x" * 129, "." + "x" * 127, ".." + "x" * 126, ".." + "x" * 127, "d~1_-.",
]  # fmt: skip


TEMPLATES = (
    "/api/deliveries/{}",
    "/api/deliveries/{}/status",
    "/api/deliveries/{}/notifymerequests",
    "/api/deliveryrequests/{}",
    "/api/deliveries/{}/confirmations",
    "/track/{}",
    "/console/{}",
)


@dataclass(frozen=True)
class Hit:
    route: str
    service: str
    port: int
    path: str  # as the backend receives it
    weight: int | None


def path_matches(match: dict[str, Any], path: str) -> bool:
    kind, value = match["type"], match["value"]
    if kind == "Exact":
        return bool(path == value)
    if kind == "PathPrefix":  # whole path elements; a trailing "/" is ignored
        prefix = value.rstrip("/")
        return path == prefix or path.startswith(prefix + "/")
    assert kind == "RegularExpression"
    return re.search(value, path) is not None


def gateway_hits(
    manifests: tuple[Manifest, ...], method: str, path: str, headers: dict[str, str] | None = None
) -> list[Hit]:
    """Every backend a request could reach through the release's HTTPRoutes."""
    headers = headers or {}
    hits = []
    for route in of_kind(manifests, "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            if "backendRefs" not in rule:
                continue
            for m in rule["matches"]:
                if m.get("method", method) != method or not path_matches(m["path"], path):
                    continue
                if any(headers.get(h["name"]) != h["value"] for h in m.get("headers", [])):
                    continue
                received = path
                for f in rule.get("filters", []):
                    if f["type"] == "URLRewrite":
                        mod = f["urlRewrite"]["path"]
                        assert mod["type"] == "ReplacePrefixMatch"
                        assert m["path"]["type"] == "PathPrefix", "the spec requires it"
                        received = mod["replacePrefixMatch"] + path[len(m["path"]["value"]) :]
                for b in rule["backendRefs"]:
                    hits.append(
                        Hit(
                            route["metadata"]["name"],
                            b["name"],
                            b["port"],
                            received,
                            b.get("weight"),
                        )
                    )
                break
    return hits


def refused_by_public_port(hit: Hit, method: str) -> bool:
    """The public port (chassis/public.py) serves only the route table's routes."""
    route = routes.route_for(method, hit.path)
    return hit.port == PUBLIC_PORT and (route is None or route.service != hit.service)


def corpus() -> list[str]:
    paths = [*PUBLIC_PATHS, *INTERNAL_PATHS, "/", "/api", "/api/deliveries", "/x/api/deliveries/d"]
    for seg in EDGE_SEGMENTS:
        for template in TEMPLATES:
            paths.append(template.format(seg))
    return paths


# ---------------------------------------------------------------- the table's copy


def test_gateway_regexes_are_the_route_table_patterns() -> None:
    """Each look-around-free expression matches exactly the paths its pattern does."""
    assert len(TABLE["routes"]) == len(routes.ROUTES)
    for route, copy in zip(routes.ROUTES, TABLE["routes"], strict=True):
        assert copy["methods"] == list(route.methods) and copy["service"] == route.service
        assert not re.search(r"\(\?[=!<]", copy["regex"]), "RE2 has no look-arounds"
        for path in corpus():
            expected = re.fullmatch(route.pattern, path) is not None
            assert (re.search(copy["regex"], path) is not None) is expected, (route.pattern, path)


# ---------------------------------------------------------------- routes (default: NGINX Gateway Fabric)


@pytest.fixture(params=["dev", "prod"])
def gateway_render(
    request: pytest.FixtureRequest, render: Callable[..., tuple[Manifest, ...]]
) -> tuple[Manifest, ...]:
    return render(str(request.param))


def route_parts(manifests: tuple[Manifest, ...], name: str) -> list[Manifest]:
    """The HTTPRoutes a set is split into (at most 16 rules each): NAME, NAME-2, ..."""
    found = by_name(manifests, "HTTPRoute")
    parts = [found[name]]
    while f"{name}-{len(parts) + 1}" in found:
        parts.append(found[f"{name}-{len(parts) + 1}"])
    return parts


def test_httproutes_hold_exactly_the_route_table(gateway_render: tuple[Manifest, ...]) -> None:
    found = set()
    rules = [r for part in route_parts(gateway_render, RELEASE) for r in part["spec"]["rules"]]
    for rule in rules:
        (backend,) = rule["backendRefs"]
        assert backend["port"] == PUBLIC_PORT
        for m in rule["matches"]:
            assert m["path"]["type"] == "RegularExpression"
            found.add((m["method"], m["path"]["value"], backend["name"]))
    expected = {
        (method, r["regex"], r["service"]) for r in TABLE["routes"] for method in r["methods"]
    }
    assert found == expected


def test_every_public_path_reaches_its_service(gateway_render: tuple[Manifest, ...]) -> None:
    for path, service in PUBLIC_PATHS.items():
        route = routes.route_for
        for method in METHODS:
            public = route(method, path)
            for candidate in (path, routes.VERSION_PREFIX + path):
                hits = gateway_hits(gateway_render, method, candidate)
                if public is None:
                    assert all(refused_by_public_port(h, method) for h in hits), (method, candidate)
                else:
                    assert {(h.service, h.port, h.path) for h in hits} == {
                        (service, PUBLIC_PORT, path)
                    }, (method, candidate)


def test_nothing_internal_is_routed(gateway_render: tuple[Manifest, ...]) -> None:
    for path in corpus():
        for method in METHODS:
            public = routes.route_for(method, path)
            plain = gateway_hits(gateway_render, method, path)
            if public is None:
                assert plain == [], (method, path)
            # Under the version prefix a PathPrefix rule may catch more than the table: it
            # reaches only the public port, which refuses it.
            versioned = gateway_hits(gateway_render, method, routes.VERSION_PREFIX + path)
            if public is None:
                assert all(refused_by_public_port(h, method) for h in versioned), (method, path)


def test_routes_use_the_standard_channel_only(gateway_render: tuple[Manifest, ...]) -> None:
    for route in of_kind(gateway_render, "HTTPRoute"):
        assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
        assert len(route["spec"]["rules"]) <= 16  # the CRD's limit
        for rule in route["spec"]["rules"]:
            assert set(rule) <= RULE_FIELDS
            assert {f["type"] for f in rule.get("filters", [])} <= FILTERS
            for m in rule.get("matches", []):
                assert set(m) <= {"path", "method", "headers"}


def test_versioned_rules_strip_the_prefix_and_say_so(gateway_render: tuple[Manifest, ...]) -> None:
    parts = route_parts(gateway_render, f"{RELEASE}-versioned")
    for rule in (r for part in parts for r in part["spec"]["rules"]):
        filters = {f["type"]: f for f in rule["filters"]}
        header = filters["RequestHeaderModifier"]["requestHeaderModifier"]["set"]
        assert header == [{"name": "X-Forwarded-Prefix", "value": routes.VERSION_PREFIX}]
        for m in rule["matches"]:
            assert m["path"]["value"].startswith(routes.VERSION_PREFIX + "/")


def test_the_gateway(render: Callable[..., tuple[Manifest, ...]]) -> None:
    dev, prod = render("dev"), render("prod")
    cases = [
        (dev, "localhost", "drone-delivery-dev-tls"),
        (prod, "drone-delivery.contoso.com", "drone-delivery-tls"),
    ]
    for manifests, host, tls in cases:
        (gw,) = of_kind(manifests, "Gateway")
        assert gw["metadata"]["namespace"] == GATEWAY_NAMESPACE
        assert gw["spec"]["gatewayClassName"] == "nginx"
        listeners = {item["name"]: item for item in gw["spec"]["listeners"]}
        assert {(v["protocol"], v["port"]) for v in listeners.values()} == {
            ("HTTP", 80),
            ("HTTPS", 443),
        }
        assert listeners["https"]["tls"]["certificateRefs"] == [
            {"kind": "Secret", "group": "", "name": tls}
        ]
        for item in listeners.values():
            assert item["hostname"] == host
            assert item["allowedRoutes"]["namespaces"] == {
                "from": "Selector",
                "selector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
            }
        for route in of_kind(manifests, "HTTPRoute"):
            assert route["spec"]["hostnames"] == [host]
    # dev: cert-manager issues the certificate beside the Gateway, HTTP stays open.
    assert of_kind(dev, "Gateway")[0]["metadata"]["annotations"] == {
        "cert-manager.io/issuer": f"{RELEASE}-selfsigned"
    }
    (issuer,) = of_kind(dev, "Issuer")
    assert issuer["metadata"]["namespace"] == GATEWAY_NAMESPACE
    assert f"{RELEASE}-https-redirect" not in by_name(dev, "HTTPRoute")
    # prod: the routes on HTTPS only, plain HTTP redirected.
    redirect = by_name(prod, "HTTPRoute")[f"{RELEASE}-https-redirect"]
    assert redirect["spec"]["parentRefs"][0]["sectionName"] == "http"
    to_https = {
        "type": "RequestRedirect",
        "requestRedirect": {"scheme": "https", "statusCode": 301},
    }
    assert redirect["spec"]["rules"] == [{"filters": [to_https]}]
    for name in (RELEASE, f"{RELEASE}-versioned"):
        (parent,) = by_name(prod, "HTTPRoute")[name]["spec"]["parentRefs"]
        assert parent == {
            "name": "drone-delivery",
            "namespace": GATEWAY_NAMESPACE,
            "sectionName": "https",
        }


def test_attaching_to_a_platform_gateway(render: Callable[..., tuple[Manifest, ...]]) -> None:
    out = render(
        "prod", "gateway.create=false", "gateway.parentRefs[0].name=shared",
        "gateway.parentRefs[0].namespace=gateways",
    )  # fmt: skip
    assert of_kind(out, "Gateway") == []
    for route in of_kind(out, "HTTPRoute"):
        assert route["spec"]["parentRefs"] == [{"name": "shared", "namespace": "gateways"}]


def test_nginx_policies_limit_body_and_rate(gateway_render: tuple[Manifest, ...]) -> None:
    policies = by_name(gateway_render, "ClientSettingsPolicy")
    carrying = set(by_name(gateway_render, "HTTPRoute")) - {f"{RELEASE}-https-redirect"}
    assert {RELEASE, f"{RELEASE}-versioned"} <= set(policies) == carrying
    for name, p in policies.items():
        assert p["spec"]["targetRef"] == {
            "group": "gateway.networking.k8s.io",
            "kind": "HTTPRoute",
            "name": name,
        }
        assert p["spec"]["body"]["maxSize"] == "64k"
    (limit,) = of_kind(gateway_render, "RateLimitPolicy")
    assert {t["name"] for t in limit["spec"]["targetRefs"]} == set(policies)
    (rule,) = limit["spec"]["rateLimit"]["local"]["rules"]
    assert rule["rejectCode"] == 429 and rule["key"] == "$binary_remote_addr"
    assert re.fullmatch(r"[0-9]+r/s", rule["rate"])


# ---------------------------------------------------------------- canary, side by side


def test_canary_weights_and_header(render: Callable[..., tuple[Manifest, ...]]) -> None:
    out = render("prod", "gateway.canary.enabled=true", "gateway.canary.weight=10")
    path = "/api/deliveries/d-1"
    weighted = gateway_hits(out, "GET", path)
    assert {(h.service, h.weight) for h in weighted} == {("delivery", 90), ("delivery-next", 10)}
    for value, service in (("always", "delivery-next"), ("never", "delivery")):
        hits = gateway_hits(out, "GET", path, {"X-Canary": value})
        # The header rule has one more match criterion: the spec gives it precedence.
        with_header = [h for h in hits if h.weight is None]
        assert {h.service for h in with_header} == {service}, value
    for path in INTERNAL_PATHS:
        assert gateway_hits(out, "GET", path, {"X-Canary": "always"}) == []


def test_canary_off_by_default(gateway_render: tuple[Manifest, ...]) -> None:
    for route in of_kind(gateway_render, "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            assert all("weight" not in b for b in rule.get("backendRefs", []))
            assert all("headers" not in m for m in rule.get("matches", []))


# ---------------------------------------------------------------- the Azure entry points


def test_aks_application_routing(render: Callable[..., tuple[Manifest, ...]]) -> None:
    out = render("prod", f"--values={UMBRELLA / 'values-aks-approuting.yaml'}")
    (gw,) = of_kind(out, "Gateway")
    assert gw["spec"]["gatewayClassName"] == "approuting-istio"
    assert of_kind(out, "ClientSettingsPolicy") == of_kind(out, "RateLimitPolicy") == []
    for path in corpus():
        for method in METHODS:
            if routes.route_for(method, path) is None:
                assert gateway_hits(out, method, path) == []


def test_application_gateway_for_containers(render: Callable[..., tuple[Manifest, ...]]) -> None:
    out = render("prod", f"--values={UMBRELLA / 'values-agc.yaml'}")
    (gw,) = of_kind(out, "Gateway")
    assert gw["spec"]["gatewayClassName"] == "azure-alb-external"
    annotations = gw["metadata"]["annotations"]
    assert {"alb.networking.azure.io/alb-name", "alb.networking.azure.io/alb-namespace"} <= set(
        annotations
    )
    assert of_kind(out, "ClientSettingsPolicy") == []
    # Prefix matches: coarser, and still nothing internal past the public port.
    for path in corpus():
        for method in METHODS:
            public = routes.route_for(method, path)
            for candidate in (path, routes.VERSION_PREFIX + path):
                hits = gateway_hits(out, method, candidate)
                if public is None:
                    assert all(refused_by_public_port(h, method) for h in hits), (method, path)
                else:
                    assert {(h.service, h.path) for h in hits} == {(public.service, path)}
    # Its proxies are outside the cluster: the public services admit its subnet.
    for name in ("ingestion", "delivery"):
        policy = by_name(out, "NetworkPolicy")[name]
        peers = [p for rule in policy["spec"]["ingress"] for p in rule["from"]]
        assert {"ipBlock": {"cidr": "10.225.0.0/24"}} in peers, name


# ---------------------------------------------------------------- refused: internal routes without a token

# Each of these would put the internal PUT/PATCH/DELETE (served, unauthenticated, on 8080)
# within reach of the entry point, or leave production without authentication.
REFUSED = [
    ("dev", ["delivery.networkPolicy.fromGateway=false"]),
    ("dev", ["ingestion.networkPolicy.fromGateway=false"]),
    ("dev", ["delivery.networkPolicy.enabled=false"]),
    (
        "dev",
        [
            "gateway.enabled=false",
            "ingress.enabled=true",
            "ingestion.networkPolicy.fromGateway=false",
        ],
    ),
    ("dev", ["ingress.enabled=true", "ingress.annotations.nginx\\.org/location-snippets=x"]),
    ("dev", ["gateway.annotations.nginx\\.org/server-snippets=x"]),
    ("dev", ["delivery.env.AUTH_ENABLED=true"]),  # no tenant, no audience
    ("prod-alone", []),  # values-prod.yaml without AUTH_TENANT_ID / AUTH_AUDIENCE
]


@pytest.mark.parametrize(("environment", "sets"), REFUSED)
def test_combinations_exposing_internal_routes_are_refused(
    helm: str, environment: str, sets: list[str]
) -> None:
    files = ["-f", str(UMBRELLA / f"values-{environment.removesuffix('-alone')}.yaml")]
    args = [a for s in sets for a in ("--set", s)]
    done = run_helm(helm, "template", "t", str(UMBRELLA), *files, *args)
    assert done.returncode != 0, f"helm template accepted {sets} on {environment}"


def test_without_an_entry_point_the_public_port_may_go(helm: str) -> None:
    """The refusal is about routing from outside: with no Gateway and no Ingress, a
    service without its public port is an ordinary in-cluster service."""
    done = run_helm(
        helm, "template", "t", str(UMBRELLA), "-f", str(UMBRELLA / "values-dev.yaml"),
        "--set", "gateway.enabled=false", "--set", "delivery.networkPolicy.fromGateway=false",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_production_requires_tokens(render: Callable[..., tuple[Manifest, ...]]) -> None:
    for name, d in by_name(render("prod"), "Deployment").items():
        (c,) = d["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        if name in ("ingestion", "delivery"):
            assert env["AUTH_ENABLED"] == "true", name
            assert env["AUTH_TENANT_ID"] and env["AUTH_AUDIENCE"], name
            assert env["PUBLIC_PORT"] == str(PUBLIC_PORT), name


def test_every_service_limits_bodies_and_requests_in_flight(
    gateway_render: tuple[Manifest, ...],
) -> None:
    """The limits that hold whatever the entry point: set on every pod (chassis/limits.py)."""
    for name, d in by_name(gateway_render, "Deployment").items():
        (c,) = d["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        # Delivery takes confirmations with blobs of up to a million characters.
        assert env["MAX_BODY_BYTES"] == ("2097152" if name == "delivery" else "65536"), name
        assert int(env["MAX_IN_FLIGHT_REQUESTS"]) >= 1, name
