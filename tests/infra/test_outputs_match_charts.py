"""infra/ provides what the charts and the code expect, by the names they use.

The Bicep is read with pycep (no Azure, no Bicep CLI): every value the charts need is an
output of main.bicep; each output comes from the right service's resource; each identity
is federated with the service account the chart renders and holds only its own data-plane
roles; Cosmos DB containers and the Service Bus queue are what the code expects. Then
scripts/azure-values.py turns a sample of `az deployment group show` outputs into a values
file that the charts' schemas accept and that renders those names.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from chassis.documents import Collection
from dronescheduler.pages import PAGES
from dronescheduler.service import ASSIGNMENTS, DRONES
from package.service import PACKAGES
from tests.infra.conftest import ROOT, Bicep, leaves, schema_errors
from workflow.config import Settings as WorkflowSettings

SERVICES = ("ingestion", "workflow", "package", "dronescheduler", "delivery")
CHARTS = ROOT / "charts"
UMBRELLA = CHARTS / "drone-delivery"
SAMPLE = Path(__file__).with_name("sample-outputs.json")
SCRIPT = ROOT / "scripts" / "azure-values.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("azure_values", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


azure_values = load_script()


def value_of(bicep: Bicep, expression: Any) -> Any:
    """A literal, or a variable's literal value (pycep gives names and strings alike)."""
    variables = bicep.get("variables", {})
    if isinstance(expression, str) and expression in variables:
        return variables[expression]["value"]
    return expression


def module(bicep: Bicep, name: str) -> dict[str, Any]:
    params: dict[str, Any] = bicep["modules"][name]["config"]["params"]
    return params


def identity_principals(expression: Any) -> set[str]:
    """Which service identities an expression names (e.g. {'workflow'})."""
    return {s for s in SERVICES if f"{s}Identity" in leaves(expression)}


# ---------------------------------------------------------------- outputs
def test_every_value_the_charts_need_is_an_output(main_bicep: Bicep) -> None:
    outputs = main_bicep["outputs"]
    missing = [name for name in azure_values.REQUIRED_OUTPUTS if name not in outputs]
    assert not missing, f"main.bicep lacks outputs the chart values need: {missing}"
    for name in azure_values.REQUIRED_OUTPUTS:
        assert outputs[name]["type"] == "string", name


@pytest.mark.parametrize("service", SERVICES)
def test_each_client_id_is_that_service_s_own_identity(main_bicep: Bicep, service: str) -> None:
    output = main_bicep["outputs"][f"{service}ClientId"]["value"]
    assert identity_principals(output) == {service}
    assert "clientId" in leaves(output)


def test_store_and_queue_urls_have_the_forms_the_code_parses(main_bicep: Bicep) -> None:
    outputs = main_bicep["outputs"]
    assert outputs["queueUrl"]["value"].startswith("servicebus://")
    assert outputs["queueUrl"]["value"].endswith("/${serviceBus.outputs.queueName}")
    assert outputs["packageStoreUrl"]["value"] == "cosmos://${cosmosHost}/${packageDatabase}"
    assert outputs["droneschedulerStoreUrl"]["value"] == (
        "cosmos://${cosmosHost}/${droneschedulerDatabase}"
    )
    assert outputs["deliveryStoreUrl"]["value"].startswith("rediss://")
    assert outputs["ingestionStoreUrl"]["value"] == "cosmos://${cosmosHost}/${ingestionDatabase}"
    assert value_of(main_bicep, "ingestionDatabase") == "ingestion"
    assert value_of(main_bicep, "packageDatabase") == "package"
    assert value_of(main_bicep, "droneschedulerDatabase") == "dronescheduler"
    assert value_of(main_bicep, "queueName") == "deliveryrequests"


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_parameter_files_name_only_main_bicep_s_parameters(
    main_bicep: Bicep, environment: str
) -> None:
    given = json.loads((ROOT / "infra" / f"main.{environment}.parameters.json").read_text())
    assert set(given["parameters"]) <= set(main_bicep["parameters"])
    assert given["parameters"]["environmentName"]["value"] == environment
    sizes = main_bicep["variables"]["sizes"]["value"]
    assert set(sizes) == {"dev", "prod"}


