#!/usr/bin/env python3
"""Write (or with --check, verify) every chart's values.schema.json from one definition.

The five service charts share most of their values through the library chart, so their
schemas share one definition here; only each service's `env` block differs. Standard
library only: it runs before any venv exists.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CHARTS = Path(__file__).resolve().parent.parent / "charts"

STRING = {"type": "string"}
BOOL = {"type": "boolean"}
NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
UUID_OR_EMPTY = {
    "type": "string",
    "pattern": r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$",
}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
QUANTITY_CPU = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?m?$"}
QUANTITY_MEMORY = {"type": "string", "pattern": r"^[0-9]+(Ki|Mi|Gi)$"}
URL_SERVICE = {"type": "string", "pattern": r"^https?://[^/]+/?$"}  # may hold {{ tpl }}


def obj(props: dict, required: list[str] | None = None, extra: bool = False) -> dict:
    out: dict = {"type": "object", "properties": props, "additionalProperties": extra}
    if required:
        out["required"] = required
    return out


def url(*schemes: str) -> dict:
    return {"type": "string", "pattern": rf"^({'|'.join(schemes)})://\S+$"}


def integer(lo: int, hi: int | None = None) -> dict:
    out = {"type": "integer", "minimum": lo}
    if hi is not None:
        out["maximum"] = hi
    return out


QUEUE = url("amqp", "amqps", "servicebus", "sqlite")
DOCUMENTS = url("postgresql", "postgres", "cosmos", "sqlite", "redis", "rediss")

NUMBER_TEXT = {"type": ["number", "string"], "pattern": r"^[0-9]+(\.[0-9]+)?$", "minimum": 0}
COUNT = {"type": ["integer", "string"], "pattern": "^[1-9][0-9]*$", "minimum": 1}
# Settings every service has (chassis/settings.py): the protections on its outbound calls
# and fault injection for demos and chaos tests (off unless set).
COMMON_ENV = {
    "BREAKER_FAILURE_THRESHOLD": NUMBER_TEXT,
    "BREAKER_RECOVERY_SECONDS": NUMBER_TEXT,
    "BULKHEAD_MAX_CONCURRENT": NUMBER_TEXT,
    "BULKHEAD_MAX_WAIT_SECONDS": NUMBER_TEXT,
    "HTTP_TIMEOUT_SECONDS": NUMBER_TEXT,
    "HTTP_RETRY_ATTEMPTS": NUMBER_TEXT,
    "FAULT_ERROR_RATE": {
        "type": ["number", "string"],
        "pattern": r"^(0(\.[0-9]+)?|1(\.0+)?)$",
        "minimum": 0,
        "maximum": 1,
    },
    "FAULT_LATENCY_MS": NUMBER_TEXT,
    "FAULT_ROUTES": STRING,
    "FAULT_SWITCHES": {"enum": ["true", "false", True, False]},
    # Inbound limits (chassis/limits.py): 413 over the body size, 429 beyond the in-flight bound.
    "MAX_BODY_BYTES": NUMBER_TEXT,
    "MAX_IN_FLIGHT_REQUESTS": NUMBER_TEXT,
    "OVERLOAD_RETRY_AFTER_SECONDS": NUMBER_TEXT,
}
BOOL_TEXT = {"enum": [True, False, "true", "false", "True", "False", "1", "0"]}
# The public services' API authentication (chassis/auth.py).
AUTH_ENV = {
    "AUTH_ENABLED": BOOL_TEXT,
    "AUTH_TENANT_ID": STRING,
    "AUTH_AUDIENCE": STRING,
    "AUTH_ISSUER": STRING,
    "AUTH_JWKS_URL": STRING,
    "AUTH_OWNER_CLAIM": STRING,
}

# Each service's own settings: the environment variables its Settings class reads.
SERVICE_ENV: dict[str, tuple[dict, list[str]]] = {
    "ingestion": (
        {"QUEUE_URL": QUEUE, "STORE_URL": DOCUMENTS, "ACCEPT_BATCH": COUNT, **AUTH_ENV},
        ["QUEUE_URL", "STORE_URL"],
    ),
    "workflow": (
        {
            "QUEUE_URL": QUEUE,
            "PACKAGE_URL": URL_SERVICE,
            "DRONESCHEDULER_URL": URL_SERVICE,
            "DELIVERY_URL": URL_SERVICE,
            "WORKFLOW_CONCURRENCY": COUNT,
            "QUEUE_PREFETCH": {"type": ["integer", "string"], "pattern": "^[0-9]+$", "minimum": 0},
            "WORKFLOW_BATCH_SIZE": COUNT,
            "WORKFLOW_GATHER_SECONDS": NUMBER_TEXT,
            "QUEUE_HOLD_SECONDS": NUMBER_TEXT,
            **AUTH_ENV,  # the console's pipeline view (docs/console.md)
        },
        ["QUEUE_URL", "PACKAGE_URL", "DRONESCHEDULER_URL", "DELIVERY_URL"],
    ),
    "package": ({"STORE_URL": DOCUMENTS}, ["STORE_URL"]),
    "dronescheduler": (
        {
            "STORE_URL": DOCUMENTS,
            "FLEET_SIZE": COUNT,
            "FLEET_RESYNC_SECONDS": NUMBER_TEXT,
            "SCHEDULE_PAGE_WINDOWS": {
                "type": ["integer", "string"],
                "pattern": "^[0-9]+$",
                "minimum": 0,
            },
            **AUTH_ENV,  # the console's fleet view (docs/console.md)
        },
        ["STORE_URL"],
    ),
    "delivery": ({"STORE_URL": url("redis", "rediss", "sqlite"), **AUTH_ENV}, ["STORE_URL"]),
}

PROBE = obj(
    {
        "periodSeconds": integer(1, 60),
        "timeoutSeconds": integer(1, 30),
        "failureThreshold": integer(1, 120),
    },
    ["periodSeconds", "timeoutSeconds", "failureThreshold"],
)
RESOURCE_PAIR = obj({"cpu": QUANTITY_CPU, "memory": QUANTITY_MEMORY}, ["cpu", "memory"])
POD_LABELS_AT = obj({"namespace": NAME, "podLabels": STRING_MAP}, ["namespace", "podLabels"])
CIDR = {"type": "string", "pattern": r"^[0-9a-fA-F.:]+/[0-9]{1,3}$"}
# The entry point's data plane: pods (namespace + labels) and/or addresses outside the
# cluster (Application Gateway for Containers' subnet); at least one of the two.
GATEWAY_PEERS = {
    **obj(
        {"namespace": NAME, "podLabels": STRING_MAP, "cidrs": {"type": "array", "items": CIDR}},
        ["namespace", "podLabels", "cidrs"],
    ),
    "anyOf": [
        {"properties": {"podLabels": {"minProperties": 1}}},
        {"properties": {"cidrs": {"minItems": 1}}},
    ],
}
# A NetworkPolicy egress rule, as Kubernetes spells it; kubernetes-validate checks the rest.
EGRESS_RULE = {
    "type": "object",
    "properties": {
        "to": {"type": "array", "minItems": 1},
        "ports": {"type": "array", "minItems": 1},
    },
    "required": ["to", "ports"],
    "additionalProperties": False,
}


def service_schema(service: str) -> dict:
    env_props, env_required = SERVICE_ENV[service]
    props = {
        "global": {"type": "object"},
        "drone-service-lib": {"type": "object"},  # helm adds a key per dependency
        "nameOverride": STRING,
        "fullnameOverride": STRING,
        "component": {"enum": ["api", "worker"]},
        "replicaCount": integer(1),
        "image": obj(
            {
                "registry": STRING,
                "repository": STRING,
                "tag": {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$|^$"},
                "digest": {"type": "string", "pattern": r"^(sha256:[a-f0-9]{64})?$"},
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            },
            ["registry", "pullPolicy"],
        ),
        "imagePullSecrets": {"type": "array", "items": obj({"name": NAME}, ["name"])},
        "logLevel": {"enum": ["debug", "info", "warning", "error", "critical"]},
        # /internal/faults (chassis/faults): faults switched at run time, internal port only.
        "faultSwitches": BOOL,
        "env": obj({**COMMON_ENV, **env_props}, env_required),
        "extraEnv": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        "secretFiles": obj(
            {
                "secretProviderClass": {"anyOf": [NAME, {"const": ""}]},
                "mountPath": {"type": "string", "pattern": "^/"},
                "files": {
                    "type": "object",
                    "propertyNames": {"pattern": "^[A-Z][A-Z0-9_]*_FILE$"},
                    "additionalProperties": {"type": "string", "pattern": r"^[A-Za-z0-9._-]+$"},
                },
            },
            ["secretProviderClass", "mountPath", "files"],
        ),
        "serviceAccount": obj(
            {
                "name": STRING,
                "annotations": STRING_MAP,
                "workloadIdentity": obj(
                    {"clientId": UUID_OR_EMPTY, "tenantId": UUID_OR_EMPTY}, ["clientId"]
                ),
            },
            ["workloadIdentity"],
        ),
        # Non-root is not optional: the images are built for uid 10001.
        "securityContext": obj({"uid": integer(1000, 2147483647)}, ["uid"]),
        "podAnnotations": STRING_MAP,
        "podLabels": STRING_MAP,
        "resources": obj(
            {"requests": RESOURCE_PAIR, "limits": RESOURCE_PAIR}, ["requests", "limits"]
        ),
        "probes": obj(
            {"startup": PROBE, "readiness": PROBE, "liveness": PROBE},
            ["startup", "readiness", "liveness"],
        ),
        "shutdown": obj(
            {
                "preStopSleepSeconds": integer(1, 60),
                "drainSeconds": integer(0, 120),
                "graceSeconds": integer(1, 300),
                "marginSeconds": integer(1, 60),
            },
            ["preStopSleepSeconds", "drainSeconds", "graceSeconds", "marginSeconds"],
        ),
        "tmpSizeLimit": QUANTITY_MEMORY,
        "podDisruptionBudget": obj(
            {
                "enabled": BOOL,
                "maxUnavailable": {
                    "anyOf": [integer(1), {"type": "string", "pattern": "^[0-9]+%$"}]
                },
            },
            ["enabled", "maxUnavailable"],
        ),
        "autoscaling": obj(
            {
                "enabled": BOOL,
                "minReplicas": integer(1),
                "maxReplicas": integer(1),
                "targetCPUUtilizationPercentage": integer(1, 100),
                "targetMemoryUtilizationPercentage": {"anyOf": [integer(1, 100), {"type": "null"}]},
                "scaleDownStabilizationSeconds": integer(0, 3600),
            },
            ["enabled", "minReplicas", "maxReplicas", "targetCPUUtilizationPercentage"],
        ),
        "topologySpread": obj(
            {
                "enabled": BOOL,
                "maxSkew": integer(1),
                "hostname": {"enum": ["ScheduleAnyway", "DoNotSchedule"]},
                "zone": {"enum": ["ScheduleAnyway", "DoNotSchedule"]},
            },
            ["enabled", "maxSkew", "hostname", "zone"],
        ),
        "nodeSelector": STRING_MAP,
        "tolerations": {"type": "array"},
        "affinity": {"type": "object"},
        "networkPolicy": obj(
            {
                "enabled": BOOL,
                "fromGateway": BOOL,
                "fromServices": {"type": "array", "items": NAME, "uniqueItems": True},
                "toServices": {"type": "array", "items": NAME, "uniqueItems": True},
                "storeEgress": {"type": "array", "items": EGRESS_RULE},
                "gateway": GATEWAY_PEERS,
                "dns": POD_LABELS_AT,
                "monitoring": POD_LABELS_AT,
            },
            [
                "enabled",
                "fromGateway",
                "fromServices",
                "toServices",
                "storeEgress",
                "gateway",
                "dns",
                "monitoring",
            ],
        ),
        "serviceMonitor": obj(
            {
                "enabled": {"enum": [True, False, "auto"]},
                "interval": STRING,
                "scrapeTimeout": STRING,
                "labels": STRING_MAP,
            },
            ["enabled"],
        ),
    }
    required = [
        "image",
        "env",
        "secretFiles",
        "serviceAccount",
        "securityContext",
        "resources",
        "probes",
        "shutdown",
        "podDisruptionBudget",
        "autoscaling",
        "topologySpread",
        "networkPolicy",
        "serviceMonitor",
    ]
    if service == "workflow":
        props["keda"] = obj(
            {
                "enabled": BOOL,
                "minReplicas": integer(0),
                "maxReplicas": integer(1),
                "pollingInterval": integer(1),
                "cooldownPeriod": integer(0),
                "messageCount": integer(1),
                "serviceBusNamespace": STRING,
                "queueName": STRING,
                "identityId": UUID_OR_EMPTY,
            },
            ["enabled"],
        )
        required.append("keda")
    schema = {
        "$schema": "https://json-schema.org/draft-07/schema#",
        "title": f"{service} chart values",
        **obj(props, required),
    }
    if "AUTH_ENABLED" in env_props:
        # Authentication on needs the tenant and the audience: refused here rather than
        # by a pod that will not start.
        schema["allOf"] = [
            {
                "if": {
                    "properties": {
                        "env": {
                            "properties": {"AUTH_ENABLED": {"enum": [True, "true", "True", "1"]}},
                            "required": ["AUTH_ENABLED"],
                        }
                    },
                    "required": ["env"],
                },
                "then": {
                    "properties": {
                        "env": {
                            "properties": {
                                "AUTH_TENANT_ID": {"minLength": 1},
                                "AUTH_AUDIENCE": {"minLength": 1},
                            },
                            "required": ["AUTH_TENANT_ID", "AUTH_AUDIENCE"],
                        }
                    }
                },
            }
        ]
    if service == "workflow":
        # KEDA needs the namespace, and an identity to read the queue length with: its
        # own (keda.identityId) or, failing that, workflow's.
        schema["if"] = {"properties": {"keda": {"properties": {"enabled": {"const": True}}}}}
        schema["then"] = {
            "properties": {"keda": {"properties": {"serviceBusNamespace": {"minLength": 1}}}},
            "anyOf": [
                {
                    "properties": {
                        "keda": {
                            "properties": {"identityId": {"minLength": 1}},
                            "required": ["identityId"],
                        }
                    }
                },
                {
                    "properties": {
                        "serviceAccount": {
                            "properties": {
                                "workloadIdentity": {"properties": {"clientId": {"minLength": 1}}}
                            }
                        }
                    }
                },
            ],
        }
    return schema


HOST = {
    "type": "string",
    "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
DURATION = {"type": "string", "pattern": r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"}  # Gateway API's
SIZE = {"type": "string", "pattern": "^[0-9]+[kKmM]?$"}
# Raw NGINX configuration through annotations is refused: it can route anything.
ANNOTATIONS_NO_SNIPPETS = {**STRING_MAP, "propertyNames": {"not": {"pattern": "snippet"}}}
PUBLIC_SERVICES = ("ingestion", "delivery", "dronescheduler", "workflow")


def when(condition: dict, then: dict) -> dict:
    return {"if": condition, "then": then}


def at(path: str, schema: dict, required: bool = False) -> dict:
    """`schema` at a dotted path of values: {"properties": {"a": {"properties": ...}}}."""
    out = schema
    for key in reversed(path.split(".")):
        out = {"properties": {key: out}, **({"required": [key]} if required else {})}
    return out


# Above zero, as a number or as text (helm --set passes 0.5 as a string); RE2, no lookahead.
POSITIVE_NUMBER_TEXT = {
    "type": ["number", "string"],
    "pattern": r"^([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)$",
    "exclusiveMinimum": 0,
}
# Released images pinned by scripts/pin-images.py: one sha256 digest per image.
DIGEST = {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}
PUBLISHED = obj(
    {
        "registry": STRING,
        "tag": STRING,
        "digests": {
            "type": "object",
            "propertyNames": {"enum": [*SERVICE_ENV, "load"]},
            "additionalProperties": DIGEST,
        },
    },
    ["registry", "tag", "digests"],
)


def umbrella_schema() -> dict:
    tls = obj(
        {
            "mode": {"enum": ["none", "selfSigned", "clusterIssuer", "secret"]},
            "secretName": STRING,
            "clusterIssuer": STRING,
        },
        ["mode", "secretName"],
    )
    entry_point = obj({"host": HOST, "tls": tls, "httpsRedirect": BOOL}, ["host", "tls"])
    listener = obj(
        {"name": NAME, "protocol": {"enum": ["HTTP", "HTTPS"]}, "port": integer(1, 65535)},
        ["name", "protocol", "port"],
    )
    parent_ref = obj({"name": NAME, "namespace": NAME, "sectionName": NAME}, ["name"])
    gateway = obj(
        {
            "enabled": BOOL,
            "create": BOOL,
            "name": NAME,
            "namespace": NAME,
            "className": NAME,
            "annotations": ANNOTATIONS_NO_SNIPPETS,
            "infrastructure": obj({"labels": STRING_MAP, "annotations": STRING_MAP}),
            "listeners": {"type": "array", "items": listener, "minItems": 1, "maxItems": 64},
            "parentRefs": {"type": "array", "items": parent_ref, "maxItems": 32},
            "pathMatch": {"enum": ["RegularExpression", "PathPrefix"]},
            "timeouts": obj({"request": DURATION, "backendRequest": DURATION}),
            "canary": obj(
                {
                    "enabled": BOOL,
                    "release": NAME,
                    "serviceSuffix": {"type": "string", "pattern": "^-[a-z0-9-]{1,20}$"},
                    "weight": integer(0, 100),
                    "header": obj(
                        {
                            "name": {"type": "string", "pattern": "^[A-Za-z0-9-]+$"},
                            "always": {"type": "string", "minLength": 1},
                            "never": {"type": "string", "minLength": 1},
                        },
                        ["name", "always", "never"],
                    ),
                },
                ["enabled", "serviceSuffix", "weight", "header"],
            ),
            "nginx": obj(
                {
                    "enabled": BOOL,
                    "clientMaxBodySize": SIZE,
                    "clientBodyTimeout": DURATION,
                    "rateLimit": obj(
                        {
                            "rate": {"type": "string", "pattern": "^[0-9]+r/[sm]$"},
                            "burst": integer(0),
                            "zoneSize": SIZE,
                        },
                        ["rate", "burst", "zoneSize"],
                    ),
                },
                ["enabled"],
            ),
        },
        [
            "enabled",
            "create",
            "name",
            "namespace",
            "className",
            "listeners",
            "pathMatch",
            "canary",
            "nginx",
        ],
    )
    ingress = obj(
        {
            "enabled": BOOL,
            "className": NAME,
            "annotations": ANNOTATIONS_NO_SNIPPETS,
            "versionedAnnotations": ANNOTATIONS_NO_SNIPPETS,
            "proxyBodySize": SIZE,
        },
        ["enabled", "className"],
    )
    tests = obj(
        {
            "enabled": BOOL,
            "image": STRING,
            "entryPointUrl": {"type": "string", "pattern": r"^https?://\S+$"},
            "tlsVerify": BOOL,
            "attempts": integer(1, 300),
            "intervalSeconds": integer(1, 60),
        },
        ["enabled", "image", "entryPointUrl", "tlsVerify", "attempts", "intervalSeconds"],
    )
    services = {name: {"type": "object"} for name in SERVICE_ENV}  # each subchart checks its own
    resources = obj({"requests": RESOURCE_PAIR, "limits": RESOURCE_PAIR}, ["requests", "limits"])
    load = obj(
        {
            "enabled": BOOL,
            "image": STRING,
            "targetUrl": {"type": "string", "pattern": r"^(https?://\S+)?$"},
            "users": integer(1, 100000),
            "spawnRate": POSITIVE_NUMBER_TEXT,
            "rate": POSITIVE_NUMBER_TEXT,
            # Locust's --run-time: 90s, 10m, 1h30m.
            "duration": {
                "type": "string",
                "pattern": r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$",
                "minLength": 2,
            },
            "userClasses": {
                "type": "array",
                "items": {"enum": ["OriginalScenario", "RealisticMix"]},
                "minItems": 1,
                "uniqueItems": True,
            },
            "report": obj(
                {
                    "persistentVolumeClaim": {"anyOf": [NAME, {"const": ""}]},
                    "sizeLimit": QUANTITY_MEMORY,
                },
                ["persistentVolumeClaim", "sizeLimit"],
            ),
            "resources": resources,
        },
        ["enabled", "users", "spawnRate", "rate", "duration", "userClasses", "report", "resources"],
    )
    props = {
        "global": obj(
            {
                "image": obj({"registry": STRING, "tag": STRING, "published": PUBLISHED}),
                "faultSwitches": BOOL,
            },
            extra=True,
        ),
        **services,
        "entryPoint": entry_point,
        "gateway": gateway,
        "ingress": ingress,
        "networkPolicy": obj(
            {"defaultDeny": BOOL, "gateway": GATEWAY_PEERS, "dns": POD_LABELS_AT},
            ["defaultDeny", "gateway", "dns"],
        ),
        "tests": tests,
        "load": load,
    }
    # Routed from outside (a Gateway or an Ingress) means: a public service keeps its
    # public port, which serves the route table's routes only, and its NetworkPolicy, which
    # keeps the entry point off the port that serves everything (workflow's unauthenticated
    # PUT, PATCH and DELETE). Subchart defaults are both true; an override may not say false.
    kept_public = {
        "properties": {
            s: {
                "properties": {
                    "networkPolicy": {
                        "properties": {"enabled": {"const": True}, "fromGateway": {"const": True}}
                    }
                }
            }
            for s in PUBLIC_SERVICES
        }
    }
    routed = {
        "anyOf": [
            at("gateway.enabled", {"const": True}, required=True),
            at("ingress.enabled", {"const": True}, required=True),
        ]
    }
    return {
        "$schema": "https://json-schema.org/draft-07/schema#",
        "title": "drone-delivery umbrella chart values",
        **obj(props, ["global", "entryPoint", "gateway", "ingress", "networkPolicy", "tests"]),
        "allOf": [
            when(routed, kept_public),
            # TLS from a ClusterIssuer needs its name; from a Secret, the Secret's name.
            when(
                at("entryPoint.tls.mode", {"const": "clusterIssuer"}),
                at("entryPoint.tls.clusterIssuer", {"minLength": 1}, required=True),
            ),
            when(
                at("entryPoint.tls.mode", {"enum": ["secret", "selfSigned", "clusterIssuer"]}),
                at("entryPoint.tls.secretName", NAME),
            ),
            # Attaching to someone else's Gateway needs its name.
            when(
                {
                    "allOf": [
                        at("gateway.enabled", {"const": True}),
                        at("gateway.create", {"const": False}),
                    ]
                },
                at("gateway.parentRefs", {"minItems": 1}),
            ),
        ],
    }


def main() -> int:
    check = "--check" in sys.argv[1:]
    wanted = {CHARTS / s / "values.schema.json": service_schema(s) for s in SERVICE_ENV}
    wanted[CHARTS / "drone-delivery" / "values.schema.json"] = umbrella_schema()
    stale = []
    for path, schema in wanted.items():
        text = json.dumps(schema, indent=2) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.write_text(text)
    if stale:
        for path in stale:
            print(f"stale: {path} (run scripts/chart-schemas.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
