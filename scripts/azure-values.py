#!/usr/bin/env python3
"""Turn the outputs of infra/main.bicep into a values file for charts/drone-delivery.

    az deployment group show -g RG -n main --query properties.outputs -o json > outputs.json
    scripts/azure-values.py outputs.json -o azure-values.yaml \\
        --secret-provider-class delivery-keyvault.yaml [--api-audience API_CLIENT_ID]
    kubectl apply -f delivery-keyvault.yaml
    helm upgrade --install drone-delivery charts/drone-delivery -n drone-delivery \\
        -f charts/drone-delivery/values-prod.yaml -f azure-values.yaml

Takes `az`'s form ({"name": {"type": ..., "value": ...}}) or plain {"name": value}. Writes
only what the deployment decides (registry, client ids, endpoints, the Application
Insights connection string); sizing and policy stay in values-dev/prod.yaml. With
--secret-provider-class it also writes delivery's Key Vault mount (the SecretProviderClass
of k8s/azure/ with this deployment's vault, tenant and client id). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SERVICES = ("ingestion", "workflow", "package", "dronescheduler", "delivery")

# Every output this script reads: tests/infra checks that infra/main.bicep has each one.
REQUIRED_OUTPUTS = (
    "tenantId",
    "namespace",
    "acrLoginServer",
    *(f"{s}ClientId" for s in SERVICES),
    "queueUrl",
    "serviceBusNamespaceFqdn",
    "serviceBusQueueName",
    "ingestionStoreUrl",
    "packageStoreUrl",
    "droneschedulerStoreUrl",
    "deliveryStoreUrl",
    "keyVaultName",
    "redisSecretName",
    "appInsightsConnectionString",
)

# Delivery's Key Vault mount: the names values-prod.yaml and k8s/azure/ use.
SECRET_PROVIDER_CLASS = "delivery-keyvault"
SECRET_MOUNT_PATH = "/mnt/secrets"
REDIS_PASSWORD_OBJECT = "redis-password"


def read_outputs(text: str) -> dict[str, Any]:
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise SystemExit("expected a JSON object of deployment outputs")
    outputs = {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in raw.items()}
    missing = [name for name in REQUIRED_OUTPUTS if outputs.get(name) in (None, "")]
    if missing:
        raise SystemExit(f"deployment outputs lack: {', '.join(missing)}")
    return outputs


def chart_values(
    outputs: dict[str, Any],
    *,
    api_audience: str = "",
    ingress_host: str = "",
    image_tag: str = "",
) -> dict[str, Any]:
    o = outputs
    telemetry = [
        {"name": "APPLICATIONINSIGHTS_CONNECTION_STRING", "value": o["appInsightsConnectionString"]}
    ]
    # The public services (drone scheduler and workflow for the console's views) check
    # Entra ID tokens (values-prod.yaml turns them on, and its
    # schema refuses it without the tenant and the API's audience, which go here).
    auth = (
        {"AUTH_ENABLED": "true", "AUTH_TENANT_ID": o["tenantId"], "AUTH_AUDIENCE": api_audience}
        if api_audience
        else {}
    )

    def service(name: str, env: dict[str, str], public: bool = False) -> dict[str, Any]:
        return {
            "serviceAccount": {
                "workloadIdentity": {"clientId": o[f"{name}ClientId"], "tenantId": o["tenantId"]}
            },
            "env": {**env, **(auth if public else {})},
            "extraEnv": telemetry,
        }

    image: dict[str, str] = {"registry": o["acrLoginServer"]}
    if image_tag:
        image["tag"] = image_tag
    values: dict[str, Any] = {
        "global": {"image": image},
        "ingestion": service(
            "ingestion",
            {"QUEUE_URL": o["queueUrl"], "STORE_URL": o["ingestionStoreUrl"]},
            public=True,
        ),
        "workflow": {
            **service("workflow", {"QUEUE_URL": o["queueUrl"]}, public=True),
            "keda": {
                "serviceBusNamespace": o["serviceBusNamespaceFqdn"],
                "queueName": o["serviceBusQueueName"],
            },
        },
        "package": service("package", {"STORE_URL": o["packageStoreUrl"]}),
        "dronescheduler": service(
            "dronescheduler", {"STORE_URL": o["droneschedulerStoreUrl"]}, public=True
        ),
        "delivery": {
            **service("delivery", {"STORE_URL": o["deliveryStoreUrl"]}, public=True),
            "secretFiles": {
                "secretProviderClass": SECRET_PROVIDER_CLASS,
                "mountPath": SECRET_MOUNT_PATH,
                "files": {"REDIS_PASSWORD_FILE": REDIS_PASSWORD_OBJECT},
            },
        },
    }
    if ingress_host:
        values["entryPoint"] = {"host": ingress_host}
    return values


def secret_provider_class(outputs: dict[str, Any]) -> dict[str, Any]:
    o = outputs
    objects = (
        "array:\n"
        "  - |\n"
        f"    objectName: {o['redisSecretName']}\n"
        "    objectType: secret\n"
        f"    objectAlias: {REDIS_PASSWORD_OBJECT}\n"
    )
    return {
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": SECRET_PROVIDER_CLASS, "namespace": o["namespace"]},
        "spec": {
            "provider": "azure",
            "parameters": {
                "usePodIdentity": "false",
                "clientID": o["deliveryClientId"],
                "keyvaultName": o["keyVaultName"],
                "tenantId": o["tenantId"],
                "objects": objects,
            },
        },
    }


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block YAML for dicts, lists and scalars; strings as JSON (valid YAML) literals,
    except multi-line ones, which become literal blocks."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}\n"
        out = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:\n{to_yaml(v, indent + 1)}")
            else:
                out.append(f"{pad}{k}: {_scalar(v, indent + 1)}")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return "[]\n"
        out = []
        for item in value:
            text = to_yaml(item, indent + 1)
            out.append(f"{pad}- {text.lstrip()}")
        return "".join(out)
    return f"{pad}{_scalar(value, indent)}"


def _scalar(value: Any, indent: int) -> str:
    if isinstance(value, dict | list):
        return "{}\n" if isinstance(value, dict) else "[]\n"
    if isinstance(value, str) and "\n" in value:
        pad = "  " * indent
        body = "".join(f"{pad}{line}\n" for line in value.rstrip("\n").split("\n"))
        return f"|\n{body}"
    return json.dumps(value) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("outputs", help="the deployment outputs as JSON, or - for stdin")
    parser.add_argument("-o", "--output", help="values file to write (default: stdout)")
    parser.add_argument(
        "--secret-provider-class", help="also write delivery's SecretProviderClass here"
    )
    parser.add_argument(
        "--api-audience",
        default="",
        help="the API app registration's client id: turns on token checks",
    )
    parser.add_argument("--host", default="", help="entryPoint.host: the public host name")
    parser.add_argument("--tag", default="", help="global.image.tag")
    args = parser.parse_args(argv)

    text = sys.stdin.read() if args.outputs == "-" else Path(args.outputs).read_text()
    outputs = read_outputs(text)
    header = "# Written by scripts/azure-values.py from the outputs of infra/main.bicep.\n"
    values = header + to_yaml(
        chart_values(
            outputs, api_audience=args.api_audience, ingress_host=args.host, image_tag=args.tag
        )
    )
    if args.output:
        Path(args.output).write_text(values)
    else:
        sys.stdout.write(values)
    if args.secret_provider_class:
        Path(args.secret_provider_class).write_text(
            header + to_yaml(secret_provider_class(outputs))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