# ---------------------------------------------------------------- identities and roles
def chart_service_account(service: str) -> str:
    # drone-service-lib: serviceAccount.name, else fullnameOverride, else the chart name.
    values = yaml.safe_load((CHARTS / service / "values.yaml").read_text())
    chart = yaml.safe_load((CHARTS / service / "Chart.yaml").read_text())
    name: str = (
        values["serviceAccount"].get("name") or values.get("fullnameOverride") or chart["name"]
    )
    return name


def test_the_namespace_is_the_charts_namespace(main_bicep: Bicep) -> None:
    namespaces = [
        d["metadata"]["name"]
        for d in yaml.safe_load_all((ROOT / "k8s" / "namespaces.yaml").read_text())
    ]
    assert main_bicep["parameters"]["namespace"]["default"] == "drone-delivery"
    assert "drone-delivery" in namespaces


@pytest.mark.parametrize("service", SERVICES)
def test_each_identity_is_federated_with_its_service_account(
    main_bicep: Bicep, bicep: dict[str, Bicep], service: str
) -> None:
    params = module(main_bicep, f"{service}Identity")
    assert main_bicep["modules"][f"{service}Identity"]["detail"]["path"] == (
        "modules/workload-identity.bicep"
    )
    account = chart_service_account(service)
    # The release's account, and the side-by-side release's (infra/deploy/next-release.yaml).
    assert params["serviceAccounts"] == [account, f"{account}-next"]
    next_release = yaml.safe_load((ROOT / "infra" / "deploy" / "next-release.yaml").read_text())
    assert next_release[service]["fullnameOverride"] == f"{account}-next"
    assert params["namespace"] == "namespace"  # the parameter, default drone-delivery
    federation = bicep["infra/modules/workload-identity.bicep"]["resources"]["federation"]
    assert federation["config"]["loop_type"]["detail"]["array_name"] == "serviceAccounts"
    props = federation["config"]["config"]["properties"]
    assert props["subject"] == "system:serviceaccount:${namespace}:${account}"
    assert props["audiences"] == ["api://AzureADTokenExchange"]
    assert props["issuer"] == "oidcIssuerUrl"


def test_service_bus_roles_ingestion_sends_and_workflow_receives(main_bicep: Bicep) -> None:
    params = module(main_bicep, "serviceBus")
    assert identity_principals(params["senderPrincipalIds"]) == {"ingestion"}
    assert identity_principals(params["receiverPrincipalIds"]) == {"workflow"}


def test_each_store_service_has_its_own_database_and_no_other(main_bicep: Bicep) -> None:
    databases = {
        value_of(main_bicep, db["name"]): db for db in module(main_bicep, "cosmos")["databases"]
    }
    assert set(databases) == {"ingestion", "package", "dronescheduler"}
    for name, db in databases.items():
        assert identity_principals(db["contributors"]) == {name}


def test_only_delivery_reads_the_redis_key(main_bicep: Bicep) -> None:
    assert identity_principals(module(main_bicep, "redisKeyAccess")["principalIds"]) == {"delivery"}


def test_data_plane_roles_are_the_documented_built_ins(bicep: dict[str, Bicep]) -> None:
    sb = bicep["infra/modules/servicebus.bicep"]["variables"]
    assert sb["senderRoleId"]["value"] == "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"
    assert sb["receiverRoleId"]["value"] == "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
    cosmos = bicep["infra/modules/cosmos.bicep"]
    assert cosmos["variables"]["dataContributorRoleId"]["value"] == (
        "00000000-0000-0000-0000-000000000002"
    )
    access = bicep["infra/modules/cosmos-access.bicep"]["resources"]["assignments"]
    assert access["config"]["config"]["properties"]["scope"] == "${account.id}/dbs/${databaseName}"
    kv = bicep["infra/modules/keyvault-access.bicep"]
    assert kv["variables"]["secretsUserRoleId"]["value"] == "4633458b-17de-408a-b874-0445c86b69e6"
    assert kv["resources"]["readers"]["config"]["config"]["scope"] == "secret"
    acr = bicep["infra/modules/acr.bicep"]
    assert acr["variables"]["acrPullRoleId"]["value"] == "7f951dda-4ed3-4680-a7ca-43fe172d538d"
    assert acr["resources"]["kubeletPull"]["config"]["properties"]["principalId"] == (
        "kubeletObjectId"
    )
    assert acr["resources"]["registry"]["config"]["properties"]["adminUserEnabled"] is False


# ---------------------------------------------------------------- what the code expects of the stores
def ingestion_collection() -> Collection:
    # Ingestion's store arrived with idempotent requests; without it there is nothing to match.
    found = getattr(importlib.import_module("ingestion.service"), "DELIVERY_REQUESTS", None)
    if not isinstance(found, Collection):
        pytest.skip("ingestion.service has no DELIVERY_REQUESTS collection")
    return found


@pytest.mark.parametrize(
    ("database", "collection"),
    [
        ("ingestion", None),
        ("package", PACKAGES),
        ("dronescheduler", DRONES),
        ("dronescheduler", ASSIGNMENTS),
        ("dronescheduler", PAGES),
    ],
    ids=["deliveryrequests", "packages", "drones", "assignments", "drone_pages"],
)
def test_cosmos_containers_match_the_code(
    main_bicep: Bicep, database: str, collection: Collection | None
) -> None:
    collection = collection or ingestion_collection()
    databases = {
        value_of(main_bicep, db["name"]): db for db in module(main_bicep, "cosmos")["databases"]
    }
    containers = {c["name"]: c["partitionKey"] for c in databases[database]["containers"]}
    assert containers.get(collection.name) == f"/{collection.partition_key}"


def test_cosmos_is_entra_only_and_cannot_be_changed_from_the_data_plane(
    bicep: dict[str, Bicep],
) -> None:
    props = bicep["infra/modules/cosmos.bicep"]["resources"]["account"]["config"]["properties"]
    assert props["disableLocalAuth"] is True
    assert props["disableKeyBasedMetadataWriteAccess"] is True


def test_the_queue_matches_workflow_s_settings(main_bicep: Bicep, bicep: dict[str, Bicep]) -> None:
    workflow = WorkflowSettings()
    params = module(main_bicep, "serviceBus")
    assert params["maxDeliveryCount"] == workflow.queue_max_delivery_count
    assert params["lockDuration"] == f"PT{int(workflow.queue_lock_seconds)}S"
    sb = bicep["infra/modules/servicebus.bicep"]["resources"]
    queue = sb["queue"]["config"]["properties"]
    assert queue["deadLetteringOnMessageExpiration"] is True
    assert queue["requiresDuplicateDetection"] is True
    assert queue["duplicateDetectionHistoryTimeWindow"] == "duplicateDetectionWindow"
    assert params["duplicateDetectionWindow"].startswith("PT")
    assert sb["namespace"]["config"]["properties"]["disableLocalAuth"] is True


def test_the_cluster_has_what_the_charts_rely_on(bicep: dict[str, Bicep]) -> None:
    props = bicep["infra/modules/aks.bicep"]["resources"]["cluster"]["config"]["properties"]
    assert props["oidcIssuerProfile"]["enabled"] is True
    assert props["securityProfile"]["workloadIdentity"]["enabled"] is True
    assert props["addonProfiles"]["azureKeyvaultSecretsProvider"]["enabled"] is True
    assert props["networkProfile"]["networkPolicy"] == "cilium"  # the charts' NetworkPolicies
    assert props["disableLocalAccounts"] is True
    # The entry point is Gateway API: the managed CRDs, standard channel (the charts' HTTPRoutes).
    assert props["ingressProfile"]["gatewayAPI"]["installation"] == "Standard"
    assert "appRoutingIstio" in str(props["ingressProfile"]["webAppRouting"])
    pools = {p["mode"]: p for p in props["agentPoolProfiles"]}
    assert set(pools) == {"System", "User"}
    assert pools["System"]["onlyCriticalAddonsEnabled"] is True  # the app runs on "user"
    for pool in pools.values():
        assert pool["enableAutoScaling"] is True
        assert "zones" in leaves(pool["availabilityZones"])


# ---------------------------------------------------------------- outputs -> values file
def generated_values(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(SAMPLE), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    values: dict[str, Any] = yaml.safe_load(out.stdout)
    return values


def sample() -> dict[str, Any]:
    return {k: v["value"] for k, v in json.loads(SAMPLE.read_text()).items()}


def test_the_sample_has_every_output_main_bicep_has(main_bicep: Bicep) -> None:
    assert set(sample()) == set(main_bicep["outputs"])


def merged(base: Any, override: Any) -> Any:
    """Helm's merge: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {
            k: merged(base.get(k), override[k]) if k in base else override[k] for k in override
        } | {k: v for k, v in base.items() if k not in override}
    return override


def test_values_from_outputs_name_what_the_deployment_made() -> None:
    values = generated_values("--api-audience", "api://drone-delivery")
    o = sample()
    assert values["global"]["image"]["registry"] == o["acrLoginServer"]
    for service in SERVICES:
        identity = values[service]["serviceAccount"]["workloadIdentity"]
        assert identity == {"clientId": o[f"{service}ClientId"], "tenantId": o["tenantId"]}
        env = {e["name"]: e["value"] for e in values[service]["extraEnv"]}
        assert env["APPLICATIONINSIGHTS_CONNECTION_STRING"] == o["appInsightsConnectionString"]
        # API authentication goes to `env`, where the charts' schemas check it.
        public = service in ("ingestion", "delivery", "dronescheduler", "workflow")
        assert ("AUTH_ENABLED" in values[service]["env"]) is public
        if public:
            assert values[service]["env"]["AUTH_TENANT_ID"] == o["tenantId"]
            assert values[service]["env"]["AUTH_AUDIENCE"] == "api://drone-delivery"
    auth = {
        "AUTH_ENABLED": "true",
        "AUTH_TENANT_ID": o["tenantId"],
        "AUTH_AUDIENCE": "api://drone-delivery",
    }
    assert values["ingestion"]["env"] == {
        "QUEUE_URL": o["queueUrl"],
        "STORE_URL": o["ingestionStoreUrl"],
        **auth,
    }
    assert values["workflow"]["env"] == {"QUEUE_URL": o["queueUrl"], **auth}
    assert values["workflow"]["keda"]["serviceBusNamespace"] == o["serviceBusNamespaceFqdn"]
    assert values["package"]["env"] == {"STORE_URL": o["packageStoreUrl"]}
    assert values["dronescheduler"]["env"] == {"STORE_URL": o["droneschedulerStoreUrl"], **auth}
    assert values["delivery"]["env"] == {"STORE_URL": o["deliveryStoreUrl"], **auth}
    assert values["delivery"]["secretFiles"]["files"] == {"REDIS_PASSWORD_FILE": "redis-password"}


@pytest.mark.parametrize("layer", ["values-prod.yaml", "values-dev.yaml"])
def test_values_from_outputs_pass_every_chart_schema(tmp_path: Path, layer: str) -> None:
    generated = generated_values(
        "--api-audience", "api://drone-delivery", "--host", "drone.example.org", "--tag", "0.1.0"
    )
    environment = yaml.safe_load((UMBRELLA / layer).read_text())
    umbrella = merged(
        merged(yaml.safe_load((UMBRELLA / "values.yaml").read_text()), environment), generated
    )
    errors = schema_errors(UMBRELLA / "values.schema.json", umbrella, tmp_path)
    for service in SERVICES:
        chart_values = yaml.safe_load((CHARTS / service / "values.yaml").read_text())
        errors += [
            f"{service}.{e}"
            for e in schema_errors(
                CHARTS / service / "values.schema.json",
                merged(chart_values, umbrella.get(service, {})),
                tmp_path,
            )
        ]
    assert not errors, "\n".join(errors)


def test_outputs_in_either_form_give_the_same_values(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(sample()))
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(plain)], capture_output=True, text=True, check=True
    )
    assert yaml.safe_load(out.stdout) == generated_values()


def test_a_missing_output_is_refused(tmp_path: Path) -> None:
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({k: v for k, v in sample().items() if k != "workflowClientId"}))
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(partial)], capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "workflowClientId" in out.stderr


def test_the_secret_provider_class_matches_k8s_azure(tmp_path: Path) -> None:
    written = tmp_path / "spc.yaml"
    generated_values("--secret-provider-class", str(written))
    mine = yaml.safe_load(written.read_text())
    reference = yaml.safe_load((ROOT / "k8s" / "azure" / "secretproviderclass.yaml").read_text())
    o = sample()
    assert mine["metadata"] == reference["metadata"]
    params, ref = mine["spec"]["parameters"], reference["spec"]["parameters"]
    assert params["clientID"] == o["deliveryClientId"]
    assert params["keyvaultName"] == o["keyVaultName"]
    assert params["tenantId"] == o["tenantId"]
    assert params["usePodIdentity"] == ref["usePodIdentity"]
    assert yaml.safe_load(params["objects"]) == yaml.safe_load(ref["objects"])
    # The values file mounts it under the name it has.
    assert (
        generated_values()["delivery"]["secretFiles"]["secretProviderClass"]
        == (mine["metadata"]["name"])
    )


def test_the_chart_renders_the_deployment_s_names(tmp_path: Path) -> None:
    from tests.charts.conftest import find_helm, in_ci, run_helm

    helm = find_helm()
    if helm is None:
        reason = "helm not found in build/tools/bin or PATH (run scripts/check-charts.sh once)"
        if in_ci():
            pytest.fail(f"required tool missing: {reason}", pytrace=False)
        pytest.skip(reason)
    for chart in (*SERVICES, "drone-delivery"):
        run_helm(helm, "dependency", "update", "--skip-refresh", str(CHARTS / chart))
    values = tmp_path / "azure.yaml"
    values.write_text(yaml.safe_dump(generated_values("--api-audience", "api://drone-delivery")))
    out = run_helm(
        helm, "template", "drone-delivery", str(UMBRELLA), "-n", "drone-delivery",
        "-f", str(UMBRELLA / "values-prod.yaml"), "-f", str(values),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    o = sample()
    accounts = {
        d["metadata"]["name"]: d["metadata"]["annotations"]
        for d in docs
        if d["kind"] == "ServiceAccount"
    }
    for service in SERVICES:
        assert accounts[service]["azure.workload.identity/client-id"] == o[f"{service}ClientId"]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for service in SERVICES:
        spec = deployments[service]["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == service
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["APPLICATIONINSIGHTS_CONNECTION_STRING"] == o["appInsightsConnectionString"]
        image = spec["containers"][0]["image"]
        assert image.startswith(f"{o['acrLoginServer']}/drone-delivery/{service}")
    assert any(
        e["name"] == "QUEUE_URL" and e["value"] == o["queueUrl"]
        for e in deployments["workflow"]["spec"]["template"]["spec"]["containers"][0]["env"]
    )
